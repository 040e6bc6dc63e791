//! `ringsum serve` and `ringsum join` as separate processes on loopback, on
//! per-round client keys: every round's published model is plaintext
//! FedAvg of the clients' updates within the quantization bound, also when
//! the coordinator is killed with SIGKILL during submissions and while the
//! holders answer, and a holder is killed after it recorded its answer and
//! restarted (it answers the same set alike, nothing is counted twice).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a fixture that cannot be set up, or an audit line without the expected fields, fails the test"
)]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ringsum_cli::data::{self, SplitMix};
use ringsum_cli::demo;
use ringsum_cli::model::{Model, ModelKind};
use ringsum_net::model_file::ModelFile;

mod common;

use common::{CLIENTS, Federation, HOLDERS, ROUNDS, Settings, run};

const SEED: u64 = 7;
const FEATURES: usize = 30;
const CLASSES: usize = 2;

fn federation(dir: &Path) -> Federation {
    common::federation(
        dir,
        &Settings {
            seed: SEED,
            features: FEATURES,
            classes: CLASSES,
            linger_secs: 4,
            split_data: true,
        },
    )
}

impl Federation {
    fn client(&self, i: usize) -> Child {
        self.join("client", &format!("client-{i}"))
            .args(["--insecure-seed", "9"])
            .arg("--data")
            .arg(self.dir.join(format!("data/client-{i}.csv")))
            .spawn()
            .unwrap()
    }

    fn status(&self) -> String {
        run(&[
            "status",
            "--insecure-plaintext",
            "--coordinator",
            &self.url,
            "--federation",
            &self.id,
            "--identity",
            &self.dir.join("client-0").display().to_string(),
        ])
    }

    /// `ringsum status --json`, parsed.
    fn status_json(&self) -> serde_json::Value {
        let out = run(&[
            "status",
            "--json",
            "--insecure-plaintext",
            "--coordinator",
            &self.url,
            "--federation",
            &self.id,
            "--identity",
            &self.dir.join("client-1").display().to_string(),
        ]);
        assert_eq!(out.lines().count(), 1, "{out}");
        serde_json::from_str(&out).unwrap()
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.join("state/audit.jsonl")).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !ready(self) {
            if started.elapsed() > Duration::from_secs(120) {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                unreachable!(
                    "never saw {what}; the coordinator's log ends:\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_audit(&self, what: &str, count: usize) {
        self.wait_for(what, |f| f.audit().matches(what).count() >= count);
    }

    /// The audit events of `round` of type `kind`.
    fn events(&self, round: u64, kind: &str) -> Vec<serde_json::Value> {
        let audit = self.audit();
        // The coordinator may be halfway through appending a line.
        let complete = audit.rfind('\n').map_or("", |end| &audit[..end]);
        complete
            .lines()
            .filter_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let event: serde_json::Value =
                    serde_json::from_str(v["event"].as_str().unwrap()).unwrap();
                (v["round"].as_u64() == Some(round) && event["type"] == kind).then_some(event)
            })
            .collect()
    }

    fn model(&self, name: &str) -> ModelFile {
        ModelFile::read(&self.dir.join("state").join(name)).unwrap()
    }

