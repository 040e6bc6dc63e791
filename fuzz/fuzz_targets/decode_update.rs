//! Encrypted updates from untrusted peers: the decoder must refuse or
//! accept, never panic or allocate beyond the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;

fn params() -> &'static ParameterSet {
    static PARAMS: OnceLock<ParameterSet> = OnceLock::new();
    PARAMS.get_or_init(|| ParameterSet::builtin("pq128-n4096").expect("shipped set"))
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the expected ciphertext count (1 to 4).
    let Some((&count, rest)) = data.split_first() else { return };
    let _ = ringsum_wire::decode_update(params(), rest, usize::from(count % 4) + 1);
});
