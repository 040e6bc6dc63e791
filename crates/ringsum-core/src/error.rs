//! The one error type of `ringsum-core`.

use ringsum_math::MathError;

use crate::params::SecurityModel;

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

    /// No shipped parameter set has this id.
    #[error("no built-in parameter set is called {id:?} (known: {known})")]
    UnknownParameterSet {
        /// The id asked for.
        id: String,
        /// The ids that exist, comma-separated.
        known: String,
    },

    /// An error of the ring arithmetic.
    #[error(transparent)]
    Math(#[from] MathError),
}

/// Result type of `ringsum-core`.
pub type Result<T> = core::result::Result<T, CoreError>;
