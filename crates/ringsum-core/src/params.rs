//! Parameter sets: one TOML file each under `params/`, validated on load.
//!
//! A [`ParameterSet`] can only be obtained through the loader, so holding one
//! means its ring exists (degree a power of two, distinct NTT-friendly
//! primes), its secrets and errors come from a Gaussian wide enough for the
//! security argument of the per-round-key scheme, its modulus respects the
//! HomomorphicEncryption.org bound for the claimed security, and its noise
//! budget, slots and Shamir field hold the sum of `max_clients` updates and
//! secrets. The file format is described in `params/README.md`.
//!
//! Files of the collective-key scheme (a `[threshold]` section, the
//! `pq128-*` sets), removed in December 2026, are refused with
//! [`CoreError::CollectiveKeyRemoved`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use ringsum_math::prime::generate_ntt_primes;
use ringsum_math::{DiscreteGaussian, MathError, RingContext};

use crate::error::{CoreError, Result};
use crate::noise::NoiseBudget;

/// The parameter set used when none is named: N = 16384, 13 values per
/// coefficient, about 3.7 bytes per parameter on the wire.
pub const DEFAULT_PARAMETER_SET: &str = "rk128-n16384";

/// [`DEFAULT_PARAMETER_SET`] under the name it had while two schemes
/// coexisted; the same set.
pub const DEFAULT_ROUND_KEY_SET: &str = DEFAULT_PARAMETER_SET;

/// The parameter sets shipped in `params/`, compiled in so that the library
/// works without the files.
const BUILTIN: [(&str, &str); 4] = [
    (
        "rk128-n4096",
        include_str!("../../../params/rk128-n4096.toml"),
    ),
    (
        "rk128-n8192",
        include_str!("../../../params/rk128-n8192.toml"),
    ),
    (
        "rk128-n16384",
        include_str!("../../../params/rk128-n16384.toml"),
    ),
    (
        "rk128-n32768",
        include_str!("../../../params/rk128-n32768.toml"),
    ),
];

/// Largest log2 Q for 128-bit security with a ternary secret and sigma about
/// 3.2, from the HomomorphicEncryption.org security standard (2018, Table 1):
/// (N, classical, quantum). The standard's bounds for a secret drawn from
/// the error distribution (a Gaussian of width about 3.2) are at least as
/// large at every N, so these, the smallest, also bound the shipped sets,
/// whose Gaussian secrets are wider (a wider secret only makes the lattice
/// problem harder).
const SECURITY_BOUNDS_128: [(usize, u64, u64); 6] = [
    (1024, 27, 25),
    (2048, 54, 51),
    (4096, 109, 101),
    (8192, 218, 202),
    (16384, 438, 411),
    (32768, 881, 827),
];

/// The standard's error width, 8 / sqrt(2 pi).
pub const MIN_SIGMA: f64 = 3.191_538_243_211_461_6;

/// The attack model of a security claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityModel {
    /// Best known classical attacks.
    Classical,
    /// Best known quantum attacks (the default for ringsum).
    Quantum,
}

impl fmt::Display for SecurityModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Classical => "classical",
            Self::Quantum => "quantum",
        })
    }
}

/// The distribution of secret-key coefficients (`noise.secret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SecretDistribution {
    /// Uniform on {-1, 0, 1}. The loader refuses it: the coordinator learns
    /// the sum of a set's secrets, and ternary coefficients summing to +-2
    /// reveal both.
    Ternary,
    /// The tail-cut discrete Gaussian of the `[noise]` section, for secrets
    /// and errors alike: it keeps each honest secret's conditional width
    /// once the sum of a set's secrets is known (docs/security.md).
    Gaussian,
}

/// The Shamir sharing of per-round secrets (the `[shares]` section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareParams {
    /// The prime p of the share field Z_p: it must exceed twice the largest
    /// |sum of max_clients secrets|, so that a sum lifts back exactly.
    pub field_prime: u64,
    /// The most key holders (Shamir points 1..p).
    pub max_holders: u32,
}

