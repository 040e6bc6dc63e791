//! A key holder on its redb journal, restarted after it recorded (r, S):
//! with the shares it held lost, it gives the very same answer for S, and
//! refuses another set for r, however the coordinator asks.

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use std::sync::Arc;

use common::*;
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_net::journal::HolderJournal;
use ringsum_pq::{Envelope, MessageKind, ParticipantId, Routing};
use ringsum_protocol::coordinator::Coordinator;
use ringsum_protocol::holder::{AnswerJournal as _, Holder};
use ringsum_protocol::message::ClientSet;
use ringsum_protocol::{AuditLog, ProtocolError};

#[test]
fn a_restarted_holder_answers_the_same_set_alike_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 4);
    let mut description = description(&keys, 100, 2, 2);
    description.min_clients = 3;
    let federation = Arc::new(description.federation().unwrap());
    let mut coord = Coordinator::new(
        Arc::clone(&federation),
        coordinator(dir.path()),
        vec![0.0; 100],
        AuditLog::in_memory(federation.id(), federation.params().id().as_str()),
    )
    .unwrap();
    let journal_path = dir.path().join("holder-1/state.redb");
    let (identity, sealing) = holder(dir.path(), 0);
    let open = |path: &std::path::Path| {
        HolderJournal::open(path, federation.id(), ringsum_threshold::HolderId(1)).unwrap()
    };
    let mut node = Holder::new(
        Arc::clone(&federation),
        identity,
        sealing,
        open(&journal_path),
    )
    .unwrap();
    let announcement = coord.open_round().unwrap();
    node.follow(&announcement).unwrap();
    let mut rng = Csprng::from_seed([5; 32]);
    for i in 0..4 {
        let submission =
            ringsum_protocol::client::Client::new(Arc::clone(&federation), client(dir.path(), i))
                .unwrap()
                .submit(RoundId(1), &[0.01; 100], 20, &mut rng)
                .unwrap();
        coord.accept_submission(submission).unwrap();
    }
    let me = federation.holders()[&ringsum_threshold::HolderId(1)];
    for share in coord.shares_for(me) {
        node.receive_share(share).unwrap();
    }
    let request = coord.close().unwrap();
    let first = node.answer(&request).unwrap();

    // The holder dies (its shares, held in memory, are lost) and restarts
    // on its journal.
    drop(node);
    let (identity, sealing) = holder(dir.path(), 0);
    let mut node = Holder::new(
        Arc::clone(&federation),
        identity,
        sealing,
        open(&journal_path),
    )
    .unwrap();
    node.follow(&announcement).unwrap();
    assert!(node.journal().answered(RoundId(1)).unwrap().is_some());
    let again = node.answer(&request).unwrap();
    assert_eq!(
        again.payload(),
        first.payload(),
        "the same set gets the same answer"
    );
    // The coordinator takes it once.
    coord.accept_answer(first).unwrap();

    // Another set for round 1, validly signed by the coordinator (three of
    // the four clients): refused.
    let set = ClientSet::decode(request.payload(), 4).unwrap();
    let other = ClientSet {
        round: RoundId(1),
        entries: set.entries[..3].to_vec(),
    };
    let routing = Routing {
        federation: federation.id(),
        round: 1,
        kind: MessageKind::DecryptionRequest,
        recipient: ParticipantId::BROADCAST,
        parameter_set: federation.params().id().to_string(),
    };
    let other = Envelope::sign(&coordinator(dir.path()), routing, other.encode()).unwrap();
    let refused = node.answer(&other).unwrap_err();
    assert!(
        matches!(refused, ProtocolError::AlreadyAnswered { round: 1 }),
        "{refused}"
    );
    // Nothing changed: the recorded set is still the first one.
    assert_eq!(node.answer(&request).unwrap().payload(), again.payload());
}
