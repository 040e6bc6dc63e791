//! `ringsum assess`: the JSON report and the exit code of the gate, for a
//! federation file alone (post-quantum and hybrid keys, plaintext with and
//! without --strict) and against a live `ringsum serve` over TLS (the
//! negotiated group is reported; an unreachable coordinator fails).

#![expect(
    clippy::unwrap_used,
    reason = "the helpers that run the binary and make scratch directories, and the report's expected fields, fail the test when missing"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ringsum");

fn ringsum(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringsum-assess-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Keys for a coordinator, three holders and three clients in `dir`, and a
/// federation file `name` listening on `port` with `extra` settings.
fn federation(dir: &Path, hybrid: bool, port: u16, name: &str, extra: &str) -> PathBuf {
    let keygen = |out: &str, holder: bool| {
        let mut args = vec!["keygen", "--out", out];
        if holder {
            args.push("--holder");
        }
        if hybrid {
            args.push("--hybrid");
        }
        if !dir.join(out).join("identity.key").exists() {
            assert!(ringsum(&args, dir).status.success(), "keygen {out}");
        }
    };
    keygen("coordinator", false);
    for point in 1..=3 {
        keygen(&format!("holder-{point}"), true);
    }
    for i in 0..3 {
        keygen(&format!("client-{i}"), false);
    }
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"state\"\nidentity = \"coordinator\"\n\
             parameter_set = \"rk128-n4096\"\nrounds = 1\nthreshold = 2\nhybrid = {hybrid}\n{extra}\n\
             holders = [\"holder-1\", \"holder-2\", \"holder-3\"]\n\
             clients = [\"client-0\", \"client-1\", \"client-2\"]\n\
             [model]\nkind = \"logistic\"\nfeatures = 4\nclasses = 2\n"
        ),
    )
    .unwrap();
    path
}

