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

    /// A Shamir share field modulus outside 2^8 < p < 2^32.
    #[error("share field modulus {modulus} is outside 2^8 < p < 2^32")]
    ShareFieldOutOfRange {
        /// The modulus given.
        modulus: u64,
    },

    /// A Shamir share field modulus that is not prime.
    #[error("share field modulus {modulus} is not prime")]
    ShareFieldNotPrime {
        /// The modulus given.
        modulus: u64,
    },

    /// A threshold that is not a strict majority of the holders: two
    /// disjoint quorums could then each open the key sum of a different
    /// set of clients in the same round.
    #[error(
        "threshold t = {threshold} with n = {holders} holders: two disjoint quorums could answer two different sets; need 2t > n"
    )]
    ThresholdNotMajority {
        /// The threshold t.
        threshold: u32,
        /// The number of holders n.
        holders: usize,
    },

    /// A share length (ring degree N) of zero or beyond the limit.
    #[error("a share of {degree} coefficients: the degree must be in 1..={max}")]
    InvalidShareDegree {
        /// The degree given.
        degree: usize,
        /// The largest degree accepted.
        max: usize,
    },

    /// Shares or answers over another field than expected.
    #[error("{what} is over Z_{found}, expected Z_{expected}")]
    ShareFieldMismatch {
        /// What was checked.
        what: &'static str,
        /// The modulus expected.
        expected: u64,
        /// The modulus found.
        found: u64,
    },

    /// Shares or answers of another length than expected.
    #[error("{what} has {found} coefficients, expected {expected}")]
    ShareLengthMismatch {
        /// What was checked.
        what: &'static str,
        /// The length expected.
        expected: usize,
        /// The length found.
        found: usize,
    },

    /// A field element that is not below the modulus.
    #[error("element {index} of {what} is not below the modulus {modulus}")]
    ShareElementOutOfRange {
        /// What was decoded or checked.
        what: &'static str,
        /// The position of the first such element.
        index: usize,
        /// The modulus p.
        modulus: u64,
    },

    /// An answer from a holder outside the share committee.
    #[error("{holder} is not a member of the share committee")]
    NotShareHolder {
        /// The holder.
        holder: HolderId,
    },

    /// Fewer holder answers than the threshold: the key sum is not
    /// determined, and no guess is made.
    #[error("{found} holder answers, at least t = {needed} needed")]
    TooFewAnswers {
        /// The threshold t.
        needed: u32,
        /// The number of answers.
        found: usize,
    },

    /// Holder answers that do not fit one polynomial of degree below t, with
    /// too few answers to tell who lied: the lie is detected, nobody is
    /// named and nothing is reconstructed.
    #[error(
        "the answers of {answers} holders disagree at coefficient {coefficient}: a wrong answer is detected but cannot be corrected (correcting e wrong answers needs t + 2e answers, t = {threshold})"
    )]
    InconsistentAnswers {
        /// The first coefficient found inconsistent.
        coefficient: usize,
        /// The number of answers.
        answers: usize,
        /// The threshold t.
        threshold: u32,
    },

    /// A reconstructed key-sum coefficient beyond the public bound: a wrong
    /// answer (undetectable otherwise with exactly t answers) or a wrong
    /// bound.
    #[error(
        "coefficient {coefficient} of the key sum lifts outside [-{bound}, {bound}]: a wrong answer or a wrong bound"
    )]
    KeySumOutOfBound {
        /// The first coefficient out of bound.
        coefficient: usize,
        /// The bound.
        bound: u64,
    },

    /// A bound on the key sum too large to lift exactly from Z_p.
    #[error(
        "a key-sum bound of {bound} cannot be lifted exactly modulo {modulus}: need 2 bound < p"
    )]
    LiftBoundTooLarge {
        /// The bound given.
        bound: u64,
        /// The modulus p.
        modulus: u64,
    },

    /// Encoded shares or answers of the wrong length (short, long, or with
    /// trailing bytes).
    #[error("{what} of {found} bytes, expected {expected}")]
    ShareEncodingLength {
        /// What was decoded.
        what: &'static str,
        /// The exact length expected.
        expected: usize,
        /// The length found.
        found: usize,
    },

    /// An encoding whose first byte names another kind of message.
    #[error("{what} with tag {tag:#04x}, expected {expected}")]
    UnknownShareTag {
        /// What was decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
        /// The tags accepted.
        expected: &'static str,
    },

    /// An encoding of a format version this build does not read.
    #[error("{what} of format version {version}; this build reads version {supported}")]
    UnsupportedShareVersion {
        /// What was decoded.
        what: &'static str,
        /// The version found.
        version: u8,
        /// The version supported.
        supported: u8,
    },

    /// An encoding whose header names another modulus or degree.
    #[error("{what} with {field} {found} in its header, expected {expected}")]
    ShareHeaderMismatch {
        /// What was decoded.
        what: &'static str,
        /// The header field: "modulus" or "degree".
        field: &'static str,
        /// The value expected.
        expected: u64,
        /// The value found.
        found: u64,
    },

    /// Packed elements followed by nonzero padding bits.
    #[error("{what} with nonzero padding bits after its last element")]
    NonzeroSharePadding {
        /// What was decoded.
        what: &'static str,
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
