//! A federation on loopback for the tests: identities, a description,
//! synthetic trainers, and the participants as tasks.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a fixture that cannot be built fails the test"
)]
// Not every test uses every helper: those that leave some unused expect
// `dead_code` where they declare `mod common`.

use std::path::Path;
use std::time::Duration;

use ringsum_net::participant::{
    ClientOptions, ConnectOptions, HolderOptions, TrainError, Trainer, run_client, run_holder,
};
use ringsum_net::server::{Limits, Plan, ServeOptions, Timing};
use ringsum_net::{HolderDescription, SetupDescription, TensorDescription};
use ringsum_pq::codec::hex;
use ringsum_pq::{FederationId, KemAlgorithm, SealingKey, SignatureAlgorithm, SigningIdentity};
use ringsum_protocol::RoundResult;

/// The parameter set of the tests: the smallest per-round-key set.
pub const SET: &str = "rk128-n4096";

pub struct Keys {
    pub coordinator: SigningIdentity,
    pub holders: Vec<(SigningIdentity, SealingKey)>,
    pub clients: Vec<SigningIdentity>,
}

/// Holder `i` (0-based) has Shamir point i + 1 and lives in `holder-<point>`.
pub fn holder_dir(dir: &Path, i: usize) -> std::path::PathBuf {
    dir.join(format!("holder-{}", i + 1))
}

pub fn keys(dir: &Path, holders: usize, clients: usize) -> Keys {
    let coordinator = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
    coordinator
        .write_secret(&dir.join("coordinator.key"))
        .unwrap();
    let holders = (0..holders)
        .map(|i| {
            let id = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
            let sealing = SealingKey::generate(KemAlgorithm::MlKem1024).unwrap();
            let hd = holder_dir(dir, i);
            std::fs::create_dir_all(&hd).unwrap();
            id.write_secret(&hd.join("identity.key")).unwrap();
            sealing.write_secret(&hd.join("sealing.key")).unwrap();
            (id, sealing)
        })
        .collect();
    let clients = (0..clients)
        .map(|i| {
            let id = SigningIdentity::generate(SignatureAlgorithm::MlDsa65).unwrap();
            id.write_secret(&dir.join(format!("client-{i}.key")))
                .unwrap();
            id
        })
        .collect();
    Keys {
        coordinator,
        holders,
        clients,
    }
}

pub fn description(keys: &Keys, parameters: u64, threshold: u32, rounds: u64) -> SetupDescription {
    SetupDescription {
        version: ringsum_net::description::DESCRIPTION_VERSION,
        parameter_set: SET.into(),
        layout: vec![TensorDescription {
            name: "w".into(),
            shape: vec![parameters],
        }],
        threshold,
        hybrid: false,
        min_clients: 3,
        min_samples: 10,
        max_weight: 10_000,
        rounds,
        coordinator: hex(keys.coordinator.public().to_bytes()),
        holders: keys
            .holders
            .iter()
            .enumerate()
            .map(|(i, (h, s))| HolderDescription {
                point: u32::try_from(i + 1).unwrap(),
                key: hex(h.public().to_bytes()),
                sealing: hex(s.public().to_bytes()),
            })
            .collect(),
        clients: keys
            .clients
            .iter()
            .map(|c| hex(c.public().to_bytes()))
            .collect(),
        application: serde_json::json!({}),
        privacy: None,
    }
}

/// The id a participant pins.
pub fn pin(description: &SetupDescription) -> FederationId {
    description.federation().unwrap().id()
}

/// Each client moves every parameter by (index + 1) / 100 per round.
pub struct Synthetic {
    pub index: usize,
    pub samples: u64,
}

impl Trainer for Synthetic {
    fn train(&mut self, _round: u64, global: &[f32]) -> Result<(Vec<f32>, u64), TrainError> {
        Ok((
            vec![(self.index as f32 + 1.0) / 100.0; global.len()],
            self.samples,
        ))
    }
}

pub fn serve_options(dir: &Path) -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        tls: None,
        limits: Limits {
            writes_per_second: 1000.0,
            write_burst: 1000.0,
            reads_per_second: 1000.0,
            read_burst: 1000.0,
            ..Limits::default()
        },
        timing: Timing {
            collect_timeout: Duration::from_secs(60),
            holder_timeout: Duration::from_secs(3),
            round_timeout: Duration::from_secs(120),
            report_every: Duration::from_secs(1),
            linger: Duration::from_secs(2),
            ..Timing::default()
        },
    }
}

