//! The errors of the protocol layer.

use ringsum_core::CoreError;
use ringsum_math::MathError;
use ringsum_pq::{ParticipantId, PqError};
use ringsum_threshold::ThresholdError;
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

    /// A Shamir sharing or key-sum problem.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),

    /// An update that does not decode.
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

    /// A participant named in the setup that the registry does not know.
    #[error("{0}")]
    Setup(String),

    /// A plain submission in a federation with differential privacy.
    #[error(
        "this federation trains with differential privacy: submit a noised contribution \
         (Client::submit_private), not plain values"
    )]
    PrivacyRequired,

    /// A contribution made under another federation's privacy plan.
    #[error(
        "the contribution's weight {weight} is not this federation's ({expected}): it was made \
         under another privacy plan"
    )]
    ForeignContribution {
        /// The contribution's weight.
        weight: i64,
        /// The plan's.
        expected: i64,
    },

    /// A private submission in a federation without a privacy plan.
    #[error("this federation has no differential-privacy plan: submit plain values")]
    NoPrivacyPlan,

    /// A submission of a DP federation declaring another sample count
    /// than the plan's.
    #[error(
        "a submission of this differentially private federation must declare {expected} \
         samples (the plan's public weight), not {samples}"
    )]
    PrivateSampleCount {
        /// Declared.
        samples: u64,
        /// The plan's.
        expected: u64,
    },

    /// The audit log: a broken chain, signature or line, named by number.
    #[error("audit log line {line}: {reason}")]
    Audit {
        /// The 1-based line number.
        line: usize,
        /// What is wrong there.
        reason: String,
    },

    /// A federation description that cannot be set up.
    #[error(transparent)]
    Federation(#[from] SetupError),

    /// A round number outside the federation's rounds.
    #[error("round {round} is not one of this federation's rounds 1..={rounds}")]
    RoundOutOfRange {
        /// The round named.
        round: u64,
        /// The federation's last round.
        rounds: u64,
    },

    /// A share of a round the holder does not collect now.
    #[error("a share of round {round}; this holder collects rounds {current} and {}", current + 1)]
    RoundNotCollected {
        /// The share's round.
        round: u64,
        /// The holder's current round.
        current: u64,
    },

    /// A submission declaring more samples than the federation allows.
    #[error("a submission declares {samples} samples; the federation allows at most {max}")]
    TooManySamples {
        /// The declared count.
        samples: u64,
        /// The maximum.
        max: u64,
    },

    /// A submission whose round key shares are not one per holder.
    #[error(
        "a submission carries {found} round key shares; the federation has {expected} holders and needs one for each"
    )]
    ShareCount {
        /// Holders.
        expected: usize,
        /// Shares found.
        found: usize,
    },

    /// A round key share that does not belong with its submission.
    #[error("the round key share for {holder} {reason}")]
    ShareBinding {
        /// The holder the share is addressed to.
        holder: ParticipantId,
        /// What does not match.
        reason: &'static str,
    },

    /// A set of clients smaller than the policy allows to be summed.
    #[error("the set names {size} clients; the federation reveals sums of at least {min}")]
    SetTooSmall {
        /// Clients named.
        size: usize,
        /// The policy's minimum.
        min: usize,
    },

    /// A set naming a participant that is not a client of the federation.
    #[error("the set names {0}, which is not a client of this federation")]
    NotAClient(ParticipantId),

    /// A set naming a client twice, or not in order.
    #[error("the set names {0} twice or out of order")]
    SetNotCanonical(ParticipantId),

    /// A set naming a client this holder has no share from.
    #[error("this holder holds no round key share from {0} for this round")]
    MissingShare(ParticipantId),

    /// A set whose entry for a client differs from the share it sent.
    #[error("the set's entry for {0} names another submission than the share this holder holds")]
    SetMismatch(ParticipantId),

    /// A holder asked for a second set in one round.
    #[error(
        "this holder already answered another set of clients in round {round}; it answers one set per round"
    )]
    AlreadyAnswered {
        /// The round.
        round: u64,
    },

    /// A request or answer about another set than the open one.
    #[error("the message answers another set than the one asked in this round")]
    WrongSet,

    /// A round that could not be decoded: it ends, and the next one starts.
    #[error("round {round} failed: {reason}")]
    RoundFailed {
        /// The round.
        round: u64,
        /// What failed, for the operator and the audit log.
        reason: String,
    },

    /// The holder's durable record of answered sets failed.
    #[error("the record of answered sets: {0}")]
    Journal(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A file of the audit log could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Why a federation description cannot be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// t with 2t <= n: two disjoint quorums could answer two sets.
    #[error(
        "a threshold of {threshold} of {holders} key holders is not a majority: it needs 2t > n (t >= {}), so that two disjoint quorums can never open two different sums in one round",
        holders / 2 + 1
    )]
    ThresholdNotMajority {
        /// n.
        holders: usize,
        /// t.
        threshold: u32,
    },

    /// A policy value outside its bounds.
    #[error("policy: {0}")]
    Policy(String),

    /// A participant that cannot be registered.
    #[error("{0}")]
    Participant(String),

    /// Differential privacy refused its settings for this federation.
    #[error(transparent)]
    Privacy(#[from] ringsum_core::privacy::PrivacyError),
}
