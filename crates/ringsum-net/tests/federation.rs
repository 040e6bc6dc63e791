//! A whole federation on loopback, in one process: the coordinator's
//! service, three key holders (t = 2) and clients over gRPC, on per-round
//! client keys. The published model is plaintext FedAvg within the
//! quantization bound; the coordinator restarted mid-round replays its
//! store and counts nothing twice; participants refuse another federation.

mod common;

use std::time::Duration;

use common::*;
use ringsum_net::NetError;
use ringsum_net::model_file::ModelFile;
use ringsum_net::participant::{fetch_status, run_client};
use ringsum_net::proto::Phase;
use ringsum_net::server::start;
use ringsum_pq::FederationId;

fn samples(i: usize) -> u64 {
    1000 * (i as u64 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rounds_over_grpc_reach_plaintext_fedavg() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 4);
    let description = description(&keys, 1000, 2, 2);
    let federation = pin(&description);
    let coordinator_dir = dir.path().join("coordinator");
    let mut options = serve_options(&coordinator_dir);
    options.timing.linger = Duration::from_secs(4);
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let url = format!("http://{}", running.addr);
    // A participant pinned to another federation takes no part.
    let mut wrong = client_options(&url, FederationId([9; 32]), dir.path(), 0);
    wrong.state_dir = dir.path().join("stray");
    let refused = run_client(
        wrong,
        client(dir.path(), 0),
        Box::new(Synthetic {
            index: 0,
            samples: 10,
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, NetError::NotThisFederation { .. }),
        "{refused}"
    );
    // And one that pins nothing does not start.
    let mut unpinned = client_options(&url, federation, dir.path(), 0);
    unpinned.connect.federation = None;
    assert!(matches!(
        run_client(
            unpinned,
            client(dir.path(), 0),
            Box::new(Synthetic {
                index: 0,
                samples: 10
            })
        )
        .await,
        Err(NetError::NotPinned)
    ));

    let tasks = spawn_participants(&url, federation, dir.path(), 3, 4, None, samples);
    let results = results(tasks).await;
    assert_eq!(results.len(), 4, "every client saw the final result");
    // After the last round, status says so (the service lingers).
    let status = fetch_status(&connect(&url, federation), client(dir.path(), 0))
        .await
        .unwrap();
    assert_eq!(status.phase(), Phase::Finished);
    assert_eq!(status.ended.len(), 2);
    assert!(status.ended.iter().all(|e| !e.failed && e.clients == 4));
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);
    assert_eq!(summary.ended.len(), 2);
    // Two rounds of the weighted average of (i + 1) / 100 with weights
    // 10, 20, 30, 40, each within its quantization bound.
    let step = plaintext_step(&[0, 1, 2, 3], samples);
    let bound = 2.0 * results[0].error_bound;
    assert!(bound > 0.0 && bound < 1e-3, "{bound}");
    for v in &summary.model {
        assert!(
            (f64::from(*v) - 2.0 * step).abs() <= bound,
            "{v} vs {} ± {bound}",
            2.0 * step
        );
    }
    for r in &results {
        assert_eq!(r.round, 2);
        assert_eq!(r.clients, 4);
        assert_eq!(r.model, summary.model);
    }
    // The final model is written with its layout and loads back.
    let file = ModelFile::read(&coordinator_dir.join("final-model.json")).unwrap();
    assert_eq!(file.round, 2);
    assert_eq!(file.tensors.len(), 1);
    assert_eq!(file.tensors[0].name, "w");
    assert_eq!(file.tensors[0].shape, [1000]);
    assert_eq!(file.flatten(), summary.model);
    assert_eq!(
        file.federation,
        ringsum_net::federation_hex(federation),
        "the model names its federation"
    );
    let round_one = ModelFile::read(&coordinator_dir.join("models/round-1.json")).unwrap();
    assert_eq!(round_one.round, 1);
    // The audit log verifies on its own and records both rounds.
    let audit = std::fs::read_to_string(coordinator_dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), summary.audit_lines);
    assert_eq!(audit.matches("submission_accepted").count(), 8);
    assert_eq!(audit.matches("round_finished").count(), 2);
    assert_eq!(audit.matches("answer_accepted").count(), 6);
    let verified = ringsum_protocol::verify_log(&audit, None, Some(federation)).unwrap();
    assert_eq!(verified.last_round, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_restarted_mid_round_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let description = description(&keys, 500, 2, 2);
    let federation = pin(&description);
    let coordinator_dir = dir.path().join("coordinator");
    let options = serve_options(&coordinator_dir);
    let running = start(plan(dir.path(), description.clone()), options.clone())
        .await
        .unwrap();
    let addr = running.addr;
    let url = format!("http://{addr}");
    // Two clients and the holders; the third client comes later, so that
    // round 1 waits with two of three submissions in.
    let mut tasks = spawn_holders(&url, federation, dir.path(), 0..3, None);
    tasks.extend(spawn_clients(
        &url,
        federation,
        dir.path(),
        0..2,
        None,
        samples,
    ));
    let watch = connect(&url, federation);
    loop {
        let status = fetch_status(&watch, client(dir.path(), 0)).await.unwrap();
        if status.accepted == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop();
    let stopped = running.wait().await.unwrap();
    assert!(!stopped.finished);
    // The same address again; participants retry meanwhile.
    let mut options = options;
    options.listen = addr;
    let running = start(plan(dir.path(), description), options).await.unwrap();
    assert!(running.replayed >= 3, "open + two submissions");
    let status = fetch_status(&watch, client(dir.path(), 0)).await.unwrap();
    assert_eq!(status.accepted, 2, "both submissions survived the restart");
    tasks.extend(spawn_clients(
        &url,
        federation,
        dir.path(),
        2..3,
        None,
        samples,
    ));
    let results = results(tasks).await;
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r.clients, 3);
    }
    let step = plaintext_step(&[0, 1, 2], samples);
    for v in &summary.model {
        assert!((f64::from(*v) - 2.0 * step).abs() <= 2.0 * results[0].error_bound);
    }
    let audit = std::fs::read_to_string(coordinator_dir.join("audit.jsonl")).unwrap();
    // Three clients per round, each counted once.
    assert_eq!(audit.matches("submission_accepted").count(), 6);
    assert!(!audit.contains("submission_refused"), "{audit}");
    ringsum_protocol::verify_log(&audit, None, Some(federation)).unwrap();
}

#[test]
fn collective_key_sets_and_minority_thresholds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let mut old = description(&keys, 10, 2, 1);
    old.parameter_set = "pq128-n4096".into();
    let error = old.federation().unwrap_err();
    assert!(
        matches!(error, NetError::CollectiveKeySet { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("rk128-n16384"), "{message}");
    assert!(message.contains("collective-key"), "{message}");
    let minority = description(&keys, 10, 1, 1);
    let message = minority.federation().unwrap_err().to_string();
    assert!(message.contains("1 of 3"), "{message}");
    // A description of the old format gets a message about its version.
    let mut json: serde_json::Value =
        serde_json::from_str(&description(&keys, 10, 2, 1).to_json().unwrap()).unwrap();
    json["version"] = 1.into();
    let error = ringsum_net::SetupDescription::from_json(&json.to_string()).unwrap_err();
    assert!(
        matches!(
            error,
            NetError::DescriptionVersion {
                found: 1,
                supported: 2
            }
        ),
        "{error}"
    );
}
