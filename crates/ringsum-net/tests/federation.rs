//! A whole federation on loopback, in one process: the coordinator's
//! service, three key holders (t = 2) and clients, two rounds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::*;
use ringsum_net::server::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rounds_over_grpc_reach_the_exact_weighted_average() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 4);
    let description = description(&keys, 1000, 2, 2);
    let running = start(
        plan(dir.path(), description),
        serve_options(&dir.path().join("coordinator")),
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.addr);
    let tasks = spawn_participants(&url, dir.path(), 3, 4, None, |i| 10 * (i as u64 + 1));
    let results = results(tasks).await;
    assert_eq!(results.len(), 4, "every client saw the final result");
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);
    assert_eq!(summary.round, 2);
    // Weighted average of (i + 1) / 100 with weights 10, 20, 30, 40: 0.03
    // per round, up to the quantization bound of each round.
    let bound = 2.0 * results[0].error_bound;
    for v in &summary.model {
        assert!(
            (f64::from(*v) - 0.06).abs() <= bound,
            "{v} vs 0.06 ± {bound}"
        );
    }
    for r in &results {
        assert_eq!(r.round, 2);
        assert_eq!(r.clients, 4);
        assert_eq!(r.model, summary.model);
    }
    let audit = std::fs::read_to_string(dir.path().join("coordinator/audit.jsonl")).unwrap();
    let lines = audit.lines().count();
    assert_eq!(lines, summary.audit_lines);
    ringsum_protocol::verify_log(&audit, None, None).unwrap();
}
