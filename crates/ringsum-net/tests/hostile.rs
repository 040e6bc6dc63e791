//! Hostile input against a running coordinator: oversized, truncated and
//! garbage messages, replayed and re-signed submissions, tampered bytes,
//! unknown identities, rate limits. Each gets a clear gRPC status; the
//! federation of the honest participants completes as if nothing happened.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use ringsum_net::proto::federation_client::FederationClient;
use ringsum_net::proto::{Caller, Chunk};
use ringsum_net::server::{Limits, start};
use ringsum_pq::{Envelope, MessageKind, SignatureAlgorithm, SigningIdentity};
use tonic::Code;

async fn submit(
    client: &mut FederationClient<tonic::transport::Channel>,
    chunks: Vec<Chunk>,
) -> Result<String, tonic::Status> {
    client
        .submit(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner().status)
}

/// A message in chunks of at most 1 MiB, as participants send them.
fn whole(bytes: &[u8]) -> Vec<Chunk> {
    ringsum_net::chunks(bytes, 1 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_get_clear_refusals_and_the_federation_completes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 4);
    let description = description(&keys, 1000, 2, 2);
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
    let tasks = spawn_participants(&url, dir.path(), 3, 3, None, |i| 10 * (i as u64 + 1));

    let mut raw = FederationClient::connect(url.clone()).await.unwrap();
    let stranger = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    let member = Caller {
        participant: keys.clients[3].id().to_string(),
    };

    // An identity that is not on the allow-list.
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

    // Client 0's first submission, as it sent it.
    let file = dir.path().join("client-0/submission-1.bin");
    while !file.exists()
        || raw
            .get_round(member.clone())
            .await
            .unwrap()
            .into_inner()
            .round
            != 1
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut accepted = false;
    while !accepted {
        tokio::time::sleep(Duration::from_millis(20)).await;
        accepted = raw
            .status(member.clone())
            .await
            .unwrap()
            .into_inner()
            .accepted
            >= 1;
    }
    let bytes = std::fs::read(&file).unwrap();

    // The same bytes again: nothing new, and said so.
    assert_eq!(
        submit(&mut raw, whole(&bytes)).await.unwrap(),
        "already accepted"
    );
    // Signed again by the same client: the same signed content, so the
    // same submission.
    let envelope = Envelope::from_bytes(&bytes, bytes.len()).unwrap();
    let identity = client(dir.path(), 0);
    let resigned = Envelope::sign(
        &identity,
        envelope.routing().clone(),
        envelope.payload().to_vec(),
    )
    .unwrap()
    .to_bytes();
    assert_ne!(resigned, bytes);
    assert_eq!(
        submit(&mut raw, whole(&resigned)).await.unwrap(),
        "already accepted"
    );
    // Another submission of the same client for the round (it declares
    // more samples), validly signed: refused.
    let mut payload = envelope.payload().to_vec();
    payload[7] ^= 0x40;
    let second = Envelope::sign(&identity, envelope.routing().clone(), payload)
        .unwrap()
        .to_bytes();
    let refused = submit(&mut raw, whole(&second)).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    // A flipped bit in the payload: the signature fails.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 10_000;
    tampered[last] ^= 1;
    let refused = submit(&mut raw, whole(&tampered)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Signed by a stranger.
    let forged = Envelope::sign(
        &stranger,
        envelope.routing().clone(),
        envelope.payload().to_vec(),
    )
    .unwrap()
    .to_bytes();
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
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
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
    // A decryption share from a client.
    let mut routing = envelope.routing().clone();
    routing.kind = MessageKind::DecryptionShare;
    let share = Envelope::sign(&client(dir.path(), 3), routing, vec![0; 100])
        .unwrap()
        .to_bytes();
    let refused = raw
        .post_share(tokio_stream::iter(whole(&share)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A key-holder call from a client.
    let refused = raw.get_task(member.clone()).await.unwrap_err();
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
    // (1 * 10 + 2 * 20 + 3 * 30) / 60 / 100 per round.
    let expected = 2.0 * (10.0 + 40.0 + 90.0) / 60.0 / 100.0;
    let bound = 2.0 * results[0].error_bound;
    for v in &summary.model {
        assert!(
            (f64::from(*v) - expected).abs() <= bound,
            "{v} vs {expected}"
        );
    }
    // Refusals that reached the protocol are in the audit log, which verifies.
    let audit = std::fs::read_to_string(dir.path().join("coordinator/audit.jsonl")).unwrap();
    assert!(audit.contains("submission_refused"));
    ringsum_protocol::verify_log(&audit, None, None).unwrap();
}
