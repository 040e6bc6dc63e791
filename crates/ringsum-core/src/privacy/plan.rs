//! The privacy plan of a federation: from a target (epsilon, delta) over
//! its rounds to the integer quantities every client uses (the scale of
//! the quantized gradients, the exact bound on one record's contribution,
//! the variance of each client's noise, the weight that turns the opened
//! sum into a gradient step), checked against the slots; and a client's
//! contribution of one round, record by record.
//!
//! # The mechanism
//!
//! A client's contribution to a round is the sum over its training records
//! of z_r = round(gamma * clip_C(g_r)): each record's gradient g_r clipped
//! to L2 norm C, scaled by gamma = 2^g and rounded stochastically to
//! integers, the rounding repeated if the integer vector's norm exceeds
//! the exact bound Delta2 = sqrt(floor((gamma C + sqrt(d))^2)) (stochastic
//! rounding moves each coordinate by less than 1, so it never does in
//! exact arithmetic; the check makes the bound hold whatever floating
//! point did). Adding or removing one record moves the client's
//! contribution, and so the sum, by one z_r: the L2 sensitivity is Delta2.
//!
//! The client adds independent N_Z(0, variance) noise to every coordinate
//! ([`WideGaussian`]) and encrypts the negated sum: the coordinator's
//! model step is `global + average`, and with weight omega per client the
//! opened average is -(sum of z + noise) / (n omega), a gradient step of
//! rate lr = gamma * r / omega over n * r records, r the planned records
//! per client. The true record counts are never released, exactly or
//! noised: the step divides by the planned count, which is public (the
//! fixed-denominator estimator of DP-FedAvg, McMahan et al. 2018).
//!
//! Every sum of a DP federation holds at least `noise_clients` clients'
//! noise (the holders refuse smaller sets when `noise_clients` is the
//! policy's minimum set size); the accountant
//! ([`super::accountant`]) charges each round the distributed discrete
//! Gaussian bound for that many clients, whatever the set's size.

use ringsum_math::{Csprng, MathError, WideGaussian};
use zeroize::Zeroizing;

use super::accountant::{
    AccountantError, DistributedGaussian, calibrate_variance, epsilon_for_rho,
};
use crate::model::stochastic_round;
use crate::params::{EncodingParams, ParameterSet};

/// What a federation asks of differential privacy (the `[privacy]`
/// section of its configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct PrivacySettings {
    /// Target epsilon over all the federation's rounds.
    pub epsilon: f64,
    /// Target delta over all the rounds, in (0, 1).
    pub delta: f64,
    /// L2 norm C every record's gradient is clipped to.
    pub clip: f64,
    /// The gradient step's rate.
    pub learning_rate: f64,
    /// The planned (public) number of records per client: the step
    /// divides the noised gradient sum by this times the set's size.
    pub records_per_client: u64,
    /// The most records a client adds up in one round.
    pub max_records: u64,
    /// The fewest clients whose noise every opened sum holds: the
    /// policy's minimum set size, less any clients trusted not to add
    /// their noise.
    pub noise_clients: u64,
}

