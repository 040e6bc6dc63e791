//! A bounded load test on loopback: 100 clients submit encrypted updates
//! of 10^5 parameters (under per-round keys, with their sealed key shares)
//! concurrently to a `ringsum serve` process; then the coordinator is
//! killed with SIGKILL, restarted, and the round completes with all 100
//! submissions counted once. Prints the coordinator's ingest rate, its
//! peak resident memory and the recovery time (`cargo test --release -p
//! ringsum-cli --test load -- --nocapture` for the figures in
//! BENCHMARKS.md).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a fixture that cannot be set up fails the test"
)]
#![expect(
    clippy::print_stderr,
    reason = "the figures for BENCHMARKS.md, shown with --nocapture"
)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_net::auth::{Method, Query, with_proof};
use ringsum_net::model_file::ModelFile;
use ringsum_net::participant::{
    ConnectOptions, HolderOptions, fetch_setup, read_publication, run_holder,
};
use ringsum_net::proto::federation_client::FederationClient;
use ringsum_net::proto::{AckStatus, Caller, Phase};
use ringsum_pq::{KemAlgorithm, SealingKey, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::client::Client;

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

/// How the coordinator answered a flood.
#[derive(Debug, Default)]
struct Refusals {
    unauthenticated: u64,
    permission_denied: u64,
    rate_limited: u64,
    other: u64,
    accepted: u64,
}

impl Refusals {
    fn count(&mut self, result: Result<(), tonic::Status>) {
        match result.map_err(|s| s.code()) {
            Ok(()) => self.accepted += 1,
            Err(tonic::Code::Unauthenticated) => self.unauthenticated += 1,
            Err(tonic::Code::PermissionDenied) => self.permission_denied += 1,
            Err(tonic::Code::ResourceExhausted) => self.rate_limited += 1,
            Err(_) => self.other += 1,
        }
    }

    fn add(&mut self, other: &Self) {
        self.unauthenticated += other.unauthenticated;
        self.permission_denied += other.permission_denied;
        self.rate_limited += other.rate_limited;
        self.other += other.other;
        self.accepted += other.accepted;
    }

    const fn total(&self) -> u64 {
        self.unauthenticated + self.permission_denied + self.rate_limited + self.other
    }
}

/// One flooding connection from 127.0.0.2 until `stop`: it cycles through
/// a call without a proof streaming 8 MiB, a garbage proof, a stranger's
/// proof and a member's proof replayed.
async fn flood_from(
    url: &str,
    seed: u8,
    stop: &std::sync::atomic::AtomicBool,
    stranger: &SigningIdentity,
    replayed: &[u8],
    federation: ringsum_pq::FederationId,
) -> Refusals {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .local_address(Some([127, 0, 0, 2].into()))
        .connect()
        .await
        .unwrap();
    let mut raw = FederationClient::new(channel);
    let mut refused = Refusals::default();
    let mut i = u64::from(seed);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let result = match i % 4 {
            0 => {
                let chunks = (0..8).map(|_| ringsum_net::proto::Chunk {
                    total: 8 << 20,
                    data: vec![0xA5; 1 << 20],
                });
                raw.submit(tokio_stream::iter(chunks)).await.map(|_| ())
            }
            1 => raw
                .get_round(with_proof(Caller {}, &[seed; 3400]))
                .await
                .map(|_| ()),
            2 => {
                let proof = Query::now(Method::Round)
                    .unwrap()
                    .sign(stranger, federation)
                    .unwrap();
                raw.get_round(with_proof(Caller {}, &proof))
                    .await
                    .map(|_| ())
            }
            _ => raw
                .get_round(with_proof(Caller {}, replayed))
                .await
                .map(|_| ()),
        };
        refused.count(result);
        i += 1;
    }
    refused
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
#[expect(clippy::too_many_lines, reason = "one scenario, measured step by step")]
fn hundred_clients_of_1e5_parameters_then_sigkill_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coordinator = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    std::fs::create_dir_all(d.join("coordinator")).unwrap();
    coordinator
        .write_secret(&d.join("coordinator/identity.key"))
        .unwrap();
    for point in 1..=HOLDERS {
        let hd = d.join(format!("holder-{point}"));
        std::fs::create_dir_all(&hd).unwrap();
        let id = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
        let sealing = SealingKey::generate(KemAlgorithm::MlKem1024).unwrap();
        id.write_secret(&hd.join("identity.key")).unwrap();
        id.write_public(&hd.join("identity.pub")).unwrap();
        sealing.write_secret(&hd.join("sealing.key")).unwrap();
        std::fs::write(hd.join("sealing.pub"), sealing.public().to_bytes()).unwrap();
    }
    let clients: Vec<Arc<SigningIdentity>> = (0..CLIENTS)
        .map(|i| {
            let id = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
            let cd = d.join(format!("client-{i}"));
            std::fs::create_dir_all(&cd).unwrap();
            id.write_public(&cd.join("identity.pub")).unwrap();
            Arc::new(id)
        })
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let list = |prefix: &str, range: std::ops::Range<usize>| {
        range
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
            list("holder", 1..HOLDERS + 1),
            list("client", 0..CLIENTS)
        ),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (mut server, _) = serve(&config);
    let pinned = ringsum_net::parse_federation(
        &std::fs::read_to_string(d.join("state/federation.id")).unwrap(),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut connect = ConnectOptions::new(&url);
    connect.insecure_plaintext = true;
    connect.federation = Some(pinned);
    connect.poll = Duration::from_millis(20);
    let holder_options = |point: usize| HolderOptions {
        connect: connect.clone(),
        state_dir: d.join(format!("holder-{point}/state")),
    };

    // The round's opening: the model every client trains from.
    let (federation, publication) = runtime.block_on(async {
        let (_, federation) = fetch_setup(&connect, Arc::clone(&clients[0]))
            .await
            .unwrap();
        let mut raw = FederationClient::connect(url.clone()).await.unwrap();
        loop {
            let caller = with_proof(
                Caller {},
                &Query::now(Method::Round)
                    .unwrap()
                    .sign(&clients[0], pinned)
                    .unwrap(),
            );
            let round = raw.get_round(caller).await.unwrap().into_inner();
            if round.phase() == Phase::Collecting {
                break (federation, round.publication);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let federation = Arc::new(federation);
    let (round, global) = read_publication(&federation, &publication).unwrap();
    assert_eq!(round, RoundId(1));
    let parameters = global.model.len();
    assert_eq!(parameters, 100_000);

    // Every client's submission, encrypted, shared and signed up front:
    // what is measured next is the coordinator's ingest alone.
    let submissions: Vec<(Vec<u8>, Arc<SigningIdentity>)> = clients
        .into_par_iter()
        .enumerate()
        .map(|(i, identity)| {
            let delta = vec![(i % 7) as f32 / 100.0; parameters];
            let mut rng = Csprng::from_os().unwrap();
            let bytes = Client::new(Arc::clone(&federation), Arc::clone(&identity))
                .unwrap()
                .submit(RoundId(1), &delta, 1000 + 10 * i as u64, &mut rng)
                .unwrap()
                .to_bytes();
            (bytes, identity)
        })
        .collect();
    let bytes: usize = submissions.iter().map(|(s, _)| s.len()).sum();
    std::thread::sleep(Duration::from_millis(1200));

    let cpu_before = cpu_seconds(server.id());
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = submissions
            .iter()
            .map(|(s, identity)| {
                let url = url.clone();
                let pieces = ringsum_net::chunks(s, 1 << 20);
                let proof = Query::for_message(Method::Submit, s)
                    .unwrap()
                    .sign(identity, pinned)
                    .unwrap();
                tokio::spawn(async move {
                    let mut client = FederationClient::connect(url).await.unwrap();
                    client
                        .submit(with_proof(tokio_stream::iter(pieces), &proof))
                        .await
                        .unwrap()
                        .into_inner()
                        .status()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), AckStatus::Accepted);
        }
    });
    let ingest = started.elapsed();
    let cpu = cpu_seconds(server.id()) - cpu_before;
    let rss = peak_rss_mb(server.id());
    let total_parameters = (CLIENTS * parameters) as f64;
    eprintln!(
        "LOAD: {CLIENTS} clients x {parameters} parameters: {:.1} MB ({:.2} bytes/parameter) in {:.0} ms = {:.1} M params/s, {:.0} MB/s ingest; coordinator CPU {:.0} ms; coordinator peak RSS {rss:.0} MB",
        bytes as f64 / 1e6,
        bytes as f64 / total_parameters,
        ingest.as_secs_f64() * 1e3,
        total_parameters / 1e6 / ingest.as_secs_f64(),
        bytes as f64 / 1e6 / ingest.as_secs_f64(),
        cpu * 1e3,
    );
    assert!(
        rss < 300.0,
        "the coordinator used {rss} MB (the cap is 300 MB)"
    );

    // SIGKILL with all 100 accepted, before any holder has answered.
    server.kill().unwrap();
    server.wait().unwrap();
    let restarted = Instant::now();
    let (mut server, line) = serve(&config);
    let recovery = restarted.elapsed();
    eprintln!(
        "RECOVERY: {} ms from restart to listening ({line})",
        recovery.as_millis()
    );
    let replayed: u64 = line
        .split("recovered ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    // The opening and every submission (and the closing, if it came).
    assert!(
        (1 + CLIENTS as u64..=2 + CLIENTS as u64).contains(&replayed),
        "{line}"
    );

    // A flood from another loopback address while the holders work: calls
    // without a proof carrying megabytes, garbage proofs, a stranger's
    // valid signature, and a member's proof replayed (each costs the
    // coordinator a signature check), from 16 connections, until the
    // round ends (at most 60 s).
    let stop_flood = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stranger = Arc::new(SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap());
    let member = SigningIdentity::read_secret(&d.join("holder-1/identity.key")).unwrap();
    // The member's own call with a proof, which the flood then replays
    // (signed again while the restarted coordinator still refuses proofs
    // the killed one could have seen, as participants do).
    let replayed_proof = runtime.block_on(async {
        let mut raw = FederationClient::connect(url.clone()).await.unwrap();
        loop {
            let proof = Query::now(Method::Round)
                .unwrap()
                .sign(&member, pinned)
                .unwrap();
            match raw.get_round(with_proof(Caller {}, &proof)).await {
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                answer => break answer.map(|_| proof).unwrap(),
            }
        }
    });
    let flood: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            let stop = Arc::clone(&stop_flood);
            let stranger = Arc::clone(&stranger);
            let replayed = replayed_proof.clone();
            runtime.spawn(
                async move { flood_from(&url, i, &stop, &stranger, &replayed, pinned).await },
            )
        })
        .collect();

    // The holders come; the round is decoded with every submission once.
    let holders: Vec<_> = (1..=HOLDERS)
        .map(|point| {
            let hd = d.join(format!("holder-{point}"));
            let id = SigningIdentity::read_secret(&hd.join("identity.key")).unwrap();
            let sealing = SealingKey::read_secret(&hd.join("sealing.key")).unwrap();
            runtime.spawn(run_holder(holder_options(point), id, sealing))
        })
        .collect();
    let flood_started = Instant::now();
    let mut restarted_rss = 0.0f64;
    let status = loop {
        let rss = peak_rss_mb(server.id());
        if rss.is_finite() {
            restarted_rss = restarted_rss.max(rss);
        }
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            flood_started.elapsed() < Duration::from_secs(120),
            "the round did not finish under the flood"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop_flood.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = Refusals::default();
    for f in flood {
        refused.add(&runtime.block_on(f).unwrap());
    }
    eprintln!(
        "FLOOD: {} refused calls in {:.1} s from 16 connections on 127.0.0.2 ({refused:?}); the round finished; restarted coordinator's peak RSS {:.0} MB",
        refused.total(),
        flood_started.elapsed().as_secs_f64(),
        restarted_rss,
    );
    assert!(
        restarted_rss < 300.0,
        "the coordinator used {restarted_rss} MB under the flood (the cap is 300 MB)"
    );
    assert!(refused.total() > 100, "the flood never ran: {refused:?}");
    assert_eq!(refused.accepted, 0, "a flood call was served");
    assert!(status.success());
    for h in holders {
        let report = runtime.block_on(h).unwrap().unwrap();
        assert_eq!(report.answered, [1]);
    }
    let audit = std::fs::read_to_string(d.join("state/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("submission_accepted").count(), CLIENTS);
    let model = ModelFile::read(&d.join("state/final-model.json")).unwrap();
    assert_eq!(model.round, 1);
    assert_eq!(model.clients, CLIENTS as u64);
    let (num, den) = (0..CLIENTS).fold((0.0, 0.0), |(n, w), i| {
        let weight = 1000.0 + 10.0 * i as f64;
        (n + weight * (i % 7) as f64 / 100.0, w + weight)
    });
    let bound = model.error_bound + 1e-6;
    for (j, v) in model.flatten().iter().enumerate() {
        let expected = f64::from(global.model[j]) + num / den;
        assert!(
            (f64::from(*v) - expected).abs() <= bound,
            "{v} vs {expected}"
        );
    }
}
