//! Key material from outside: secret-key file contents, public keys of
//! every algorithm, and key-rotation / revocation payloads (signed by a
//! registered key, so that the payload decoders are reached).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_pq::{
    AlgorithmPolicy, Envelope, FederationId, KemAlgorithm, MessageKind, ParticipantId,
    PublicIdentity, Registry, Role, Routing, SealingKey, SealingPublicKey, SignatureAlgorithm,
    SigningIdentity,
};

const FEDERATION: FederationId = FederationId([7; 32]);

fn setup() -> &'static (SigningIdentity, Registry) {
    static SETUP: OnceLock<(SigningIdentity, Registry)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let me = SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[3; 32], None)
            .expect("fixed seed");
        let mut registry = Registry::new(FEDERATION, AlgorithmPolicy::POST_QUANTUM);
        registry
            .register(Role::Coordinator, me.public().clone(), None)
            .expect("fresh registry");
        (me, registry)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = SigningIdentity::from_secret_text(data);
    let _ = SealingKey::from_secret_text(data);
    for alg in SignatureAlgorithm::ALL {
        let _ = PublicIdentity::from_bytes(alg, data);
    }
    for alg in KemAlgorithm::ALL {
        if let Ok(key) = SealingPublicKey::from_bytes(alg, data) {
            let _ = key.encapsulate();
        }
    }
    // Payload decoders behind a valid signature (signing costs ~1 ms, so
    // only for short inputs).
    if data.len() <= 4096 {
        let (me, registry) = setup();
        for kind in [MessageKind::KeyRotation, MessageKind::Revocation] {
            let routing = Routing {
                federation: FEDERATION,
                round: 1,
                kind,
                recipient: ParticipantId::BROADCAST,
                parameter_set: "rk128-n4096".into(),
            };
            let envelope = Envelope::sign(me, routing, data.to_vec()).expect("signing");
            let mut registry = registry.clone();
            let _ = match kind {
                MessageKind::KeyRotation => registry.apply_rotation(&envelope),
                _ => registry.apply_revocation(&envelope),
            };
        }
    }
});