/// Why a privacy plan or a contribution was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// epsilon is not a positive number.
    #[error("privacy: epsilon must be a positive number, got {value}")]
    Epsilon {
        /// The value given.
        value: f64,
    },
    /// delta is outside (0, 1).
    #[error("privacy: delta must lie strictly between 0 and 1, got {value:e}")]
    Delta {
        /// The value given.
        value: f64,
    },
    /// The clipping norm is not a number in [1e-6, 1e6].
    #[error(
        "privacy: the clipping norm must be a positive number between 1e-6 and 1e6, got {value}"
    )]
    Clip {
        /// The value given.
        value: f64,
    },
    /// The learning rate is not a positive number.
    #[error("privacy: the learning rate must be a positive number, got {value}")]
    LearningRate {
        /// The value given.
        value: f64,
    },
    /// A count that must lie in a range does not.
    #[error("privacy: {what} must be between {min} and {max}, got {value}")]
    Count {
        /// What was counted.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// No quantization scale keeps the noised sum inside the slots.
    #[error(
        "privacy: the noised sum of {clients} clients could overflow the {slot_bits}-bit slots \
         (it needs {needed_bits} bits at the coarsest usable scale 2^{scale_bits}); lower \
         max_records, raise epsilon, or use a parameter set with wider slots"
    )]
    SlotOverflow {
        /// Clients a sum may hold.
        clients: u64,
        /// The slot width.
        slot_bits: u32,
        /// The bits the worst-case sum needs.
        needed_bits: u32,
        /// The scale tried last.
        scale_bits: u32,
    },
    /// The learning rate needs a declared sample count above the
    /// parameter set's largest weight at every usable scale.
    #[error(
        "privacy: the learning rate {learning_rate} needs a declared sample count of {declared}, \
         above the largest weight the parameter set allows ({max_weight}); raise the learning \
         rate or lower records_per_client"
    )]
    WeightOutOfRange {
        /// The rate asked for.
        learning_rate: f64,
        /// The count it needs at the coarsest usable scale.
        declared: u64,
        /// The parameter set's `max_weight`.
        max_weight: u64,
    },
    /// The weight slot cannot express the learning rate closely enough.
    #[error(
        "privacy: the learning rate {asked} cannot be expressed by the slots' weights (the \
         nearest is {nearest}); lower the learning rate or raise records_per_client"
    )]
    LearningRateInexact {
        /// The rate asked for.
        asked: f64,
        /// The nearest the weights give.
        nearest: f64,
    },
    /// More noise than the sampler supports at every usable scale.
    #[error(
        "privacy: the target needs more noise than the sampler supports (variance above \
         2^44 quanta) at every usable quantization scale; raise epsilon or delta, or train \
         fewer rounds"
    )]
    TooMuchNoise,
    /// The sampler's distance from the ideal noise uses up delta.
    #[error(
        "privacy: {samples:e} noise samples over the run leave no room in delta = {delta:e}: \
         the sampler's statistical distance, times 1 + e^epsilon, adds {slack:e}; raise delta \
         or, for epsilon above about 20, lower epsilon"
    )]
    SamplerSlack {
        /// Noise samples over the run.
        samples: f64,
        /// The target delta.
        delta: f64,
        /// Their total statistical distance.
        slack: f64,
    },
    /// The accountant refused.
    #[error("privacy: {0}")]
    Accountant(#[from] AccountantError),
    /// The noise sampler refused the variance.
    #[error("privacy: the noise sampler refused the variance: {0}")]
    Sampler(#[from] MathError),
    /// A record's gradient has the wrong length.
    #[error("privacy: a record's gradient has {found} values, the model {expected}")]
    GradientLength {
        /// Parameters of the model.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A client added more records than the plan allows in one round.
    #[error(
        "privacy: a client may add at most {max} records per round (max_records); sample the \
         records of a round instead"
    )]
    TooManyRecords {
        /// The plan's limit.
        max: u64,
    },
}

/// Result of the privacy layer.
pub type PrivacyResult<T> = Result<T, PrivacyError>;

/// The validated plan: the settings and what follows from them for one
/// parameter set, model size, number of rounds and of clients.
#[derive(Clone, Debug)]
pub struct PrivacyPlan {
    settings: PrivacySettings,
    rounds: u64,
    dimension: usize,
    clients: u64,
    scale_bits: u32,
    /// floor((gamma C + sqrt(d))^2): the exact bound on ||z_r||^2.
    norm_bound_squared: u128,
    sampler: WideGaussian,
    weight: i64,
    declared_samples: u64,
    delta_conversion: f64,
    sampler_slack: f64,
    round_rho: f64,
}

/// How far the learning rate the weight expresses may be from the one
/// asked for.
const LEARNING_RATE_TOLERANCE: f64 = 0.01;

/// The finest scale tried: gamma C >= 100 sqrt(d) makes the rounding's
/// share of the sensitivity at most 1%.
const ROUNDING_SHARE_FINEST: f64 = 0.01;

/// The coarsest scale accepted: the rounding adds at most a quarter to the
/// sensitivity.
const ROUNDING_SHARE_COARSEST: f64 = 0.25;

