//! `ringsum serve`, `ringsum join`, `ringsum status` and `ringsum split`:
//! the federation on several machines (ringsum-net underneath).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringsum_net::participant::{
    ClientOptions, ConnectOptions, HolderOptions, Trainer, run_client, run_holder,
};
use ringsum_net::server::{Limits, Plan, ServeOptions, Timing};
use ringsum_net::{HolderDescription, SetupDescription, TensorDescription};
use ringsum_pq::codec::{hex, unhex};
use ringsum_pq::{SealingKey, SigningIdentity};
use ringsum_protocol::RoundPolicy;
use serde::Deserialize;

use crate::data::{self, Dataset, SplitMix};
use crate::demo::{self, TRAINING};
use crate::model::{Model, ModelKind, Training};

/// The model section of a federation file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// "logistic" or "mlp".
    pub kind: String,
    /// Hidden units of the MLP.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// Features per sample.
    pub features: usize,
    /// Classes.
    pub classes: usize,
}

const fn default_hidden() -> usize {
    32
}

/// A federation file (`ringsum serve --config FILE`). Paths are relative
/// to the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Where to listen, e.g. "0.0.0.0:7443".
    pub listen: SocketAddr,
    /// The coordinator's state (store, audit log, certificate, final model).
    pub data_dir: PathBuf,
    /// The coordinator's identity directory (`identity.key`).
    pub identity: PathBuf,
    /// A shipped parameter set.
    #[serde(default = "default_set")]
    pub parameter_set: String,
    /// Training rounds.
    pub rounds: u64,
    /// Holders needed to decrypt.
    pub threshold: u32,
    /// Hybrid keys (ML-DSA-65 + Ed25519, ML-KEM-1024 + X25519).
    #[serde(default)]
    pub hybrid: bool,
    /// Seed of the initial model and of the clients' local training.
    #[serde(default)]
    pub seed: u64,
    /// Fewest submissions per round.
    #[serde(default = "default_min_clients")]
    pub min_clients: usize,
    /// Fewest samples per client.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// The model.
    pub model: ModelConfig,
    /// Key holders' identity directories (`identity.pub`, `sealing.pub`),
    /// in Shamir-point order.
    pub holders: Vec<PathBuf>,
    /// Clients' identity directories (`identity.pub`), in client order.
    pub clients: Vec<PathBuf>,
    /// Serve plaintext HTTP/2 (loopback tests and demos only).
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// Names of the self-signed certificate made on first start.
    #[serde(default = "default_names")]
    pub tls_names: Vec<String>,
    /// A certificate (PEM) instead of the self-signed one.
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Seconds a round collects before it is decrypted with fewer than
    /// every client.
    #[serde(default = "default_collect")]
    pub collect_timeout_secs: u64,
    /// Seconds a silent holder counts as available.
    #[serde(default = "default_holder_timeout")]
    pub holder_timeout_secs: u64,
    /// Seconds the service stays up after the last round.
    #[serde(default = "default_linger")]
    pub linger_secs: u64,
    /// Largest chunk of a streamed message, in bytes.
    #[serde(default = "default_chunk")]
    pub max_chunk_bytes: usize,
    /// Messages per second per identity.
    #[serde(default = "default_writes")]
    pub writes_per_second: f64,
}

fn default_set() -> String {
    ringsum_core::DEFAULT_PARAMETER_SET.to_owned()
}
const fn default_min_clients() -> usize {
    3
}
const fn default_min_samples() -> u64 {
    10
}
fn default_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}
const fn default_collect() -> u64 {
    300
}
const fn default_holder_timeout() -> u64 {
    10
}
const fn default_linger() -> u64 {
    10
}
const fn default_chunk() -> usize {
    1 << 20
}
const fn default_writes() -> f64 {
    5.0
}

