//! Per-round-key updates from untrusted clients: the decoder must refuse or
//! accept, never panic or allocate beyond the input, and whatever it
//! accepts must encode back to the same bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::Packing;

fn setup() -> &'static (ParameterSet, Packing) {
    static SETUP: OnceLock<(ParameterSet, Packing)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let params = ParameterSet::builtin("rk128-n4096").expect("shipped set");
        let packing = Packing::new(&params);
        (params, packing)
    })
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes (little-endian) pick the model's parameter count,
    // and with it the expected shape: 1 to 4 ciphertexts at N = 4096 with two
    // slots per coefficient, the last one truncated.
    let Some((count, rest)) = data.split_first_chunk::<2>() else { return };
    let (params, packing) = setup();
    let parameters = u64::from(u16::from_le_bytes(*count)) % (4 * 8192) + 1;
    let Ok(layout) = ModelLayout::try_new([("w", vec![parameters])]) else { return };
    if let Ok(update) = ringsum_wire::decode_round_update(params, packing, &layout, rest) {
        assert_eq!(ringsum_wire::encode_round_update(&update), rest);
    }
});