impl PrivacyPlan {
    /// Derives the plan for `rounds` rounds of a model of `dimension`
    /// parameters in a federation of `clients` clients (the most a sum
    /// can hold) under `params`.
    ///
    /// The scale gamma = 2^g is the finest power of two that needs no more
    /// (rounding at most 1% of the sensitivity) and keeps the worst-case
    /// noised sum of every client inside a slot; the per-client variance
    /// is the smallest reaching (epsilon, delta - slack) over the rounds,
    /// where slack is the sampler's statistical distance summed over every
    /// noise sample of the run.
    ///
    /// # Errors
    /// [`PrivacyError`] for a setting out of range, a target the
    /// accountant cannot reach, or sums that would overflow the slots.
    pub fn new(
        settings: PrivacySettings,
        params: &ParameterSet,
        dimension: usize,
        rounds: u64,
        clients: u64,
    ) -> PrivacyResult<Self> {
        check_settings(&settings, rounds, clients)?;
        let encoding = params.encoding();
        let d = dimension.max(1) as f64;
        let root_d = d.sqrt();
        let finest = (root_d / (ROUNDING_SHARE_FINEST * settings.clip))
            .log2()
            .ceil()
            .max(0.0);
        let slot_limit = 1u128 << (encoding.slot_bits - 1);
        let mut last_needed = 0u32;
        let mut too_many_samples = None;
        let mut too_much_noise = false;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "finest is a small non-negative integer (a bit count)"
        )]
        let finest = finest as u32;
        let mut scale_bits = finest.min(62);
        loop {
            let gamma = f64::from(scale_bits).exp2();
            if root_d / (gamma * settings.clip) > ROUNDING_SHARE_COARSEST {
                if too_much_noise {
                    return Err(PrivacyError::TooMuchNoise);
                }
                if let Some(declared) = too_many_samples {
                    return Err(PrivacyError::WeightOutOfRange {
                        learning_rate: settings.learning_rate,
                        declared,
                        max_weight: encoding.max_weight,
                    });
                }
                return Err(PrivacyError::SlotOverflow {
                    clients,
                    slot_bits: encoding.slot_bits,
                    needed_bits: last_needed,
                    scale_bits: scale_bits + 1,
                });
            }
            let plan =
                match Self::at_scale(&settings, encoding, dimension, rounds, clients, scale_bits) {
                    Ok(plan) => plan,
                    // Each coarser bit divides the variance by 4.
                    Err(PrivacyError::Sampler(_)) => {
                        too_much_noise = true;
                        if scale_bits == 0 {
                            return Err(PrivacyError::TooMuchNoise);
                        }
                        scale_bits -= 1;
                        continue;
                    }
                    Err(other) => return Err(other),
                };
            too_much_noise = false;
            let needed = plan.worst_sum(clients);
            let fits = needed < slot_limit;
            let weighs = plan.declared_samples <= encoding.max_weight
                && plan.weight_sum(clients) < slot_limit;
            if fits && weighs {
                return Ok(plan);
            }
            // A coarser scale lowers the declared count too: try it, and
            // say which limit failed if none is left.
            too_many_samples = (fits && !weighs).then_some(plan.declared_samples);
            last_needed = 128 - needed.leading_zeros() + 1;
            if scale_bits == 0 {
                return Err(PrivacyError::SlotOverflow {
                    clients,
                    slot_bits: encoding.slot_bits,
                    needed_bits: last_needed,
                    scale_bits,
                });
            }
            scale_bits -= 1;
        }
    }

    /// The plan at scale 2^`scale_bits`, not yet checked against the slots.
    fn at_scale(
        settings: &PrivacySettings,
        encoding: &EncodingParams,
        dimension: usize,
        rounds: u64,
        clients: u64,
        scale_bits: u32,
    ) -> PrivacyResult<Self> {
        let gamma = f64::from(scale_bits).exp2();
        let d = dimension.max(1) as f64;
        let radius = gamma * settings.clip + d.sqrt();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive bound far below 2^128, floored"
        )]
        let norm_bound_squared = (radius * radius).floor() as u128;
        let sensitivity = sensitivity_of(norm_bound_squared);
        // Noise samples of the whole run: every client's, every coordinate,
        // every round. Their statistical distances add up (union bound) to
        // eta, and a mechanism within eta of an (epsilon, delta)-DP one is
        // (epsilon, delta + (1 + e^epsilon) eta)-DP: the variance is
        // calibrated for delta less that slack.
        let samples = rounds as f64 * clients as f64 * d;
        let delta = settings.delta;
        let factor = 1.0 + settings.epsilon.exp();
        let mut slack = 0.0;
        let mut tries = 0;
        let sampler = loop {
            let variance = calibrate_variance(
                settings.epsilon,
                delta - slack,
                rounds,
                settings.noise_clients,
                sensitivity,
                dimension as u64,
            )?;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive variance, rounded up to the integer the sampler takes"
            )]
            let integer = variance.ceil().clamp(1.0, 1.0e19) as u64;
            let sampler = WideGaussian::new(integer)?;
            let needed = factor * samples * sampler.statistical_distance();
            if needed.is_nan() || needed >= delta / 2.0 {
                return Err(PrivacyError::SamplerSlack {
                    samples,
                    delta,
                    slack: needed,
                });
            }
            // The variance calibrated for delta - slack covers the
            // sampler's slack once the slack assumed is at least the one
            // the sampler needs.
            if needed <= slack {
                break sampler;
            }
            tries += 1;
            if tries == 5 {
                return Err(PrivacyError::SamplerSlack {
                    samples,
                    delta,
                    slack: needed,
                });
            }
            slack = needed * 1.01;
        };
        // The weight slot omega must be what the declared sample count s
        // gives (s / max_weight in units of 2^-f: the coordinator checks
        // it), and the step's rate is gamma r / omega: s is the public
        // count closest to the asked-for rate.
        let unit = f64::from(encoding.fraction_bits).exp2() / encoding.max_weight as f64;
        let declared = (gamma * settings.records_per_client as f64 / settings.learning_rate / unit)
            .round()
            .max(1.0);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "positive, rounded; checked against max_weight by the caller"
        )]
        let declared_samples = declared.min(1.0e18) as u64;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "rounded; checked against the slots by the caller"
        )]
        let weight = (declared * unit).round().clamp(1.0, 9.0e15) as i64;
        let effective = gamma * settings.records_per_client as f64 / weight as f64;
        if (effective / settings.learning_rate - 1.0).abs() > LEARNING_RATE_TOLERANCE {
            return Err(PrivacyError::LearningRateInexact {
                asked: settings.learning_rate,
                nearest: effective,
            });
        }
        let round_rho = DistributedGaussian {
            variance: sampler.variance() as f64,
            clients: settings.noise_clients,
            l2_sensitivity: sensitivity,
            dimension: dimension as u64,
        }
        .rho()?;
        Ok(Self {
            settings: settings.clone(),
            rounds,
            dimension,
            clients,
            scale_bits,
            norm_bound_squared,
            sampler,
            weight,
            declared_samples,
            delta_conversion: delta - slack,
            sampler_slack: slack,
            round_rho,
        })
    }

    /// The largest magnitude one slot of the sum of `clients`
    /// contributions can reach: every record's coordinate at most
    /// ceil(gamma C) + 1 (one rounding step past gamma C), every noise
    /// sample at most the sampler's bound.
    fn worst_sum(&self, clients: u64) -> u128 {
        let gamma_clip = (self.gamma() * self.settings.clip).ceil();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive value below 2^62 (gamma <= 2^62 and the clip is checked)"
        )]
        let per_record = gamma_clip.min(4.0e18) as u128 + 1;
        let per_client = per_record
            .saturating_mul(u128::from(self.settings.max_records))
            .saturating_add(u128::from(self.sampler.bound().unsigned_abs()));
        per_client.saturating_mul(u128::from(clients))
    }

    /// The largest magnitude one honest contribution puts in a value
    /// slot: `max_records` records of at most ceil(gamma C) + 1 each and
    /// one noise sample at the sampler's bound (for the coordinator's
    /// plausibility check of an opened sum).
    #[must_use]
    pub fn worst_contribution(&self) -> u64 {
        u64::try_from(self.worst_sum(1)).unwrap_or(u64::MAX)
    }

    /// The weight slot of a sum of `clients` contributions.
    fn weight_sum(&self, clients: u64) -> u128 {
        u128::from(self.weight.unsigned_abs()).saturating_mul(u128::from(clients))
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &PrivacySettings {
        &self.settings
    }

    /// The rounds the plan covers.
    #[must_use]
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Parameters of the model.
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The scale gamma = 2^scale_bits of the quantized gradients.
    #[must_use]
    pub fn scale_bits(&self) -> u32 {
        self.scale_bits
    }

    /// gamma.
    #[must_use]
    pub fn gamma(&self) -> f64 {
        f64::from(self.scale_bits).exp2()
    }

    /// The L2 sensitivity of one round's sum to one record, in quanta:
    /// sqrt of the exact integer bound on a record's squared norm.
    #[must_use]
    pub fn sensitivity(&self) -> f64 {
        sensitivity_of(self.norm_bound_squared)
    }

    /// The noise of one client, one coordinate.
    #[must_use]
    pub fn sampler(&self) -> &WideGaussian {
        &self.sampler
    }

    /// The standard deviation of the noise a sum of `noise_clients`
    /// clients holds, in gradient units (the quanta divided by gamma).
    #[must_use]
    pub fn noise_std(&self) -> f64 {
        (self.sampler.variance() as f64 * self.settings.noise_clients as f64).sqrt() / self.gamma()
    }

    /// The weight slot every DP client encrypts: what
    /// [`Self::declared_samples`] gives, about gamma r / lr.
    #[must_use]
    pub fn weight(&self) -> i64 {
        self.weight
    }

    /// The sample count every DP client declares in its submission: a
    /// public constant that sets the weight (and so the step's rate), not
    /// a count of records.
    #[must_use]
    pub fn declared_samples(&self) -> u64 {
        self.declared_samples
    }

    /// The learning rate the rounded weight gives: gamma r / omega.
    #[must_use]
    pub fn effective_learning_rate(&self) -> f64 {
        self.gamma() * self.settings.records_per_client as f64 / self.weight as f64
    }

    /// The zCDP rho of one round whose sum holds `clients` clients' noise
    /// (at least `noise_clients`; fewer are charged as `noise_clients`
    /// would not be safe, so they are refused).
    ///
    /// # Errors
    /// [`PrivacyError::Count`] for fewer clients than `noise_clients`;
    /// the accountant's.
    pub fn round_rho(&self, clients: u64) -> PrivacyResult<f64> {
        if clients < self.settings.noise_clients {
            return Err(PrivacyError::Count {
                what: "clients in a noised sum",
                value: clients,
                min: self.settings.noise_clients,
                max: self.clients,
            });
        }
        Ok(DistributedGaussian {
            variance: self.sampler.variance() as f64,
            clients,
            l2_sensitivity: self.sensitivity(),
            dimension: self.dimension as u64,
        }
        .rho()?)
    }

    /// The zCDP rho a round is charged when its opened set holds
    /// `set_size` submissions in a federation whose sets hold at least
    /// `min_clients`: of them, `min_clients - noise_clients` may be
    /// malicious and add no noise, so at least
    /// max(noise_clients, set_size - (min_clients - noise_clients)) honest
    /// clients' noise is in the sum. More noise than `noise_clients`'
    /// is post-processing of theirs, so the charge is never above the
    /// plan's.
    ///
    /// # Errors
    /// The accountant's.
    pub fn set_rho(&self, set_size: u64, min_clients: u64) -> PrivacyResult<f64> {
        let noise_clients = self.settings.noise_clients;
        let tolerated = min_clients.saturating_sub(noise_clients);
        let honest = set_size.saturating_sub(tolerated).max(noise_clients);
        Ok(self.round_rho(honest)?.min(self.round_rho(noise_clients)?))
    }

    /// The delta the conversion from RDP uses: the target less the
    /// sampler's slack.
    #[must_use]
    pub fn conversion_delta(&self) -> f64 {
        self.delta_conversion
    }

    /// The sampler's statistical distance over every noise sample of the
    /// run, part of delta.
    #[must_use]
    pub fn sampler_slack(&self) -> f64 {
        self.sampler_slack
    }

    /// Epsilon after `rounds` rounds at the planned (worst-case) rho.
    ///
    /// # Errors
    /// The accountant's.
    pub fn planned_epsilon(&self, rounds: u64) -> PrivacyResult<f64> {
        Ok(epsilon_for_rho(
            self.round_rho * rounds as f64,
            self.delta_conversion,
        )?)
    }

    /// A client's empty contribution to a round.
    #[must_use]
    pub fn contribution(&self) -> Contribution<'_> {
        Contribution {
            plan: self,
            sums: Zeroizing::new(vec![0; self.dimension]),
            record: Zeroizing::new(Vec::new()),
            records: 0,
            non_finite: 0,
            noise_drawn: false,
        }
    }
}

