//! The protocol's round results and audit logs, from untrusted bytes. (The
//! round messages themselves are fuzzed by decode_round_messages.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsum_protocol::RoundResult;

fuzz_target!(|data: &[u8]| {
    if let Ok(result) = RoundResult::decode(data, 1 << 16) {
        assert_eq!(result.encode(), data, "results decode canonically");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ringsum_protocol::verify_log(text, None, None);
    }
});
