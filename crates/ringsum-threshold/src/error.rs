//! The errors of the threshold layer.

use thiserror::Error;

use crate::holder_id::HolderId;

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

    /// More holders than the parameter set allows (`shares.max_holders`).
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
        /// The exclusive upper bound (the share field's prime p).
        limit: u64,
    },

    /// A holder named twice (in a committee or among answers).
    #[error("{holder} appears twice in {what}")]
    DuplicateHolder {
        /// The holder.
        holder: HolderId,
        /// Where.
        what: &'static str,
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
}