fn sensitivity_of(norm_bound_squared: u128) -> f64 {
    // Rounded up by a relative 1e-12 so that the float never understates
    // the integer bound.
    (norm_bound_squared as f64).sqrt() * (1.0 + 1e-12)
}

fn check_settings(settings: &PrivacySettings, rounds: u64, clients: u64) -> PrivacyResult<()> {
    if !(settings.epsilon.is_finite() && settings.epsilon > 0.0) {
        return Err(PrivacyError::Epsilon {
            value: settings.epsilon,
        });
    }
    if !(settings.delta > 0.0 && settings.delta < 1.0) {
        return Err(PrivacyError::Delta {
            value: settings.delta,
        });
    }
    if !(settings.clip.is_finite() && (1e-6..=1e6).contains(&settings.clip)) {
        return Err(PrivacyError::Clip {
            value: settings.clip,
        });
    }
    if !(settings.learning_rate.is_finite() && settings.learning_rate > 0.0) {
        return Err(PrivacyError::LearningRate {
            value: settings.learning_rate,
        });
    }
    let count = |what, value, min, max| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(PrivacyError::Count {
                what,
                value,
                min,
                max,
            })
        }
    };
    count("rounds", rounds, 1, u64::MAX)?;
    count("clients", clients, 1, u64::MAX)?;
    count("noise_clients", settings.noise_clients, 1, clients)?;
    count("max_records", settings.max_records, 1, 1 << 32)?;
    count(
        "records_per_client",
        settings.records_per_client,
        1,
        settings.max_records,
    )
}

