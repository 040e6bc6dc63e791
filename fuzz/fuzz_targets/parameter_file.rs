//! Parameter files are configuration, but a loader of text must still never
//! panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ParameterSet::from_toml_str(text, "fuzz.toml");
    }
});
