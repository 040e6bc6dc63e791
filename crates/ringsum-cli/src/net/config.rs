//! The federation file (`ringsum serve --config FILE`): what it holds, and
//! the federation description, service options and initial model it gives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringsum_core::DEFAULT_ROUND_KEY_SET;
use ringsum_core::privacy::PrivacySettings;
use ringsum_net::server::{Limits, Plan, ServeOptions, Timing};
use ringsum_net::{HolderDescription, PrivacyDescription, SetupDescription, TensorDescription};
use ringsum_pq::codec::hex;
use serde::Deserialize;

use super::{read_bytes, read_identity};
use crate::demo::{self, TRAINING};
use crate::error::{CliError, Result};
use crate::model::{Model, ModelKind};

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

/// The `[privacy]` section of a federation file: differentially private
/// training for every client ([`ringsum_core::privacy`]). Each client
/// takes one gradient step per round at the published model (FedSGD),
/// every record's gradient clipped, the sum quantized and noised before
/// encryption.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Target epsilon over all rounds.
    pub epsilon: f64,
    /// Target delta over all rounds, in (0, 1).
    pub delta: f64,
    /// L2 norm every record's gradient is clipped to.
    #[serde(default = "default_privacy_clip")]
    pub clip: f64,
    /// The gradient step's rate.
    #[serde(default = "default_privacy_learning_rate")]
    pub learning_rate: f64,
    /// The planned (public) records per client: the step divides the
    /// noised gradient sum by this times the set's size.
    pub records_per_client: u64,
    /// The most records a client may hold: a client with more refuses to
    /// start.
    pub max_records: u64,
    /// The fewest clients whose noise every opened sum holds (default:
    /// `min_clients`; at most `min_clients`).
    pub noise_clients: Option<u64>,
}

const fn default_privacy_clip() -> f64 {
    1.0
}
const fn default_privacy_learning_rate() -> f64 {
    2.0
}

/// A federation file (`ringsum serve --config FILE`). Paths are relative
/// to the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Where to listen, e.g. "0.0.0.0:7443".
    pub listen: SocketAddr,
    /// The coordinator's state (store, audit log, certificate, models).
    pub data_dir: PathBuf,
    /// The coordinator's identity directory (`identity.key`).
    pub identity: PathBuf,
    /// A shipped per-round-key parameter set (`rk128-*`).
    #[serde(default = "default_set")]
    pub parameter_set: String,
    /// Training rounds.
    pub rounds: u64,
    /// Holders whose answers open a sum (2t > n).
    pub threshold: u32,
    /// Hybrid keys (ML-DSA-65 + Ed25519, ML-KEM-1024 + X25519).
    #[serde(default)]
    pub hybrid: bool,
    /// Seed of the initial model and of the clients' local training.
    #[serde(default)]
    pub seed: u64,
    /// Fewest clients whose sum is opened.
    #[serde(default = "default_min_clients")]
    pub min_clients: usize,
    /// Fewest samples per client.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// Most samples per client (default: the parameter set's).
    pub max_weight: Option<u64>,
    /// The model.
    pub model: ModelConfig,
    /// Differential privacy (absent: none).
    pub privacy: Option<PrivacyConfig>,
    /// What the service lets callers make it hold and do (absent: the
    /// defaults).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Key holders' identity directories (`identity.pub`, `sealing.pub`),
    /// in Shamir-point order: the first is holder 1.
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
    /// Seconds a round collects before its set is closed with fewer than
    /// every client (but at least `min_clients`).
    #[serde(default = "default_collect")]
    pub collect_timeout_secs: u64,
    /// Seconds the holders have to answer before a round finishes with the
    /// answers in (at least the threshold).
    #[serde(default = "default_holder_timeout")]
    pub holder_timeout_secs: u64,
    /// Seconds a round may stay short of `min_clients` submissions or of
    /// the threshold's answers before it is abandoned (and recorded as
    /// failed) and the next round opens.
    #[serde(default = "default_round_timeout")]
    pub round_timeout_secs: u64,
    /// Seconds between the log lines saying what a waiting round waits for.
    #[serde(default = "default_report")]
    pub report_secs: u64,
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

/// The `[limits]` section of a federation file: the service's caps on
/// connections, bytes held and calls ([`Limits`]). The defaults keep a
/// coordinator of 100 clients under 300 MB (BENCHMARKS.md).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections at once.
    pub max_connections: usize,
    /// HTTP/2 flow-control window of one stream, in bytes.
    pub stream_window_bytes: u32,
    /// HTTP/2 flow-control window of one connection, in bytes.
    pub connection_window_bytes: u32,
    /// Bytes of authenticated streamed messages held at once.
    pub max_inflight_bytes: usize,
    /// Streamed messages one identity may send at once.
    pub max_streams_per_identity: usize,
    /// Burst of messages per identity (default: 4 × `writes_per_second`).
    pub write_burst: Option<f64>,
    /// Queries per second per identity.
    pub reads_per_second: f64,
    /// Burst of queries per identity.
    pub read_burst: f64,
    /// Calls per second from one address, before any proof is checked.
    pub peer_calls_per_second: f64,
    /// Burst of calls from one address.
    pub peer_burst: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = Limits::default();
        Self {
            max_connections: d.max_connections,
            stream_window_bytes: d.stream_window,
            connection_window_bytes: d.connection_window,
            max_inflight_bytes: d.max_inflight_bytes,
            max_streams_per_identity: d.max_streams_per_identity,
            write_burst: None,
            reads_per_second: d.reads_per_second,
            read_burst: d.read_burst,
            peer_calls_per_second: d.peer_calls_per_second,
            peer_burst: d.peer_burst,
        }
    }
}

