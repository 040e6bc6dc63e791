//! The protocol's payloads (submissions, ceremony messages, requests,
//! decryption shares, round results) and audit logs, from untrusted bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;
use ringsum_core::scheme::Packing;
use ringsum_core::update::UpdateShape;
use ringsum_protocol::payload::{
    RequestPayload, RoundResult, decode_commitment, decode_decryption_share, decode_public_share,
    decode_secret_share, decode_submission,
};

fn params() -> &'static ParameterSet {
    static PARAMS: OnceLock<ParameterSet> = OnceLock::new();
    PARAMS.get_or_init(|| ParameterSet::builtin("pq128-n4096").expect("shipped set"))
}

fuzz_target!(|data: &[u8]| {
    let params = params();
    // One full ciphertext: 4095 parameters and the weight.
    let shape = UpdateShape::for_parameters(&Packing::new(params), 4095);
    let _ = decode_submission(params, data, &shape);
    let _ = decode_commitment(data);
    let _ = decode_public_share(params, data);
    let _ = decode_secret_share(params, data);
    if let Ok(request) = RequestPayload::decode(data, 8) {
        assert_eq!(request.encode(), data, "requests decode canonically");
    }
    let _ = decode_decryption_share(params, data, 4);
    if let Ok(result) = RoundResult::decode(data, 1 << 16) {
        assert_eq!(result.encode(), data, "results decode canonically");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ringsum_protocol::verify_log(text, None, None);
    }
});
