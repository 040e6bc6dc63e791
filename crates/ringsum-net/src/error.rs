//! What can go wrong in the service, in the participants and in the
//! stores: one typed error per layer ([`NetError`] for the service and the
//! participants, [`StoreError`] for the redb stores and the value log).

use std::path::{Path, PathBuf};

use ringsum_pq::{ParticipantId, PqError};
use ringsum_protocol::ProtocolError;

/// The errors of ringsum-net.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The federation description is not valid JSON of this version.
    #[error("federation description: {0}")]
    DescriptionJson(#[source] serde_json::Error),

    /// A description of another format version.
    #[error("federation description version {found}; this build reads version {supported}")]
    DescriptionVersion {
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// A field of the description that is not hex.
    #[error("federation description: {field} is not hex")]
    NotHex {
        /// The field.
        field: String,
    },

    /// A key of the description that does not decode.
    #[error("federation description: {field}: {source}")]
    Key {
        /// Whose key.
        field: String,
        /// Why.
        source: PqError,
    },

    /// A privacy setting of the description that its JSON does not carry
    /// exactly (made by hand, not by [`crate::PrivacyDescription::new`]).
    #[error(
        "federation description: privacy {field} = {value:e} does not read back from JSON as itself; build the description with PrivacyDescription::new"
    )]
    PrivacyNotExact {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: f64,
    },

    /// A parameter set of the collective-key design, which this service no
    /// longer runs.
    #[error(
        "parameter set {id} belonged to the collective-key scheme, which was removed in December 2026 (a malicious coordinator could learn the collective key and every update); use a per-round-key set: {available} (default {default})"
    )]
    CollectiveKeySet {
        /// The set named.
        id: String,
        /// The per-round-key sets shipped.
        available: String,
        /// The default set.
        default: &'static str,
    },

    /// A participant was started without the federation id it must pin.
    #[error(
        "a participant must pin the federation id (pass --federation, as `ringsum serve` prints it)"
    )]
    NotPinned,

    /// The coordinator refused a proof of identity made for the pinned
    /// federation: it serves another one (it does not say which to
    /// someone who is not its member).
    #[error(
        "the coordinator does not serve the pinned federation {expected}: check --federation and the coordinator's URL"
    )]
    NotThisFederation {
        /// The pinned id (hex).
        expected: String,
    },

    /// The coordinator serves another federation than the pinned one.
    #[error(
        "the coordinator serves federation {found}, not the pinned {expected}: refusing to take part"
    )]
    FederationMismatch {
        /// The pinned id (hex).
        expected: String,
        /// The id of the description served (hex).
        found: String,
    },

    /// The description served hashes to another id than the one the
    /// coordinator names.
    #[error(
        "the coordinator's description hashes to federation {computed}, not the {named} it names"
    )]
    FederationMisnamed {
        /// What the description hashes to (hex).
        computed: String,
        /// What the coordinator said (hex).
        named: String,
    },

    /// This identity is not a member of the federation in this role.
    #[error("this identity ({id}) is not a {role} of federation {federation}")]
    NotAMember {
        /// The identity.
        id: ParticipantId,
        /// The role it was started in.
        role: &'static str,
        /// The federation (hex).
        federation: String,
    },

    /// A coordinator URL that cannot be used.
    #[error("coordinator URL {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A store that belongs to another federation or initial model.
    #[error("{path} belongs to another federation or initial model: use a new data directory")]
    ForeignStore {
        /// The store.
        path: PathBuf,
    },

    /// Replaying the coordinator's store did not give what it recorded.
    #[error("replaying {path}: {reason}")]
    ReplayDiverged {
        /// The store.
        path: PathBuf,
        /// What differed.
        reason: String,
    },

    /// A recorded event that does not decode.
    #[error("recorded event {seq} is malformed: {reason}")]
    MalformedEvent {
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// A model publication that is not the coordinator's, or of another
    /// round than the one announced.
    #[error("the model publication: {reason}")]
    Publication {
        /// What is wrong.
        reason: &'static str,
    },

    /// The coordinator refused this client's submission for its content:
    /// the submission and its round key were discarded.
    #[error(
        "round {round}: the coordinator refused this client's submission: {reason}. The submission and its round key were discarded; the next attempt makes a fresh one"
    )]
    SubmissionRefused {
        /// The round.
        round: u64,
        /// The coordinator's reason.
        reason: String,
    },

    /// This client cannot submit in this round (its sample count is
    /// outside the federation's policy, or its update does not fit the
    /// layout): nothing was sent.
    #[error("round {round}: this client cannot submit: {source}")]
    CannotSubmit {
        /// The round.
        round: u64,
        /// Why.
        source: ProtocolError,
    },

    /// The participant's own training failed.
    #[error("local training for round {round}: {source}")]
    Training {
        /// The round.
        round: u64,
        /// Why.
        source: crate::participant::TrainError,
    },

    /// The coordinator stopped: it cannot record what it accepts.
    #[error("the coordinator stopped: {reason}")]
    Stopped {
        /// Why.
        reason: String,
    },

    /// A model file that does not read back.
    #[error("{path}: {reason}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A safetensors file that does not read as what it should hold, or a
    /// model that cannot be written as one.
    #[error("{path}: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: crate::safetensors_file::SafetensorsError,
    },

    /// The embedded store failed or holds something unexpected.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A proof of identity that does not decode or does not belong here.
    #[error("proof of identity refused: {reason}")]
    Proof {
        /// What was wrong.
        reason: String,
    },

    /// The operating system's random generator failed.
    #[error("random generator: {0}")]
    Entropy(#[from] getrandom::Error),

    /// TLS material could not be made.
    #[error("TLS certificate: {0}")]
    Tls(#[from] rcgen::Error),

    /// The CA a participant was given is not a usable PEM certificate.
    #[error(
        "the --ca file is not a PEM certificate ({reason}): pass the coordinator's tls-cert.pem or the PEM certificate of the CA that signed it"
    )]
    CaNotCertificate {
        /// What is wrong with it.
        reason: String,
    },

    /// An https:// coordinator without a CA: this build carries no system
    /// root certificates.
    #[error(
        "an https:// coordinator needs --ca (its tls-cert.pem, or the CA that signed its certificate): this build trusts no system root certificates"
    )]
    NoCa,

    /// The coordinator's certificate or key cannot serve TLS.
    #[error(
        "the coordinator's TLS certificate or key (tls-cert.pem / tls-key.pem in the data directory, or the configuration's tls_cert / tls_key): {reason}"
    )]
    ServerCertificate {
        /// What is wrong with them.
        reason: String,
    },

    /// rustls refused the TLS 1.3 / X25519MLKEM768 configuration (a build
    /// whose crypto provider lacks them).
    #[error("rustls refused the TLS 1.3 configuration with X25519MLKEM768: {0}")]
    TlsSetup(#[source] rustls::Error),

    /// The connection to the coordinator failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),

    /// The TLS handshake with the coordinator failed in a way retrying
    /// cannot mend (its certificate was not accepted, or it refused this
    /// participant's TLS).
    #[error("the TLS handshake with the coordinator at {url} failed: {reason}; {hint}")]
    Handshake {
        /// The coordinator's URL.
        url: String,
        /// What failed.
        reason: String,
        /// What to do about it.
        hint: String,
    },

    /// The coordinator could not be reached for as long as the participant
    /// was told to try.
    #[error(
        "the coordinator at {url} cannot be reached ({reason}); gave up after {:.1} s of retries: check that it is running and that the URL's host and port are the ones it listens on",
        waited.as_secs_f64()
    )]
    Unreachable {
        /// The coordinator's URL.
        url: String,
        /// Why (connection refused, timed out, name not resolved, ...).
        reason: String,
        /// How long the participant tried.
        waited: std::time::Duration,
    },

    /// The coordinator refused a call, or a call failed on this side in a
    /// way that has no variant of its own.
    #[error("{}", status_text(.0))]
    Status(#[from] tonic::Status),

    /// A protocol message was refused.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),

    /// A signature, key or envelope was refused.
    #[error(transparent)]
    Pq(#[from] PqError),

    /// A background task panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A status in words: the coordinator's answer, or what failed on this
/// side (a status made here carries the failure as its source).
fn status_text(status: &tonic::Status) -> String {
    let mut innermost = None;
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        innermost = Some(e);
        source = e.source();
    }
    match innermost {
        Some(cause) => format!(
            "the call to the coordinator failed on this side: {} ({cause})",
            status.message()
        ),
        None => format!(
            "the coordinator answered {:?}: {}",
            status.code(),
            status.message()
        ),
    }
}

impl NetError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// ringsum-net's result.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// The errors of the stores (redb databases and the value log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (or another process holds it).
    #[error("store {path}: {source}")]
    Database {
        /// The store.
        path: PathBuf,
        /// The cause.
        source: redb::Error,
    },

    /// The value log failed.
    #[error("value log {path}: {source}")]
    ValueLog {
        /// The log.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A store whose contents are not what this build wrote.
    #[error("store {path}: {reason}")]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A holder store of another federation or holder.
    #[error("store {path} belongs to another federation or key holder: use a new state directory")]
    Foreign {
        /// The store.
        path: PathBuf,
    },

    /// A holder asked to record a second set for a round (the protocol
    /// never does; the store refuses it anyway).
    #[error("store {path}: round {round} already has another answered set")]
    SecondSet {
        /// The store.
        path: PathBuf,
        /// The round.
        round: u64,
    },
}

impl StoreError {
    /// A database error on `path`.
    pub(crate) fn db<E: Into<redb::Error>>(path: &Path) -> impl FnOnce(E) -> Self + '_ {
        move |e| Self::Database {
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}
