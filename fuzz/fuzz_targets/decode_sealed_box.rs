//! Sealed boxes from untrusted peers: decoding, re-encoding and opening.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_pq::{KemAlgorithm, SealedBox, SealingKey};

fn keys() -> &'static [SealingKey; 2] {
    static KEYS: OnceLock<[SealingKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            SealingKey::from_seeds(KemAlgorithm::MlKem1024, &[1; 64], None).expect("fixed seed"),
            SealingKey::from_seeds(KemAlgorithm::MlKem1024X25519, &[2; 64], Some(&[2; 32]))
                .expect("fixed seed"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = SealedBox::from_bytes(data, 1 << 16) else {
        return;
    };
    assert_eq!(sealed.to_bytes(), data, "decoding is canonical");
    for key in keys() {
        // Opening its own claimed context: only a real box opens, and the
        // fuzzer cannot make one for these keys without breaking the AEAD.
        let _ = sealed.open(key, sealed.context());
    }
});
