//! `ringsum serve` and `ringsum join` with a `[privacy]` section in the
//! federation file, as separate processes on loopback: the clients take
//! one differentially private gradient step per round (every record's
//! gradient clipped, the sum quantized and noised before encryption), each
//! submission carries the plan's weight, every round's published model is
//! the plaintext FedSGD step within the noise's and the rounding's reach,
//! and the model files report the epsilon spent. An update computed
//! elsewhere, a client with more records than the plan allows, and a
//! `[privacy]` section the plan refuses are refused with a message that
//! says why.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a fixture that cannot be set up fails the test"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringsum_cli::data::{self, Dataset};
use ringsum_cli::demo;
use ringsum_cli::fedsgd::PrivateRun;
use ringsum_cli::model::{Model, ModelKind};
use ringsum_core::ParameterSet;
use ringsum_core::privacy::{PrivacyPlan, PrivacySettings};
use ringsum_net::model_file::ModelFile;

mod common;

use common::{BIN, CLIENTS, Federation, HOLDERS, ROUNDS, Settings, run};

const SEED: u64 = 11;
const FEATURES: usize = 30;
const CLASSES: usize = 2;
const EPSILON: f64 = 8.0;
const DELTA: f64 = 1e-5;

fn model() -> Model {
    Model::new(ModelKind::Logistic, FEATURES, CLASSES)
}

fn parts(dir: &Path) -> Vec<Dataset> {
    (0..CLIENTS)
        .map(|i| {
            data::load(&dir.join(format!("data/client-{i}.csv")))
                .unwrap()
                .with_classes(CLASSES)
                .unwrap()
        })
        .collect()
}

/// The settings of the test's federation: the planned records per client
/// are the parts' mean size, the most a client may hold the largest part.
fn settings(parts: &[Dataset]) -> PrivacySettings {
    let total: usize = parts.iter().map(Dataset::len).sum();
    PrivacySettings {
        epsilon: EPSILON,
        delta: DELTA,
        clip: 1.0,
        learning_rate: 2.0,
        records_per_client: (total / parts.len()) as u64,
        max_records: parts.iter().map(Dataset::len).max().unwrap() as u64,
        noise_clients: CLIENTS as u64,
    }
}

/// The federation of the shared harness with a `[privacy]` section added
/// (clip, learning rate and noise clients left to their defaults), and
/// the plan every participant derives from it.
fn private_federation(dir: &Path) -> (Federation, PrivacyPlan) {
    let f = common::federation(
        dir,
        &Settings {
            seed: SEED,
            features: FEATURES,
            classes: CLASSES,
            linger_secs: 2,
            split_data: true,
        },
    );
    let settings = settings(&parts(dir));
    let mut config = std::fs::read_to_string(&f.config).unwrap();
    config.push_str(&format!(
        "\n[privacy]\nepsilon = {EPSILON:?}\ndelta = {DELTA:e}\nrecords_per_client = {}\nmax_records = {}\n",
        settings.records_per_client, settings.max_records
    ));
    std::fs::write(&f.config, config).unwrap();
    let id = run(&["federation-id", "--config", &f.config.display().to_string()])
        .trim()
        .to_owned();
    assert_ne!(
        id, f.id,
        "the privacy settings are part of the federation id"
    );
    let params = ParameterSet::builtin("rk128-n4096").unwrap();
    let plan = PrivacyPlan::new(settings, &params, model().size(), ROUNDS, CLIENTS as u64).unwrap();
    (Federation { id, ..f }, plan)
}

