//! What can go wrong in the service, in the participants and in the stores.

use ringsum_pq::PqError;
use ringsum_protocol::ProtocolError;

/// The errors of ringsum-net.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A configuration or setup description that cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// The embedded store failed or holds something unexpected.
    #[error("store {path}: {reason}")]
    Store {
        /// The store's file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// TLS material could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The connection to the coordinator failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The coordinator refused a call.
    #[error("the coordinator answered {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// A protocol message was refused.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A signature, key or envelope was refused.
    #[error(transparent)]
    Pq(#[from] PqError),
    /// The participant's own training failed.
    #[error("local training: {0}")]
    Training(String),
}

/// ringsum-net's result.
pub type Result<T> = std::result::Result<T, NetError>;

pub(crate) fn store_error(path: &std::path::Path, e: impl std::fmt::Display) -> NetError {
    NetError::Store {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}