pub fn connect(url: &str, federation: FederationId) -> ConnectOptions {
    let mut c = ConnectOptions::new(url);
    c.insecure_plaintext = true;
    c.federation = Some(federation);
    c.poll = Duration::from_millis(30);
    c.give_up_after = Duration::from_secs(60);
    c
}

pub fn coordinator(dir: &Path) -> SigningIdentity {
    SigningIdentity::read_secret(&dir.join("coordinator.key")).unwrap()
}

pub fn client(dir: &Path, i: usize) -> SigningIdentity {
    SigningIdentity::read_secret(&dir.join(format!("client-{i}.key"))).unwrap()
}

pub fn holder(dir: &Path, i: usize) -> (SigningIdentity, SealingKey) {
    let hd = holder_dir(dir, i);
    (
        SigningIdentity::read_secret(&hd.join("identity.key")).unwrap(),
        SealingKey::read_secret(&hd.join("sealing.key")).unwrap(),
    )
}

pub fn plan(dir: &Path, description: SetupDescription) -> Plan {
    let params = description
        .layout
        .iter()
        .map(|t| t.shape.iter().product::<u64>())
        .sum::<u64>();
    Plan {
        description,
        identity: coordinator(dir),
        model: vec![0.0; usize::try_from(params).unwrap()],
    }
}

pub fn holder_options(url: &str, federation: FederationId, dir: &Path, i: usize) -> HolderOptions {
    HolderOptions {
        connect: connect(url, federation),
        state_dir: holder_dir(dir, i).join("state"),
    }
}

pub fn client_options(url: &str, federation: FederationId, dir: &Path, i: usize) -> ClientOptions {
    ClientOptions {
        connect: connect(url, federation),
        state_dir: dir.join(format!("client-{i}")),
        insecure_seed: Some(5),
    }
}

pub type Task = tokio::task::JoinHandle<ringsum_net::Result<Option<RoundResult>>>;

/// The honest holders of a test federation, as tasks, trusting `ca` if
/// given (they yield nothing).
pub fn spawn_holders(
    url: &str,
    federation: FederationId,
    dir: &Path,
    which: impl IntoIterator<Item = usize>,
    ca: Option<&[u8]>,
) -> Vec<Task> {
    which
        .into_iter()
        .map(|i| {
            let (id, sealing) = holder(dir, i);
            let mut options = holder_options(url, federation, dir, i);
            options.connect.ca = ca.map(<[u8]>::to_vec);
            tokio::spawn(async move { run_holder(options, id, sealing).await.map(|_| None) })
        })
        .collect()
}

/// Honest clients `which` (client i trains with `samples(i)` samples), as
/// tasks yielding the last result each saw.
pub fn spawn_clients(
    url: &str,
    federation: FederationId,
    dir: &Path,
    which: impl IntoIterator<Item = usize>,
    ca: Option<&[u8]>,
    samples: fn(usize) -> u64,
) -> Vec<Task> {
    which
        .into_iter()
        .map(|i| {
            let mut options = client_options(url, federation, dir, i);
            options.connect.ca = ca.map(<[u8]>::to_vec);
            let trainer = Box::new(Synthetic {
                index: i,
                samples: samples(i),
            });
            let id = client(dir, i);
            tokio::spawn(async move { run_client(options, id, trainer).await.map(|r| r.result) })
        })
        .collect()
}

/// Every holder and clients 0..clients.
pub fn spawn_participants(
    url: &str,
    federation: FederationId,
    dir: &Path,
    holders: usize,
    clients: usize,
    ca: Option<&[u8]>,
    samples: fn(usize) -> u64,
) -> Vec<Task> {
    let mut tasks = spawn_holders(url, federation, dir, 0..holders, ca);
    tasks.extend(spawn_clients(url, federation, dir, 0..clients, ca, samples));
    tasks
}

/// Waits for the participants; the final results the clients saw.
pub async fn results(tasks: Vec<Task>) -> Vec<RoundResult> {
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap().unwrap());
    }
    results
}

/// The weighted plaintext average of the synthetic updates of `clients`
/// (client i moves by (i + 1) / 100 with `samples(i)` samples).
pub fn plaintext_step(clients: &[usize], samples: fn(usize) -> u64) -> f64 {
    let (num, den) = clients.iter().fold((0.0, 0.0), |(n, d), &i| {
        let w = samples(i) as f64;
        (n + w * (i as f64 + 1.0) / 100.0, d + w)
    });
    num / den
}