/// The signing identity in a `ringsum keygen` directory.
fn read_identity(dir: &Path) -> Result<SigningIdentity, String> {
    SigningIdentity::read_secret(&dir.join("identity.key"))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

impl FederationConfig {
    /// Reads a federation file; relative paths are resolved against its
    /// directory.
    ///
    /// # Errors
    /// An unreadable or invalid file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut config: Self =
            toml::from_str(&read_text(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if !config.writes_per_second.is_finite() || config.writes_per_second <= 0.0 {
            return Err(format!(
                "{}: writes_per_second must be a positive number",
                path.display()
            ));
        }
        if !(64 << 10..=64 << 20).contains(&config.max_chunk_bytes) {
            return Err(format!(
                "{}: max_chunk_bytes must be between 64 KiB and 64 MiB",
                path.display()
            ));
        }
        resolve(&mut config.data_dir);
        resolve(&mut config.identity);
        config.holders.iter_mut().for_each(resolve);
        config.clients.iter_mut().for_each(resolve);
        if let Some(p) = config.tls_cert.as_mut() {
            resolve(p);
        }
        if let Some(p) = config.tls_key.as_mut() {
            resolve(p);
        }
        Ok(config)
    }

    fn model_kind(&self) -> Result<ModelKind, String> {
        match self.model.kind.as_str() {
            "logistic" => Ok(ModelKind::Logistic),
            "mlp" => Ok(ModelKind::Mlp {
                hidden: self.model.hidden,
            }),
            other => Err(format!("model kind {other:?}: use \"logistic\" or \"mlp\"")),
        }
    }

    /// The setup description, the coordinator's identity and the initial
    /// model.
    ///
    /// # Errors
    /// Unreadable keys, an unknown parameter set, an invalid committee.
    pub fn plan(&self) -> Result<Plan, String> {
        let kind = self.model_kind()?;
        let model = Model::new(kind, self.model.features, self.model.classes);
        let identity = read_identity(&self.identity)?;
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("{}: {e}", self.data_dir.display()))?;
        // The CRS seed: random on the first start, then kept.
        let crs_path = self.data_dir.join("crs.hex");
        let crs = if crs_path.exists() {
            read_text(&crs_path)?.trim().to_owned()
        } else {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
            std::fs::write(&crs_path, hex(&seed))
                .map_err(|e| format!("{}: {e}", crs_path.display()))?;
            hex(&seed)
        };
        let holders = self
            .holders
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                Ok(HolderDescription {
                    point: u32::try_from(i + 1).map_err(|e| e.to_string())?,
                    key: hex(&read_bytes(&dir.join("identity.pub"))?),
                    sealing: hex(&read_bytes(&dir.join("sealing.pub"))?),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let clients = self
            .clients
            .iter()
            .map(|dir| Ok(hex(&read_bytes(&dir.join("identity.pub"))?)))
            .collect::<Result<Vec<_>, String>>()?;
        let description = SetupDescription {
            version: ringsum_net::description::DESCRIPTION_VERSION,
            parameter_set: self.parameter_set.clone(),
            layout: model
                .layout()
                .into_iter()
                .map(|(name, shape)| TensorDescription { name, shape })
                .collect(),
            epoch: 0,
            threshold: self.threshold,
            hybrid: self.hybrid,
            crs,
            min_clients: self.min_clients,
            min_samples: self.min_samples,
            coordinator: hex(identity.public().to_bytes()),
            holders,
            clients,
            rounds: self.rounds,
            application: serde_json::json!({
                "model": self.model.kind,
                "hidden": self.model.hidden,
                "features": self.model.features,
                "classes": self.model.classes,
                "seed": self.seed,
                "epochs": TRAINING.epochs,
                "learning_rate": TRAINING.learning_rate,
                "batch": TRAINING.batch,
            }),
        };
        // Fail here, with the file's name, rather than in the service.
        description
            .setup()
            .map_err(|e| format!("the federation file describes an invalid setup: {e}"))?;
        Ok(Plan {
            description,
            model: demo::initial_model(&model, self.seed),
            identity,
        })
    }

    /// The service options.
    ///
    /// # Errors
    /// Unreadable or unmakeable TLS material.
    pub fn serve_options(&self) -> Result<(ServeOptions, Option<PathBuf>), String> {
        let (tls, ca) = if self.insecure_plaintext {
            (None, None)
        } else if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            (
                Some(ringsum_net::tls::load(cert, key).map_err(|e| e.to_string())?),
                Some(cert.clone()),
            )
        } else {
            let (files, path) = ringsum_net::tls::self_signed(&self.data_dir, &self.tls_names)
                .map_err(|e| e.to_string())?;
            (Some(files), Some(path))
        };
        Ok((
            ServeOptions {
                listen: self.listen,
                data_dir: self.data_dir.clone(),
                tls,
                limits: Limits {
                    max_chunk: self.max_chunk_bytes,
                    writes_per_second: self.writes_per_second,
                    write_burst: self.writes_per_second * 4.0,
                    ..Limits::default()
                },
                timing: Timing {
                    collect_timeout: Duration::from_secs(self.collect_timeout_secs),
                    holder_timeout: Duration::from_secs(self.holder_timeout_secs),
                    linger: Duration::from_secs(self.linger_secs),
                    ..Timing::default()
                },
            },
            ca,
        ))
    }
}

/// A client's local training on its CSV, with the federation's model and
/// settings.
#[derive(Debug)]
pub struct CsvTrainer {
    model: Model,
    data: Dataset,
    training: Training,
    seed: u64,
    index: usize,
    clip: f32,
}

impl Trainer for CsvTrainer {
    fn train(&mut self, round: u64, global: &[f32]) -> Result<(Vec<f32>, u64), String> {
        let seed = demo::training_seed(self.seed, round, self.index);
        let trained = self
            .model
            .train(global, &self.data, self.training, &mut SplitMix::new(seed));
        let delta = trained
            .iter()
            .zip(global)
            .map(|(new, old)| (new - old).clamp(-self.clip, self.clip))
            .collect();
        Ok((delta, self.data.len() as u64))
    }
}

fn application_trainer(
    description: &SetupDescription,
    data: Dataset,
    index: usize,
) -> Result<CsvTrainer, String> {
    let app = &description.application;
    let number = |key: &str| {
        app.get(key)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("the federation's setup has no numeric {key:?}"))
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (features, classes, hidden) = (
        number("features")? as usize,
        number("classes")? as usize,
        number("hidden")? as usize,
    );
    let kind = match app.get("model").and_then(serde_json::Value::as_str) {
        Some("logistic") => ModelKind::Logistic,
        Some("mlp") => ModelKind::Mlp { hidden },
        other => return Err(format!("unknown model kind {other:?} in the setup")),
    };
    if data.dim() != features {
        return Err(format!(
            "the data has {} features; the federation's model takes {features}",
            data.dim()
        ));
    }
    // The federation's classes: a client may hold only some of them.
    let data = data
        .with_classes(classes)
        .map_err(|e| format!("the data does not fit the federation's model: {e}"))?;
    let params = ringsum_core::ParameterSet::builtin(&description.parameter_set)
        .map_err(|e| e.to_string())?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(CsvTrainer {
        model: Model::new(kind, features, classes),
        data,
        training: Training {
            epochs: number("epochs")? as usize,
            learning_rate: number("learning_rate")? as f32,
            batch: number("batch")? as usize,
        },
        seed: app
            .get("seed")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        index,
        clip: params.encoding().clip as f32,
    })
}

/// How to reach the coordinator, from the command line.
#[derive(Clone, Debug)]
pub struct JoinArgs {
    /// The coordinator's URL.
    pub coordinator: String,
    /// Its certificate (or its CA's), PEM.
    pub ca: Option<PathBuf>,
    /// The federation id to insist on.
    pub federation: Option<String>,
    /// Allow http://.
    pub insecure_plaintext: bool,
}

impl JoinArgs {
    fn connect(&self) -> Result<ConnectOptions, String> {
        let mut options = ConnectOptions::new(&self.coordinator);
        options.ca = self.ca.as_deref().map(read_bytes).transpose()?;
        options.federation.clone_from(&self.federation);
        options.insecure_plaintext = self.insecure_plaintext;
        Ok(options)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Runs the coordinator until the last round is done.
///
/// # Errors
/// An invalid file, a store of another federation, a bind failure.
#[allow(clippy::print_stdout)]
pub fn serve(config_path: &Path) -> Result<(), String> {
    let config = FederationConfig::load(config_path)?;
    let plan = config.plan()?;
    let (options, ca) = config.serve_options()?;
    let data_dir = config.data_dir.clone();
    runtime()?.block_on(async move {
        let running = ringsum_net::server::start(plan, options)
            .await
            .map_err(|e| e.to_string())?;
        println!("ringsum serve: federation {}", running.federation);
        println!(
            "listening on {} ({}), recovered {} events in {:.0} ms",
            running.addr,
            if ca.is_some() {
                "TLS, key exchange X25519MLKEM768 preferred"
            } else {
                "PLAINTEXT: loopback tests only"
            },
            running.replayed,
            running.recovery.as_secs_f64() * 1e3
        );
        if let Some(ca) = &ca {
            println!("participants trust {} (--ca)", ca.display());
        }
        let stopper = running.stop_handle();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stopper.stop();
            }
        });
        let summary = running.wait().await.map_err(|e| e.to_string())?;
        println!(
            "{} after round {}; {} audit lines in {}",
            if summary.finished {
                "finished"
            } else {
                "stopped"
            },
            summary.round,
            summary.audit_lines,
            data_dir.join("audit.jsonl").display()
        );
        Ok(())
    })
}

/// Runs a client: trains on `data`, encrypts, signs, submits, each round.
///
/// # Errors
/// As [`run_client`], and unreadable keys or data.
#[allow(clippy::print_stdout)]
pub fn join_client(
    args: &JoinArgs,
    identity_dir: &Path,
    data_path: &Path,
    state: Option<PathBuf>,
    insecure_seed: Option<u64>,
) -> Result<(), String> {
    let identity = read_identity(identity_dir)?;
    let data = data::load(data_path).map_err(|e| e.to_string())?;
    let connect = args.connect()?;
    let state_dir = state.unwrap_or_else(|| identity_dir.join("client-state"));
    runtime()?.block_on(async move {
        // The trainer needs the setup's model settings: fetch them first.
        let description = fetch_description(&connect, &identity).await?;
        let setup = description.setup().map_err(|e| e.to_string())?;
        let index = description
            .client_index(&setup, identity.id())
            .ok_or("this identity is not a client of the federation")?;
        let trainer = application_trainer(&description, data, index)?;
        let report = run_client(
            ClientOptions {
                connect,
                state_dir,
                insecure_seed,
            },
            identity,
            Box::new(trainer),
        )
        .await
        .map_err(|e| e.to_string())?;
        println!(
            "client {index}: submitted in rounds {:?}; final model of round {}",
            report.submitted,
            report.result.as_ref().map_or(0, |r| r.round)
        );
        Ok(())
    })
}

async fn fetch_description(
    connect: &ConnectOptions,
    identity: &SigningIdentity,
) -> Result<SetupDescription, String> {
    ringsum_net::participant::fetch_setup(connect, identity.id())
        .await
        .map(|(d, _)| d)
        .map_err(|e| e.to_string())
}

/// Runs a key holder.
///
/// # Errors
/// As [`run_holder`], and unreadable keys.
#[allow(clippy::print_stdout)]
pub fn join_holder(
    args: &JoinArgs,
    identity_dir: &Path,
    state: Option<PathBuf>,
) -> Result<(), String> {
    let identity = read_identity(identity_dir)?;
    let key_file = identity_dir.join("sealing.key");
    let sealing =
        SealingKey::read_secret(&key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let options = HolderOptions {
        connect: args.connect()?,
        state_dir: state.unwrap_or_else(|| identity_dir.join("holder-state")),
        key_file,
    };
    runtime()?.block_on(async move {
        let report = run_holder(options, identity, sealing)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "holder: {} decryption shares sent ({})",
            report.shares,
            if report.ran_ceremony {
                "key share from this run's ceremony"
            } else {
                "key share restored from the encrypted store"
            }
        );
        Ok(())
    })
}

/// Prints the round's progress.
///
/// # Errors
/// An unreachable coordinator or an identity it refuses.
#[allow(clippy::print_stdout)]
pub fn status(args: &JoinArgs, identity_dir: &Path) -> Result<(), String> {
    let identity = read_identity(identity_dir)?;
    let connect = args.connect()?;
    runtime()?.block_on(async move {
        let status = ringsum_net::participant::fetch_status(&connect, identity.id())
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "round {}/{} {}: {} of {} submissions accepted; holders still to answer {:?}; audit log {} lines, head {}",
            status.round,
            status.rounds,
            status.phase,
            status.accepted,
            status.clients,
            status.missing_holders,
            status.audit_lines,
            status.audit_head
        );
        Ok(())
    })
}

/// Writes the demo's split of the data set: `client-<i>.csv` for each
/// client and `test.csv`, standardised as the demo does.
///
/// # Errors
/// An unreadable data set or an unwritable directory.
pub fn split(options: &demo::Options, out: &Path) -> Result<Vec<PathBuf>, String> {
    let partition = demo::partition(options, &RoundPolicy::default())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, data: &Dataset| -> Result<(), String> {
        let path = out.join(name);
        let mut text = String::new();
        for (row, label) in data.features.iter().zip(&data.labels) {
            for v in row {
                text.push_str(&format!("{v},"));
            }
            text.push_str(&format!("{label}\n"));
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for (i, part) in partition.parts.iter().enumerate() {
        write(format!("client-{i}.csv"), part)?;
    }
    write("test.csv".into(), &partition.test)?;
    Ok(written)
}

/// Hex of a federation id, validated.
///
/// # Errors
/// Not 64 hex digits.
pub fn federation_arg(text: &str) -> Result<String, String> {
    match unhex(text) {
        Some(b) if b.len() == 32 => Ok(text.to_ascii_lowercase()),
        _ => Err("a federation id is 64 hex digits".into()),
    }
}