/// The largest log2 Q allowed at `degree` for 128-bit security in `model`,
/// or `None` for a degree the table does not cover.
pub fn max_log2_q_128(degree: usize, model: SecurityModel) -> Option<u64> {
    SECURITY_BOUNDS_128
        .iter()
        .find(|(n, _, _)| *n == degree)
        .map(|&(_, classical, quantum)| match model {
            SecurityModel::Classical => classical,
            SecurityModel::Quantum => quantum,
        })
}

/// The identifier of a parameter set, such as `rk128-n8192`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamSetId(String);

impl ParamSetId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(id: &str) -> Option<Self> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Self(id.to_owned()))
    }
}

impl fmt::Display for ParamSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The file as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParameterFile {
    id: String,
    description: String,
    ring: RingSection,
    noise: NoiseSection,
    security: SecuritySection,
    encoding: EncodingSection,
    /// The section of the removed collective-key scheme: read only to be
    /// refused with a clear message.
    threshold: Option<IgnoredAny>,
    shares: Option<SharesSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesSection {
    field_prime: u64,
    max_holders: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodingSection {
    clip: f64,
    fraction_bits: u32,
    slot_bits: u32,
    slots: u32,
    max_clients: u64,
    max_weight: u64,
}

/// How model updates are quantized and packed, validated against the slot
/// width and the noise budget.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodingParams {
    /// Values are clipped to [-clip, clip].
    pub clip: f64,
    /// Values are scaled by 2^fraction_bits before rounding.
    pub fraction_bits: u32,
    /// Width b of one slot in bits (signed).
    pub slot_bits: u32,
    /// Slots per ring coefficient, K: the plaintext modulus is 2^(K*b).
    pub slots: u32,
    /// The most clients whose updates one aggregate may sum.
    pub max_clients: u64,
    /// The largest weight (sample count) a client may declare.
    pub max_weight: u64,
    /// The largest magnitude one quantized value can take:
    /// ceil(max(clip, 1) * 2^fraction_bits) (weights are at most 1).
    pub max_quantized: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RingSection {
    degree: usize,
    primes: Option<Vec<u64>>,
    prime_bits: Option<Vec<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoiseSection {
    sigma: f64,
    tail_cut: f64,
    secret: SecretDistribution,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecuritySection {
    level: u32,
    model: SecurityModel,
}

/// A validated parameter set.
#[derive(Clone)]
pub struct ParameterSet {
    id: ParamSetId,
    description: String,
    degree: usize,
    primes: Vec<u64>,
    gaussian: DiscreteGaussian,
    secret: SecretDistribution,
    security_level: u32,
    security_model: SecurityModel,
    ring: Arc<RingContext>,
    log2_q: u64,
    encoding: EncodingParams,
    shares: ShareParams,
    budget: NoiseBudget,
}

impl ParameterSet {
    /// Parses and validates a parameter file's text. `source` names it in
    /// errors; when it ends in `.toml`, the file stem must equal the `id`.
    ///
    /// # Errors
    /// [`CoreError::CollectiveKeyRemoved`] for a file of the removed
    /// collective-key scheme (a `[threshold]` section);
    /// [`CoreError::MalformedParameters`] for invalid TOML, a missing,
    /// mistyped or unknown field or section; [`CoreError::InvalidParameter`],
    /// [`CoreError::AmbiguousPrimes`], [`CoreError::NoiseTooNarrow`],
    /// [`CoreError::SecretNotCovered`], [`CoreError::OutOfRange`],
    /// [`CoreError::ShareFieldTooSmall`], [`CoreError::InvalidId`] or
    /// [`CoreError::IdMismatch`] for a refused value;
    /// [`CoreError::SlotOverflow`] or [`CoreError::NoiseBudgetExceeded`]
    /// when the encoding does not fit; [`CoreError::SecurityBoundExceeded`]
    /// or [`CoreError::UnknownSecurityBound`] when the security claim does
    /// not hold.
    pub fn from_toml_str(text: &str, source: &str) -> Result<Self> {
        let file = parse_file(text, source)?;
        if file.threshold.is_some() {
            return Err(CoreError::CollectiveKeyRemoved {
                file: source.to_owned(),
            });
        }
        let Some(shares) = file.shares else {
            return Err(CoreError::MalformedParameters {
                file: source.to_owned(),
                field: "shares".to_owned(),
                line: None,
                message: "missing section `shares` (the Shamir sharing of per-round secrets)"
                    .to_owned(),
            });
        };
        let id = ParamSetId::parse(&file.id).ok_or_else(|| CoreError::InvalidId {
            file: source.to_owned(),
            id: file.id.clone(),
        })?;
        if let Some(stem) = source.strip_suffix(".toml") {
            let stem = Path::new(stem)
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or(stem);
            if stem != id.as_str() {
                return Err(CoreError::IdMismatch {
                    file: source.to_owned(),
                    id: file.id,
                    expected: stem.to_owned(),
                });
            }
        }
        let invalid = |field: &'static str| {
            move |e: MathError| CoreError::InvalidParameter {
                file: source.to_owned(),
                field,
                source: e,
            }
        };
        let degree = file.ring.degree;
        // Bound the lists before any prime is tested or searched for.
        let listed = file.ring.primes.as_ref().map_or(0, Vec::len)
            + file.ring.prime_bits.as_ref().map_or(0, Vec::len);
        if listed > ringsum_math::rns::MAX_BASIS_PRIMES {
            let field = if file.ring.primes.is_some() {
                "ring.primes"
            } else {
                "ring.prime_bits"
            };
            return Err(invalid(field)(MathError::InvalidBasisSize {
                count: listed,
                max: ringsum_math::rns::MAX_BASIS_PRIMES,
            }));
        }
        ringsum_math::context::check_degree(degree).map_err(invalid("ring.degree"))?;
        let primes = match (file.ring.primes, file.ring.prime_bits) {
            (Some(primes), None) => primes,
            (None, Some(bits)) => {
                generate_ntt_primes(degree, &bits).map_err(invalid("ring.prime_bits"))?
            }
            _ => {
                return Err(CoreError::AmbiguousPrimes {
                    file: source.to_owned(),
                });
            }
        };
        let ring = RingContext::new(degree, &primes).map_err(invalid("ring.primes"))?;

        let noise = file.noise;
        if noise.sigma.is_nan() || noise.sigma < MIN_SIGMA {
            return Err(CoreError::NoiseTooNarrow {
                file: source.to_owned(),
                sigma: noise.sigma,
                minimum: MIN_SIGMA,
            });
        }
        let gaussian =
            DiscreteGaussian::new(noise.sigma, noise.tail_cut).map_err(invalid("noise"))?;

        let security = file.security;
        let log2_q = ring.basis().product_bits();
        let bound = (security.level == 128)
            .then(|| max_log2_q_128(degree, security.model))
            .flatten()
            .ok_or_else(|| CoreError::UnknownSecurityBound {
                file: source.to_owned(),
                degree,
                level: security.level,
            })?;
        if log2_q > bound {
            return Err(CoreError::SecurityBoundExceeded {
                file: source.to_owned(),
                degree,
                log2_q,
                bound,
                level: security.level,
                model: security.model,
            });
        }

        let error_bound = gaussian.bound().unsigned_abs();
        let encoding = check_encoding(source, &file.encoding)?;
        check_round_key_noise(source, noise.secret, noise.sigma)?;
        let shares = check_shares(source, &shares, encoding.max_clients, error_bound)?;
        let budget = NoiseBudget::new(error_bound, encoding.max_clients);
        let required = budget.required_modulus_bits(encoding.slots * encoding.slot_bits);
        // Q >= 2^(log2_q - 1): the budget must fit below that.
        if required > log2_q - 1 {
            return Err(CoreError::NoiseBudgetExceeded {
                file: source.to_owned(),
                required_bits: required,
                available_bits: log2_q - 1,
                scale_bits: budget.scale_bits,
                message_bits: encoding.slots * encoding.slot_bits,
            });
        }

        Ok(Self {
            encoding,
            shares,
            budget,
            id,
            description: file.description,
            degree,
            primes,
            gaussian,
            secret: noise.secret,
            security_level: security.level,
            security_model: security.model,
            ring,
            log2_q,
        })
    }

    /// Reads and validates a parameter file.
    ///
    /// # Errors
    /// [`CoreError::Io`] when the file cannot be read, otherwise as
    /// [`Self::from_toml_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            file: name.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &name)
    }

    /// Loads every `*.toml` file of a directory, sorted by file name.
    ///
    /// # Errors
    /// The first error of [`Self::load`], or [`CoreError::Io`] when the
    /// directory cannot be listed.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<Self>> {
        let dir = dir.as_ref();
        let io = |source| CoreError::Io {
            file: dir.display().to_string(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        paths.iter().map(Self::load).collect()
    }

    /// A parameter set shipped with ringsum, by id.
    ///
    /// # Errors
    /// [`CoreError::UnknownParameterSet`] for an id that is not shipped.
    pub fn builtin(id: &str) -> Result<Self> {
        let (name, text) = BUILTIN
            .iter()
            .find(|(name, _)| *name == id)
            .ok_or_else(|| CoreError::UnknownParameterSet {
                id: id.to_owned(),
                known: Self::builtin_ids().join(", "),
            })?;
        Self::from_toml_str(text, &format!("{name}.toml"))
    }

    /// The ids of the shipped parameter sets, smallest ring first.
    pub fn builtin_ids() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// The parameter set's id.
    pub fn id(&self) -> &ParamSetId {
        &self.id
    }

    /// The human description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The ring degree N.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The RNS primes.
    pub fn primes(&self) -> &[u64] {
        &self.primes
    }

    /// The bit length of Q.
    pub fn log2_q(&self) -> u64 {
        self.log2_q
    }

    /// The ring, built once and shared.
    pub fn ring(&self) -> &Arc<RingContext> {
        &self.ring
    }

    /// The error distribution.
    pub fn gaussian(&self) -> &DiscreteGaussian {
        &self.gaussian
    }

    /// The secret-key distribution (always [`SecretDistribution::Gaussian`]
    /// in a set that loads).
    pub fn secret_distribution(&self) -> SecretDistribution {
        self.secret
    }

    /// The encoding of model updates.
    pub fn encoding(&self) -> &EncodingParams {
        &self.encoding
    }

    /// The Shamir sharing of per-round secrets: the share field and the
    /// most key holders.
    pub fn shares(&self) -> ShareParams {
        self.shares
    }

    /// The proven noise bounds of this set.
    pub fn noise_budget(&self) -> &NoiseBudget {
        &self.budget
    }

    /// The claimed security: level in bits and attack model.
    pub fn security(&self) -> (u32, SecurityModel) {
        (self.security_level, self.security_model)
    }
}

impl fmt::Debug for ParameterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParameterSet")
            .field("id", &self.id)
            .field("degree", &self.degree)
            .field("primes", &self.primes)
            .field("log2_q", &self.log2_q)
            .field("sigma", &self.gaussian.sigma())
            .field("security", &(self.security_level, self.security_model))
            .field("shares", &self.shares)
            .finish_non_exhaustive()
    }
}

/// Checks the encoding settings on their own: ranges, and that a slot holds
/// the signed sum of `max_clients` values.
fn check_encoding(source: &str, section: &EncodingSection) -> Result<EncodingParams> {
    let out_of_range = |field, allowed| out_of_range(source, field, allowed);
    if !(section.clip.is_finite() && section.clip > 0.0) {
        return Err(out_of_range("encoding.clip", "a finite number above 0"));
    }
    if section.fraction_bits > 40 {
        return Err(out_of_range("encoding.fraction_bits", "0 to 40"));
    }
    if !(2..=62).contains(&section.slot_bits) {
        return Err(out_of_range("encoding.slot_bits", "2 to 62"));
    }
    if !(1..=4096).contains(&section.slots) {
        return Err(out_of_range("encoding.slots", "1 to 4096"));
    }
    if !(1..=1 << 32).contains(&section.max_clients) {
        return Err(out_of_range("encoding.max_clients", "1 to 2^32"));
    }
    if section.max_weight == 0 {
        return Err(out_of_range("encoding.max_weight", "at least 1"));
    }
    let scaled = section.clip.max(1.0) * f64::from(section.fraction_bits).exp2();
    if scaled >= 2f64.powi(51) {
        return Err(out_of_range(
            "encoding.clip",
            "clip * 2^fraction_bits below 2^51",
        ));
    }
    // Exact: the value is an integer below 2^51 after ceil.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let max_quantized = scaled.ceil() as u64;
    // Stochastic rounding may round up by one quantum, hence the + 1.
    let worst_sum = u128::from(section.max_clients) * u128::from(max_quantized + 1);
    let slot_capacity = (1u128 << (section.slot_bits - 1)) - 1;
    if worst_sum > slot_capacity {
        return Err(CoreError::SlotOverflow {
            file: source.to_owned(),
            max_clients: section.max_clients,
            max_quantized,
            slot_bits: section.slot_bits,
        });
    }
    Ok(EncodingParams {
        clip: section.clip,
        fraction_bits: section.fraction_bits,
        slot_bits: section.slot_bits,
        slots: section.slots,
        max_clients: section.max_clients,
        max_weight: section.max_weight,
        max_quantized,
    })
}

/// The refusal of a value outside what `field` allows.
fn out_of_range(source: &str, field: &'static str, allowed: &'static str) -> CoreError {
    CoreError::OutOfRange {
        file: source.to_owned(),
        field,
        allowed,
    }
}

/// The narrowest Gaussian a set may use: 3.2 * sqrt(2). The
/// coordinator learns the sum of a set's secrets (and errors); with two
/// honest clients in the set each one's conditional distribution then has
/// width sigma / sqrt(2), which must stay at the standard's 3.2.
pub const MIN_ROUND_KEY_SIGMA: f64 = 3.2 * std::f64::consts::SQRT_2;

/// Checks that the set draws secrets and errors from a Gaussian wide enough
/// for the conditional-width argument.
fn check_round_key_noise(source: &str, secret: SecretDistribution, sigma: f64) -> Result<()> {
    if secret != SecretDistribution::Gaussian {
        return Err(CoreError::SecretNotCovered {
            file: source.to_owned(),
            secret,
            reason: "per-round keys need a Gaussian secret: the coordinator learns the sum of \
                     a set's secrets, and ternary coefficients summing to +-2 reveal both",
        });
    }
    if sigma.is_nan() || sigma < MIN_ROUND_KEY_SIGMA {
        return Err(CoreError::NoiseTooNarrow {
            file: source.to_owned(),
            sigma,
            minimum: MIN_ROUND_KEY_SIGMA,
        });
    }
    Ok(())
}

/// Checks the `[shares]` section: a prime field wide enough to lift the sum
/// of `max_clients` secrets of magnitude at most `secret_bound`.
fn check_shares(
    source: &str,
    section: &SharesSection,
    max_clients: u64,
    secret_bound: u64,
) -> Result<ShareParams> {
    let out_of_range = |field, allowed| out_of_range(source, field, allowed);
    let p = section.field_prime;
    if !(257..1 << 32).contains(&p) || !ringsum_math::prime::is_prime(p) {
        return Err(out_of_range(
            "shares.field_prime",
            "a prime between 2^8 and 2^32",
        ));
    }
    // |sum| <= max_clients * B, and the centred lift is exact for |x| < p/2.
    let largest_sum = u128::from(max_clients) * u128::from(secret_bound);
    if 2 * largest_sum >= u128::from(p) {
        return Err(CoreError::ShareFieldTooSmall {
            file: source.to_owned(),
            field_prime: p,
            max_clients,
            secret_bound,
        });
    }
    if !(1..=1024).contains(&section.max_holders) || u64::from(section.max_holders) >= p {
        return Err(out_of_range(
            "shares.max_holders",
            "1 to 1024, and below field_prime (one Shamir point each)",
        ));
    }
    Ok(ShareParams {
        field_prime: p,
        max_holders: section.max_holders,
    })
}

/// Parses the TOML text, naming the field of the first error.
fn parse_file(text: &str, source: &str) -> Result<ParameterFile> {
    let malformed = |field: String, error: &toml::de::Error| CoreError::MalformedParameters {
        file: source.to_owned(),
        field,
        line: error.span().map(|span| line_of(text, span.start)),
        message: error.message().to_owned(),
    };
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| malformed(".".to_owned(), &e))?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| malformed(e.path().to_string(), e.inner()))
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.bytes().filter(|&b| b == b'\n').count())
        + 1
}
