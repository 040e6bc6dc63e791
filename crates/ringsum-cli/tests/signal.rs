//! `ringsum serve` stopped with SIGTERM, as `kill`, systemd and container
//! runtimes stop a service, stops as on Ctrl-C: what is being written is
//! recorded, the command exits 0, and a restart recovers the state (the
//! accepted submission is still there, the audit log verifies).

#![cfg(unix)]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a fixture that cannot be set up fails the test"
)]

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use common::{Federation, Settings, run};

fn federation(dir: &std::path::Path) -> Federation {
    common::federation(
        dir,
        &Settings {
            seed: 7,
            features: 30,
            classes: 2,
            linger_secs: 1,
            split_data: true,
        },
    )
}

/// Sends SIGTERM to `child` and waits (at most 30 s) for it to exit.
fn sigterm(child: &mut Child) -> ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM failed: {sent}");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ringsum serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Federation {
    fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.join("state/audit.jsonl")).unwrap_or_default()
    }

    /// `ringsum status --json` of a pinned member (it waits while the
    /// coordinator is away).
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
            &self.dir.join("client-0").display().to_string(),
        ]);
        serde_json::from_str(&out).unwrap()
    }
}

#[test]
fn sigterm_stops_serve_with_status_0_and_a_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let f = federation(dir.path());
    let mut serve = f.serve();
    // One client of three submits: the round waits for the others.
    let mut client = f
        .join("client", "client-0")
        .args(["--insecure-seed", "9"])
        .arg("--data")
        .arg(dir.path().join("data/client-0.csv"))
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !f.audit().contains("submission_accepted") {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the submission was never accepted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = sigterm(&mut serve);
    assert!(status.success(), "ringsum serve on SIGTERM: {status}");
    client.kill().unwrap();
    client.wait().unwrap();

    // The restarted coordinator has the submission, once.
    let mut serve = f.serve();
    let json = f.status_json();
    assert_eq!(json["federation"], f.id.as_str(), "{json}");
    assert_eq!(json["round"], 1, "{json}");
    assert_eq!(json["phase"], "collecting", "{json}");
    assert_eq!(json["accepted"], 1, "{json}");
    assert_eq!(f.audit().matches("submission_accepted").count(), 1);
    let status = sigterm(&mut serve);
    assert!(status.success(), "ringsum serve on SIGTERM: {status}");
    run(&[
        "audit",
        "verify",
        &dir.path().join("state/audit.jsonl").display().to_string(),
        "--federation",
        &f.id,
    ]);
}