    /// Every round's published model is the model before it plus the
    /// plaintext weighted average of the clients' clipped updates, trained
    /// from it, within the round's quantization bound.
    fn check_plaintext_fedavg(&self) {
        let model = Model::new(ModelKind::Logistic, FEATURES, CLASSES);
        let parts: Vec<_> = (0..CLIENTS)
            .map(|i| {
                data::load(&self.dir.join(format!("data/client-{i}.csv")))
                    .unwrap()
                    .with_classes(CLASSES)
                    .unwrap()
            })
            .collect();
        let mut previous = demo::initial_model(&model, SEED);
        for round in 1..=ROUNDS {
            let published = self.model(&format!("models/round-{round}.json"));
            assert_eq!(published.round, round);
            assert_eq!(published.clients, CLIENTS as u64);
            let total: f64 = parts.iter().map(|p| p.len() as f64).sum();
            let mut expected: Vec<f64> = previous.iter().map(|v| f64::from(*v)).collect();
            for (i, part) in parts.iter().enumerate() {
                let trained = model.train(
                    &previous,
                    part,
                    demo::TRAINING,
                    &mut SplitMix::new(demo::training_seed(SEED, round, i)),
                );
                let weight = part.len() as f64 / total;
                for ((e, new), old) in expected.iter_mut().zip(&trained).zip(&previous) {
                    *e += weight * f64::from((new - old).clamp(-1.0, 1.0));
                }
            }
            let values = published.flatten();
            // The bound of the average, and an f32 rounding of the sum.
            let bound = published.error_bound + 1e-6;
            for (j, (v, e)) in values.iter().zip(&expected).enumerate() {
                assert!(
                    (f64::from(*v) - e).abs() <= bound,
                    "round {round}, parameter {j}: published {v}, plaintext FedAvg {e}, bound {bound}"
                );
            }
            previous = values;
        }
        let last = self.model("final-model.json");
        assert_eq!(last.round, ROUNDS);
        assert_eq!(last.flatten(), previous);
        let names: Vec<&str> = last.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), model.layout().len(), "{names:?}");
        for (tensor, (name, shape)) in last.tensors.iter().zip(model.layout()) {
            assert_eq!(tensor.name, name);
            assert_eq!(tensor.shape, shape);
        }
    }
}

fn finish(mut children: Vec<Child>) {
    let started = Instant::now();
    for child in &mut children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a participant failed: {status}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "the federation did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn sigkill(child: &mut Child) {
    // Child::kill sends SIGKILL on Unix: no chance to flush or clean up.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn separate_processes_reach_plaintext_fedavg() {
    let dir = tempfile::tempdir().unwrap();
    let f = federation(dir.path());
    let mut children = vec![f.serve()];
    children.extend((1..=HOLDERS).map(|point| f.holder(point)));
    // A client whose data has fewer rows than min_samples cannot submit:
    // it says so, and sends nothing.
    let tiny = dir.path().join("tiny.csv");
    let rows: String = (0..3)
        .map(|r| {
            let mut row: Vec<String> = (0..FEATURES).map(|j| format!("{}", (r + j) % 3)).collect();
            row.push((r % 2).to_string());
            row.join(",") + "\n"
        })
        .collect();
    std::fs::write(&tiny, rows).unwrap();
    let out = f
        .join("client", "client-0")
        .arg("--data")
        .arg(&tiny)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot submit: a submission declares 3 samples"),
        "{stderr}"
    );
    assert!(
        !dir.path()
            .join("client-0/client-state/submission-1.bin")
            .exists(),
        "nothing recorded"
    );
    let mut clients: Vec<Child> = (0..CLIENTS).map(|i| f.client(i)).collect();
    let serve = children.remove(0);
    let mut participants = children;
    participants.append(&mut clients);
    finish(participants);
    // The service lingers: status says the federation finished.
    let status = f.status();
    assert!(
        status.contains("federation finished: all 2 rounds ended (2 decoded, 0 failed)"),
        "{status}"
    );
    assert!(
        status.contains("round 2: decoded from 3 clients"),
        "{status}"
    );
    assert!(!status.contains("0 of 3"), "{status}");
    // The same as one JSON object.
    let json = f.status_json();
    assert_eq!(json["federation"], f.id.as_str(), "{json}");
    assert_eq!(json["coordinator"], f.url.as_str());
    assert_eq!(json["phase"], "finished");
    assert_eq!(json["round"], 2);
    assert_eq!(json["rounds"], 2);
    assert_eq!(json["clients"], 3);
    assert_eq!(json["holders"], serde_json::json!([1, 2, 3]));
    assert_eq!(json["threshold"], 2);
    let ended = json["ended"].as_array().unwrap();
    assert_eq!(ended.len(), 2);
    for (end, round) in ended.iter().zip(1..) {
        assert_eq!(end["round"], round);
        assert_eq!(end["failed"], false);
        assert_eq!(end["clients"], 3);
        assert_eq!(end["holders_named"], serde_json::json!([]));
    }
    assert!(json["audit_lines"].as_u64().unwrap() > 0);
    assert!(!json["audit_head"].as_str().unwrap().is_empty(), "{json}");
    for field in ["accepted", "min_clients", "answered", "phase_seconds"] {
        assert!(json.get(field).is_some(), "{field} missing in {json}");
    }
    finish(vec![serve]);
    f.check_plaintext_fedavg();
    assert_eq!(f.audit().matches("submission_accepted").count(), 6);
    run(&[
        "audit",
        "verify",
        &dir.path().join("state/audit.jsonl").display().to_string(),
        "--federation",
        &f.id,
    ]);
}

