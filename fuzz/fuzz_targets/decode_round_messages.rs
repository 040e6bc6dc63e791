//! The messages of a round on per-round keys, from untrusted bytes: a
//! client's submission (at the coordinator), the update envelope's head,
//! the binding at the head of a round-key-share envelope, the set of
//! clients a coordinator asks for (at a holder) and a holder's answer (at
//! the coordinator). The first byte picks the decoder; every decoder must
//! refuse or accept, never panic or allocate beyond its bounds, and
//! whatever it accepts must encode back to the same bytes.
//!
//! The federation is `tests/round_protocol.rs`'s `world(3, 2, 4, policy(3))`
//! (rk128-n4096, 3 holders, t = 2, 4 clients, a 43-parameter model), whose
//! ignored test `write_fuzz_seeds` writes `seeds/decode_round_messages`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_pq::{
    AlgorithmPolicy, Envelope, KemAlgorithm, ROUND_SHARE_BINDING_BYTES, SealingKey,
    SignatureAlgorithm, SigningIdentity,
};
use ringsum_protocol::client::Submission;
use ringsum_protocol::message::{
    AnswerPayload, ClientSet, UPDATE_HEAD_BYTES, UpdateHead, binding_of, max_share_payload,
    share_binding,
};
use ringsum_protocol::spec::{Federation, FederationSpec, HolderSpec, Policy};
use ringsum_threshold::HolderId;

fn identity(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[seed; 32], None).expect("fixed seed")
}

fn federation() -> &'static Federation {
    static FEDERATION: OnceLock<Federation> = OnceLock::new();
    FEDERATION.get_or_init(|| {
        Federation::new(FederationSpec {
            params: ParameterSet::builtin("rk128-n4096").expect("shipped set"),
            layout: ModelLayout::try_new([("w", vec![40u64]), ("b", vec![3])])
                .expect("a valid layout"),
            policy: Policy {
                min_clients: 3,
                min_samples: 10,
                max_weight: 10_000,
                rounds: 5,
            },
            threshold: 2,
            algorithms: AlgorithmPolicy::POST_QUANTUM,
            coordinator: identity(1).public().clone(),
            holders: (0..3u8)
                .map(|i| HolderSpec {
                    point: HolderId(u32::from(i) + 1),
                    signing: identity(10 + i).public().clone(),
                    sealing: SealingKey::from_seeds(KemAlgorithm::MlKem1024, &[10 + i; 64], None)
                        .expect("fixed seed")
                        .public()
                        .clone(),
                })
                .collect(),
            clients: (0..4u8)
                .map(|i| identity(100 + i).public().clone())
                .collect(),
            privacy: None,
        })
        .expect("a valid federation")
    })
}

/// What the coordinator does with an update's payload once its signature
/// checked: the head, then the ciphertexts.
fn update_payload(federation: &Federation, payload: &[u8]) {
    let Ok((head, rest)) = UpdateHead::decode(payload) else {
        assert!(
            payload.len() < UPDATE_HEAD_BYTES || payload.first() != Some(&1),
            "a head of the right length and version decodes"
        );
        return;
    };
    assert_eq!(head.encode(rest), payload, "head || update round-trips");
    if let Ok(update) = ringsum_wire::decode_round_update(
        federation.params(),
        federation.packing(),
        federation.layout(),
        rest,
    ) {
        assert_eq!(ringsum_wire::encode_round_update(&update), rest);
    }
}

/// The coordinator's reading of a round-key-share envelope's binding.
fn share_envelope(envelope: &Envelope) {
    match binding_of(envelope) {
        Ok((submission, commitment)) => {
            let binding = share_binding(submission, commitment);
            assert_eq!(
                envelope.payload().get(..ROUND_SHARE_BINDING_BYTES),
                Some(&binding[..]),
                "the binding is the payload's first 64 bytes"
            );
        }
        Err(_) => assert!(envelope.payload().len() < ROUND_SHARE_BINDING_BYTES),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let federation = federation();
    match selector % 5 {
        // A client's whole message, as the coordinator receives it.
        0 => {
            let Ok(submission) = Submission::from_bytes(federation, data) else {
                return;
            };
            assert_eq!(
                submission.to_bytes(),
                data,
                "submissions decode canonically"
            );
            assert!(submission.shares.len() <= federation.holders().len());
            update_payload(federation, submission.update.payload());
            for share in &submission.shares {
                share_envelope(share);
            }
        }
        // The payload of an update envelope.
        1 => update_payload(federation, data),
        // A round-key-share envelope.
        2 => {
            if let Ok(envelope) = Envelope::from_bytes(data, max_share_payload(federation)) {
                share_envelope(&envelope);
            }
        }
        // The payload of a signed request: the set of clients.
        3 => {
            let max = federation.clients().len();
            let Ok(set) = ClientSet::decode(data, max) else {
                return;
            };
            assert_eq!(set.encode(), data, "sets decode canonically");
            assert!(set.entries.len() <= max);
            if set.check(federation).is_ok() {
                assert!(set.entries.len() >= federation.policy().min_clients);
            }
            let _ = set.mask_context(federation);
        }
        // The payload of a holder's answer.
        _ => {
            let Ok(answer) = AnswerPayload::decode(federation, data) else {
                return;
            };
            assert_eq!(answer.encode(), data, "answers decode canonically");
            assert_eq!(answer.answer.values().len(), federation.degree());
        }
    }
});
