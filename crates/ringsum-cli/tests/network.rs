//! `ringsum serve` and `ringsum join` as separate processes on loopback:
//! the networked federation reaches the in-process demo's model bit for
//! bit (same seeds, deterministic client randomness), also when the
//! coordinator is killed with SIGKILL during submissions and during
//! decryption, and a key holder is killed and restarted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ringsum");
const HOLDERS: usize = 3;
const CLIENTS: usize = 3;

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ringsum {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Federation {
    dir: PathBuf,
    url: String,
    config: PathBuf,
}

fn federation(dir: &Path) -> Federation {
    let p = |s: &str| dir.join(s).display().to_string();
    run(&["keygen", "--out", &p("coordinator")]);
    for i in 0..HOLDERS {
        run(&["keygen", "--out", &p(&format!("holder-{i}")), "--holder"]);
    }
    for i in 0..CLIENTS {
        run(&["keygen", "--out", &p(&format!("client-{i}"))]);
    }
    run(&[
        "split",
        "--clients",
        "3",
        "--seed",
        "7",
        "--out",
        &p("data"),
    ]);
    let port = free_port();
    let holders: Vec<String> = (0..HOLDERS).map(|i| format!("\"holder-{i}\"")).collect();
    let clients: Vec<String> = (0..CLIENTS).map(|i| format!("\"client-{i}\"")).collect();
    let config = dir.join("federation.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "state"
identity = "coordinator"
parameter_set = "pq128-n4096"
rounds = 2
threshold = 2
seed = 7
insecure_plaintext = true
holder_timeout_secs = 8
linger_secs = 3
holders = [{}]
clients = [{}]

[model]
kind = "logistic"
features = 30
classes = 2
"#,
            holders.join(", "),
            clients.join(", ")
        ),
    )
    .unwrap();
    Federation {
        dir: dir.to_path_buf(),
        url: format!("http://127.0.0.1:{port}"),
        config,
    }
}

impl Federation {
    fn serve(&self) -> Child {
        Command::new(BIN)
            .args(["serve", "--config", &self.config.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn holder(&self, i: usize) -> Child {
        Command::new(BIN)
            .args([
                "join",
                "--role",
                "holder",
                "--insecure-plaintext",
                "--coordinator",
                &self.url,
            ])
            .arg("--identity")
            .arg(self.dir.join(format!("holder-{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn client(&self, i: usize) -> Child {
        Command::new(BIN)
            .args([
                "join",
                "--role",
                "client",
                "--insecure-plaintext",
                "--insecure-seed",
                "9",
                "--coordinator",
                &self.url,
            ])
            .arg("--identity")
            .arg(self.dir.join(format!("client-{i}")))
            .arg("--data")
            .arg(self.dir.join(format!("data/client-{i}.csv")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.join("state/audit.jsonl")).unwrap_or_default()
    }

    fn wait_audit(&self, what: &str, count: usize) {
        let started = Instant::now();
        while self.audit().matches(what).count() < count {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no {what} in the audit log"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn model(&self) -> Vec<f32> {
        let text = std::fs::read_to_string(self.dir.join("state/final-model.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The in-process demo with the same seeds.
    fn demo_model(&self) -> Vec<f32> {
        let out = self.dir.join("demo-model.json").display().to_string();
        run(&[
            "demo",
            "--clients",
            "3",
            "--holders",
            "3",
            "--threshold",
            "2",
            "--rounds",
            "2",
            "--seed",
            "7",
            "--params",
            "pq128-n4096",
            "--insecure-seed",
            "9",
            "--model-out",
            &out,
            "--json",
        ]);
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
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
fn separate_processes_reach_the_in_process_demo_model() {
    let dir = tempfile::tempdir().unwrap();
    let f = federation(dir.path());
    let mut children = vec![f.serve()];
    children.extend((0..HOLDERS).map(|i| f.holder(i)));
    children.extend((0..CLIENTS).map(|i| f.client(i)));
    finish(children);
    let networked = f.model();
    assert_eq!(networked, f.demo_model());
    // The exported audit log verifies and records both rounds.
    assert_eq!(f.audit().matches("submission_accepted").count(), 6);
    run(&[
        "audit",
        "verify",
        &dir.path().join("state/audit.jsonl").display().to_string(),
    ]);
}

#[test]
fn sigkill_of_the_coordinator_and_a_holder_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let f = federation(dir.path());
    let mut serve = f.serve();
    let mut holders: Vec<Child> = (0..HOLDERS).map(|i| f.holder(i)).collect();
    let mut clients = vec![f.client(0)];
    // During submissions: one of three is in.
    f.wait_audit("submission_accepted", 1);
    sigkill(&mut serve);
    let mut serve = f.serve();
    // Let every holder reach the new process, then kill holder 1: it stays
    // "available" for a few seconds, so the request will name it.
    std::thread::sleep(Duration::from_secs(2));
    sigkill(&mut holders[1]);
    clients.push(f.client(1));
    clients.push(f.client(2));
    // During decryption: the request is out, holder 0 answered, holder 1
    // is dead.
    f.wait_audit("share_accepted", 1);
    sigkill(&mut serve);
    let serve = f.serve();
    // Holder 1 comes back with its key share from its encrypted store.
    holders[1] = f.holder(1);
    let mut all = vec![serve];
    all.extend(holders);
    all.extend(clients);
    finish(all);
    let audit = f.audit();
    let events: Vec<(u64, serde_json::Value)> = audit
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let event = serde_json::from_str(v["event"].as_str().unwrap()).unwrap();
            (v["round"].as_u64().unwrap(), event)
        })
        .collect();
    let round_one = |kind: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|(r, e)| *r == 1 && e["type"] == kind)
            .map(|(_, e)| e.clone())
            .collect()
    };
    // Round 1 was asked of holders 1 and 2 (point 2 is the killed holder)
    // once, without a retry: the restarted holder answered with the key
    // share it restored from its encrypted store.
    let requests = round_one("decryption_requested");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["active_set"], serde_json::json!([1, 2]));
    let mut answered: Vec<u64> = round_one("share_accepted")
        .iter()
        .map(|e| e["holder"].as_u64().unwrap())
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, [1, 2]);
    // Three clients per round, each counted once, in two rounds.
    assert_eq!(audit.matches("submission_accepted").count(), 6);
    assert_eq!(f.model(), f.demo_model());
    run(&[
        "audit",
        "verify",
        &dir.path().join("state/audit.jsonl").display().to_string(),
    ]);
}