impl LimitsConfig {
    /// Checks every setting: `Err((field, requirement))` for the first
    /// that is out of range.
    fn check(&self) -> std::result::Result<(), (&'static str, &'static str)> {
        let rate = |v: f64| v.is_finite() && v > 0.0;
        let burst = |v: f64| v.is_finite() && (1.0..=1e9).contains(&v);
        if !(1..=100_000).contains(&self.max_connections) {
            return Err(("limits.max_connections", "must be between 1 and 100000"));
        }
        for (field, window) in [
            ("limits.stream_window_bytes", self.stream_window_bytes),
            (
                "limits.connection_window_bytes",
                self.connection_window_bytes,
            ),
        ] {
            // HTTP/2 allows 65535 to 2^31 - 1.
            if !(65_535..=(1 << 31) - 1).contains(&window) {
                return Err((field, "must be between 65535 and 2147483647 (HTTP/2)"));
            }
        }
        if self.max_inflight_bytes < 1 << 20 {
            return Err(("limits.max_inflight_bytes", "must be at least 1 MiB"));
        }
        if self.max_streams_per_identity == 0 {
            return Err(("limits.max_streams_per_identity", "must be at least 1"));
        }
        if self.write_burst.is_some_and(|b| !burst(b)) {
            return Err(("limits.write_burst", "must be between 1 and 1e9"));
        }
        if !rate(self.reads_per_second) || !rate(self.peer_calls_per_second) {
            return Err((
                "limits.reads_per_second / peer_calls_per_second",
                "must be positive numbers",
            ));
        }
        if !burst(self.read_burst) || !burst(self.peer_burst) {
            return Err((
                "limits.read_burst / peer_burst",
                "must be between 1 and 1e9",
            ));
        }
        Ok(())
    }
}

