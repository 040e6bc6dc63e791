//! The errors of the protocol layer.

use ringsum_core::CoreError;
use ringsum_math::MathError;
use ringsum_pq::PqError;
use ringsum_threshold::{HolderId, ThresholdError};
use ringsum_wire::WireError;
use thiserror::Error;

/// A result with a [`ProtocolError`].
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;

/// Everything the protocol refuses, each with what was wrong. A refused
/// message or step leaves everything accepted before it intact.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A signature, sender, round, replay or sealing problem.
    #[error(transparent)]
    Pq(#[from] PqError),

    /// An encryption, encoding or aggregation problem.
    #[error(transparent)]
    Core(#[from] CoreError),

    /// A key-ceremony or decryption problem.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),

    /// A polynomial or ciphertext that does not decode.
    #[error(transparent)]
    Wire(#[from] WireError),

    /// An arithmetic-layer problem.
    #[error(transparent)]
    Math(#[from] MathError),

    /// A step taken out of order.
    #[error("{0}")]
    WrongPhase(&'static str),

    /// A submission below the federation's minimum sample count.
    #[error("a submission declares {samples} samples; the federation requires at least {min}")]
    TooFewSamples {
        /// The declared count.
        samples: u64,
        /// The minimum.
        min: u64,
    },

    /// Fewer submissions than the policy requires to decrypt a round.
    #[error(
        "only {accepted} clients submitted; the federation requires at least {min} to decrypt (the submissions are kept)"
    )]
    NotEnoughClients {
        /// Submissions accepted.
        accepted: usize,
        /// The minimum.
        min: usize,
    },

    /// Fewer available key holders than the threshold.
    #[error(
        "only {available} key holders are available, the threshold is {threshold}; the round's submissions are kept"
    )]
    NotEnoughHolders {
        /// Holders still available.
        available: usize,
        /// t.
        threshold: u32,
    },

    /// The decrypted weight sum disagrees with the declared sample counts.
    #[error(
        "the decrypted weights sum to {found} units, the declared {declared} samples do not give that: a client's encrypted weight disagrees with its declared count"
    )]
    WeightMismatch {
        /// The declared samples, summed.
        declared: u64,
        /// The decrypted weight sum (units of 2^-f).
        found: i64,
    },

    /// A message from a holder that is not in the current active set.
    #[error("holder {0:?} is not in the active set of this request")]
    NotInActiveSet(HolderId),

    /// A decryption share that answers another request.
    #[error("decryption share of holder {0:?} answers another request")]
    StaleShare(HolderId),

    /// A participant named in the setup that the registry does not know.
    #[error("{0}")]
    Setup(String),

    /// The audit log: a broken chain, signature or line, named by number.
    #[error("audit log line {line}: {reason}")]
    Audit {
        /// The 1-based line number.
        line: usize,
        /// What is wrong there.
        reason: String,
    },

    /// A file of the audit log could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}
