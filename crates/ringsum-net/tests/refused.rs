//! A submission the coordinator refuses is discarded with its key, and the
//! client says why; the next attempt in the same round makes a fresh one,
//! which is accepted. A client that cannot submit (too few samples) says
//! so and sends nothing.

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use std::sync::Arc;

use common::*;
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_net::NetError;
use ringsum_net::participant::run_client;
use ringsum_net::server::start;
use ringsum_protocol::ProtocolError;
use ringsum_protocol::client::{Client, Submission};

fn samples(_: usize) -> u64 {
    2000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_submission_is_discarded_with_its_key_and_the_client_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let description = description(&keys, 300, 2, 1);
    let pinned = pin(&description);
    let federation = Arc::new(description.federation().unwrap());
    let running = start(
        plan(dir.path(), description),
        serve_options(&dir.path().join("coordinator")),
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.addr);
    let mut tasks = spawn_holders(&url, pinned, dir.path(), 0..3, None);
    tasks.extend(spawn_clients(&url, pinned, dir.path(), 1..3, None, samples));

    // Client 0 recorded a submission the coordinator will refuse: one of
    // its round key shares is missing.
    let state = dir.path().join("client-0");
    std::fs::create_dir_all(&state).unwrap();
    let made = Client::new(Arc::clone(&federation), client(dir.path(), 0))
        .unwrap()
        .submit(
            RoundId(1),
            &vec![0.01; 300],
            2000,
            &mut Csprng::from_seed([7; 32]),
        )
        .unwrap();
    let broken = Submission {
        update: made.update.clone(),
        shares: made.shares[..2].to_vec(),
    };
    let file = state.join("submission-1.bin");
    std::fs::write(&file, broken.to_bytes()).unwrap();

    // It resends what it recorded, is refused, discards it, says why.
    let trainer = || {
        Box::new(Synthetic {
            index: 0,
            samples: 2000,
        })
    };
    let options = client_options(&url, pinned, dir.path(), 0);
    let error = run_client(options.clone(), client(dir.path(), 0), trainer())
        .await
        .unwrap_err();
    let NetError::SubmissionRefused { round, reason } = &error else {
        panic!("{error}");
    };
    assert_eq!(*round, 1);
    assert!(reason.contains("round key shares"), "{reason}");
    let message = error.to_string();
    assert!(message.contains("discarded"), "{message}");
    assert!(!file.exists(), "the refused submission is gone");
    let note = std::fs::read_to_string(state.join("refused-1-1.txt")).unwrap();
    assert!(note.contains("round key shares"), "{note}");

    // A client with too few samples cannot submit: it says so, and
    // nothing is recorded or sent.
    let few = run_client(
        options.clone(),
        client(dir.path(), 0),
        Box::new(Synthetic {
            index: 0,
            samples: 3,
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            few,
            NetError::CannotSubmit {
                round: 1,
                source: ProtocolError::TooFewSamples {
                    samples: 3,
                    min: 10
                }
            }
        ),
        "{few}"
    );
    assert!(!file.exists());

    // The next attempt makes a fresh submission (a fresh key), accepted.
    let report = run_client(options, client(dir.path(), 0), trainer())
        .await
        .unwrap();
    assert_eq!(report.submitted, [1]);
    let result = report.result.unwrap();
    assert_eq!(result.clients, 3);
    results(tasks).await;
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);
    let audit = std::fs::read_to_string(dir.path().join("coordinator/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("submission_refused").count(), 1, "{audit}");
    assert_eq!(audit.matches("submission_accepted").count(), 3);
    // Client i moves by (i + 1) / 100, all with 2000 samples.
    let step = plaintext_step(&[0, 1, 2], samples);
    for v in &summary.model {
        assert!((f64::from(*v) - step).abs() <= result.error_bound);
    }
}
