//! Signed envelopes from untrusted peers: decoding, re-encoding, and the
//! receiver's checks (registry and inbox) on whatever decodes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_pq::{
    AlgorithmPolicy,
    Envelope, FederationId, Inbox, MessageKind, Registry, Role, SignatureAlgorithm,
    SigningIdentity,
};

/// One registry per policy, each with one client (seed 1: ML-DSA-65,
/// seed 2: the hybrid), matching the seeds in seeds/decode_envelope.
fn registry(algorithm: SignatureAlgorithm) -> &'static Registry {
    static REGISTRIES: OnceLock<[Registry; 2]> = OnceLock::new();
    let [pq, hybrid] = REGISTRIES.get_or_init(|| {
        [(1u8, AlgorithmPolicy::POST_QUANTUM), (2, AlgorithmPolicy::HYBRID)].map(|(seed, policy)| {
            let alg = policy.signature;
            let ed = [seed; 32];
            let id = SigningIdentity::from_seeds(alg, &[seed; 32], alg.is_hybrid().then_some(&ed))
                .expect("fixed seeds");
            let mut registry = Registry::new(FederationId([0x42; 32]), policy);
            registry.register(Role::Client, id.public().clone(), None).expect("fresh registry");
            registry
        })
    });
    if algorithm.is_hybrid() { hybrid } else { pq }
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_bytes(data, 1 << 16) else {
        return;
    };
    assert_eq!(envelope.to_bytes(), data, "decoding is canonical");
    let mut inbox = Inbox::new(FederationId([0x42; 32]), envelope.routing().round, "pq128-n4096", None);
    let registry = registry(envelope.header().algorithm());
    let kind = envelope.routing().kind;
    match inbox.accept(registry, &envelope, kind) {
        // Only a genuinely signed envelope (a seed) gets here; it is then
        // recorded once and its copy is a replay.
        Ok(_) => {
            assert!(registry.authenticate(&envelope).is_ok());
            assert_eq!(inbox.len(), 1);
            assert!(matches!(
                inbox.accept(registry, &envelope, kind),
                Err(ringsum_pq::PqError::Replay(_))
            ));
        }
        Err(_) => assert!(inbox.is_empty(), "a refused envelope leaves no trace"),
    }
    let _ = MessageKind::from_id(0);
});