#[test]
fn sigkill_of_the_coordinator_and_a_holder_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let f = federation(dir.path());
    let mut serve = f.serve();
    // Holders 1 and 2 only, for now: holder 3 joins after the restarts.
    let mut holders: Vec<Child> = (1..=2).map(|point| f.holder(point)).collect();
    let mut clients = vec![f.client(0)];
    // During submissions: one of three is in, fewer than min_clients, and
    // both the log and `ringsum status` say what the round waits for.
    f.wait_audit("submission_accepted", 1);
    f.wait_for("the log line about too few submissions", |f| {
        f.log()
            .contains("round 1 has 1 of the 3 submissions it needs; waiting for clients")
    });
    let status = f.status();
    assert!(
        status.contains(
            "1 of 3 clients submitted, fewer than the 3 a round needs: waiting for 2 more"
        ),
        "{status}"
    );
    sigkill(&mut serve);
    let mut serve = f.serve();
    clients.push(f.client(1));
    clients.push(f.client(2));
    // The set is out; holder 2 recorded its answer and the coordinator
    // took it. Holder 3 is away, so the round waits for it (up to
    // holder_timeout_secs): kill holder 2, then the coordinator.
    f.wait_for("holder 2's answer", |f| {
        f.events(1, "answer_accepted")
            .iter()
            .any(|e| e["holder"] == 2)
    });
    sigkill(&mut holders[1]);
    sigkill(&mut serve);
    assert!(f.events(1, "round_finished").is_empty(), "too slow");
    let serve = f.serve();
    // Holder 2 comes back: its journal gives the same answer for the same
    // set, which the coordinator already has.
    holders[1] = f.holder(2);
    f.wait_for("holder 2's answer again", |f| {
        f.log()
            .lines()
            .any(|l| l.contains("already accepted") && l.contains("holder answer"))
    });
    holders.push(f.holder(3));
    let mut all = vec![serve];
    all.extend(holders);
    all.extend(clients);
    finish(all);

    // Round 1: one set, answered once by each holder; nothing refused.
    assert_eq!(f.events(1, "set_closed").len(), 1);
    let mut answered: Vec<u64> = f
        .events(1, "answer_accepted")
        .iter()
        .map(|e| e["holder"].as_u64().unwrap())
        .collect();
    answered.sort_unstable();
    assert!(answered == [1, 2] || answered == [1, 2, 3], "{answered:?}");
    let audit = f.audit();
    for refused in ["answer_refused", "submission_refused", "round_failed"] {
        assert!(!audit.contains(refused), "{refused} in {audit}");
    }
    // Three clients per round, each counted once, in two rounds, and every
    // round's model is plaintext FedAvg.
    assert_eq!(audit.matches("submission_accepted").count(), 6);
    f.check_plaintext_fedavg();
    run(&[
        "audit",
        "verify",
        &dir.path().join("state/audit.jsonl").display().to_string(),
    ]);
}
