//! A bounded load test on loopback: 100 clients submit encrypted updates
//! of 10^5 parameters concurrently to a `ringsum serve` process; then the
//! coordinator is killed with SIGKILL before decrypting, restarted, and the
//! round completes with all 100 submissions counted once. Prints the
//! coordinator's ingest rate, its peak resident memory and the recovery
//! time (`cargo test --release -p ringsum-cli --test load -- --nocapture`
//! for the figures in BENCHMARKS.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::print_stderr
)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use ringsum_math::Csprng;
use ringsum_net::participant::{ConnectOptions, HolderOptions, fetch_setup, run_holder};
use ringsum_net::proto::Caller;
use ringsum_net::proto::federation_client::FederationClient;
use ringsum_pq::{Envelope, KemAlgorithm, SealingKey, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::ClientNode;

const BIN: &str = env!("CARGO_BIN_EXE_ringsum");
const CLIENTS: usize = 100;
const HOLDERS: usize = 3;
/// Logistic regression with 9,999 features and 10 classes: 10^5 parameters.
const FEATURES: usize = 9_999;
const CLASSES: usize = 10;

fn serve(config: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config", &config.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(match std::env::var_os("RINGSUM_LOAD_LOG") {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::null(),
        })
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut recovered = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("listening") {
            recovered = line;
            break;
        }
    }
    // Keep draining stdout so the child never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, recovered)
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User plus system CPU time of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file (11 and 12 here).
    (ticks(11) + ticks(12)) / 100.0
}

