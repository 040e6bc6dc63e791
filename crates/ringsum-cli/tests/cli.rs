//! The `ringsum` binary: every bad input gives one clear line on stderr and
//! a non-zero exit, never a panic; params, audit and keygen work.

#![expect(
    clippy::unwrap_used,
    reason = "the helpers that run the binary and make scratch directories fail the test when they cannot"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ringsum(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringsum"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringsum-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs and expects failure with `needle` in the message.
fn refused(args: &[&str], dir: &Path, needle: &str) {
    let out = ringsum(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn bad_demo_inputs_are_refused_clearly() {
    let dir = scratch("bad");
    std::fs::write(dir.join("cell.csv"), "1,2,0\n3,4,1\n5,x,1\n").unwrap();
    std::fs::write(dir.join("empty.csv"), "").unwrap();
    std::fs::write(dir.join("one.csv"), "1,2,0\n3,4,0\n5,6,0\n").unwrap();
    let rows: String = (0..30).map(|i| format!("{i},{}\n", i % 2)).collect();
    std::fs::write(dir.join("few.csv"), rows).unwrap();
    refused(&["demo", "--dataset", "cell.csv"], &dir, "line 3, column 2");
    refused(&["demo", "--dataset", "empty.csv"], &dir, "no data rows");
    refused(&["demo", "--dataset", "one.csv"], &dir, "same class");
    refused(
        &["demo", "--dataset", "few.csv"],
        &dir,
        "cannot give 8 clients",
    );
    refused(&["demo", "--dataset", "missing.csv"], &dir, "missing.csv");
    // Differential privacy's settings.
    let dp = |extra: &[&str], needle: &str| {
        let mut args = vec!["demo", "--rounds", "1"];
        args.extend_from_slice(extra);
        refused(&args, &dir, needle);
    };
    dp(
        &["--dp-epsilon", "0", "--dp-delta", "1e-5"],
        "epsilon must be a positive",
    );
    dp(
        &["--dp-epsilon", "1", "--dp-delta", "1"],
        "delta must lie strictly between 0 and 1",
    );
    dp(
        &["--dp-epsilon", "1", "--dp-delta", "0"],
        "delta must lie strictly between 0 and 1",
    );
    dp(
        &["--dp-epsilon", "1", "--dp-delta", "1e-5", "--dp-clip=-1"],
        "clipping norm must be a positive",
    );
    dp(
        &["--dp-epsilon", "1", "--dp-delta", "1e-5", "--dp-clip", "0"],
        "clipping norm must be a positive",
    );
    dp(
        &[
            "--dp-epsilon",
            "1",
            "--dp-delta",
            "1e-5",
            "--dp-clip",
            "5e5",
            "--dp-learning-rate",
            "0.01",
        ],
        "could overflow",
    );
    dp(
        &[
            "--dp-epsilon",
            "1",
            "--dp-delta",
            "1e-5",
            "--dp-learning-rate",
            "1e9",
        ],
        "lower the learning rate",
    );
    dp(&["--dp-epsilon", "1"], "--dp-delta");
    refused(
        &["demo", "--threshold", "6"],
        &dir,
        "--threshold must be between 1 and --holders (5)",
    );
    refused(
        &["demo", "--threshold", "0"],
        &dir,
        "--threshold must be between 1",
    );
    refused(
        &["demo", "--drop-holders", "3"],
        &dir,
        "fewer than the threshold",
    );
    refused(
        &["demo", "--drop-clients", "7"],
        &dir,
        "submissions a round needs",
    );
    refused(
        &["demo", "--params", "pq999"],
        &dir,
        "unknown parameter set \"pq999\"",
    );
    refused(&["demo", "--rounds", "0"], &dir, "--rounds");
    refused(&["demo", "--rounds", "99999999"], &dir, "--rounds");
    refused(
        &["demo", "--clients", "9223372036854775808"],
        &dir,
        "exceeds the 1000 clients",
    );
    refused(&["demo", "--clients", "0"], &dir, "--clients");
    // 2t <= n: two disjoint quorums could open two sums in one round.
    let out = ringsum(&["demo", "--holders", "4", "--threshold", "2"], &dir);
    assert_eq!(out.status.code(), Some(1));
    refused(
        &["demo", "--holders", "4", "--threshold", "2"],
        &dir,
        "a threshold of 2 of 4 key holders is not a majority: it needs 2t > n",
    );
    // The demo runs on per-round keys only.
    refused(
        &["demo", "--params", "pq128-n4096"],
        &dir,
        "use one of the rk128-n* sets",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn params_list_and_check() {
    let dir = scratch("params");
    let out = ringsum(&["params", "list"], &dir);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ["rk128-n4096", "rk128-n8192", "rk128-n16384", "rk128-n32768"] {
        assert!(text.contains(id), "{text}");
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../params/rk128-n8192.toml");
    assert!(
        ringsum(&["params", "check", shipped.to_str().unwrap()], &dir)
            .status
            .success()
    );
    std::fs::write(dir.join("bad.toml"), "id = \"x\"\n").unwrap();
    refused(&["params", "check", "bad.toml"], &dir, "refused");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn audit_verify_and_keygen() {
    let dir = scratch("audit");
    let out = ringsum(
        &[
            "demo",
            "--params",
            "rk128-n4096",
            "--rounds",
            "1",
            "--clients",
            "4",
            "--holders",
            "3",
            "--threshold",
            "2",
            "--json",
            "--audit-log",
            "log.jsonl",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rounds"].as_array().unwrap().len(), 1);
    let verified = ringsum(&["audit", "verify", "log.jsonl"], &dir);
    assert!(verified.status.success());
    assert!(String::from_utf8_lossy(&verified.stdout).contains("lines verified"));
    // One changed byte: the failing line is named.
    let text = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    let tampered = text.replacen("submission_accepted", "submission_accepteD", 1);
    let line = tampered
        .lines()
        .position(|l| l.contains("submission_accepteD"))
        .unwrap()
        + 1;
    std::fs::write(dir.join("tampered.jsonl"), tampered).unwrap();
    refused(
        &["audit", "verify", "tampered.jsonl"],
        &dir,
        &format!("audit log line {line}:"),
    );

    let keys = ringsum(&["keygen", "--out", "keys", "--holder"], &dir);
    assert!(keys.status.success());
    for file in ["identity.key", "identity.pub", "sealing.key", "sealing.pub"] {
        assert!(dir.join("keys").join(file).exists(), "{file}");
    }
    assert_eq!(
        std::fs::metadata(dir.join("keys/identity.pub"))
            .unwrap()
            .len(),
        1952
    );
    refused(&["keygen", "--out", "keys"], &dir, "identity.key");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_refuses_bad_sizes_and_reports_json() {
    let dir = scratch("bench");
    refused(&["bench", "--params-count", "0"], &dir, "at least 1");
    refused(&["bench", "--clients", "0"], &dir, "at least 1");
    refused(
        &["bench", "--clients", "5000"],
        &dir,
        "exceeds the 1000 clients",
    );
    refused(&["bench", "--threshold", "9"], &dir, "--threshold");
    refused(
        &["bench", "--holders", "4", "--threshold", "2"],
        &dir,
        "2t > n",
    );
    refused(
        &["bench", "--params", "pq128-n4096"],
        &dir,
        "collective-key scheme, which was removed",
    );
    refused(
        &[
            "bench",
            "--params-count",
            "100000000000",
            "--clients",
            "1000",
        ],
        &dir,
        "GB available",
    );
    let out = ringsum(
        &[
            "bench",
            "--params",
            "rk128-n4096",
            "--params-count",
            "1000",
            "--clients",
            "3",
            "--holders",
            "3",
            "--threshold",
            "2",
            "--repeats",
            "1",
            "--json",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for phase in [
        "plaintext",
        "encrypt",
        "shares",
        "aggregate",
        "holders_answer",
        "decrypt",
    ] {
        assert!(
            report[phase]["median_ms"].as_f64().unwrap() > 0.0,
            "{phase}"
        );
    }
    // At 1000 parameters the shares and signatures dominate what a client
    // sends; the ciphertexts alone take 76 bits per two values.
    assert!(report["bytes_per_parameter"].as_f64().unwrap() > 4.0);
    let update = report["update_bytes_per_parameter"].as_f64().unwrap();
    assert!((4.7..5.0).contains(&update), "{update}");
    assert!(report["fixed_bytes_per_client"].as_u64().unwrap() > 3 * 1568);
    assert!(report["holder_ms_per_client"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringsum serve` and `ringsum federation-id` refuse a collective-key
/// parameter set and a threshold that is not a majority, naming the file;
/// `ringsum join` refuses to start without a pinned federation id.
#[test]
fn serve_and_join_refuse_what_the_federation_cannot_run() {
    let dir = scratch("serve");
    for name in ["coordinator", "client-0", "client-1", "client-2"] {
        assert!(ringsum(&["keygen", "--out", name], &dir).status.success());
    }
    for point in 1..=3 {
        let out = format!("holder-{point}");
        assert!(
            ringsum(&["keygen", "--out", &out, "--holder"], &dir)
                .status
                .success()
        );
    }
    let file = |name: &str, set: &str, threshold: u32| {
        std::fs::write(
            dir.join(name),
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"state\"\nidentity = \"coordinator\"\n\
                 parameter_set = \"{set}\"\nrounds = 1\nthreshold = {threshold}\ninsecure_plaintext = true\n\
                 holders = [\"holder-1\", \"holder-2\", \"holder-3\"]\n\
                 clients = [\"client-0\", \"client-1\", \"client-2\"]\n\
                 [model]\nkind = \"logistic\"\nfeatures = 4\nclasses = 2\n"
            ),
        )
        .unwrap();
    };
    file("old.toml", "pq128-n4096", 2);
    file("minority.toml", "rk128-n4096", 1);
    file("good.toml", "rk128-n4096", 2);
    for command in ["serve", "federation-id"] {
        refused(
            &[command, "--config", "old.toml"],
            &dir,
            "parameter set pq128-n4096 belonged to the collective-key scheme",
        );
        refused(&[command, "--config", "old.toml"], &dir, "old.toml");
        refused(
            &[command, "--config", "minority.toml"],
            &dir,
            "a threshold of 1 of 3 key holders is not a majority",
        );
    }
    let out = ringsum(&["federation-id", "--config", "good.toml"], &dir);
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap();
    assert_eq!(id.trim().len(), 64, "{id}");
    // The same file gives the same id.
    let again = ringsum(&["federation-id", "--config", "good.toml"], &dir);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), id);
    let join = |federation: Option<&str>| {
        let mut args = vec![
            "join",
            "--role",
            "holder",
            "--identity",
            "holder-1",
            "--coordinator",
            "http://127.0.0.1:9",
            "--insecure-plaintext",
        ];
        if let Some(f) = federation {
            args.extend(["--federation", f]);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = join(None);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&args, &dir, "must pin the federation id");
    let args = join(Some("not-an-id"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&args, &dir, "neither a federation id");
    let _ = std::fs::remove_dir_all(&dir);
}
