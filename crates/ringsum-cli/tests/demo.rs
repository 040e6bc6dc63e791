//! The demo end to end, in process: encrypted FedAvg against plaintext
//! FedAvg on the shipped data, with and without dropouts of clients and
//! holders.

use ringsum_cli::demo::{self, Options};
use ringsum_cli::model::ModelKind;

fn options() -> Options {
    Options {
        clients: 6,
        holders: 4,
        threshold: 3,
        rounds: 4,
        params: "rk128-n4096".into(),
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
        privacy: None,
    }
}

fn check(report: &demo::Report) {
    check_bounds(report);
    for round in &report.rounds {
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

/// Every decrypted average is the exact weighted average of the same
/// clipped updates, up to quantization.
fn check_bounds(report: &demo::Report) {
    for round in &report.rounds {
        assert!(
            round.aggregation_error <= round.error_bound,
            "round {}: error {} above the bound {}",
            round.round,
            round.aggregation_error,
            round.error_bound
        );
    }
}

#[test]
fn encrypted_fedavg_matches_plaintext_fedavg() {
    let report = demo::run(&options()).unwrap();
    assert_eq!(report.rounds.len(), 4);
    assert!(
        report
            .rounds
            .iter()
            .all(|r| r.clients == 6 && r.holders_answered == 4 && r.holders_named.is_empty())
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
    // Every round completes from the t holders left.
    assert!(
        report
            .rounds
            .iter()
            .all(|r| r.clients == 4 && r.holders_answered == 3)
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

#[test]
fn a_data_set_the_demo_was_not_tuned_for_trains_the_same_encrypted() {
    // The digits data (64 features, 10 classes) with the logistic model,
    // read from the file as a user's CSV would be.
    let digits =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/digits.csv.gz");
    let report = demo::run(&Options {
        dataset: Some(digits),
        rounds: 3,
        ..options()
    })
    .unwrap();
    check_bounds(&report);
    let (encrypted, plaintext) = report.final_accuracies();
    assert!(
        (encrypted - plaintext).abs() <= 0.005,
        "{encrypted} vs {plaintext}"
    );
    assert!(
        plaintext > 0.8,
        "plaintext FedAvg learns digits ({plaintext})"
    );
}

/// The setting: 8 clients on the breast-cancer data, delta = 1e-5
/// over 10 rounds, client randomness (and so the noise) from a fixed seed.
fn private(epsilon: f64) -> demo::Report {
    let options = Options {
        clients: 8,
        holders: 3,
        threshold: 2,
        rounds: 10,
        seed: 42,
        insecure_seed: Some(5),
        privacy: Some(demo::DemoPrivacy {
            epsilon,
            delta: 1e-5,
            clip: 1.0,
            learning_rate: 2.0,
        }),
        ..options()
    };
    demo::run(&options).unwrap_or_else(|e| unreachable!("{e}"))
}

/// With differential privacy the decrypted average is still exactly the
/// clients' noised integers over their weights (to f32 rounding), the
/// accountant spends the target over the run and not more, and the
/// accuracy is that of the same training without noise within the issue's
/// margins: 2 points at epsilon = 8, 5 at epsilon = 1.
#[test]
fn private_training_spends_its_budget_and_keeps_its_accuracy() {
    for (epsilon, margin) in [(8.0, 0.02), (1.0, 0.05)] {
        let report = private(epsilon);
        check_bounds(&report);
        let privacy = report.privacy.as_ref().unwrap_or_else(|| unreachable!());
        assert!(privacy.epsilon <= epsilon && privacy.epsilon > 0.99 * epsilon);
        let spent: Vec<f64> = report
            .rounds
            .iter()
            .map(|r| r.epsilon.map_or(f64::NAN, |(_, total)| total))
            .collect();
        assert!(spent.windows(2).all(|w| w[0] < w[1]), "{spent:?}");
        assert!(report.rounds.iter().all(|r| r.clients == 8));
        let (encrypted, plaintext) = report.final_accuracies();
        assert!(plaintext > 0.9, "{plaintext}");
        assert!(
            encrypted >= plaintext - margin,
            "epsilon {epsilon}: {encrypted} vs {plaintext} without noise"
        );
        let json = demo::to_json(&report);
        assert_eq!(json["epsilon"].as_f64(), Some(privacy.epsilon));
        assert!(json["rounds"][0]["epsilon_round"].as_f64().is_some());
    }
}

/// Without differential privacy the report has no epsilon.
#[test]
fn plain_training_reports_no_epsilon() {
    let report = demo::run(&Options {
        rounds: 1,
        ..options()
    })
    .unwrap_or_else(|e| unreachable!("{e}"));
    assert!(report.privacy.is_none());
    assert!(demo::to_json(&report)["epsilon"].is_null());
}