#[test]
#[allow(clippy::too_many_lines)]
fn hundred_clients_of_1e5_parameters_then_sigkill_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coordinator = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    std::fs::create_dir_all(d.join("coordinator")).unwrap();
    coordinator
        .write_secret(&d.join("coordinator/identity.key"))
        .unwrap();
    for i in 0..HOLDERS {
        let hd = d.join(format!("holder-{i}"));
        std::fs::create_dir_all(&hd).unwrap();
        let id = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
        let sealing = SealingKey::generate(KemAlgorithm::MlKem1024).unwrap();
        id.write_secret(&hd.join("identity.key")).unwrap();
        id.write_public(&hd.join("identity.pub")).unwrap();
        sealing.write_secret(&hd.join("sealing.key")).unwrap();
        std::fs::write(hd.join("sealing.pub"), sealing.public().to_bytes()).unwrap();
    }
    let clients: Vec<SigningIdentity> = (0..CLIENTS)
        .map(|i| {
            let id = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
            let cd = d.join(format!("client-{i}"));
            std::fs::create_dir_all(&cd).unwrap();
            id.write_public(&cd.join("identity.pub")).unwrap();
            id
        })
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let list = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("\"{prefix}-{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let config = d.join("federation.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"state\"\nidentity = \"coordinator\"\nrounds = 1\nthreshold = 2\n\
             insecure_plaintext = true\nholder_timeout_secs = 1\nlinger_secs = 1\nwrites_per_second = 100.0\n\
             holders = [{}]\nclients = [{}]\n[model]\nkind = \"logistic\"\nfeatures = {FEATURES}\nclasses = {CLASSES}\n",
            list("holder", HOLDERS),
            list("client", CLIENTS)
        ),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (mut server, _) = serve(&config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut connect = ConnectOptions::new(&url);
    connect.insecure_plaintext = true;
    connect.poll = Duration::from_millis(20);
    let holder_options = |i: usize| HolderOptions {
        connect: connect.clone(),
        state_dir: d.join(format!("holder-{i}/state")),
        key_file: d.join(format!("holder-{i}/sealing.key")),
    };
    let start_holders = || {
        (0..HOLDERS)
            .map(|i| {
                let hd = d.join(format!("holder-{i}"));
                let id = SigningIdentity::read_secret(&hd.join("identity.key")).unwrap();
                let sealing = SealingKey::read_secret(&hd.join("sealing.key")).unwrap();
                runtime.spawn(run_holder(holder_options(i), id, sealing))
            })
            .collect::<Vec<_>>()
    };

    // The ceremony, then the holders go away so that the round waits.
    let holders = start_holders();
    let (setup, key, publication) = runtime.block_on(async {
        let (_, setup) = fetch_setup(&connect, clients[0].id()).await.unwrap();
        let mut raw = FederationClient::connect(url.clone()).await.unwrap();
        let caller = Caller {
            participant: clients[0].id().to_string(),
        };
        loop {
            let round = raw.get_round(caller.clone()).await.unwrap().into_inner();
            if round.phase == "collecting" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ceremony = raw.get_ceremony(caller.clone()).await.unwrap().into_inner();
        let max = 4 << 20;
        let parse = |list: &[Vec<u8>]| {
            list.iter()
                .map(|b| Envelope::from_bytes(b, max).unwrap())
                .collect::<Vec<_>>()
        };
        let announcement = Envelope::from_bytes(&ceremony.collective_key, max).unwrap();
        let key = ClientNode::new(SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap())
            .accept_key(
                &setup,
                &announcement,
                &parse(&ceremony.commitments),
                &parse(&ceremony.public_shares),
            )
            .unwrap();
        let publication = raw
            .get_round(caller)
            .await
            .unwrap()
            .into_inner()
            .publication;
        (setup, key, publication)
    });
    for h in holders {
        h.abort();
    }
    let (round, global) = ringsum_net::participant::read_publication(&setup, &publication).unwrap();
    assert_eq!(round, 1);
    let parameters = global.model.len();
    assert_eq!(parameters, 100_000);

    // Every client's update, encrypted and signed up front: what is
    // measured next is the coordinator's ingest alone.
    let submissions: Vec<Vec<u8>> = clients
        .into_par_iter()
        .enumerate()
        .map(|(i, identity)| {
            let delta = vec![(i % 7) as f32 / 100.0; parameters];
            let mut rng = Csprng::from_os().unwrap();
            ClientNode::new(identity)
                .submit(&setup, &key, 1, &delta, 10 + i as u64, &mut rng)
                .unwrap()
                .to_bytes()
        })
        .collect();
    let bytes: usize = submissions.iter().map(Vec::len).sum();
    std::thread::sleep(Duration::from_millis(1200));

    let cpu_before = cpu_seconds(server.id());
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = submissions
            .iter()
            .map(|s| {
                let url = url.clone();
                let pieces = ringsum_net::chunks(s, 1 << 20);
                tokio::spawn(async move {
                    let mut client = FederationClient::connect(url).await.unwrap();
                    client
                        .submit(tokio_stream::iter(pieces))
                        .await
                        .unwrap()
                        .into_inner()
                        .status
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "accepted");
        }
    });
    let ingest = started.elapsed();
    let cpu = cpu_seconds(server.id()) - cpu_before;
    let rss = peak_rss_mb(server.id());
    eprintln!(
        "LOAD: {CLIENTS} clients x {parameters} parameters: {:.1} MB in {:.0} ms = {:.0} MB/s ingest; coordinator CPU {:.0} ms ({:.0} MB per CPU-second); coordinator peak RSS {rss:.0} MB",
        bytes as f64 / 1e6,
        ingest.as_secs_f64() * 1e3,
        bytes as f64 / 1e6 / ingest.as_secs_f64(),
        cpu * 1e3,
        bytes as f64 / 1e6 / cpu.max(1e-3),
    );
    assert!(rss < 2048.0, "the coordinator used {rss} MB");

    // SIGKILL with all 100 accepted and the decryption not yet asked.
    server.kill().unwrap();
    server.wait().unwrap();
    let restarted = Instant::now();
    let (mut server, line) = serve(&config);
    let recovery = restarted.elapsed();
    eprintln!(
        "RECOVERY: {} ms from restart to listening ({line})",
        recovery.as_millis()
    );
    assert!(
        line.contains(&format!("recovered {} events", 3 * 5 + 2 + CLIENTS)),
        "{line}"
    );

    // The holders return; the round is decrypted with every submission once.
    let holders = start_holders();
    let status = server.wait().unwrap();
    assert!(status.success());
    for h in holders {
        runtime.block_on(h).unwrap().unwrap();
    }
    let audit = std::fs::read_to_string(d.join("state/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("submission_accepted").count(), CLIENTS);
    let result = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| serde_json::from_str::<serde_json::Value>(v["event"].as_str()?).ok())
        .find(|e| e["type"] == "round_result")
        .unwrap();
    assert_eq!(result["clients"], CLIENTS);
    let model: Vec<f32> =
        serde_json::from_str(&std::fs::read_to_string(d.join("state/final-model.json")).unwrap())
            .unwrap();
    let (num, den) = (0..CLIENTS).fold((0.0, 0.0), |(n, w), i| {
        let weight = 10.0 + i as f64;
        (n + weight * (i % 7) as f64 / 100.0, w + weight)
    });
    let bound = result["error_bound"].as_f64().unwrap();
    for (j, v) in model.iter().enumerate() {
        let expected = global.model[j] as f64 + num / den;
        assert!(
            (f64::from(*v) - expected).abs() <= bound,
            "{v} vs {expected}"
        );
    }
}
