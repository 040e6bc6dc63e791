//! Single ciphertexts from untrusted peers.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;

fn params() -> &'static ParameterSet {
    static PARAMS: OnceLock<ParameterSet> = OnceLock::new();
    PARAMS.get_or_init(|| ParameterSet::builtin("pq128-n4096").expect("shipped set"))
}

fuzz_target!(|data: &[u8]| {
    let _ = ringsum_wire::decode_ciphertext(params(), data);
});
