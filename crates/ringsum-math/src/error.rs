//! The one error type of `ringsum-math`.

/// Everything that can go wrong in ring arithmetic, each variant carrying the
/// values that explain it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MathError {
    /// The ring degree N is not a power of two inside the supported range.
    #[error("ring degree {degree} is not a power of two in [{min}, {max}]")]
    InvalidDegree {
        /// The degree that was asked for.
        degree: usize,
        /// Smallest supported degree.
        min: usize,
        /// Largest supported degree.
        max: usize,
    },

    /// A modulus is outside the range the word-size arithmetic supports.
    #[error("modulus {modulus} is outside the supported range [2, 2^{max_bits})")]
    InvalidModulus {
        /// The modulus that was given.
        modulus: u64,
        /// Moduli must stay below 2 to this power.
        max_bits: u32,
    },

    /// A prime size outside the range prime generation supports.
    #[error("prime size of {bits} bits is outside the supported range [{min}, {max}]")]
    InvalidPrimeBits {
        /// The requested bit size.
        bits: u32,
        /// Smallest supported bit size.
        min: u32,
        /// Largest supported bit size.
        max: u32,
    },

    /// A modulus of an RNS basis is not prime.
    #[error("{modulus} is not prime")]
    NotPrime {
        /// The composite modulus.
        modulus: u64,
    },

    /// A prime that does not admit a negacyclic NTT of the ring degree.
    #[error(
        "prime {modulus} is not NTT-friendly for degree {degree}: p mod 2N is {residue}, not 1"
    )]
    NotNttFriendly {
        /// The prime.
        modulus: u64,
        /// The ring degree N.
        degree: usize,
        /// p mod 2N.
        residue: u64,
    },

    /// Prime generation ran out of candidates of the requested size.
    #[error(
        "only {found} primes of {bits} bits are congruent to 1 mod {two_n}; {requested} were asked for"
    )]
    NotEnoughPrimes {
        /// Bit size of the primes.
        bits: u32,
        /// 2N, the congruence modulus.
        two_n: u64,
        /// How many were asked for.
        requested: usize,
        /// How many exist (and were not already used).
        found: usize,
    },

    /// The same prime appears twice in an RNS basis, which breaks the CRT.
    #[error("prime {modulus} appears more than once in the RNS basis")]
    DuplicatePrime {
        /// The repeated prime.
        modulus: u64,
    },

    /// An RNS basis needs at least one and at most `max` primes.
    #[error("an RNS basis needs between 1 and {max} primes, got {count}")]
    InvalidBasisSize {
        /// Number of primes given.
        count: usize,
        /// Largest supported number of primes.
        max: usize,
    },

    /// tfhe-ntt refused to build a plan (should not happen for validated primes).
    #[error("no NTT plan exists for prime {modulus} at degree {degree}")]
    NttPlanUnavailable {
        /// The prime.
        modulus: u64,
        /// The ring degree.
        degree: usize,
    },

    /// A buffer or list has the wrong number of elements.
    #[error("{what}: expected {expected} values, found {found}")]
    LengthMismatch {
        /// What was being read.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        found: usize,
    },

    /// A residue is not reduced modulo its prime.
    #[error("value {value} at position {index} is not below its modulus {modulus}")]
    ValueOutOfRange {
        /// Flat position of the value.
        index: usize,
        /// The value.
        value: u64,
        /// The modulus it must be below.
        modulus: u64,
    },

    /// Two operands live in different rings (degree or RNS basis differ).
    #[error(
        "operands belong to different rings: N = {left_degree} with {left_primes} primes vs N = {right_degree} with {right_primes} primes (or the primes differ)"
    )]
    ContextMismatch {
        /// Degree of the left operand.
        left_degree: usize,
        /// Number of primes of the left operand.
        left_primes: usize,
        /// Degree of the right operand.
        right_degree: usize,
        /// Number of primes of the right operand.
        right_primes: usize,
    },

    /// A seed or key of the wrong size.
    #[error("seed must be {expected} bytes, got {found}")]
    InvalidSeedLength {
        /// Required length in bytes.
        expected: usize,
        /// Length given.
        found: usize,
    },

    /// A CRS purpose label that is empty, too long or not printable ASCII.
    #[error("CRS purpose label must be 1 to {max} printable ASCII bytes, got {length} bytes")]
    InvalidCrsLabel {
        /// Length of the label given.
        length: usize,
        /// Largest allowed length.
        max: usize,
    },

    /// Gaussian parameters outside the supported range.
    #[error(
        "discrete Gaussian with sigma {sigma} and tail cut {tail_cut} sigmas is not supported (sigma in [{min_sigma}, {max_sigma}], tail cut in [{min_tail}, {max_tail}])"
    )]
    InvalidGaussian {
        /// Standard deviation asked for.
        sigma: f64,
        /// Tail cut asked for, in multiples of sigma.
        tail_cut: f64,
        /// Smallest supported sigma.
        min_sigma: f64,
        /// Largest supported sigma.
        max_sigma: f64,
        /// Smallest supported tail cut.
        min_tail: f64,
        /// Largest supported tail cut.
        max_tail: f64,
    },

    /// A differential-privacy noise variance outside the range the wide
    /// discrete Gaussian sampler supports exactly.
    #[error(
        "noise variance {variance} is outside the supported range [{min}, {max}]; change the quantization scale so that the variance, in squared quantization steps, fits"
    )]
    InvalidNoiseVariance {
        /// The variance asked for.
        variance: u64,
        /// Smallest supported variance.
        min: u64,
        /// Largest supported variance.
        max: u64,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Entropy(#[from] getrandom::Error),
}

/// Result type of `ringsum-math`.
pub type Result<T> = core::result::Result<T, MathError>;
