//! The errors of the threshold layer.

use ringsum_core::CoreError;
use ringsum_math::MathError;
use thiserror::Error;

use crate::committee::HolderId;

/// A result with a [`ThresholdError`].
pub type Result<T, E = ThresholdError> = std::result::Result<T, E>;

/// Everything the threshold layer refuses, each with what was wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// A committee with no holders.
    #[error("a committee needs at least one key holder")]
    EmptyCommittee,

    /// t is 0 or larger than n.
    #[error("threshold {threshold} is outside 1..={holders} for {holders} holders")]
    ThresholdOutOfRange {
        /// The threshold t.
        threshold: u32,
        /// The number of holders n.
        holders: usize,
    },

    /// More holders than the parameter set's noise budget allows.
    #[error("{holders} holders exceed the parameter set's max_holders = {max_holders}")]
    TooManyHolders {
        /// The number of holders.
        holders: usize,
        /// The set's limit.
        max_holders: u32,
    },

    /// A holder id that cannot be a Shamir evaluation point.
    #[error("{holder} cannot be a Shamir point: ids must be nonzero and below {limit}")]
    InvalidHolderId {
        /// The id.
        holder: HolderId,
        /// The exclusive upper bound (the smallest prime of the set).
        limit: u64,
    },

    /// A holder named twice (in a committee, an active set or a batch of
    /// messages).
    #[error("{holder} appears twice in {what}")]
    DuplicateHolder {
        /// The holder.
        holder: HolderId,
        /// Where.
        what: &'static str,
    },

    /// A holder that is not a member of the committee.
    #[error("{holder} is not a member of the committee of epoch {epoch}")]
    UnknownHolder {
        /// The holder.
        holder: HolderId,
        /// The committee's key epoch.
        epoch: u64,
    },

    /// An active set smaller than the threshold.
    #[error("an active set of {active} holders is below the threshold t = {threshold}")]
    NotEnoughHolders {
        /// The size of the set.
        active: usize,
        /// The threshold.
        threshold: u32,
    },

    /// A message of another key epoch.
    #[error("message of key epoch {found}, expected epoch {expected}")]
    WrongEpoch {
        /// The epoch expected.
        expected: u64,
        /// The epoch found.
        found: u64,
    },

    /// A public-key share computed from another CRS seed or epoch.
    #[error("the public-key share of {holder} was computed from another CRS (seed or epoch)")]
    CrsMismatch {
        /// The holder.
        holder: HolderId,
    },

    /// A public-key share that is not the one its holder committed to.
    #[error("the public-key share of {holder} does not match its commitment")]
    CommitmentMismatch {
        /// The holder.
        holder: HolderId,
    },

    /// Contributions missing from a ceremony or a decryption.
    #[error("missing {what} from {missing:?}")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// Whose.
        missing: Vec<HolderId>,
    },

    /// A share addressed to another holder.
    #[error("a key share from {from} addressed to {to} was delivered to {recipient}")]
    Misaddressed {
        /// The dealer.
        from: HolderId,
        /// The addressee.
        to: HolderId,
        /// Who received it.
        recipient: HolderId,
    },

    /// A decryption share of another aggregate.
    #[error("the decryption share of {holder} is for another aggregate")]
    WrongAggregate {
        /// The holder.
        holder: HolderId,
    },

    /// A decryption share computed for another active set.
    #[error("the decryption share of {holder} was computed for another active set")]
    ActiveSetMismatch {
        /// The holder.
        holder: HolderId,
    },

    /// A decryption share from a holder outside the active set.
    #[error("{holder} is not in the active set")]
    NotInActiveSet {
        /// The holder.
        holder: HolderId,
    },

    /// A second decryption request for the same aggregate with another
    /// active set: answering would leak the key share (retry attack).
    #[error(
        "already issued a decryption share of the ciphertext with c1 digest {digest} to active set {issued:?}; refusing set {requested:?} (re-randomise the aggregate to retry)"
    )]
    RetryRefused {
        /// The ciphertext's c1 digest, in hex.
        digest: String,
        /// The set the share was issued to.
        issued: Vec<HolderId>,
        /// The set now requested.
        requested: Vec<HolderId>,
    },

    /// The same ciphertext twice in one decryption request: the holder
    /// would return two independently flooded products with its key share.
    #[error("ciphertexts {first} and {second} of the request share the same c1")]
    DuplicateCiphertext {
        /// The first position.
        first: usize,
        /// The repeated position.
        second: usize,
    },

    /// The issued-share ledger file is unreadable or corrupt.
    #[error("share ledger {path}: {reason}")]
    Ledger {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A message transport failed.
    #[error("transport: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// An error of the scheme layer (parameter mismatches, counts, decoding).
    #[error(transparent)]
    Core(#[from] CoreError),

    /// An error of the ring arithmetic.
    #[error(transparent)]
    Math(#[from] MathError),
}
