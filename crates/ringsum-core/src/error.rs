//! The one error type of `ringsum-core`.

use ringsum_math::MathError;

use crate::params::{SecretDistribution, SecurityModel};

/// Everything that can go wrong in the scheme layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A parameter file could not be read.
    #[error("cannot read parameter file {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A parameter file is not valid TOML, misses a field, has a field of the
    /// wrong type, or has a field the format does not know.
    #[error("{file}: field `{field}`{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    MalformedParameters {
        /// The file (or source name).
        file: String,
        /// The dotted path of the offending field (`.` when it is the file itself).
        field: String,
        /// The line of the error in the file, when the parser knows it.
        line: Option<usize>,
        /// The parser's description.
        message: String,
    },

    /// A field holds a value the loader refuses.
    #[error("{file}: field `{field}`: {source}")]
    InvalidParameter {
        /// The file.
        file: String,
        /// The dotted path of the field.
        field: &'static str,
        /// Why the ring arithmetic refused it.
        source: MathError,
    },

    /// The modulus is too large for the claimed security at this degree.
    #[error(
        "{file}: log2 Q = {log2_q} exceeds the bound of {bound} for N = {degree} at {level}-bit {model} security (HomomorphicEncryption.org standard)"
    )]
    SecurityBoundExceeded {
        /// The file.
        file: String,
        /// The ring degree N.
        degree: usize,
        /// The bit length of Q.
        log2_q: u64,
        /// The largest log2 Q allowed.
        bound: u64,
        /// The claimed level in bits.
        level: u32,
        /// The attack model.
        model: SecurityModel,
    },

    /// The security table has no entry for this degree or level.
    #[error(
        "{file}: no security bound is known for N = {degree} at {level}-bit security (known degrees: 1024 to 32768, level 128)"
    )]
    UnknownSecurityBound {
        /// The file.
        file: String,
        /// The ring degree N.
        degree: usize,
        /// The claimed level in bits.
        level: u32,
    },

    /// The error distribution is narrower than the security table assumes.
    #[error(
        "{file}: field `noise.sigma`: {sigma} is below {minimum}, the width the security table assumes"
    )]
    NoiseTooNarrow {
        /// The file.
        file: String,
        /// The sigma given.
        sigma: f64,
        /// The smallest sigma allowed.
        minimum: f64,
    },

    /// Both `ring.primes` and `ring.prime_bits` were given, or neither.
    #[error("{file}: section `ring` needs exactly one of `primes` and `prime_bits`")]
    AmbiguousPrimes {
        /// The file.
        file: String,
    },

    /// A file of the collective-key scheme (a `[threshold]` section), which
    /// was removed in December 2026.
    #[error(
        "{file}: section `threshold` belongs to the collective-key scheme, which was removed in December 2026; use a per-round-key set (a `shares` section), such as rk128-n16384 (see params/README.md)"
    )]
    CollectiveKeyRemoved {
        /// The file.
        file: String,
    },

    /// The secret distribution is not one the scheme and the claimed
    /// security table cover.
    #[error("{file}: field `noise.secret`: {secret:?} is not covered: {reason}")]
    SecretNotCovered {
        /// The file.
        file: String,
        /// The distribution the file names.
        secret: SecretDistribution,
        /// Why it is refused.
        reason: &'static str,
    },

    /// The Shamir field cannot hold the sum of `max_clients` secrets.
    #[error(
        "{file}: field `shares.field_prime`: p = {field_prime} cannot lift the sum of {max_clients} secrets of magnitude up to {secret_bound} (it needs p > 2 * {max_clients} * {secret_bound})"
    )]
    ShareFieldTooSmall {
        /// The file.
        file: String,
        /// The prime.
        field_prime: u64,
        /// The set's max_clients.
        max_clients: u64,
        /// The secret sampler's bound.
        secret_bound: u64,
    },

    /// A key sum with a coefficient larger than the secrets of the
    /// aggregate's clients can add up to: the holders' answers were wrong,
    /// or the key sum belongs to another set of clients.
    #[error(
        "key sum coefficient {coefficient} is {value}, beyond the bound {bound} of the aggregate's clients' secrets"
    )]
    KeySumOutOfRange {
        /// The coefficient.
        coefficient: usize,
        /// Its value.
        value: i64,
        /// The largest magnitude possible.
        bound: u64,
    },

    /// Decoded slots that no honest set of updates gives: the key sum was
    /// not that of the aggregate's clients, or an update was malformed.
    #[error(
        "decoded slot {slot} is {value}, which {clients} honest updates cannot sum to (a key sum of other clients, or a malformed update)"
    )]
    ImplausibleSum {
        /// The slot, in update order (0 is the weight sum).
        slot: usize,
        /// Its value.
        value: i64,
        /// The aggregate's client count.
        clients: u64,
    },

    /// The `id` inside a file differs from its file name.
    #[error("{file}: field `id` is {id:?} but the file is named after {expected:?}")]
    IdMismatch {
        /// The file.
        file: String,
        /// The id in the file.
        id: String,
        /// The id the file name implies.
        expected: String,
    },

    /// An id that is empty or uses characters outside [a-z0-9-].
    #[error("{file}: field `id`: {id:?} must be 1 to 64 characters of a-z, 0-9 and '-'")]
    InvalidId {
        /// The file.
        file: String,
        /// The id given.
        id: String,
    },

    /// A value outside its allowed range.
    #[error("{file}: field `{field}` must be {allowed}")]
    OutOfRange {
        /// The file.
        file: String,
        /// The dotted path of the field.
        field: &'static str,
        /// The allowed range, in words.
        allowed: &'static str,
    },

    /// A slot cannot hold the sum of `max_clients` largest values.
    #[error(
        "{file}: {max_clients} clients of up to {max_quantized} (+1 for rounding) overflow a signed {slot_bits}-bit slot; lower encoding.max_clients, clip or fraction_bits, or widen encoding.slot_bits"
    )]
    SlotOverflow {
        /// The file.
        file: String,
        /// The declared maximum number of clients.
        max_clients: u64,
        /// The largest quantized magnitude of one value.
        max_quantized: u64,
        /// The slot width.
        slot_bits: u32,
    },

    /// The modulus is too small for the message and the noise.
    #[error(
        "{file}: the encoding needs {required_bits} bits of modulus ({message_bits} message bits, scale 2^{scale_bits} above the proven noise bound, 3 bits of margin) but Q offers {available_bits}; use fewer slots or fewer clients, or a larger ring"
    )]
    NoiseBudgetExceeded {
        /// The file.
        file: String,
        /// Bits of Q the configuration needs.
        required_bits: u64,
        /// Bits of Q available (log2 Q - 1).
        available_bits: u64,
        /// d, with Δ = 2^d.
        scale_bits: u32,
        /// K * b.
        message_bits: u32,
    },

    /// No shipped parameter set has this id.
    #[error("no built-in parameter set is called {id:?} (known: {known})")]
    UnknownParameterSet {
        /// The id asked for.
        id: String,
        /// The ids that exist, comma-separated.
        known: String,
    },

    /// Two objects belong to different parameter sets.
    #[error("parameter set mismatch: expected {expected}, found {found}")]
    ParameterMismatch {
        /// The id the receiver works with.
        expected: String,
        /// The id the object carries.
        found: String,
    },

    /// An update's model layout differs from the aggregate's.
    #[error("model layout mismatch: expected layout {expected}, found {found}")]
    LayoutMismatch {
        /// Hex SHA3-256 of the expected layout.
        expected: String,
        /// Hex SHA3-256 of the layout found.
        found: String,
    },

    /// An update belongs to another round.
    #[error("round mismatch: expected round {expected}, found round {found}")]
    RoundMismatch {
        /// The aggregate's round.
        expected: u64,
        /// The update's round.
        found: u64,
    },

    /// A wrong number of ciphertexts or values.
    #[error("{what}: expected {expected}, found {found}")]
    CountMismatch {
        /// What was counted.
        what: &'static str,
        /// The number required.
        expected: usize,
        /// The number given.
        found: usize,
    },

    /// An aggregate already holds the most updates its slots can sum.
    #[error("the aggregate already holds {max_clients} updates, the most its parameter set allows")]
    TooManyClients {
        /// The limit (encoding.max_clients).
        max_clients: u64,
    },

    /// A model layout that cannot be used.
    #[error("invalid model layout: {problem}")]
    InvalidLayout {
        /// What is wrong with it.
        problem: LayoutProblem,
    },

    /// A model value that is NaN or infinite.
    #[error("tensor {tensor:?}, value {index}: {value} is not a finite number")]
    NonFiniteValue {
        /// The tensor's name.
        tensor: String,
        /// The index within the tensor.
        index: usize,
        /// The value.
        value: f32,
    },

    /// A client weight (sample count) of zero or above the set's maximum.
    #[error("weight {samples} is outside 1..={max_weight}")]
    InvalidWeight {
        /// The sample count given.
        samples: u64,
        /// encoding.max_weight.
        max_weight: u64,
    },

    /// A slot value wider than a slot.
    #[error("slot value {value} at position {index} does not fit a signed {slot_bits}-bit slot")]
    SlotValueOutOfRange {
        /// Position in the plaintext.
        index: usize,
        /// The value.
        value: i64,
        /// The slot width.
        slot_bits: u32,
    },

    /// A decrypted coefficient does not split into slots: the aggregate
    /// overflowed or was not produced by this parameter set.
    #[error(
        "decrypted coefficient {coefficient} of ciphertext {ciphertext} does not split into slots: overflow or foreign ciphertext"
    )]
    DecodeOverflow {
        /// The ciphertext's position.
        ciphertext: usize,
        /// The coefficient's position.
        coefficient: usize,
    },

    /// The decoded weight sum is not positive, so no average exists.
    #[error("the decoded weight sum is {weight_sum}: no weighted average exists")]
    NoWeight {
        /// The decoded weight sum (in quanta).
        weight_sum: i64,
    },

    /// A slot past the end of the model decoded to a value other than zero.
    /// Honest clients leave those slots at zero, so the aggregate holds a
    /// contribution that was not produced by
    /// [`crate::round::RoundSecret::encrypt_update`].
    #[error(
        "padding slot {slot} decoded to {value}, not 0: the aggregate holds an ill-formed contribution"
    )]
    NonZeroPadding {
        /// Position of the slot in the aggregate's slot order.
        slot: usize,
        /// The decoded value.
        value: i64,
    },

    /// A truncated ciphertext that is not zero past the coefficients it
    /// carries (it travels without them, so they must be 0).
    #[error(
        "a ciphertext carries {coefficients} coefficients but coefficient {coefficient} past them is not zero"
    )]
    NonZeroTruncation {
        /// The coefficients the ciphertext carries.
        coefficients: usize,
        /// The first non-zero coefficient past them.
        coefficient: usize,
    },

    /// An error of the ring arithmetic.
    #[error(transparent)]
    Math(#[from] MathError),
}

/// Result type of `ringsum-core`.
pub type Result<T> = core::result::Result<T, CoreError>;

/// What is wrong with a model layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutProblem {
    /// The model has no tensor.
    #[error("the model has no tensor")]
    Empty,
    /// A tensor name is empty or longer than 256 bytes.
    #[error("tensor name {0:?} must be 1 to 256 bytes")]
    BadName(String),
    /// Two tensors share a name.
    #[error("tensor name {0:?} appears twice")]
    DuplicateName(String),
    /// A tensor has a zero dimension, no dimension, or more than 8.
    #[error("tensor {name:?} has shape {shape:?}: 1 to 8 dimensions, each at least 1")]
    BadShape {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// The model has more parameters than supported.
    #[error("{count} parameters exceed the limit of {max}")]
    TooLarge {
        /// The parameter count.
        count: u64,
        /// The limit.
        max: u64,
    },
}