impl Federation {
    /// Client `i` on its part of the data, its stderr in `client-<i>.log`.
    fn client(&self, i: usize) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("client-{i}.log"))).unwrap();
        self.join("client", &format!("client-{i}"))
            .args(["--insecure-seed", "9"])
            .arg("--data")
            .arg(self.dir.join(format!("data/client-{i}.csv")))
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Waits for every child to succeed; a failure shows the clients' and
    /// the coordinator's logs.
    fn finish(&self, children: Vec<Child>) {
        let started = Instant::now();
        for mut child in children {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let logs: String =
                        ["client-0.log", "client-1.log", "client-2.log", "serve.log"]
                            .iter()
                            .map(|name| {
                                let text = std::fs::read_to_string(self.dir.join(name))
                                    .unwrap_or_default();
                                format!("--- {name}\n{text}")
                            })
                            .collect();
                    assert!(status.success(), "a participant failed: {status}\n{logs}");
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(180),
                    "the federation did not finish"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// A `ringsum join --role client` that must fail, and its stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self
            .join("client", "client-0")
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    fn model_file(&self, name: &str) -> ModelFile {
        ModelFile::read(&self.dir.join("state").join(name)).unwrap()
    }
}

#[test]
fn a_private_federation_trains_over_the_network_and_reports_its_epsilon() {
    let dir = tempfile::tempdir().unwrap();
    let (f, plan) = private_federation(dir.path());
    let parts = parts(dir.path());
    let serve = vec![f.serve()];
    let mut participants: Vec<Child> = (1..=HOLDERS).map(|point| f.holder(point)).collect();

    // An update computed elsewhere: refused once the federation is known,
    // before the file is read as a model.
    let update = dir.path().join("update.safetensors");
    std::fs::write(&update, b"not read").unwrap();
    let refused = f.refused(&["--update", &update.display().to_string(), "--samples", "40"]);
    assert!(
        refused.contains(
            "this federation trains with differential privacy, so a client cannot submit an update computed elsewhere"
        ) && refused.contains("update.safetensors"),
        "{refused}"
    );
    // A client with more records than max_records: refused before it
    // submits anything.
    let big = dir.path().join("big.csv");
    let rows = [0, 2]
        .map(|i| std::fs::read_to_string(dir.path().join(format!("data/client-{i}.csv"))).unwrap())
        .concat();
    std::fs::write(&big, rows).unwrap();
    let records = parts[0].len() + parts[2].len();
    let refused = f.refused(&["--data", &big.display().to_string()]);
    assert!(
        refused.contains(&format!(
            "the data has {records} records; this federation's privacy plan lets a client add at most {} per round",
            plan.settings().max_records
        )),
        "{refused}"
    );

    participants.extend((0..CLIENTS).map(|i| f.client(i)));
    f.finish(participants);
    f.finish(serve);

    let model = model();
    let run = PrivateRun::new(plan.clone(), 0);
    let initial = demo::initial_model(&model, SEED);
    let mut previous = initial.clone();
    let mut spent = 0.0;
    // The step's reach beyond the plaintext FedSGD step: six standard
    // deviations of the noise, and every record's rounding (less than one
    // quantum per parameter), both scaled by the step's rate and
    // denominator.
    let denominator = (CLIENTS as u64 * plan.settings().records_per_client) as f64;
    let rate = plan.effective_learning_rate();
    let total_records: usize = parts.iter().map(Dataset::len).sum();
    let reach = rate / denominator * (6.0 * plan.noise_std() + total_records as f64 / plan.gamma());
    for round in 1..=ROUNDS {
        let published = f.model_file(&format!("models/round-{round}.json"));
        assert_eq!(
            (published.round, published.clients),
            (round, CLIENTS as u64)
        );
        // Every submission declared the plan's sample count, so carried
        // its weight.
        assert_eq!(
            published.weight_sum,
            i64::try_from(CLIENTS).unwrap() * plan.weight()
        );
        let epsilon = published.epsilon.unwrap();
        assert!(
            epsilon > spent && epsilon <= EPSILON,
            "round {round}: {epsilon}"
        );
        spent = epsilon;
        let mut sum = vec![0f64; previous.len()];
        for part in &parts {
            for (s, g) in sum.iter_mut().zip(run.clipped_sum(&model, &previous, part)) {
                *s += g;
            }
        }
        let mut expected = previous.clone();
        run.plain_step(&mut expected, &sum, CLIENTS as u64);
        let values = published.flatten();
        let bound = reach + published.error_bound + 1e-6;
        for (j, (v, e)) in values.iter().zip(&expected).enumerate() {
            assert!(
                v.is_finite() && f64::from((v - e).abs()) <= bound,
                "round {round}, parameter {j}: published {v}, FedSGD without noise {e}, reach {bound}"
            );
        }
        previous = values;
    }
    // The whole budget is spent over the planned rounds, and not more.
    assert!(spent > 0.9 * EPSILON, "{spent}");
    let last = f.model_file("final-model.json");
    assert_eq!(last.round, ROUNDS);
    assert_eq!(last.epsilon, Some(spent));
    let values = last.flatten();
    assert_eq!(values, previous);
    assert!(values.iter().all(|v| v.is_finite()));
    let moved = values
        .iter()
        .zip(&initial)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(moved > 1e-2, "the model moved by at most {moved}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/audit.jsonl"))
            .unwrap()
            .matches("submission_accepted")
            .count(),
        CLIENTS * usize::try_from(ROUNDS).unwrap()
    );
}

/// `ringsum serve` on `config`, which must fail within a few seconds;
/// its stderr.
fn serve_fails(config: &Path) -> String {
    let mut child = Command::new(BIN)
        .args(["serve", "--config", &config.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            unreachable!("ringsum serve --config {} did not stop", config.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{}: serve started", config.display());
    stderr
}

#[test]
fn a_bad_privacy_section_stops_serve_at_once_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let f = common::federation(
        dir.path(),
        &Settings {
            seed: SEED,
            features: 4,
            classes: 3,
            linger_secs: 1,
            split_data: false,
        },
    );
    let base = std::fs::read_to_string(&f.config).unwrap();
    let counts = "records_per_client = 50\nmax_records = 100\n";
    let cases = [
        (
            "epsilon",
            format!("epsilon = 0.0\ndelta = 1e-5\n{counts}"),
            "privacy: epsilon must be a positive number, got 0",
        ),
        (
            "delta",
            format!("epsilon = 1.0\ndelta = 1.0\n{counts}"),
            "privacy: delta must lie strictly between 0 and 1, got 1",
        ),
        (
            "clip",
            format!("epsilon = 1.0\ndelta = 1e-5\nclip = -1.0\n{counts}"),
            "privacy: the clipping norm must be a positive number between 1e-6 and 1e6, got -1",
        ),
        (
            "noise",
            format!("epsilon = 1.0\ndelta = 1e-5\nnoise_clients = 4\n{counts}"),
            "noise_clients (4) exceeds min_clients (3)",
        ),
        (
            "unknown",
            format!("epsilon = 1.0\ndelta = 1e-5\nsigma = 2.0\n{counts}"),
            "unknown field `sigma`",
        ),
        (
            "missing",
            "epsilon = 1.0\ndelta = 1e-5\nrecords_per_client = 50\n".to_owned(),
            "missing field `max_records`",
        ),
    ];
    for (name, section, message) in cases {
        let config = dir.path().join(format!("bad-{name}.toml"));
        std::fs::write(&config, format!("{base}\n[privacy]\n{section}")).unwrap();
        let stderr = serve_fails(&config);
        assert!(
            stderr.contains(message) && stderr.contains(&config.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(
            !dir.path().join("state").exists(),
            "{name}: the service started"
        );
    }
}
