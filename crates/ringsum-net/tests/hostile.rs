//! Hostile input against a running coordinator: oversized, truncated and
//! garbage messages, replayed and re-signed submissions, a second
//! submission of one client, a submission below the sample minimum,
//! tampered bytes, strangers, wrong roles, rate limits. Each gets a clear
//! gRPC status; the federation of the honest participants completes as if
//! nothing happened.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a fixture that cannot be set up fails the test"
)]

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_net::proto::federation_client::FederationClient;
use ringsum_net::proto::{AckStatus, Caller, Chunk, ShareQuery};
use ringsum_net::server::{Limits, start};
use ringsum_pq::{Envelope, MessageKind, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::client::{Client, Submission};
use tonic::Code;

async fn submit(
    client: &mut FederationClient<tonic::transport::Channel>,
    chunks: Vec<Chunk>,
) -> Result<AckStatus, tonic::Status> {
    client
        .submit(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner().status())
}

/// A message in chunks of at most 1 MiB, as participants send them.
fn whole(bytes: &[u8]) -> Vec<Chunk> {
    ringsum_net::chunks(bytes, 1 << 20)
}

/// `submission` with its update's payload replaced and signed again by
/// `identity`.
fn resigned(submission: &Submission, identity: &SigningIdentity, payload: Vec<u8>) -> Vec<u8> {
    Submission {
        update: Envelope::sign(identity, submission.update.routing().clone(), payload).unwrap(),
        shares: submission.shares.clone(),
    }
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[expect(clippy::too_many_lines, reason = "one federation, many attacks")]
async fn hostile_clients_get_clear_refusals_and_the_federation_completes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 4);
    let description = description(&keys, 1000, 2, 2);
    let pinned = pin(&description);
    let federation = Arc::new(description.federation().unwrap());
    let mut options = serve_options(&dir.path().join("coordinator"));
    // Client 3 never trains: each round closes after 3 s with 3 of 4.
    options.timing.collect_timeout = Duration::from_secs(3);
    options.limits = Limits {
        writes_per_second: 2.0,
        write_burst: 8.0,
        reads_per_second: 1000.0,
        read_burst: 1000.0,
        ..Limits::default()
    };
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let url = format!("http://{}", running.addr);
    let samples = |i: usize| 1000 * (i as u64 + 1);
    let tasks = spawn_participants(&url, pinned, dir.path(), 3, 3, None, samples);

    let mut raw = FederationClient::connect(url.clone()).await.unwrap();
    let stranger = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    let member = Caller {
        participant: keys.clients[3].id().to_string(),
    };

    // An identity that is not a member.
    let refused = raw
        .get_setup(Caller {
            participant: stranger.id().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = raw
        .get_setup(Caller {
            participant: "not hex".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Client 0's first submission, as it recorded and sent it.
    let file = dir.path().join("client-0/submission-1.bin");
    loop {
        let status = raw.status(member.clone()).await.unwrap().into_inner();
        if file.exists() && status.round == 1 && status.accepted >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bytes = std::fs::read(&file).unwrap();
    let submission = Submission::from_bytes(&federation, &bytes).unwrap();
    let identity = client(dir.path(), 0);

    // The same bytes again: nothing new, and said so.
    assert_eq!(
        submit(&mut raw, whole(&bytes)).await.unwrap(),
        AckStatus::AlreadyAccepted
    );
    // Signed again by the same client: the same signed content, so the
    // same submission.
    let again = resigned(&submission, &identity, submission.update.payload().to_vec());
    assert_ne!(again, bytes);
    assert_eq!(
        submit(&mut raw, whole(&again)).await.unwrap(),
        AckStatus::AlreadyAccepted
    );
    // Another valid submission of the same client for the round, under a
    // fresh key: refused, and said why.
    let second = Client::new(Arc::clone(&federation), client(dir.path(), 0))
        .unwrap()
        .submit(
            RoundId(1),
            &vec![0.5; 1000],
            10,
            &mut Csprng::from_seed([1; 32]),
        )
        .unwrap()
        .to_bytes();
    let refused = submit(&mut raw, whole(&second)).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    // A member's submission declaring 3 samples against min_samples 10
    // (client 3, which never submits otherwise): refused with the reason.
    let honest = Client::new(Arc::clone(&federation), client(dir.path(), 3))
        .unwrap()
        .submit(
            RoundId(1),
            &vec![0.5; 1000],
            20,
            &mut Csprng::from_seed([2; 32]),
        )
        .unwrap();
    let mut payload = honest.update.payload().to_vec();
    payload[1..9].copy_from_slice(&3u64.to_be_bytes());
    let few = resigned(&honest, &client(dir.path(), 3), payload);
    let refused = submit(&mut raw, whole(&few)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("declares 3 samples"),
        "{refused:?}"
    );
    // A flipped bit in the update's payload: the signature fails.
    let mut update = submission.update.to_bytes();
    let middle = update.len() / 2;
    update[middle] ^= 1;
    let tampered = Submission {
        update: Envelope::from_bytes(&update, 1 << 24).unwrap(),
        shares: submission.shares.clone(),
    }
    .to_bytes();
    let refused = submit(&mut raw, whole(&tampered)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Signed by a stranger.
    let forged = resigned(&submission, &stranger, submission.update.payload().to_vec());
    let refused = submit(&mut raw, whole(&forged)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Garbage.
    let refused = submit(&mut raw, whole(&[0xA5; 1000])).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    // Oversized: refused on the stated length, before any buffering.
    let refused = submit(
        &mut raw,
        vec![Chunk {
            total: 10 << 30,
            data: vec![0; 16],
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("exceeds the limit"));
    // A chunk larger than the transport's frame limit.
    let refused = submit(
        &mut raw,
        vec![Chunk {
            total: 3 << 20,
            data: vec![0; 3 << 20],
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    // Truncated: fewer bytes than stated.
    let mut short = whole(&bytes);
    short.truncate(1);
    let half = short[0].data.len() / 2;
    short[0].data.truncate(half);
    let refused = submit(&mut raw, short).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("truncated"));
    // No message at all.
    let refused = submit(&mut raw, Vec::new()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    // Bytes that are not HTTP/2 at all, on a raw connection.
    let mut socket = std::net::TcpStream::connect(running.addr).unwrap();
    let _ = socket.write_all(&[0x42; 4096]);
    drop(socket);
    // Client 0's write budget: the burst is used up by the replays.
    let mut limited = None;
    for _ in 0..12 {
        if let Err(status) = submit(&mut raw, whole(&bytes)).await
            && status.code() == Code::ResourceExhausted
        {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("the rate limit never applied");
    assert!(limited.message().starts_with("rate limit"), "{limited:?}");
    // A holder's answer from a client.
    let mut routing = submission.update.routing().clone();
    routing.kind = MessageKind::DecryptionShare;
    let answer = Envelope::sign(&client(dir.path(), 3), routing, vec![0; 100])
        .unwrap()
        .to_bytes();
    let refused = raw
        .post_answer(tokio_stream::iter(whole(&answer)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A key-holder call from a client.
    let refused = raw
        .get_shares(ShareQuery {
            participant: keys.clients[3].id().to_string(),
            round: 1,
            from: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The honest federation finishes: three clients per round, each once.
    let results = results(tasks).await;
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r.clients, 3);
        assert_eq!(r.weight_sum, results[0].weight_sum);
        assert_eq!(r.model, summary.model);
    }
    let step = plaintext_step(&[0, 1, 2], samples);
    let bound = 2.0 * results[0].error_bound;
    for v in &summary.model {
        assert!(
            (f64::from(*v) - 2.0 * step).abs() <= bound,
            "{v} vs {}",
            2.0 * step
        );
    }
    // Refusals of members' messages are in the audit log, with their
    // reasons; forgeries are not; the log verifies.
    let audit = std::fs::read_to_string(dir.path().join("coordinator/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("submission_accepted").count(), 6);
    assert_eq!(audit.matches("submission_refused").count(), 2, "{audit}");
    assert!(audit.contains("declares 3 samples"));
    ringsum_protocol::verify_log(&audit, None, Some(pinned)).unwrap();
}
