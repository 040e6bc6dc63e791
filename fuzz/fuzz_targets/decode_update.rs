//! Encrypted updates from untrusted peers: the decoder must refuse or
//! accept, never panic or allocate beyond the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;
use ringsum_core::scheme::Packing;
use ringsum_core::update::UpdateShape;

fn setup() -> &'static (ParameterSet, Packing) {
    static SETUP: OnceLock<(ParameterSet, Packing)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let params = ParameterSet::builtin("pq128-n4096").expect("shipped set");
        let packing = Packing::new(&params);
        (params, packing)
    })
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes (little-endian) pick the model's parameter count,
    // and with it the expected shape: 1 to 4 ciphertexts at N = 4096, the
    // last one's c0 truncated.
    let Some((count, rest)) = data.split_first_chunk::<2>() else { return };
    let (params, packing) = setup();
    let parameters = usize::from(u16::from_le_bytes(*count)) % (4 * 4096);
    let shape = UpdateShape::for_parameters(packing, parameters);
    let _ = ringsum_wire::decode_update(params, rest, &shape);
});
