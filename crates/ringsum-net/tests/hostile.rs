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
use ringsum_net::auth::{Method, Query, with_proof};
use ringsum_net::proto::federation_client::FederationClient;
use ringsum_net::proto::{AckStatus, Caller, Chunk, ShareQuery};
use ringsum_net::server::{Limits, start};
use ringsum_pq::{Envelope, FederationId, MessageKind, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::client::{Client, Submission};
use tonic::Code;

/// A streamed message as a raw caller sends it: the proof in the call's
/// metadata, the chunks in its body.
struct Sent {
    proof: Vec<u8>,
    chunks: Vec<Chunk>,
}

impl Sent {
    fn request(self) -> tonic::Request<tokio_stream::Iter<std::vec::IntoIter<Chunk>>> {
        with_proof(tokio_stream::iter(self.chunks), &self.proof)
    }
}

async fn submit(
    client: &mut FederationClient<tonic::transport::Channel>,
    sent: Sent,
) -> Result<AckStatus, tonic::Status> {
    client
        .submit(sent.request())
        .await
        .map(|r| r.into_inner().status())
}

/// A fresh proof of `identity` for `query` in `federation`.
fn proof(identity: &SigningIdentity, federation: FederationId, query: Query) -> Vec<u8> {
    let now = Query::now(query.method).unwrap();
    Query {
        timestamp_ms: now.timestamp_ms,
        nonce: now.nonce,
        ..query
    }
    .sign(identity, federation)
    .unwrap()
}

/// A call without arguments carrying a fresh proof of `identity`.
fn caller(
    identity: &SigningIdentity,
    federation: FederationId,
    method: Method,
) -> tonic::Request<Caller> {
    with_proof(
        Caller {},
        &proof(identity, federation, Query::blank(method)),
    )
}

/// `bytes` sent by `identity` as `method`, in chunks of at most 1 MiB, as
/// participants send them.
fn sent(
    identity: &SigningIdentity,
    federation: FederationId,
    method: Method,
    bytes: &[u8],
) -> Sent {
    Sent {
        proof: Query::for_message(method, bytes)
            .unwrap()
            .sign(identity, federation)
            .unwrap(),
        chunks: ringsum_net::chunks(bytes, 1 << 20),
    }
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
        write_burst: 16.0,
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
    let watcher = client(dir.path(), 3);

    // Who asks must prove it. No proof at all:
    let refused = raw.get_setup(Caller {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("no proof"), "{refused:?}");
    // An identity that is not a member, with a valid signature of its own:
    // told nothing but that its proof is not a member's.
    let refused = raw
        .get_setup(caller(&stranger, pinned, Method::Setup))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("not a valid proof of a member"));
    // Garbage for a proof.
    let refused = raw
        .get_round(with_proof(Caller {}, &[0x5A; 300]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A member's proof made for another federation.
    let refused = raw
        .get_round(caller(&watcher, FederationId([9; 32]), Method::Round))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("does not serve"), "{refused:?}");
    // A member's proof for one call, used for another.
    let refused = raw
        .status(caller(&watcher, pinned, Method::Round))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A member's proof seen once and replayed (someone polling as the
    // member with a proof it observed, or refreshing its liveness).
    let seen = proof(&watcher, pinned, Query::blank(Method::Round));
    raw.get_round(with_proof(Caller {}, &seen)).await.unwrap();
    let refused = raw
        .get_round(with_proof(Caller {}, &seen))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("used before"), "{refused:?}");
    // A proof ten minutes old, and one from ten minutes ahead.
    for shift in [-600_000i64, 600_000] {
        let now = Query::now(Method::Round).unwrap();
        let stale = Query {
            timestamp_ms: now.timestamp_ms.saturating_add_signed(shift),
            ..now
        }
        .sign(&watcher, pinned)
        .unwrap();
        let refused = raw
            .get_round(with_proof(Caller {}, &stale))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(refused.message().contains("clock"), "{refused:?}");
    }
    // A signature that does not verify: the member's proof with a
    // flipped bit in its signature (the last bytes of the envelope).
    let mut broken = proof(&watcher, pinned, Query::blank(Method::Round));
    let last = broken.len() - 10;
    broken[last] ^= 1;
    let refused = raw
        .get_round(with_proof(Caller {}, &broken))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // Client 0's first submission, as it recorded and sent it, once the
    // coordinator says (to client 0 alone) that it was accepted.
    let file = dir.path().join("client-0/submission-1.bin");
    let identity = client(dir.path(), 0);
    loop {
        let round = raw
            .get_round(caller(&identity, pinned, Method::Round))
            .await
            .unwrap()
            .into_inner();
        if file.exists() && round.round == 1 && round.submitted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bytes = std::fs::read(&file).unwrap();
    let submission = Submission::from_bytes(&federation, &bytes).unwrap();
    let whole = |bytes: &[u8]| sent(&identity, pinned, Method::Submit, bytes);

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
    let refused = submit(&mut raw, sent(&watcher, pinned, Method::Submit, &few))
        .await
        .unwrap_err();
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
    // Signed by a stranger, sent by the stranger.
    let forged = resigned(&submission, &stranger, submission.update.payload().to_vec());
    let refused = submit(&mut raw, sent(&stranger, pinned, Method::Submit, &forged))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Client 0's submission sent by client 3 under its own proof.
    let refused = submit(&mut raw, sent(&watcher, pinned, Method::Submit, &bytes))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("but sent by"), "{refused:?}");
    // A proof naming other bytes than those sent (a proof observed and
    // grafted onto another message).
    let mut grafted = whole(&bytes);
    grafted.proof = whole(&second).proof;
    let refused = submit(&mut raw, grafted).await.unwrap_err();
    assert!(
        matches!(refused.code(), Code::InvalidArgument),
        "{refused:?}"
    );
    // A write call with a read proof.
    let mut misused = whole(&bytes);
    misused.proof = proof(&identity, pinned, Query::blank(Method::Round));
    let refused = submit(&mut raw, misused).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Garbage.
    let refused = submit(&mut raw, whole(&[0xA5; 1000])).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    // Oversized: refused on the stated length, before any buffering.
    let mut oversized = whole(&[0; 16]);
    oversized.chunks[0].total = 10 << 30;
    oversized.proof = proof(
        &identity,
        pinned,
        Query {
            total: 10 << 30,
            ..Query::blank(Method::Submit)
        },
    );
    let refused = submit(&mut raw, oversized).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("exceeds the limit"));
    // A chunk larger than the transport's frame limit.
    let zeros = vec![0; 3 << 20];
    let mut big = whole(&zeros);
    big.chunks = vec![Chunk {
        total: 3 << 20,
        data: zeros,
    }];
    let refused = submit(&mut raw, big).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    // Truncated: fewer bytes than stated.
    let mut short = whole(&bytes);
    short.chunks.truncate(1);
    let half = short.chunks[0].data.len() / 2;
    short.chunks[0].data.truncate(half);
    let refused = submit(&mut raw, short).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("truncated"));
    // No message at all.
    let mut nothing = whole(&bytes);
    nothing.chunks.clear();
    let refused = submit(&mut raw, nothing).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    // Bytes that are not HTTP/2 at all, on a raw connection.
    let mut socket = std::net::TcpStream::connect(running.addr).unwrap();
    let _ = socket.write_all(&[0x42; 4096]);
    drop(socket);
    // Client 0's write budget: the burst is used up by the replays.
    let mut limited = None;
    for _ in 0..24 {
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
        .post_answer(sent(&watcher, pinned, Method::Answer, &answer).request())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A key-holder call from a client.
    let refused = raw
        .get_shares(with_proof(
            ShareQuery {},
            &proof(
                &watcher,
                pinned,
                Query {
                    round: 1,
                    ..Query::blank(Method::Shares)
                },
            ),
        ))
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

/// A flood of proofs that fail their signature check gets the address
/// refused before any further check; a proof made before the coordinator
/// started (perhaps seen by someone before a restart) is refused as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_signatures_block_their_address_and_old_proofs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let description = description(&keys, 100, 2, 1);
    let pinned = pin(&description);
    let watcher = client(dir.path(), 0);
    // Made before the coordinator starts.
    let old = proof(&watcher, pinned, Query::blank(Method::Round));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let options = serve_options(&dir.path().join("coordinator"));
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let mut raw = FederationClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    let refused = raw
        .get_round(with_proof(Caller {}, &old))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("restarted"), "{refused:?}");
    // A member's id with a broken signature, again and again.
    let mut blocked = None;
    for _ in 0..200 {
        let mut broken = proof(&watcher, pinned, Query::blank(Method::Round));
        let last = broken.len() - 10;
        broken[last] ^= 1;
        let status = raw
            .get_round(with_proof(Caller {}, &broken))
            .await
            .unwrap_err();
        if status.code() == Code::ResourceExhausted {
            blocked = Some(status);
            break;
        }
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let blocked = blocked.expect("the failures never blocked the address");
    assert!(
        blocked.message().contains("failed to verify"),
        "{blocked:?}"
    );
    // While blocked, even a good proof from the address waits.
    let refused = raw
        .get_round(caller(&watcher, pinned, Method::Round))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // And a stranger's gets the same answer: a blocked address cannot
    // tell members' ids from others'.
    let stranger = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    let refused_stranger = raw
        .get_round(caller(&stranger, pinned, Method::Round))
        .await
        .unwrap_err();
    assert_eq!(refused_stranger.code(), refused.code());
    assert_eq!(refused_stranger.message(), refused.message());
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_spend_the_address_budget_of_failures_as_members_do() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let description = description(&keys, 100, 2, 1);
    let pinned = pin(&description);
    let options = serve_options(&dir.path().join("coordinator"));
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let mut raw = FederationClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    // Proofs from ids that are not members: after the same budget of
    // failures as a member's broken signatures, the address is blocked.
    let stranger = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    let mut blocked = false;
    for _ in 0..200 {
        let status = raw
            .get_round(caller(&stranger, pinned, Method::Round))
            .await
            .unwrap_err();
        if status.code() == Code::ResourceExhausted {
            blocked = true;
            break;
        }
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    assert!(blocked, "a stranger's proofs never blocked the address");
    running.stop();
    running.wait().await.unwrap();
}