/// One client's contribution to one round: the sum of its records'
/// clipped, scaled and rounded gradients. Secret: wiped on drop, never
/// printed.
pub struct Contribution<'p> {
    plan: &'p PrivacyPlan,
    sums: Zeroizing<Vec<i64>>,
    record: Zeroizing<Vec<i64>>,
    records: u64,
    non_finite: u64,
    /// Whether the noise is in `sums` already.
    noise_drawn: bool,
}

impl std::fmt::Debug for Contribution<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contribution").finish_non_exhaustive()
    }
}

/// How often a record's rounding is drawn again before it is truncated
/// toward zero instead (which never exceeds the bound).
const ROUNDING_TRIES: usize = 8;

impl Contribution<'_> {
    /// Records added so far.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records whose gradient was not finite and counted as zero (for the
    /// client's own log: never sent).
    #[must_use]
    pub fn non_finite_records(&self) -> u64 {
        self.non_finite
    }

    /// Adds one record's gradient: clipped to L2 norm C, scaled by gamma,
    /// rounded stochastically, and the rounding drawn again (then
    /// truncated toward zero) until the integer vector's squared norm is
    /// within the plan's exact bound. A gradient that is not finite counts
    /// as zero ([`Self::non_finite_records`]), never as an error.
    ///
    /// # Errors
    /// [`PrivacyError::GradientLength`] (the caller's shape, not its data)
    /// or [`PrivacyError::TooManyRecords`] (past the plan's domain); the
    /// contribution is unchanged.
    pub fn add_record(&mut self, gradient: &[f32], rng: &mut Csprng) -> PrivacyResult<()> {
        let plan = self.plan;
        if gradient.len() != plan.dimension {
            return Err(PrivacyError::GradientLength {
                expected: plan.dimension,
                found: gradient.len(),
            });
        }
        if self.records >= plan.settings.max_records {
            return Err(PrivacyError::TooManyRecords {
                max: plan.settings.max_records,
            });
        }
        // A record whose gradient is not finite counts as a zero gradient:
        // refusing it would make whether the client submits depend on one
        // record (a coordinator could choose a model that overflows only
        // a target record's gradient and watch who drops out).
        let finite = gradient.iter().all(|g| g.is_finite());
        let norm = if finite {
            gradient
                .iter()
                .map(|g| f64::from(*g) * f64::from(*g))
                .sum::<f64>()
                .sqrt()
        } else {
            self.non_finite += 1;
            0.0
        };
        let clip = plan.settings.clip;
        let factor = if finite {
            plan.gamma() * if norm > clip { clip / norm } else { 1.0 }
        } else {
            0.0
        };
        self.record.resize(plan.dimension, 0);
        let mut accepted = false;
        for _ in 0..ROUNDING_TRIES {
            for (z, g) in self.record.iter_mut().zip(gradient) {
                let random = u32::try_from(rng.next_u64() >> 32).unwrap_or(0);
                let y = if finite { f64::from(*g) * factor } else { 0.0 };
                *z = stochastic_round(y, random);
            }
            if self.within_bound() {
                accepted = true;
                break;
            }
        }
        if !accepted {
            for (z, g) in self.record.iter_mut().zip(gradient) {
                *z = if finite {
                    round_toward_zero(f64::from(*g) * factor)
                } else {
                    0
                };
            }
        }
        // Truncation toward zero does not lengthen the vector: its norm
        // is at most gamma C (1 + float error), far inside the bound.
        for (s, z) in self.sums.iter_mut().zip(self.record.iter()) {
            *s += *z;
        }
        self.records += 1;
        Ok(())
    }

    fn within_bound(&self) -> bool {
        let squared = self
            .record
            .iter()
            .map(|z| {
                let m = u128::from(z.unsigned_abs());
                m * m
            })
            .fold(0u128, u128::saturating_add);
        squared <= self.plan.norm_bound_squared
    }

    /// Draws this contribution's noise now and adds it to the sum: the
    /// noise does not depend on the data, so a client draws it while its
    /// model trains (as it computes the encryption masks then,
    /// [`crate::round::RoundSecret::precompute`]) and [`Self::finish`]
    /// then only negates. Once per contribution: calling it again does
    /// nothing.
    pub fn draw_noise(&mut self, rng: &mut Csprng) {
        if !self.noise_drawn {
            self.plan.sampler.add_noise(rng, &mut self.sums);
            self.noise_drawn = true;
        }
    }

    /// Adds this client's noise (unless [`Self::draw_noise`] did) and
    /// negates the sum (the coordinator adds the opened average to the
    /// model: a step down the gradient; the noise is symmetric, so its
    /// negation is distributed as itself): the values and the weight to
    /// encrypt ([`crate::round::RoundSecret::encrypt_quantized`]).
    #[must_use]
    pub fn finish(mut self, rng: &mut Csprng) -> NoisyContribution {
        self.draw_noise(rng);
        for s in self.sums.iter_mut() {
            *s = s.wrapping_neg();
        }
        NoisyContribution {
            weight: self.plan.weight,
            values: std::mem::take(&mut self.sums),
        }
    }
}

