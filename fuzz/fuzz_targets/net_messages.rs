//! What a participant or a restarted coordinator decodes in ringsum-net,
//! from untrusted bytes: the coordinator's recorded events (and, for a
//! recorded submission, the submission itself), a submission as the
//! service receives it, a caller's proof of identity (the query envelope
//! in a call's headers, checked against the registry as the service
//! does), and the federation description a participant rebuilds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_net::SetupDescription;
use ringsum_net::auth::{Query, decode_proof};
use ringsum_net::engine::Event;
use ringsum_pq::{AlgorithmPolicy, KemAlgorithm, SealingKey, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::client::Submission;
use ringsum_protocol::spec::{Federation, FederationSpec, HolderSpec, Policy};
use ringsum_threshold::HolderId;

fn federation() -> &'static Federation {
    static FEDERATION: OnceLock<Federation> = OnceLock::new();
    FEDERATION.get_or_init(|| {
        let identity = |seed: u8| {
            SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[seed; 32], None)
                .expect("identity")
                .public()
                .clone()
        };
        let sealing = |seed: u8| {
            SealingKey::from_seeds(KemAlgorithm::MlKem1024, &[seed; 64], None)
                .expect("sealing key")
                .public()
                .clone()
        };
        Federation::new(FederationSpec {
            params: ParameterSet::builtin("rk128-n4096").expect("shipped set"),
            layout: ModelLayout::try_new([("w", vec![8u64])]).expect("layout"),
            policy: Policy {
                min_clients: 2,
                min_samples: 1,
                max_weight: 100,
                rounds: 2,
            },
            threshold: 2,
            algorithms: AlgorithmPolicy::POST_QUANTUM,
            coordinator: identity(1),
            holders: (0..3u8)
                .map(|i| HolderSpec {
                    point: HolderId(u32::from(i) + 1),
                    signing: identity(10 + i),
                    sealing: sealing(10 + i),
                })
                .collect(),
            clients: (0..3u8).map(|i| identity(20 + i)).collect(),
            privacy: None,
        })
        .expect("federation")
    })
}

fuzz_target!(|data: &[u8]| {
    let federation = federation();
    if let Ok(event) = Event::decode(0, data) {
        assert_eq!(event.encode(), data, "events decode canonically");
        if let Event::Submission(bytes) = &event {
            let _ = Submission::from_bytes(federation, bytes);
        }
    }
    let _ = Submission::from_bytes(federation, data);
    if let Ok(query) = Query::from_bytes(data) {
        assert_eq!(query.to_bytes(), data, "queries decode canonically");
    }
    if let Ok((envelope, query)) = decode_proof(data, federation.id()) {
        assert_eq!(envelope.payload(), query.to_bytes().as_slice());
        let _ = federation.registry().authenticate(&envelope);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(description) = SetupDescription::from_json(text)
    {
        let _ = description.federation();
    }
});
