//! Shamir shares (from clients), what a client seals to a holder (its
//! answer key, then its share) and holder answers (from key holders): every
//! decoder must refuse or accept, never panic or allocate beyond the
//! expected length, and whatever it accepts must re-encode to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsum_threshold::shamir::{
    ANSWER_KEY_BYTES, HolderAnswer, ShareField, ShareMessage, decode_client_share,
    encode_client_share,
};

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
            let client = decode_client_share(field, degree, data);
            if let Ok((key, share)) = &client {
                assert_eq!(
                    encode_client_share(key, share).as_slice(),
                    data,
                    "client share decoding is canonical"
                );
                assert_eq!(share.degree(), degree);
            }
            // The key is any 32 bytes: the rest decides, as a share alone.
            let share_alone = data
                .get(ANSWER_KEY_BYTES..)
                .is_some_and(|rest| ShareMessage::from_bytes(field, degree, rest).is_ok());
            assert_eq!(client.is_ok(), share_alone, "client share = key || share");
            if let Ok(answer) = HolderAnswer::from_bytes(field, degree, data) {
                assert_eq!(answer.to_bytes(), data, "answer decoding is canonical");
                assert_eq!(answer.values().len(), degree);
                assert!(answer.values().iter().all(|&v| u64::from(v) < modulus));
            }
        }
    }
});