/// Rounds toward zero.
fn round_toward_zero(y: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "|y| <= gamma C, far inside i64; `as` truncates toward zero"
    )]
    let t = y.trunc() as i64;
    t
}

/// A client's noised, negated contribution: what it encrypts. Secret
/// until summed: wiped on drop, never printed. Only
/// [`Contribution::finish`] makes one, so it always holds one fresh draw
/// of noise; submitting consumes it.
pub struct NoisyContribution {
    weight: i64,
    values: Zeroizing<Vec<i64>>,
}

impl NoisyContribution {
    /// The weight slot.
    #[must_use]
    pub fn weight(&self) -> i64 {
        self.weight
    }

    /// The value slots, one per parameter. Secret until summed.
    #[must_use]
    pub fn values(&self) -> &[i64] {
        &self.values
    }
}

impl std::fmt::Debug for NoisyContribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoisyContribution")
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PrivacySettings {
        PrivacySettings {
            epsilon: 1.0,
            delta: 1e-5,
            clip: 1.0,
            learning_rate: 2.0,
            records_per_client: 57,
            max_records: 80,
            noise_clients: 8,
        }
    }

    fn params() -> ParameterSet {
        ParameterSet::builtin(crate::DEFAULT_ROUND_KEY_SET).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn plan(settings: PrivacySettings) -> PrivacyResult<PrivacyPlan> {
        PrivacyPlan::new(settings, &params(), 62, 10, 8)
    }

    fn rng(seed: u8) -> Csprng {
        Csprng::from_seed([seed; 32])
    }

    #[test]
    fn the_plan_meets_its_target_and_fits_the_slots() {
        let plan = plan(settings()).unwrap_or_else(|e| unreachable!("{e}"));
        // gamma C >= 100 sqrt(62) = 787: the finest scale is 2^10.
        assert_eq!(plan.scale_bits(), 10);
        let expected = (1024f64 + 62f64.sqrt()).powi(2).floor().sqrt();
        assert!((plan.sensitivity() - expected).abs() < 1e-6);
        let epsilon = plan
            .planned_epsilon(10)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(epsilon <= 1.0 && epsilon > 0.99, "{epsilon}");
        // The worst-case sum of 8 clients stays inside the 28-bit slots.
        let limit = 1u128 << (params().encoding().slot_bits - 1);
        assert!(plan.worst_sum(8) < limit);
        // The weight is what the declared count gives, and the rate is
        // the one asked for to within the weight's rounding.
        let encoding = params().encoding().clone();
        let unit = f64::from(encoding.fraction_bits).exp2() / encoding.max_weight as f64;
        assert!((plan.weight() as f64 - plan.declared_samples() as f64 * unit).abs() <= 0.5);
        assert!((plan.effective_learning_rate() / 2.0 - 1.0).abs() < 1e-3);
        assert!(plan.sampler_slack() < 1e-12);
    }

    #[test]
    fn more_privacy_means_more_noise() {
        let noise = |epsilon| {
            plan(PrivacySettings {
                epsilon,
                ..settings()
            })
            .map(|p| p.noise_std())
            .unwrap_or_else(|e| unreachable!("{e}"))
        };
        let stds: Vec<f64> = [0.5, 1.0, 2.0, 8.0].into_iter().map(noise).collect();
        assert!(stds.windows(2).all(|w| w[0] > w[1]), "{stds:?}");
    }

    #[test]
    fn refusals_name_the_setting() {
        let refused = |s: PrivacySettings| plan(s).err().map(|e| e.to_string()).unwrap_or_default();
        for epsilon in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                refused(PrivacySettings {
                    epsilon,
                    ..settings()
                })
                .contains("epsilon")
            );
        }
        for delta in [0.0, 1.0, 1.5, -1e-5, f64::NAN] {
            assert!(
                refused(PrivacySettings {
                    delta,
                    ..settings()
                })
                .contains("delta")
            );
        }
        for clip in [0.0, -1.0, f64::NAN] {
            assert!(refused(PrivacySettings { clip, ..settings() }).contains("clipping norm"));
        }
        assert!(
            refused(PrivacySettings {
                learning_rate: 0.0,
                ..settings()
            })
            .contains("learning rate")
        );
        assert!(
            refused(PrivacySettings {
                noise_clients: 9,
                ..settings()
            })
            .contains("noise_clients")
        );
        assert!(
            refused(PrivacySettings {
                records_per_client: 81,
                ..settings()
            })
            .contains("records_per_client")
        );
        // Ten million records a client: no scale keeps the sum in 28 bits.
        let overflow = refused(PrivacySettings {
            max_records: 10_000_000,
            ..settings()
        });
        assert!(overflow.contains("overflow"), "{overflow}");
    }

    #[test]
    fn a_record_moves_the_sum_by_at_most_the_sensitivity() {
        let plan = plan(settings()).unwrap_or_else(|e| unreachable!("{e}"));
        let mut rng = rng(3);
        // Long, short, one-hot and adversarial (every coordinate just
        // below a rounding step) gradients.
        let records: Vec<Vec<f32>> = vec![
            vec![1000.0; 62],
            vec![1e-4; 62],
            (0..62).map(|i| if i == 5 { -7.0 } else { 0.0 }).collect(),
            (0..62).map(|i| (i as f32 * 0.37).sin()).collect(),
            vec![0.999 / 62f32.sqrt(); 62],
        ];
        for record in &records {
            for _ in 0..50 {
                let mut one = plan.contribution();
                one.add_record(record, &mut rng)
                    .unwrap_or_else(|e| unreachable!("{e}"));
                let squared: f64 = one.sums.iter().map(|z| (*z as f64).powi(2)).sum();
                assert!(squared.sqrt() <= plan.sensitivity(), "{record:?}");
                assert!(one.sums.iter().all(|z| z.unsigned_abs() <= 1025));
            }
        }
    }

    #[test]
    fn contributions_sum_exactly_and_refuse_bad_records() {
        let plan = plan(settings()).unwrap_or_else(|e| unreachable!("{e}"));
        let mut rng = rng(4);
        let mut contribution = plan.contribution();
        // Norm 0.28: inside the clip.
        let good: Vec<f32> = (0..62).map(|i| i as f32 / 1000.0).collect();
        contribution
            .add_record(&good, &mut rng)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let before = contribution.sums.to_vec();
        // A record whose gradient is not finite counts as zero: no error
        // (whether a client submits must not depend on one record).
        let mut bad = good.clone();
        bad[7] = f32::NAN;
        contribution
            .add_record(&bad, &mut rng)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(contribution.sums.to_vec(), before);
        assert_eq!(contribution.non_finite_records(), 1);
        assert!(matches!(
            contribution.add_record(&good[..61], &mut rng),
            Err(PrivacyError::GradientLength {
                expected: 62,
                found: 61
            })
        ));
        assert_eq!(contribution.sums.to_vec(), before);
        assert_eq!(contribution.records(), 2);
        for _ in 2..80 {
            contribution
                .add_record(&good, &mut rng)
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        assert!(matches!(
            contribution.add_record(&good, &mut rng),
            Err(PrivacyError::TooManyRecords { max: 80 })
        ));
        // Stochastic rounding is unbiased: 79 copies of g * gamma (and the
        // zero) sum to 79 g gamma within a few standard deviations.
        for (i, s) in contribution.sums.iter().enumerate() {
            let exact = 79.0 * f64::from(good[i]) * 1024.0;
            assert!((*s as f64 - exact).abs() <= 6.0 * 80f64.sqrt() / 2.0, "{i}");
        }
        // The noise is added once, to every coordinate, and the sum negated.
        let sums = contribution.sums.to_vec();
        let noisy = contribution.finish(&mut rng);
        assert_eq!(noisy.weight, plan.weight());
        let bound = plan.sampler().bound();
        for (n, s) in noisy.values.iter().zip(&sums) {
            assert!((n + s).abs() <= bound);
        }
        assert_ne!(
            noisy.values.to_vec(),
            sums.iter().map(|s| -s).collect::<Vec<_>>()
        );
        assert!(!format!("{noisy:?}").contains(&sums[10].to_string()));
    }

    #[test]
    fn fewer_clients_than_planned_are_refused_more_are_cheaper() {
        let plan = plan(settings()).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(plan.round_rho(7).is_err());
        let at_plan = plan.round_rho(8).unwrap_or_else(|e| unreachable!("{e}"));
        let more = plan
            .round_rho(plan.clients)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(more <= at_plan);
    }

    #[test]
    fn sets_are_charged_for_their_honest_clients_only() {
        // Sets of at least 8, 2 of which may add no noise.
        let plan = plan(PrivacySettings {
            noise_clients: 6,
            ..settings()
        })
        .unwrap_or_else(|e| unreachable!("{e}"));
        let at = |set| plan.set_rho(set, 8).unwrap_or_else(|e| unreachable!("{e}"));
        let six = plan.round_rho(6).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            (at(8) - six).abs() <= 1e-15 * six,
            "a set of 8 holds 6 honest clients"
        );
        assert!(at(8) >= at(8 + 1) && at(8) <= six);
        assert!(at(3) <= six, "never charged above the plan");
    }

    #[test]
    fn what_the_slots_or_the_sampler_cannot_express_is_refused_by_name() {
        let refused = |s: PrivacySettings| plan(s).err().map(|e| e.to_string()).unwrap_or_default();
        // A rate the weights cannot express within 1%.
        let message = refused(PrivacySettings {
            learning_rate: 1e6,
            ..settings()
        });
        assert!(message.contains("cannot be expressed"), "{message}");
        // A rate whose declared count exceeds every weight.
        let message = refused(PrivacySettings {
            learning_rate: 1e-9,
            ..settings()
        });
        assert!(message.contains("raise the learning rate"), "{message}");
        // More noise than the sampler (at fine scales) or the slots (at
        // coarse ones) hold.
        let message = refused(PrivacySettings {
            epsilon: 1e-9,
            ..settings()
        });
        assert!(message.contains("raise epsilon"), "{message}");
        assert!(
            refused(PrivacySettings {
                clip: 1e-9,
                ..settings()
            })
            .contains("clipping norm")
        );
    }

    #[test]
    fn the_samplers_distance_is_charged_with_its_factor() {
        let plan = plan(settings()).unwrap_or_else(|e| unreachable!("{e}"));
        let samples = 10.0 * 8.0 * 62.0;
        let eta = samples * plan.sampler().statistical_distance();
        let charged = settings().delta - plan.conversion_delta();
        assert!(
            charged >= (1.0 + 1f64.exp()) * eta,
            "{charged} < (1 + e) {eta}"
        );
    }
}
