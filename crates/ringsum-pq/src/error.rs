//! The errors of the authenticity layer.

use thiserror::Error;

use crate::envelope::MessageKind;
use crate::identity::ParticipantId;

/// A result with a [`PqError`].
pub type Result<T, E = PqError> = std::result::Result<T, E>;

/// Everything the authenticity layer refuses, each with what was wrong.
///
/// A receiver that returns one of these has not changed its state.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PqError {
    /// An algorithm identifier this version does not know.
    #[error("unknown {what} algorithm identifier 0x{id:04x}")]
    UnknownAlgorithm {
        /// "signature" or "key encapsulation".
        what: &'static str,
        /// The identifier found.
        id: u16,
    },

    /// A protocol version this implementation does not speak.
    #[error("protocol version {found} is not supported (this build speaks {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
        /// The version this build speaks.
        supported: u16,
    },

    /// A message kind this version does not know.
    #[error("unknown message kind {0}")]
    UnknownKind(u16),

    /// Bytes that do not parse: what was expected where.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The structure being decoded.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },

    /// A length field above the limit the caller allows.
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The limit.
        limit: u64,
    },

    /// A public key that fails the standard's own validation.
    #[error("invalid {0} public key")]
    InvalidPublicKey(&'static str),

    /// A signature that does not verify (either half, in hybrid mode).
    #[error("signature does not verify")]
    BadSignature,

    /// The sender's id is not in the registry.
    #[error("unknown sender {0}")]
    UnknownSender(ParticipantId),

    /// The sender's key is on the revocation list.
    #[error("sender {0} is revoked")]
    RevokedSender(ParticipantId),

    /// The sender's key was rotated; its successor must sign now.
    #[error("sender {sender} was rotated to {successor}")]
    RotatedSender {
        /// The retired id.
        sender: ParticipantId,
        /// The id that replaced it.
        successor: ParticipantId,
    },

    /// The envelope names an algorithm other than the sender's registered one.
    #[error("sender is registered for {registered}, the envelope claims {claimed}")]
    AlgorithmMismatch {
        /// The registered algorithm.
        registered: &'static str,
        /// The algorithm named in the envelope.
        claimed: &'static str,
    },

    /// The sender's role may not send this kind of message.
    #[error("a {role} may not send {kind:?} messages")]
    Unauthorized {
        /// The sender's role.
        role: &'static str,
        /// The kind it tried to send.
        kind: MessageKind,
    },

    /// A message for another federation.
    #[error("message belongs to another federation")]
    WrongFederation,

    /// A message for another round.
    #[error("message is for round {found}, this inbox is for round {expected}")]
    WrongRound {
        /// The round this receiver accepts.
        expected: u64,
        /// The round in the message.
        found: u64,
    },

    /// A message of another kind than the receiver asked for.
    #[error("expected a {expected:?} message, got {found:?}")]
    WrongKind {
        /// The kind the receiver accepts here.
        expected: MessageKind,
        /// The kind in the message.
        found: MessageKind,
    },

    /// A message for another parameter set.
    #[error("message is for parameter set {found:?}, expected {expected:?}")]
    WrongParameterSet {
        /// The parameter set of this round.
        expected: String,
        /// The one in the message.
        found: String,
    },

    /// A message addressed to someone else.
    #[error("message is addressed to {found}, not to this receiver")]
    WrongRecipient {
        /// The recipient named in the message.
        found: ParticipantId,
    },

    /// A sealed box whose epoch is not the one expected.
    #[error("sealed box is for epoch {found}, expected {expected}")]
    WrongEpoch {
        /// The epoch this holder expects.
        expected: u64,
        /// The epoch in the box.
        found: u64,
    },

    /// The exact message was accepted before.
    #[error("replay of an accepted message from {0}")]
    Replay(ParticipantId),

    /// The sender already sent a different message of this kind in this round.
    #[error("{sender} already sent a {kind:?} message to this recipient in this round")]
    DuplicateSubmission {
        /// The sender.
        sender: ParticipantId,
        /// The kind.
        kind: MessageKind,
    },

    /// A sealed box that does not open: tampered, or sealed to another key.
    #[error("sealed box does not open (tampered, or sealed to another key)")]
    SealOpenFailed,

    /// A sealed box whose header disagrees with the envelope that carries it.
    #[error("sealed box {0} does not match its envelope")]
    SealMismatch(&'static str),

    /// A key of another algorithm than the federation's policy requires.
    #[error("the federation requires {required}, this key is {found}")]
    PolicyViolation {
        /// The algorithm the federation requires.
        required: &'static str,
        /// The key's algorithm.
        found: &'static str,
    },

    /// A secret share addressed to everyone instead of to one holder.
    #[error("a secret share must be addressed to one key holder")]
    UnaddressedShare,

    /// The recipient of a sealed share is not an active key holder with a
    /// registered sealing key.
    #[error("{0} is not an active key holder with a sealing key")]
    NotASealingRecipient(ParticipantId),

    /// A [`crate::Pending`] handed to another inbox than the one that checked it.
    #[error("this message was checked by another inbox")]
    ForeignPending,

    /// A participant id registered twice.
    #[error("participant {0} is already registered")]
    AlreadyRegistered(ParticipantId),

    /// A key rotation whose proof of possession by the new key fails.
    #[error("key rotation is not signed by the new key")]
    BadRotationProof,

    /// A secret-key file readable by other users.
    #[error("key file {path} has mode {mode:o}; it must not be readable by group or others")]
    InsecurePermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },

    /// The operating system's random source failed.
    #[error("operating system randomness failed: {0}")]
    Entropy(#[from] getrandom::Error),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl PqError {
    /// A [`PqError::Malformed`] for `what`, with `detail`.
    pub fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            detail: detail.into(),
        }
    }
}
