//! Shamir shares (from clients) and holder answers (from key holders):
//! both decoders must refuse or accept, never panic or allocate beyond the
//! expected length, and whatever they accept must re-encode to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsum_threshold::shamir::{HolderAnswer, ShareField, ShareMessage};

/// The default field (16-bit packing) and a 9-bit one (the generic packer,
/// with padding bits), each at a small and a large degree.
const FIELDS: [u64; 2] = [ShareField::DEFAULT_MODULUS, 257];
const DEGREES: [usize; 2] = [16, 16384];

fuzz_target!(|data: &[u8]| {
    for modulus in FIELDS {
        let field = ShareField::new(modulus).expect("a prime in range");
        for degree in DEGREES {
            if let Ok(share) = ShareMessage::from_bytes(field, degree, data) {
                assert_eq!(share.to_bytes().as_slice(), data, "share decoding is canonical");
                assert_eq!(share.expand().degree(), degree);
            }
            if let Ok(answer) = HolderAnswer::from_bytes(field, degree, data) {
                assert_eq!(answer.to_bytes(), data, "answer decoding is canonical");
                assert_eq!(answer.values().len(), degree);
                assert!(answer.values().iter().all(|&v| u64::from(v) < modulus));
            }
        }
    }
});