/// `ringsum assess args --json` in `dir`: the report and the exit code.
fn assess(args: &[&str], dir: &Path) -> (Value, i32) {
    let mut all = vec!["assess"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = ringsum(&all, dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{all:?}: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        unreachable!(
            "{all:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (report, out.status.code().unwrap())
}

/// The line whose primitive starts with `prefix`.
fn line<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["primitive"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| unreachable!("no line {prefix:?} in {report:#}"))
}

fn has_line(report: &Value, prefix: &str) -> bool {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["primitive"].as_str().unwrap().starts_with(prefix))
}

#[test]
fn a_federation_file_alone_is_assessed() {
    let dir = scratch("file");
    let config = federation(&dir, false, free_port(), "pq.toml", "");
    let (report, code) = assess(&["--config", config.to_str().unwrap()], &dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["gate"]["pass"], true);
    assert_eq!(report["gate"]["exit_code"], 0);
    assert_eq!(report["parameter_set"], "rk128-n4096");
    assert_eq!(report["hybrid"], false);
    assert_eq!(report["federation"].as_str().unwrap().len(), 64);
    // The federation id is the one `federation-id` prints.
    let id = ringsum(&["federation-id", "--config", "pq.toml"], &dir);
    assert_eq!(
        String::from_utf8(id.stdout).unwrap().trim(),
        report["federation"].as_str().unwrap()
    );
    let rlwe = line(&report, "RLWE");
    assert_eq!(rlwe["status"]["kind"], "post-quantum");
    assert_eq!(rlwe["reliance"], "updates");
    assert!(
        rlwe["detail"]
            .as_str()
            .unwrap()
            .contains("params/rk128-n4096.toml"),
        "{rlwe}"
    );
    assert!(rlwe["detail"].as_str().unwrap().contains("log2 Q <= 101"));
    assert_eq!(
        line(&report, "Shamir")["status"]["kind"],
        "information-theoretic"
    );
    assert_eq!(
        line(&report, "ML-KEM-1024")["status"]["kind"],
        "post-quantum"
    );
    assert_eq!(line(&report, "ML-DSA-65")["status"]["kind"], "post-quantum");
    let sha3 = line(&report, "SHA3-256");
    assert_eq!(sha3["status"]["quantum_bits"], 85);
    assert_eq!(
        line(&report, "ChaCha20-Poly1305")["status"]["quantum_bits"],
        128
    );
    assert!(!has_line(&report, "X25519 (RFC 7748)"));
    assert!(!has_line(&report, "Ed25519"));
    assert_eq!(
        line(&report, "TLS key exchange")["status"]["kind"],
        "not-probed"
    );
    assert!(report["coordinator"].is_null());

    // Hybrid keys: the classical halves are listed, and do not gate.
    let hybrid_dir = scratch("hybrid");
    let config = federation(&hybrid_dir, true, free_port(), "hybrid.toml", "");
    let (report, code) = assess(&["--config", config.to_str().unwrap()], &hybrid_dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["hybrid"], true);
    for prefix in ["X25519 (RFC 7748)", "Ed25519"] {
        let half = line(&report, prefix);
        assert_eq!(half["status"]["kind"], "classical");
        assert_eq!(half["reliance"], "hybrid-half");
        assert_eq!(half["verdict"], "ok");
    }

    // Plaintext: a warning, which only --strict turns into a failure.
    let config = federation(
        &dir,
        false,
        free_port(),
        "plain.toml",
        "insecure_plaintext = true",
    );
    let config = config.to_str().unwrap();
    let (report, code) = assess(&["--config", config], &dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(line(&report, "TLS: none")["verdict"], "warn");
    let (report, code) = assess(&["--config", config, "--strict"], &dir);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["gate"]["pass"], false);
    assert!(
        report["gate"]["failing"][0]
            .as_str()
            .unwrap()
            .starts_with("TLS: none")
    );

    // A file that does not describe a federation is an error, not a report.
    let out = ringsum(&["assess", "--config", "missing.toml"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&hybrid_dir);
}

/// Kills the coordinator when the test ends, passed or not.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_live_coordinator_is_probed_over_tls() {
    let dir = scratch("live");
    let port = free_port();
    let config = federation(&dir, false, port, "federation.toml", "");
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let serving = Serving(
        Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let cert = dir.join("state").join("tls-cert.pem");
    let start = Instant::now();
    while !(cert.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the coordinator did not start: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("https://127.0.0.1:{port}");
    let (report, code) = assess(
        &[
            "--config",
            config.to_str().unwrap(),
            "--coordinator",
            &url,
            "--ca",
            cert.to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(report["coordinator"], url.as_str());
    let tls = &report["tls"];
    assert_eq!(tls["protocol"], "TLS 1.3", "{report:#}");
    // The service requires the hybrid group (docs/security.md).
    assert_eq!(tls["group"]["name"], "X25519MLKEM768", "{report:#}");
    assert_eq!(tls["group"]["status"], "hybrid");
    assert_eq!(tls["chain_verified"], true);
    assert!(tls["handshake_signature"]["name"].is_string());
    assert!(tls["certificate"]["subject"].is_string());
    let kx = line(&report, "TLS key exchange: X25519MLKEM768 over TLS 1.3");
    assert_eq!(kx["verdict"], "ok");
    // Whatever the certificate, it is transport: it never fails the gate
    // without --strict.
    assert_eq!(line(&report, "TLS certificate")["reliance"], "transport");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["gate"]["exit_code"], 0);

    // The coordinator gone: the probe fails, and so does the gate.
    drop(serving);
    let (report, code) = assess(
        &["--config", config.to_str().unwrap(), "--coordinator", &url],
        &dir,
    );
    assert_eq!(code, 1, "{report:#}");
    let failed = line(&report, "TLS of");
    assert_eq!(failed["status"]["kind"], "probe-failed");
    assert_eq!(failed["verdict"], "fail");
    assert!(report["tls"].is_null());
    let _ = std::fs::remove_dir_all(&dir);
}
