//! The demo end to end, in process: encrypted FedAvg against plaintext
//! FedAvg on the shipped data, with and without dropouts.

#![allow(clippy::unwrap_used, clippy::panic)]

use ringsum_cli::demo::{self, Options};
use ringsum_cli::model::ModelKind;

fn options() -> Options {
    Options {
        clients: 6,
        holders: 4,
        threshold: 3,
        rounds: 4,
        params: "pq128-n4096".into(),
        dataset: None,
        model: ModelKind::Logistic,
        seed: 7,
        drop_clients: 0,
        drop_holders: 0,
        audit_log: None,
        hybrid: false,
        progress: false,
        insecure_seed: None,
        model_out: None,
    }
}

fn check(report: &demo::Report) {
    for round in &report.rounds {
        // The decrypted average is the exact weighted average of the same
        // clipped updates, up to quantization.
        assert!(
            round.aggregation_error <= round.error_bound,
            "round {}: error {} above the bound {}",
            round.round,
            round.aggregation_error,
            round.error_bound
        );
        assert!(
            round.max_difference < 0.05,
            "round {}: models drifted by {}",
            round.round,
            round.max_difference
        );
    }
    let (encrypted, plaintext) = report.final_accuracies();
    assert!(
        (encrypted - plaintext).abs() <= 0.005,
        "{encrypted} vs {plaintext}"
    );
    assert!(
        plaintext > 0.85,
        "plaintext FedAvg learns the task ({plaintext})"
    );
    assert!(report.audit_lines > 0);
}

#[test]
fn encrypted_fedavg_matches_plaintext_fedavg() {
    let report = demo::run(&options()).unwrap();
    assert_eq!(report.rounds.len(), 4);
    assert!(
        report
            .rounds
            .iter()
            .all(|r| r.clients == 6 && r.requests == 1)
    );
    check(&report);
}

#[test]
fn dropouts_of_clients_and_holders_complete_the_rounds() {
    let dir = std::env::temp_dir().join(format!("ringsum-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let report = demo::run(&Options {
        drop_clients: 2,
        drop_holders: 1,
        hybrid: true,
        audit_log: Some(log.clone()),
        ..options()
    })
    .unwrap();
    assert!(report.rounds.iter().all(|r| r.clients == 4));
    assert_eq!(
        report.rounds[0].requests, 2,
        "the vanished holder forces a second request"
    );
    check(&report);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        ringsum_protocol::verify_log(&text, None, None)
            .unwrap()
            .lines,
        report.audit_lines
    );
    let _ = std::fs::remove_dir_all(&dir);
}
