//! Key material from outside: secret-key file contents, public keys of
//! every algorithm, and key-rotation / revocation payloads. The payload
//! decoders are reached directly (`ringsum_pq::registry::fuzzing`): behind
//! `Registry::apply_rotation` every input would first need an ML-DSA-65
//! signature, and signing took 86% of the time at about 40 executions a
//! second. A fuzzed public key is decoded, not used: encapsulating to it
//! would spend the time in the KEM, not in our decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsum_pq::registry::fuzzing::{decode_revocation_payload, decode_rotation_payload};
use ringsum_pq::{
    KemAlgorithm, PublicIdentity, SealingKey, SealingPublicKey, SignatureAlgorithm, SigningIdentity,
};

fuzz_target!(|data: &[u8]| {
    let _ = SigningIdentity::from_secret_text(data);
    let _ = SealingKey::from_secret_text(data);
    for alg in SignatureAlgorithm::ALL {
        let _ = PublicIdentity::from_bytes(alg, data);
    }
    for alg in KemAlgorithm::ALL {
        let _ = SealingPublicKey::from_bytes(alg, data);
    }
    let _ = decode_rotation_payload(data);
    let _ = decode_revocation_payload(data);
});
