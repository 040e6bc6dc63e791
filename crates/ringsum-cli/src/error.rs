//! The one error type of the command line: what every command refuses or
//! fails on, each variant with the fields that say what was wrong. `main`
//! prints its `Display` as the single line `error: <message>`, so every
//! message is complete on its own (a variant that wraps a lower error
//! includes that error's message).

use std::path::{Path, PathBuf};

use ringsum_core::{CoreError, ParamSetId, ParameterSet};
use ringsum_math::MathError;
use ringsum_net::NetError;
use ringsum_pq::{PqError, SignatureAlgorithm};
use ringsum_protocol::{ProtocolError, SetupError};
use ringsum_threshold::ThresholdError;

use crate::data::DataError;

/// A result with a [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Everything a `ringsum` command refuses or fails on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Differential privacy refused its settings or a record.
    #[error(transparent)]
    Privacy(#[from] ringsum_core::privacy::PrivacyError),
    // Options of the command line.
    /// A count option below its least value.
    #[error("{option} must be at least {min}")]
    OptionTooSmall {
        /// The option, e.g. `--clients`.
        option: &'static str,
        /// Its least value.
        min: u64,
    },
    /// An option outside its range.
    #[error("{option} must be between {min} and {max}")]
    OptionOutOfRange {
        /// The option, e.g. `--rounds`.
        option: &'static str,
        /// Its least value.
        min: u64,
        /// Its greatest value.
        max: u64,
    },
    /// A threshold of zero or above the number of holders.
    #[error("--threshold must be between 1 and --holders ({holders}), got {threshold}")]
    ThresholdOutOfRange {
        /// `--threshold`.
        threshold: u32,
        /// `--holders`.
        holders: u64,
    },
    /// More holders dropped than the threshold leaves room for.
    #[error(
        "dropping {dropped} of {holders} holders leaves fewer than the threshold {threshold}: no round could be decrypted"
    )]
    TooFewHoldersLeft {
        /// `--drop-holders`.
        dropped: usize,
        /// `--holders`.
        holders: usize,
        /// `--threshold`.
        threshold: u32,
    },
    /// More clients dropped than a round can lose.
    #[error(
        "dropping {dropped} of {clients} clients leaves fewer than the {min_clients} submissions a round needs"
    )]
    TooFewClientsLeft {
        /// `--drop-clients`.
        dropped: usize,
        /// `--clients`.
        clients: usize,
        /// The submissions a round needs.
        min_clients: usize,
    },
    /// More clients than the parameter set is sized for.
    #[error(
        "--clients {clients} exceeds the {max_clients} clients parameter set {parameter_set} is sized for"
    )]
    TooManyClients {
        /// `--clients`.
        clients: usize,
        /// The parameter set's `max_clients`.
        max_clients: u64,
        /// The parameter set.
        parameter_set: ParamSetId,
    },
    /// A benchmark too large for this machine's memory.
    #[error(
        "{clients} clients x {params_count} parameters need about {:.1} GB; this machine has {:.1} GB available",
        gigabytes(*needed_bytes),
        gigabytes(u128::from(*available_bytes))
    )]
    InsufficientMemory {
        /// `--clients`.
        clients: usize,
        /// `--params-count`.
        params_count: usize,
        /// The bytes the run would hold.
        needed_bytes: u128,
        /// The bytes the machine has available.
        available_bytes: u64,
    },
    /// A signature algorithm this build does not know.
    #[error("unknown algorithm {name:?}; use one of {}", signature_algorithms())]
    UnknownAlgorithm {
        /// The name given.
        name: String,
    },
    /// A client started without its data.
    #[error("a client needs --data (its CSV) or --update (an update as a safetensors file)")]
    MissingData,
    /// A client started with both its data and an update.
    #[error("a client takes --data (to train) or --update (to submit that update), not both")]
    DataAndUpdate,
    /// `--update` without the sample count it declares.
    #[error("--update needs --samples: the number of samples the update was trained on")]
    UpdateWithoutSamples,
    /// `--samples` with `--data` (which counts the CSV's rows).
    #[error("--samples goes with --update; with --data the sample count is the CSV's rows")]
    SamplesWithoutUpdate,
    /// `--update` or `--samples` for a key holder.
    #[error("{option} is for clients: a key holder submits no update")]
    HolderUpdate {
        /// The option given.
        option: &'static str,
    },
    /// A sample count outside the federation's policy.
    #[error("--samples {samples} is outside the federation's policy: between {min} and {max}")]
    Samples {
        /// `--samples`.
        samples: u64,
        /// The policy's `min_samples`.
        min: u64,
        /// The policy's `max_weight`.
        max: u64,
    },
    /// An update file that does not fit the federation's model.
    #[error("{}: {source}", path.display())]
    Update {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<ringsum_net::safetensors_file::SafetensorsError>,
    },
    /// A client that was to submit an update, but the federation finished
    /// first.
    #[error("the federation finished before the update of {} could be submitted", path.display())]
    UpdateNotSubmitted {
        /// The update file.
        path: PathBuf,
    },
    /// `--update` in a federation with differential privacy.
    #[error(
        "{}: this federation trains with differential privacy, so a client cannot submit an update computed elsewhere (each record's gradient must be clipped before it is summed, which a finished update does not show); join with --data instead",
        path.display()
    )]
    UpdateWithPrivacy {
        /// The update file.
        path: PathBuf,
    },
    /// A client whose data has more records than a differentially private
    /// federation lets it add in a round.
    #[error(
        "the data has {records} records; this federation's privacy plan lets a client add at most {max} per round (max_records of its [privacy] section): split the data, or ask the coordinator for a larger max_records"
    )]
    TooManyRecords {
        /// The data's records.
        records: usize,
        /// The plan's `max_records`.
        max: u64,
    },
    /// A `--federation` that is neither an id nor a file holding one.
    #[error("--federation {0:?} is neither a federation id (64 hex digits) nor a file holding one")]
    FederationArg(String),

    // Parameter sets.
    /// `--params` names no shipped set and no file.
    #[error(
        "unknown parameter set {name:?}; the shipped sets are {} (or give a TOML file)",
        ParameterSet::builtin_ids().join(", ")
    )]
    UnknownParameterSet {
        /// What `--params` said.
        name: String,
    },
    /// A parameter-set file that does not load or validate (the lower
    /// error names the file and the field).
    #[error("parameter set refused: {source}")]
    ParameterFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<CoreError>,
    },
    /// A parameter set of the collective-key scheme, removed in December
    /// 2026.
    #[error(
        "parameter set {name} belonged to the collective-key scheme, which was removed in December 2026; use one of the rk128-n* sets (default {})",
        ringsum_core::DEFAULT_PARAMETER_SET
    )]
    RemovedParameterSet {
        /// The set named.
        name: String,
    },

    // Data sets.
    /// A data set that does not load or cannot be split.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A client's data whose labels do not fit the federation's classes.
    #[error("the data does not fit the federation's model: {0}")]
    Classes(#[source] DataError),
    /// A client's data with another number of features than the model.
    #[error("the data has {found} features; the federation's model takes {expected}")]
    Features {
        /// The data's.
        found: usize,
        /// The model's.
        expected: usize,
    },

    // Files.
    /// A file that cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A JSON file that cannot be written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the encoder said.
        source: serde_json::Error,
    },
    /// A key file that cannot be read.
    #[error("{}", key_message(path, source))]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<PqError>,
    },
    /// `join --role holder` with an identity directory that has no sealing
    /// key: a client's.
    #[error(
        "{} is not a key holder's identity: it has no sealing.key (a client's identity has only identity.key; `ringsum keygen --holder` writes both). Join with --role client, or pass the holder's identity directory",
        dir.display()
    )]
    NotAHolder {
        /// The identity directory given.
        dir: PathBuf,
    },
    /// The coordinator's TLS certificate was not accepted with the `--ca`
    /// file given, or that file is not a certificate.
    #[error("{source} (--ca {})", ca.display())]
    CoordinatorCa {
        /// The `--ca` file.
        ca: PathBuf,
        /// What failed.
        source: Box<NetError>,
    },
    /// An audit log that does not verify.
    #[error("{}: {source}", path.display())]
    AuditLog {
        /// The log.
        path: PathBuf,
        /// The first bad line and what is wrong with it.
        source: Box<ProtocolError>,
    },

    // The federation file of `ringsum serve`.
    /// A federation file that is not valid TOML of its format.
    #[error("{}: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: Box<toml::de::Error>,
    },
    /// A setting of the federation file out of its range.
    #[error("{}: {field} {requirement}", path.display())]
    Setting {
        /// The file.
        path: PathBuf,
        /// The setting.
        field: &'static str,
        /// What it must be.
        requirement: &'static str,
    },
    /// A model kind this build does not know.
    #[error("model kind {0:?}: use \"logistic\" or \"mlp\"")]
    ModelKind(String),
    /// A federation file describing a federation that cannot run.
    #[error("the federation file {} describes a federation that cannot run: {source}", path.display())]
    Federation {
        /// The file.
        path: PathBuf,
        /// What the service refuses.
        source: Box<NetError>,
    },
    /// The federation description lacks a model setting of the CLI.
    #[error("the federation's description has no {0} for the model")]
    Application(&'static str),

    // In-process runs (demo, bench): checks of the run's own bookkeeping.
    /// The demo's audit log, written by its own coordinator, does not
    /// verify.
    #[error("the demo's own audit log does not verify: {0}")]
    OwnAuditLog(#[source] Box<ProtocolError>),
    /// A key holder the run's federation does not have.
    #[error("no key holder at Shamir point {point} in the federation")]
    MissingHolder {
        /// The holder's Shamir point.
        point: u32,
    },
    /// A client submission without a share for one of the holders.
    #[error("a client sent no share to key holder {point}")]
    MissingShare {
        /// The holder's Shamir point.
        point: u32,
    },
    /// A decoded aggregate that does not count every client.
    #[error("the decoded aggregate holds {found} of the {expected} clients")]
    IncompleteAggregate {
        /// The clients that submitted.
        expected: u64,
        /// The clients it holds (0 when nothing was decoded).
        found: u64,
    },
    /// A progress-bar template that indicatif refuses.
    #[error("the progress bar template {template:?}: {source}")]
    ProgressTemplate {
        /// The template.
        template: &'static str,
        /// What indicatif said.
        source: indicatif::style::TemplateError,
    },
    /// The async runtime could not start.
    #[error("the async runtime: {0}")]
    Runtime(#[source] std::io::Error),

    // The lower layers.
    /// A federation description that cannot be set up (e.g. a threshold
    /// that is not a majority).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The round protocol refused a step.
    #[error(transparent)]
    Protocol(Box<ProtocolError>),
    /// Signing, sealing or a key file.
    #[error(transparent)]
    Pq(Box<PqError>),
    /// Encoding, encryption, aggregation or a parameter set.
    #[error(transparent)]
    Core(Box<CoreError>),
    /// Shamir sharing or combining.
    #[error(transparent)]
    Threshold(Box<ThresholdError>),
    /// The arithmetic layer (e.g. the operating system's randomness).
    #[error(transparent)]
    Math(#[from] MathError),
    /// The service or a participant failed.
    #[error(transparent)]
    Net(Box<NetError>),
}

/// `From` for the lower layers' errors, which are boxed: several are near
/// 100 bytes, and every `Result` of the command line would carry that.
macro_rules! from_boxed {
    ($($error:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$error> for CliError {
                fn from(e: $error) -> Self {
                    Self::$variant(Box::new(e))
                }
            }
        )*
    };
}

from_boxed! {
    ProtocolError => Protocol,
    PqError => Pq,
    CoreError => Core,
    ThresholdError => Threshold,
    NetError => Net,
}

impl CliError {
    /// A [`CliError::Io`] on `path`, for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A [`CliError::Key`] on `path`, for `map_err`.
    pub fn key(path: &Path) -> impl FnOnce(PqError) -> Self + '_ {
        move |source| Self::Key {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    }
}

/// A key file's error, naming the file once: the key layer's I/O and
/// permission errors name it already.
fn key_message(path: &Path, source: &PqError) -> String {
    match source {
        PqError::Io { .. } | PqError::InsecurePermissions { .. } => source.to_string(),
        _ => format!("{}: {source}", path.display()),
    }
}

fn gigabytes(bytes: u128) -> f64 {
    bytes as f64 / 1e9
}

fn signature_algorithms() -> String {
    SignatureAlgorithm::ALL
        .map(SignatureAlgorithm::name)
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_named_once() {
        let path = Path::new("client-0/sealing.key");
        let missing = CliError::key(path)(PqError::Io {
            path: path.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
        .to_string();
        assert_eq!(
            missing.matches("client-0/sealing.key").count(),
            1,
            "{missing}"
        );
        // An error of the key layer that does not name the file gets it.
        let bad = CliError::key(path)(PqError::BadSignature).to_string();
        assert_eq!(bad, "client-0/sealing.key: signature does not verify");
    }
}