fn default_set() -> String {
    DEFAULT_ROUND_KEY_SET.to_owned()
}
const fn default_min_clients() -> usize {
    3
}
const fn default_min_samples() -> u64 {
    demo::MIN_SAMPLES
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
const fn default_round_timeout() -> u64 {
    3600
}
const fn default_report() -> u64 {
    30
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

impl FederationConfig {
    /// Reads a federation file; relative paths are resolved against its
    /// directory.
    ///
    /// # Errors
    /// An unreadable or invalid file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
        let mut config: Self = toml::from_str(&text).map_err(|source| CliError::Toml {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let setting = |field, requirement| CliError::Setting {
            path: path.to_path_buf(),
            field,
            requirement,
        };
        if !config.writes_per_second.is_finite() || config.writes_per_second <= 0.0 {
            return Err(setting("writes_per_second", "must be a positive number"));
        }
        if !(64 << 10..=64 << 20).contains(&config.max_chunk_bytes) {
            return Err(setting(
                "max_chunk_bytes",
                "must be between 64 KiB and 64 MiB",
            ));
        }
        if config.report_secs == 0 {
            return Err(setting("report_secs", "must be at least 1"));
        }
        config
            .limits
            .check()
            .map_err(|(field, requirement)| setting(field, requirement))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
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

    fn model_kind(&self) -> Result<ModelKind> {
        match self.model.kind.as_str() {
            "logistic" => Ok(ModelKind::Logistic),
            "mlp" => Ok(ModelKind::Mlp {
                hidden: self.model.hidden,
            }),
            other => Err(CliError::ModelKind(other.to_owned())),
        }
    }

    /// The federation description the file gives (checked: a per-round-key
    /// parameter set, 2t > n, the policy), and the model.
    ///
    /// # Errors
    /// Unreadable keys; [`CliError::Federation`] for what the service
    /// refuses.
    pub fn description(&self, path: &Path) -> Result<(SetupDescription, Model)> {
        let model = Model::new(self.model_kind()?, self.model.features, self.model.classes);
        let identity = read_identity(&self.identity)?;
        let refused = |source| CliError::Federation {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let params =
            ringsum_net::description::round_key_set(&self.parameter_set).map_err(refused)?;
        let holders = self
            .holders
            .iter()
            .zip(1u32..)
            .map(|(dir, point)| {
                Ok(HolderDescription {
                    point,
                    key: hex(&read_bytes(&dir.join("identity.pub"))?),
                    sealing: hex(&read_bytes(&dir.join("sealing.pub"))?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let clients = self
            .clients
            .iter()
            .map(|dir| Ok(hex(&read_bytes(&dir.join("identity.pub"))?)))
            .collect::<Result<Vec<_>>>()?;
        let description = SetupDescription {
            version: ringsum_net::description::DESCRIPTION_VERSION,
            parameter_set: self.parameter_set.clone(),
            layout: model
                .layout()
                .into_iter()
                .map(|(name, shape)| TensorDescription { name, shape })
                .collect(),
            threshold: self.threshold,
            hybrid: self.hybrid,
            min_clients: self.min_clients,
            min_samples: self.min_samples,
            max_weight: self.max_weight.unwrap_or(params.encoding().max_weight),
            rounds: self.rounds,
            coordinator: hex(identity.public().to_bytes()),
            holders,
            clients,
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
            privacy: self.privacy.as_ref().map(|p| {
                PrivacyDescription::new(&PrivacySettings {
                    epsilon: p.epsilon,
                    delta: p.delta,
                    clip: p.clip,
                    learning_rate: p.learning_rate,
                    records_per_client: p.records_per_client,
                    max_records: p.max_records,
                    noise_clients: p.noise_clients.unwrap_or(self.min_clients as u64),
                })
            }),
        };
        // Fail here, naming the file, rather than in the service (the
        // privacy plan's refusals name the setting).
        description.federation().map_err(refused)?;
        Ok((description, model))
    }

    /// The description, the coordinator's identity and the initial model.
    ///
    /// # Errors
    /// As [`Self::description`].
    pub fn plan(&self, path: &Path) -> Result<Plan> {
        let (description, model) = self.description(path)?;
        Ok(Plan {
            description,
            model: demo::initial_model(&model, self.seed),
            identity: read_identity(&self.identity)?,
        })
    }

    /// The service options and the certificate participants trust.
    ///
    /// # Errors
    /// Unreadable or unmakeable TLS material.
    pub fn serve_options(&self) -> Result<(ServeOptions, Option<PathBuf>)> {
        let (tls, ca) = if self.insecure_plaintext {
            (None, None)
        } else if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            (Some(ringsum_net::tls::load(cert, key)?), Some(cert.clone()))
        } else {
            ringsum_net::fs::ensure_dir(&self.data_dir)?;
            let (files, path) = ringsum_net::tls::self_signed(&self.data_dir, &self.tls_names)?;
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
                    write_burst: self
                        .limits
                        .write_burst
                        .unwrap_or(self.writes_per_second * 4.0),
                    reads_per_second: self.limits.reads_per_second,
                    read_burst: self.limits.read_burst,
                    peer_calls_per_second: self.limits.peer_calls_per_second,
                    peer_burst: self.limits.peer_burst,
                    max_connections: self.limits.max_connections,
                    stream_window: self.limits.stream_window_bytes,
                    connection_window: self.limits.connection_window_bytes,
                    max_inflight_bytes: self.limits.max_inflight_bytes,
                    max_streams_per_identity: self.limits.max_streams_per_identity,
                },
                timing: Timing {
                    collect_timeout: Duration::from_secs(self.collect_timeout_secs),
                    holder_timeout: Duration::from_secs(self.holder_timeout_secs),
                    round_timeout: Duration::from_secs(self.round_timeout_secs),
                    report_every: Duration::from_secs(self.report_secs),
                    linger: Duration::from_secs(self.linger_secs),
                    ..Timing::default()
                },
            },
            ca,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "listen = \"127.0.0.1:0\"\ndata_dir = \"state\"\nidentity = \"coordinator\"\nrounds = 1\nthreshold = 1\n\
                        holders = []\nclients = []\n[model]\nkind = \"logistic\"\nfeatures = 4\nclasses = 2\n";

    fn load(extra: &str) -> Result<FederationConfig> {
        let dir = tempfile::tempdir().map_err(CliError::io(Path::new("tempdir")))?;
        let path = dir.path().join("federation.toml");
        std::fs::write(&path, format!("{BASE}{extra}")).map_err(CliError::io(&path))?;
        FederationConfig::load(&path)
    }

    #[test]
    fn the_limits_table_reaches_the_service_and_bad_values_are_named() {
        let defaults = load("").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            defaults.limits.max_connections,
            Limits::default().max_connections
        );
        let set =
            load("[limits]\nmax_connections = 7\nmax_inflight_bytes = 2097152\npeer_burst = 9.0\n")
                .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(set.limits.max_connections, 7);
        assert_eq!(set.limits.max_inflight_bytes, 2 << 20);
        assert!((set.limits.peer_burst - 9.0).abs() < f64::EPSILON);
        for (bad, field) in [
            ("max_connections = 0", "limits.max_connections"),
            ("stream_window_bytes = 10", "limits.stream_window_bytes"),
            ("max_inflight_bytes = 10", "limits.max_inflight_bytes"),
            (
                "max_streams_per_identity = 0",
                "limits.max_streams_per_identity",
            ),
            ("read_burst = 0.5", "limits.read_burst / peer_burst"),
            (
                "peer_calls_per_second = -1.0",
                "limits.reads_per_second / peer_calls_per_second",
            ),
        ] {
            match load(&format!("[limits]\n{bad}\n")) {
                Err(CliError::Setting { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => unreachable!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            load("[limits]\nmax_conections = 5\n"),
            Err(CliError::Toml { .. })
        ));
    }
}
