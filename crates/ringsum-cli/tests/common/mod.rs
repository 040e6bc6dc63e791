//! What the service tests share: a federation of `ringsum` processes on
//! loopback (keys, `federation.toml`, the federation id), the coordinator
//! and `ringsum join` commands. Each test adds its own participants and
//! checks in an `impl Federation` of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `ringsum` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringsum");
/// Key holders (any 2 open a sum).
pub const HOLDERS: u32 = 3;
/// Clients.
pub const CLIENTS: usize = 3;
/// Training rounds.
pub const ROUNDS: u64 = 2;

/// Runs `ringsum args` to success and returns its standard output.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ringsum {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A loopback port nobody listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What differs between the tests' federations.
pub struct Settings {
    /// The service's seed.
    pub seed: u64,
    /// The logistic model's features and classes.
    pub features: usize,
    /// See `features`.
    pub classes: usize,
    /// How long the service stays up after the last round.
    pub linger_secs: u64,
    /// Split the shipped data among the clients into `data/`.
    pub split_data: bool,
}

/// A federation's directory (keys `coordinator`, `holder-<point>`,
/// `client-<i>`, and `federation.toml`), its address and its id.
pub struct Federation {
    pub dir: PathBuf,
    pub url: String,
    pub config: PathBuf,
    pub id: String,
}

/// Writes the keys and the configuration of a federation into `dir`.
pub fn federation(dir: &Path, settings: &Settings) -> Federation {
    let p = |s: &str| dir.join(s).display().to_string();
    run(&["keygen", "--out", &p("coordinator")]);
    // Holder directories are named by Shamir point, as logs name holders.
    for point in 1..=HOLDERS {
        run(&[
            "keygen",
            "--out",
            &p(&format!("holder-{point}")),
            "--holder",
        ]);
    }
    for i in 0..CLIENTS {
        run(&["keygen", "--out", &p(&format!("client-{i}"))]);
    }
    if settings.split_data {
        run(&[
            "split",
            "--clients",
            &CLIENTS.to_string(),
            "--seed",
            &settings.seed.to_string(),
            "--out",
            &p("data"),
        ]);
    }
    let port = free_port();
    let holders: Vec<String> = (1..=HOLDERS).map(|i| format!("\"holder-{i}\"")).collect();
    let clients: Vec<String> = (0..CLIENTS).map(|i| format!("\"client-{i}\"")).collect();
    let config = dir.join("federation.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "state"
identity = "coordinator"
parameter_set = "rk128-n4096"
rounds = {ROUNDS}
threshold = 2
seed = {seed}
insecure_plaintext = true
holder_timeout_secs = 8
report_secs = 1
linger_secs = {linger}
holders = [{holders}]
clients = [{clients}]

[model]
kind = "logistic"
features = {features}
classes = {classes}
"#,
            seed = settings.seed,
            linger = settings.linger_secs,
            holders = holders.join(", "),
            clients = clients.join(", "),
            features = settings.features,
            classes = settings.classes,
        ),
    )
    .unwrap();
    let id = run(&["federation-id", "--config", &config.display().to_string()])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    Federation {
        dir: dir.to_path_buf(),
        url: format!("http://127.0.0.1:{port}"),
        config,
        id,
    }
}

impl Federation {
    /// The coordinator, its log appended to `serve.log`.
    pub fn serve(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        Command::new(BIN)
            .args(["serve", "--config", &self.config.display().to_string()])
            .env("RINGSUM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// `ringsum join` in `role` with the key directory `identity`, pinned
    /// to this federation, its output discarded.
    pub fn join(&self, role: &str, identity: &str) -> Command {
        let mut command = Command::new(BIN);
        command
            .args([
                "join",
                "--role",
                role,
                "--insecure-plaintext",
                "--coordinator",
                &self.url,
                "--federation",
                &self.id,
            ])
            .arg("--identity")
            .arg(self.dir.join(identity))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Key holder `point`.
    pub fn holder(&self, point: u32) -> Child {
        self.join("holder", &format!("holder-{point}"))
            .spawn()
            .unwrap()
    }
}
