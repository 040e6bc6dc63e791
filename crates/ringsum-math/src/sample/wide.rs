//! A constant-time, integer-only sampler of the discrete Gaussian with a
//! large variance: the noise of distributed differential privacy.

use num_bigint::BigUint;
use num_traits::{CheckedSub, ToPrimitive, Zero};
use zeroize::Zeroizing;

use super::Csprng;
use crate::error::{MathError, Result};

/// Candidates are kept inside (-2^k, 2^k) with 2^k - 1 >= `TAIL_SIGMAS` sigma.
const TAIL_SIGMAS: u128 = 12;
/// Annuli A_0..A_J of the envelope; J = k - a is 4 or 5 for every supported
/// variance (see [`WideGaussian`]), so at most 6 annuli.
const MAX_ANNULI: usize = 6;
/// Fraction bits of the envelope weights computed in [`WideGaussian::new`].
const WEIGHT_BITS: u32 = 192;
/// Guard bits of the fixed-point exponential of [`exp_weight`].
const WEIGHT_GUARD: u32 = 32;
/// floor(log2(e) * 2^126), from a 400-bit evaluation of 1 / ln 2.
const LOG2E_Q126: u128 = 0x5c55_1d94_ae0b_f85d_df43_ff68_348e_9f44;
/// The reciprocal R = floor(2^118 log2(e) / (2 V)) puts d / (2 V ln 2) in
/// Q118 (d = x^2 - r^2 <= x^2): 10 integer bits, the top 64 of the 118
/// fraction bits are kept.
const RECIPROCAL_SHIFT: u32 = 118;
/// Bits of d R below the 64-bit fraction that is kept.
const FRACTION_SHIFT: u32 = RECIPROCAL_SHIFT - 64;
/// Coefficients c_0..c_12 of the degree-12 polynomial approximating
/// (2^h - 1) / h on [0, 1], in Q63 (rounded to nearest). They are the
/// interpolant at the 13 Chebyshev points of [0, 1], computed with 400-bit
/// arithmetic; its approximation error is below 2^-67.7 (the interpolation
/// bound with |d^13/dh^13| <= 2 ln(2)^14 / 14), measured 2^-68.2.
const EXP2_COEFFICIENTS: [u64; 12] = [
    6_393_154_322_601_327_830,
    2_215_698_446_797_868_704,
    511_935_043_789_664_704,
    88_711_583_058_148_997,
    12_298_036_736_074_046,
    1_420_724_914_181_065,
    140_681_641_977_660,
    12_189_124_883_714,
    938_783_088_809,
    65_042_428_912,
    4_125_493_794,
    222_178_227,
];
/// The leading coefficient c_12 (Q63).
const EXP2_TOP: u64 = 17_459_346;
/// Bound on the relative error of every computed acceptance probability
/// before the final truncation to a multiple of 2^-64 (see
/// [`WideGaussian::statistical_distance`]): 2^-59.
const RELATIVE_ERROR: f64 = 1.0 / 576_460_752_303_423_488.0;
/// 2^-64, the resolution of the acceptance test and of the annulus table.
const ULP: f64 = 1.0 / 18_446_744_073_709_551_616.0;
/// Trials per block for bulk sampling: 32 words of candidates (two per
/// word), 64 words for the choice of annulus and 64 for the acceptance
/// tests.
const BULK_WORDS: usize = 160;
/// Values noised per call of the bulk sampler in [`WideGaussian::add_noise`].
const NOISE_CHUNK: usize = 4096;
/// The 32 bits of a candidate word given to one candidate: the low bits
/// the offset inside the annulus (at most bits 0..24: every width is at
/// most 2^25), bit 31 the sign.
const HALF_WORD: u64 = 0xffff_ffff;

/// The discrete Gaussian N_Z(0, V) on the integers, P(x) proportional to
/// exp(-x^2 / (2 V)), for an integer variance parameter V in
/// [1, 2^44]: the noise each client adds to its quantized update before
/// encryption, so that the aggregate carries N_Z-like noise of variance
/// n V (Kairouz, Liu and Steinke, "The distributed discrete Gaussian
/// mechanism for federated learning with secure aggregation", ICML 2021;
/// Canonne, Kamath and Steinke, "The discrete Gaussian for differential
/// privacy", NeurIPS 2020).
///
/// # Method
///
/// Rejection sampling from a step envelope on S = (-2^k, 2^k), where k is
/// the smallest integer with (2^k - 1)^2 >= 144 V, that is 2^k - 1 >= 12
/// sigma (sigma = sqrt(V)). Let a be the largest integer with 4^a <= V, so
/// sigma / 2 < 2^a <= sigma, and J = k - a. J is always 4 or 5: from
/// 2^k < 24 sigma + 2 and 2^a > sigma / 2 follows 2^J < 48 + 4 / sigma
/// <= 52, and 2^k >= 12 sigma + 1 > 8 sigma >= 2^(a+3). The magnitudes are
/// split into annuli with power-of-two ends and widths,
///
/// - A_0 = [0, 2^a), inner radius r_0 = 0, width w_0 = 2^a;
/// - A_j = [2^(a+j-1), 2^(a+j)) for j = 1..J, inner radius r_j = 2^(a+j-1)
///   and width w_j = 2^(a+j-1);
///
/// and the envelope is exp(-r_j^2 / (2 V)) on A_j. A trial
///
/// 1. picks the annulus j with probability P_j ~ w_j exp(-r_j^2 / (2 V)) /
///    Z, Z = sum_j w_j exp(-r_j^2 / (2 V)): a 64-bit word s selects the
///    j with T_(j-1) <= s < T_j, where T_(-1) = 0, T_J = 2^64 and
///    T_0..T_(J-1) are the cumulative probabilities rounded to multiples of
///    2^-64 (computed once in [`Self::new`] with 192-bit arithmetic);
/// 2. draws a uniform offset o < w_j and a sign bit b from a fresh 32-bit
///    half word, and forms |x| = r_j + o, x = -|x| if b = 1 else |x|.
///    The candidate "x = 0 with b = 1" is always rejected, so every x with
///    |x| in A_j (zero included) is proposed with probability P_j / (2 w_j);
/// 3. accepts with probability exp(-(x^2 - r_j^2) / (2 V)) (at most 1).
///
/// The accepted x then has probability proportional to exp(-x^2 / (2 V))
/// on S. About 69% of the trials accept (67% for V = 4^a); the expected
/// number of trials per sample, [`Self::expected_trials`], is 2 Z /
/// sum_S exp(-x^2 / (2 V)), between about 1.45 and 1.5.
///
/// The acceptance probability is computed with integers only:
///
/// 1. u = d / (2 V ln 2) = d R / 2^118 with d = x^2 - r_j^2 and
///    R = floor(2^118 log2(e) / (2 V)) precomputed by one division in
///    [`Self::new`] (V is public). d <= x^2 < 2^52 and u < 488, so
///    d R < 2^127 fits a `u128`.
/// 2. u = m + g with m an integer and g a 64-bit fraction; with
///    h = 1 - g - 2^-64 (the bitwise complement of g),
///    2^-u = 2^-m 2^(h - 1) 2^(2^-64).
/// 3. 2^h = 1 + h q(h) with q(h) = (2^h - 1) / h approximated by a
///    degree-12 polynomial evaluated by Horner's rule in Q63, each product
///    rounded to nearest (64x64-bit multiplies).
/// 4. The threshold is t = floor(2^63 2^h / 2^m), a probability t / 2^64,
///    and a fresh uniform 64-bit word w accepts iff w < t.
///
/// # Constant time
///
/// A trial does the same operations in the same order for every candidate:
/// no branch and no memory index depends on the candidate, the annulus or
/// the accept bit. The annulus is found by comparing s with all the
/// (padded) thresholds T_0..T_4 in turn, each comparison the borrow of a
/// subtraction turned into a mask that selects r_j and w_j - 1 (public
/// powers of two); the shift by m is clamped with masks and the comparison
/// w < t is again a borrow. Trials are evaluated in fixed-size blocks drawn
/// with one call to the generator (four at a time in bulk, so that their
/// multiplication chains overlap). The accept bit only advances the count
/// of accepted samples, which decides the output slot the next candidate
/// is written to (skipped once the output is full) and whether another
/// block is run. So timing and the memory access pattern reveal which
/// trials were accepted, and nothing else. (On x86-64 the variable shifts
/// compile to `shl`/`shrd`/`cmov` and the comparisons to `sbb`; in the
/// bulk blocks, which [`Self::sample`] uses too, there is no branch inside
/// a block but the output-is-full test. Blocks of two trials let the
/// compiler turn the output logic into branches on a rejected candidate,
/// so there are none.)
/// Trials are independent, so the pattern of accepted trials (in
/// particular their number) is independent of the values returned: this
/// is the usual property of rejection sampling.
///
/// # Accuracy
///
/// See [`Self::statistical_distance`] for the derivation; for V = 10^6 and
/// V = 10^10 the bound is about 2.2e-18 per sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WideGaussian {
    variance: u64,
    /// Samples lie in (-2^k, 2^k).
    k: u32,
    /// The annulus A_0 is [0, 2^a).
    a: u32,
    /// floor(2^118 log2(e) / (2 V)).
    reciprocal: u128,
    /// The cumulative thresholds T_0..T_(J-1) of the annuli (multiples of
    /// 2^-64 scaled by 2^64), padded with 2^64 (never reached).
    annuli: [u128; MAX_ANNULI - 1],
    /// An upper bound on Z / 2^a in Q64 (Z as in the type's doc).
    envelope: u128,
}

impl WideGaussian {
    /// The smallest supported variance.
    pub const MIN_VARIANCE: u64 = 1;
    /// The largest supported variance, 2^44 (sigma = 2^22, bound 2^26). The
    /// limit keeps R above 2^73, so that its rounding adds at most 2^-63 to
    /// the relative error of the acceptance probability.
    pub const MAX_VARIANCE: u64 = 1 << 44;

    /// The sampler of N_Z(0, `variance`); the variance is an integer, and the
    /// sampler (and [`Self::statistical_distance`]) refer to exactly this
    /// value.
    ///
    /// # Errors
    /// [`MathError::InvalidNoiseVariance`] unless 1 <= `variance` <= 2^44.
    pub fn new(variance: u64) -> Result<Self> {
        if !(Self::MIN_VARIANCE..=Self::MAX_VARIANCE).contains(&variance) {
            return Err(MathError::InvalidNoiseVariance {
                variance,
                min: Self::MIN_VARIANCE,
                max: Self::MAX_VARIANCE,
            });
        }
        let cut = TAIL_SIGMAS * TAIL_SIGMAS * u128::from(variance);
        // k <= 26 for V <= 2^44: (2^26 - 1)^2 > 144 * 2^44.
        let mut k = 1u32;
        while ((1u128 << k) - 1).pow(2) < cut {
            k += 1;
        }
        // a <= 22 for V <= 2^44.
        let mut a = 0u32;
        while 1u128 << (2 * a + 2) <= u128::from(variance) {
            a += 1;
        }
        let reciprocal = LOG2E_Q126 / (u128::from(variance) << 9);
        // Weights W_j = w_j exp(-r_j^2 / (2 V)) / 2^a in Q192: W_0 = 1,
        // W_j = 2^(j-1) exp(-4^(a+j-1) / (2 V)).
        let annuli_count = k.saturating_sub(a);
        let mut cumulative = Vec::with_capacity(MAX_ANNULI);
        let mut total = BigUint::from(1u8) << WEIGHT_BITS;
        cumulative.push(total.clone());
        for j in 1..=annuli_count {
            let radius_squared = 1u128 << (2 * (a + j - 1));
            total += exp_weight(radius_squared, 2 * u128::from(variance)) << (j - 1);
            cumulative.push(total.clone());
        }
        // T_i = round(2^64 C_i / C_J) for i < J; the last is implicit.
        let mut annuli = [1u128 << 64; MAX_ANNULI - 1];
        let twice_total = &total << 1u32;
        for (threshold, partial) in annuli
            .iter_mut()
            .zip(&cumulative)
            .take(usize::try_from(annuli_count).unwrap_or(MAX_ANNULI))
        {
            let rounded = ((partial << 65u32) + &total) / &twice_total;
            // At most 2^64: C_i <= C_J.
            *threshold = rounded.to_u128().unwrap_or(1 << 64);
        }
        let envelope = (&total >> (WEIGHT_BITS - 64))
            .to_u128()
            .unwrap_or(u128::MAX - 1)
            + 1;
        Ok(Self {
            variance,
            k,
            a,
            reciprocal,
            annuli,
            envelope,
        })
    }

    /// The variance parameter V.
    pub fn variance(&self) -> u64 {
        self.variance
    }

    /// The support half-width 2^k: every sample x satisfies
    /// -2^k < x < 2^k, so |x| < `bound()`. At most 2^26.
    pub fn bound(&self) -> i64 {
        1i64 << self.k
    }

    /// The expected number of trials per sample, 2 Z / sqrt(2 pi V) with Z
    /// as in the type's doc (computed in floating point, up to a relative
    /// 1e-12), between about 1.45 and 1.5.
    pub fn expected_trials(&self) -> f64 {
        self.envelope_width() / (std::f64::consts::TAU * self.variance as f64).sqrt()
    }

    /// An upper bound on 2 Z, the total mass of the envelope (both signs).
    fn envelope_width(&self) -> f64 {
        f64::from(self.a + 1).exp2() * (self.envelope as f64 * ULP)
    }

    /// The number J of annuli beyond A_0.
    fn outer_annuli(&self) -> u32 {
        self.k - self.a
    }

    /// An upper bound on the statistical distance between the distribution
    /// of one sample and the ideal (untruncated) N_Z(0, V).
    ///
    /// Let p(x) = exp(-x^2 / (2 V)). A trial outputs x in S (and accepts)
    /// with probability m(x) = P_j / (2 w_j) q(x), where j is the annulus
    /// of |x|, P_j = (T_j - T_(j-1)) / 2^64 the realised annulus probability
    /// and q(x) the realised acceptance probability; ideally m*(x) =
    /// P*_j / (2 w_j) g(x) = p(x) / (2 Z) with P*_j = w_j exp(-r_j^2 /
    /// (2 V)) / Z and g(x) = exp(-(x^2 - r_j^2) / (2 V)). The output has
    /// distribution m / M (M = sum_S m, the acceptance rate) and, with
    /// M* = sum_S m* and E = sum_S |m - m*|, SD(m / M, m* / M*) <= E / M
    /// <= E / (M* - E).
    ///
    /// - Exponential: the relative error of the exponent (R truncated to a
    ///   relative 2^-73 times u < 488, u truncated to 64 fraction bits, and
    ///   the 2^-64 of the complement) is at most 2^-63 on 2^-u; the
    ///   polynomial errs by at most 2^-67.7 + 13 coefficient roundings + 13
    ///   product roundings of 2^-64 each, below 2^-59.29 on 2^h in [1, 2).
    ///   So q = g(1 + r) - f with |r| <= rho = 2^-59 and 0 <= f < 2^-64
    ///   (the truncation of the threshold; when u > 66 both g and q are
    ///   below 2^-64), and q <= 1 + rho. Summed over the 2 w_j values of
    ///   each annulus (2 w_0 - 1 for A_0): sum_S P*_j / (2 w_j) |q - g| <=
    ///   rho M* + 2^-64.
    /// - Annulus table: the weights are computed with an absolute error
    ///   below 2^-190 (see [`exp_weight`]), so the cumulative
    ///   probabilities c_i = T*_i / 2^64 are known within 2^-184 and
    ///   e_i = T_i / 2^64 - c_i satisfies |e_i| <= 2^-65 + 2^-184 (rounding
    ///   to nearest), with e_(-1) = e_J = 0. Hence D = sum_j |P_j - P*_j|
    ///   = sum_j |e_j - e_(j-1)| <= J (2^-64 + 2^-183), and
    ///   sum_S |P_j - P*_j| / (2 w_j) q <= (1 + rho) D.
    ///
    ///   So E <= rho M* + 2^-64 + (1 + rho) D, and with
    ///   alpha = (2^-64 + (1 + rho) D) / M*: SD <= (rho + alpha) /
    ///   (1 - rho - alpha). M* = sum_S p / (2 Z) is bounded below with
    ///   sum_S p >= sqrt(2 pi V)(1 - tau) (Poisson summation gives
    ///   sum_Z p >= sqrt(2 pi V)) and the stored upper bound on Z; M* is
    ///   about 0.69, so alpha is about (1 + J) 2^-64 / 0.69.
    /// - Tail: N_Z(0, V) puts mass tau <= 2 sigma / (sqrt(2 pi) T)
    ///   exp(-T^2 / (2 V)) outside S, T = 2^k - 1 >= 12 sigma (the tail sum
    ///   is below sigma^2 / T p(T) on each side), so tau < 2^-107.
    ///
    /// The result is (rho + alpha) / (1 - rho - alpha) plus tau, rounded up
    /// (the floating-point evaluation is padded by relative margins of
    /// 1e-12 and 1e-9).
    pub fn statistical_distance(&self) -> f64 {
        let variance = self.variance as f64;
        let mass = (std::f64::consts::TAU * variance).sqrt() * (1.0 - 1e-12);
        let acceptance = mass / (self.envelope_width() * (1.0 + 1e-12));
        let table = f64::from(self.outer_annuli()) * ULP * (1.0 + 1e-9);
        let absolute = (ULP + (1.0 + RELATIVE_ERROR) * table) / acceptance;
        let fixed_point = (RELATIVE_ERROR + absolute) / (1.0 - RELATIVE_ERROR - absolute);
        let cut = f64::from(self.k).exp2() - 1.0;
        let tail = 2.0 * variance.sqrt() / ((std::f64::consts::TAU).sqrt() * cut)
            * (-(cut * cut) / (2.0 * variance)).exp();
        (fixed_point + tail) * (1.0 + 1e-9)
    }

    /// One sample, in constant time up to the number of trials.
    pub fn sample(&self, rng: &mut Csprng) -> i64 {
        // Through the bulk path: with blocks of two trials the compiler
        // merged the output logic into the trials and branched on a
        // rejected candidate (seen in the release assembly).
        let mut out = [0i64; 1];
        self.fill(rng, &mut out);
        let [x] = out;
        x
    }

    /// Fills `out` with independent samples.
    pub fn fill(&self, rng: &mut Csprng, out: &mut [i64]) {
        self.fill_blocks::<BULK_WORDS, LANES>(rng, out);
    }

    /// Adds one independent sample to each value (wrapping on i64
    /// overflow, which cannot happen for |value| <= i64::MAX - 2^26). The
    /// noise only ever exists in a wiped buffer.
    pub fn add_noise(&self, rng: &mut Csprng, values: &mut [i64]) {
        let mut noise = Zeroizing::new(vec![0i64; values.len().min(NOISE_CHUNK)]);
        for chunk in values.chunks_mut(NOISE_CHUNK) {
            let noise = noise.get_mut(..chunk.len()).unwrap_or_default();
            self.fill(rng, noise);
            for (value, &x) in chunk.iter_mut().zip(noise.iter()) {
                *value = value.wrapping_add(x);
            }
        }
    }

    /// Runs blocks of `WORDS * 2 / 5` trials, `L` at a time (`L` even),
    /// until `out` is full.
    fn fill_blocks<const WORDS: usize, const L: usize>(&self, rng: &mut Csprng, out: &mut [i64]) {
        let mut words = Zeroizing::new([0u64; WORDS]);
        let mut filled = 0usize;
        while filled < out.len() {
            rng.fill_u64(words.as_mut_slice());
            self.run_block::<L>(words.as_slice(), out, &mut filled);
        }
    }

    /// Runs one block of trials: the first fifth of `words` holds two
    /// candidates (offset and sign) per word, the next two fifths one
    /// annulus word per trial and the rest one acceptance word per trial.
    /// Each candidate is written to the next free slot of `out` and that
    /// slot is kept iff the trial accepts. Trials go `L` at a time so
    /// that their multiplication chains overlap.
    #[inline(always)]
    fn run_block<const L: usize>(&self, words: &[u64], out: &mut [i64], filled: &mut usize) {
        let (candidates, rest) = words.split_at(words.len() / 5);
        let (selectors, coins) = rest.split_at(rest.len() / 2);
        for ((pairs, selectors), coins) in candidates
            .chunks_exact(L / 2)
            .zip(selectors.chunks_exact(L))
            .zip(coins.chunks_exact(L))
        {
            let mut halves = [0u64; L];
            let mut choices = [0u64; L];
            let split = pairs.iter().flat_map(|&pair| [pair, pair >> 32]);
            for (half, bits) in halves.iter_mut().zip(split) {
                *half = bits & HALF_WORD;
            }
            for (choice, &selector) in choices.iter_mut().zip(selectors) {
                *choice = selector;
            }
            let (xs, thresholds) = self.trials(choices, halves);
            for ((&x, &threshold), &coin) in xs.iter().zip(&thresholds).zip(coins) {
                let accept = accept_bit(threshold, coin);
                if let Some(slot) = out.get_mut(*filled) {
                    *slot = x;
                }
                *filled += accept;
            }
        }
    }

    /// The candidates of `L` trials and their acceptance thresholds, from
    /// the annulus words `selectors` and the 32-bit `halves` (offset and
    /// sign): each candidate is accepted with probability
    /// `threshold / 2^64` ~ exp(-(x^2 - r_j^2) / (2 V)), 0 for the
    /// "negative zero".
    #[inline(always)]
    fn trials<const L: usize>(
        &self,
        selectors: [u64; L],
        halves: [u64; L],
    ) -> ([i64; L], [u128; L]) {
        let mut xs = [0i64; L];
        let mut differences = [0u64; L];
        let mut keep = [0u128; L];
        let inner_mask = (1u64 << self.a) - 1;
        for (((x, difference), keep), (&selector, &half)) in xs
            .iter_mut()
            .zip(&mut differences)
            .zip(&mut keep)
            .zip(selectors.iter().zip(&halves))
        {
            // Full scan: past threshold T_i the annulus is at least i + 1,
            // whose inner radius and width are 2^(a+i).
            let mut radius = 0u64;
            let mut mask = inner_mask;
            for (&threshold, shift) in self.annuli.iter().zip(self.a..) {
                let below = (u128::from(selector).wrapping_sub(threshold) >> 127) as u64;
                let past = below.wrapping_sub(1);
                let edge = 1u64 << shift;
                radius = (radius & !past) | (edge & past);
                mask = (mask & !past) | (edge.wrapping_sub(1) & past);
            }
            let offset = half & mask;
            let magnitude = radius + offset;
            let sign = half >> 31;
            // x^2 - r^2 = o (2 r + o) < 2^52.
            *difference = offset * (2 * radius + offset);
            let negative = 0u64.wrapping_sub(sign);
            *x = (magnitude ^ negative).wrapping_add(sign).cast_signed();
            // Reject "x = 0 with sign 1" (magnitude < 2^26, so the borrow
            // of magnitude - 1 is set iff magnitude = 0).
            let negative_zero = sign & (magnitude.wrapping_sub(1) >> 63);
            *keep = u128::from(negative_zero ^ 1).wrapping_neg();
        }
        let mut thresholds = self.exponential_thresholds(differences);
        for (threshold, &keep) in thresholds.iter_mut().zip(&keep) {
            *threshold &= keep;
        }
        (xs, thresholds)
    }

    /// The thresholds ~ 2^64 exp(-d / (2 V)) for d = x^2 - r^2 < 2^53.
    #[inline(always)]
    fn exponential_thresholds<const L: usize>(&self, differences: [u64; L]) -> [u128; L] {
        let mut whole = [0u64; L];
        let mut fraction = [0u64; L];
        for ((&d, whole), fraction) in differences.iter().zip(&mut whole).zip(&mut fraction) {
            // d < 2^53: d R < 2^127 (see the type's doc).
            let exponent = u128::from(d).wrapping_mul(self.reciprocal);
            #[expect(
                clippy::cast_possible_truncation,
                reason = "the fraction is the low 64 bits of the shifted product, by design"
            )]
            {
                *whole = (exponent >> RECIPROCAL_SHIFT) as u64;
                *fraction = (exponent >> FRACTION_SHIFT) as u64;
            }
        }
        exp2_thresholds(whole, fraction)
    }

    /// The threshold of the acceptance probability exp(-x^2 / (2 V)).
    #[cfg(test)]
    fn threshold(&self, x: i64) -> u128 {
        let [threshold] = self.exponential_thresholds([x.wrapping_mul(x).cast_unsigned()]);
        threshold
    }
}

/// exp(-n / d) in Q192 for 1 <= d and n / d <= 128, with an absolute error
/// below 2^-190: with s the smallest integer such that t = n / (d 2^s) <=
/// 1/2, the Taylor series of exp(-t) in Q224 (each term the floor of the
/// previous one times n / (d 2^s i), so within 2 units; fewer than 230
/// terms, the tail below one unit), then s <= 8 squarings (each at most
/// doubles the error and adds one unit), below 2^20 units of 2^-224, and a
/// final truncation to Q192.
fn exp_weight(n: u128, d: u128) -> BigUint {
    let precision = WEIGHT_BITS + WEIGHT_GUARD;
    let one = BigUint::from(1u8) << precision;
    let mut s = 0u32;
    while 2 * n > d << s {
        s += 1;
    }
    let denominator = BigUint::from(d) << s;
    let (mut even, mut odd) = (one.clone(), BigUint::zero());
    let mut term = one;
    for i in 1u32.. {
        term = term * n / (&denominator * i);
        if term.is_zero() {
            break;
        }
        if i % 2 == 1 {
            odd += &term;
        } else {
            even += &term;
        }
    }
    // even > odd: exp(-t) >= exp(-1/2).
    let mut value = even.checked_sub(&odd).unwrap_or_default();
    for _ in 0..s {
        value = (&value * &value) >> precision;
    }
    value >> WEIGHT_GUARD
}

/// Candidates evaluated together in [`WideGaussian::run_block`] for bulk
/// sampling.
const LANES: usize = 4;
/// floor(2^63 2^h / 2^m) with h = 1 - g / 2^64 - 2^-64, that is about
/// 2^64 2^-(m + g / 2^64): the acceptance thresholds for the exponents
/// m + g / 2^64, computed without branches.
#[inline(always)]
fn exp2_thresholds<const L: usize>(whole: [u64; L], fraction: [u64; L]) -> [u128; L] {
    let h = fraction.map(|g| !g);
    // Horner's rule for q(h) in Q63; every partial sum stays below 2^63 + 2^6.
    let mut acc = [EXP2_TOP; L];
    for &c in EXP2_COEFFICIENTS.iter().rev() {
        for (acc, &h) in acc.iter_mut().zip(&h) {
            *acc = c.wrapping_add(mul_high_rounded(*acc, h));
        }
    }
    let mut thresholds = [0u128; L];
    for (((threshold, &acc), &h), &m) in thresholds.iter_mut().zip(&acc).zip(&h).zip(&whole) {
        // 2^h = 1 + h q(h), in Q63: at most 2^64 + 2^6, hence the u128.
        let power = (1u128 << 63) + u128::from(mul_high_rounded(acc, h));
        // Any m >= 65 gives 0; clamp m to 127 so the shift is defined.
        let large = 0u64.wrapping_sub(127u64.wrapping_sub(m) >> 63);
        *threshold = power >> ((m | large) & 127);
    }
    thresholds
}

/// The threshold for one exponent.
#[cfg(test)]
fn exp2_threshold(whole: u64, fraction: u64) -> u128 {
    let [threshold] = exp2_thresholds([whole], [fraction]);
    threshold
}

/// round(a b / 2^64); a b + 2^63 < 2^128 for all 64-bit a and b.
#[inline(always)]
fn mul_high_rounded(a: u64, b: u64) -> u64 {
    let product = u128::from(a)
        .wrapping_mul(u128::from(b))
        .wrapping_add(1 << 63);
    (product >> 64) as u64
}

/// 1 iff w < t, from the borrow of w - t (both below 2^127).
#[inline(always)]
fn accept_bit(threshold: u128, coin: u64) -> usize {
    (u128::from(coin).wrapping_sub(threshold) >> 127) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigInt;
    use num_traits::ToPrimitive;

    fn rng(tag: u8) -> Csprng {
        Csprng::from_seed([tag; 32])
    }

    fn sampler(variance: u64) -> WideGaussian {
        WideGaussian::new(variance).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn mean_and_variance(values: &[i64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let variance = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, variance)
    }

    /// Five standard errors on the mean and on the sample variance of n
    /// draws from a Gaussian of variance v (fourth moment 3 v^2).
    fn assert_moments(values: &[i64], v: f64, what: &str) {
        let n = values.len() as f64;
        let (mean, variance) = mean_and_variance(values);
        let mean_tolerance = 5.0 * (v / n).sqrt();
        let variance_tolerance = 5.0 * v * (2.0 / (n - 1.0)).sqrt();
        assert!(
            mean.abs() <= mean_tolerance,
            "{what}: mean {mean} outside +-{mean_tolerance}"
        );
        assert!(
            (variance - v).abs() <= variance_tolerance,
            "{what}: variance {variance} not within {variance_tolerance} of {v}"
        );
    }

    /// Pearson's statistic against expected probabilities (bins below 10
    /// expected counts merged) and its degrees of freedom.
    fn chi_square(observed: &[f64], probabilities: &[f64], total: f64) -> (f64, usize) {
        let (mut stat, mut bins) = (0.0, 0usize);
        let (mut rest_observed, mut rest_expected) = (0.0, 0.0);
        for (&o, &p) in observed.iter().zip(probabilities) {
            let e = p * total;
            if e < 10.0 {
                rest_observed += o;
                rest_expected += e;
            } else {
                stat += (o - e).powi(2) / e;
                bins += 1;
            }
        }
        if rest_expected > 0.0 {
            stat += (rest_observed - rest_expected).powi(2) / rest_expected;
            bins += 1;
        }
        (stat, bins - 1)
    }

    /// The chi-square quantile at about 1 - 1e-6 (Wilson-Hilferty).
    fn chi_square_limit(df: usize) -> f64 {
        let df = df as f64;
        let a = 2.0 / (9.0 * df);
        df * (1.0 - a + 4.75 * a.sqrt()).powi(3)
    }

    #[test]
    fn refuses_variances_outside_the_range() {
        for variance in [0, WideGaussian::MAX_VARIANCE + 1, u64::MAX] {
            assert!(matches!(
                WideGaussian::new(variance),
                Err(MathError::InvalidNoiseVariance { variance: v, min: 1, max })
                    if v == variance && max == 1 << 44
            ));
        }
        assert!(WideGaussian::new(1).is_ok());
        assert!(WideGaussian::new(WideGaussian::MAX_VARIANCE).is_ok());
    }

    #[test]
    fn the_proposal_is_the_smallest_power_of_two_past_twelve_sigma() {
        let variances = [1, 2, 4, 9, 50, 1_000_000, 10_000_000_000, 1 << 44]
            .into_iter()
            .chain((1..44).map(|b| (1u64 << b) + 12_345 % (1 << b)));
        for v in variances {
            let g = sampler(v);
            let bound = g.bound() as u128;
            let cut = 144 * u128::from(v);
            assert!((bound - 1).pow(2) >= cut, "V = {v}");
            assert!((bound / 2 - 1).pow(2) < cut, "V = {v}");
            assert!(g.bound() <= 1 << 26);
            assert!((1.44..1.51).contains(&g.expected_trials()), "V = {v}");
            assert_eq!(g.variance(), v);
        }
        assert_eq!(sampler(1_000_000).bound(), 1 << 14);
        assert_eq!(sampler(10_000_000_000).bound(), 1 << 21);
    }

    /// The variances where k or a changes, and their neighbours.
    fn boundary_variances() -> Vec<u64> {
        let mut variances = Vec::new();
        for b in 0..=44u32 {
            variances.push(1u64 << b);
        }
        for k in 2..=27u32 {
            variances.push((((1u64 << k) - 1).pow(2)) / 144);
        }
        let around: Vec<u64> = variances
            .iter()
            .flat_map(|&v| [v.saturating_sub(1), v, v + 1])
            .filter(|v| (1..=WideGaussian::MAX_VARIANCE).contains(v))
            .collect();
        around
    }

    #[test]
    fn the_annuli_fit_the_table_and_their_thresholds_increase() {
        for v in boundary_variances() {
            let g = sampler(v);
            let j = g.outer_annuli();
            assert!((4..=5).contains(&j), "V = {v}: J = {j}");
            // sigma / 2 < 2^a <= sigma.
            assert!(1u128 << (2 * g.a) <= u128::from(v), "V = {v}");
            assert!(4u128 << (2 * g.a) > u128::from(v), "V = {v}");
            let j = j as usize;
            assert!(g.annuli.windows(2).all(|w| w[0] <= w[1]), "V = {v}");
            assert!(g.annuli[..j].iter().all(|&t| t > 0), "V = {v}");
            // The outermost annulus may round to probability 0 (its ideal
            // probability is then below 2^-65), the one inside it not.
            assert!(g.annuli[j - 2] < 1 << 64, "V = {v}");
            assert!(g.annuli[j..].iter().all(|&t| t == 1 << 64), "V = {v}");
            // The inner annuli hold most of the envelope.
            assert!(g.annuli[0] > 1 << 62 && g.annuli[1] > 1 << 63, "V = {v}");
        }
    }

    /// The exact weight of every output x of one trial, in units of
    /// 2^-128 / (2^(k+1)): P_j 2^64 (the annulus) times 2^k / w_j (the
    /// offset) times the threshold t (acceptance), summed over the random
    /// words that produce x. The annulus of each selector is checked at both
    /// ends of its interval, and the candidate against r_j + o and the sign.
    fn exact_output(g: &WideGaussian) -> std::collections::BTreeMap<i64, BigInt> {
        let mut weights = std::collections::BTreeMap::new();
        let j_max = g.outer_annuli();
        for j in 0..=j_max {
            let lower = if j == 0 { 0 } else { g.annuli[j as usize - 1] };
            let upper = if j == j_max {
                1 << 64
            } else {
                g.annuli[j as usize]
            };
            let probability = upper - lower;
            if probability == 0 {
                continue;
            }
            let (radius, width) = if j == 0 {
                (0u64, 1u64 << g.a)
            } else {
                (1 << (g.a + j - 1), 1 << (g.a + j - 1))
            };
            let scale = BigInt::from(probability) * BigInt::from((1u64 << g.k) / width);
            for offset in 0..width {
                for sign in 0..2u64 {
                    let half = offset | sign << 31;
                    let ([x], [t]) = g.trials([lower as u64], [half]);
                    let magnitude = (radius + offset) as i64;
                    assert_eq!(x, if sign == 1 { -magnitude } else { magnitude });
                    if offset == 0 || offset == width - 1 {
                        assert_eq!(g.trials([(upper - 1) as u64], [half]), ([x], [t]));
                    }
                    if x == 0 && sign == 1 {
                        assert_eq!(t, 0, "the negative zero is rejected");
                        continue;
                    }
                    let weight = weights.entry(x).or_insert_with(|| BigInt::from(0));
                    *weight += &scale * BigInt::from(t);
                }
            }
        }
        weights
    }

    /// The exact output distribution (from the integer tables) is symmetric
    /// and within `statistical_distance()` of N_Z(0, V) (computed with
    /// 256-bit arithmetic) in total variation.
    #[test]
    fn the_exact_output_distribution_is_within_the_bound() {
        for v in [1u64, 2, 3, 4, 7, 9, 50, 1000, 4096, 12_345] {
            let g = sampler(v);
            let weights = exact_output(&g);
            let bound = g.bound();
            // Every x in (-bound, bound), or in (-bound / 2, bound / 2) when
            // the outermost annulus rounded to probability 0.
            let count = weights.len() as i64;
            assert!(count == 2 * bound - 1 || count == bound - 1, "V = {v}");
            for (&x, weight) in &weights {
                assert!(x.abs() < bound);
                assert_eq!(Some(weight), weights.get(&-x), "V = {v}, x = {x}");
            }
            let total: BigInt = weights.values().sum();
            // The acceptance rate is 1 / expected_trials() (which uses
            // sqrt(2 pi V) for sum_Z p, larger by a relative
            // 2 exp(-2 pi^2 V) < 6e-9).
            let rate = total.to_f64().unwrap_or(0.0) / 2f64.powi(129 + g.k as i32);
            let trials = g.expected_trials();
            assert!(
                (rate * trials - 1.0).abs() < 1e-8,
                "V = {v}: {rate} {trials}"
            );
            // The ideal pmf on [-2 bound, 2 bound] (the rest is below 2^-180).
            let ideal: Vec<(i64, BigInt)> = (0..2 * bound)
                .map(|x| (x, exp_reference(x.unsigned_abs().pow(2), 2 * v)))
                .collect();
            let z: BigInt = ideal
                .iter()
                .map(|(x, p)| if *x == 0 { p.clone() } else { p * 2 })
                .sum();
            let zero = BigInt::from(0);
            let mut difference = BigInt::from(0);
            for (x, p) in &ideal {
                for signed in if *x == 0 { vec![0] } else { vec![*x, -*x] } {
                    let w = weights.get(&signed).unwrap_or(&zero);
                    difference += BigInt::from((w * &z - p * &total).magnitude().clone());
                }
            }
            let tv = difference.to_f64().unwrap_or(f64::INFINITY)
                / (2.0 * total.to_f64().unwrap_or(0.0) * z.to_f64().unwrap_or(0.0));
            let sd = g.statistical_distance();
            assert!(tv <= sd, "V = {v}: total variation {tv:e} above {sd:e}");
            assert!(tv < 5e-19, "V = {v}: total variation {tv:e}");
        }
    }

    #[test]
    fn statistical_distance_is_tiny_and_dominated_by_fixed_point() {
        for v in [1, 9, 1_000_000, 10_000_000_000, 1 << 44] {
            let sd = sampler(v).statistical_distance();
            assert!(sd > 1.7e-18 && sd < 3.0e-18, "V = {v}: {sd}");
        }
    }

    #[test]
    fn debug_shows_only_public_parameters() {
        let g = sampler(50);
        let text = format!("{g:?}");
        assert!(
            text.starts_with("WideGaussian { variance: 50, k: 7"),
            "{text}"
        );
    }

    /// exp(-a / b) in fixed point with 256 fraction bits: the Taylor series
    /// of exp(-y) for y = a / (b 2^j) <= 1/2, then j squarings; the error
    /// is far below 2^-200.
    fn exp_reference(a: u64, b: u64) -> BigInt {
        let scale = BigInt::from(1) << 256u32;
        let mut j = 0u32;
        while u128::from(a) > u128::from(b) << j >> 1 {
            j += 1;
        }
        let denominator = BigInt::from(b) << j;
        let mut term = scale.clone();
        let mut sum = scale.clone();
        for i in 1u32.. {
            term = term * BigInt::from(a) / (&denominator * BigInt::from(i));
            if term == BigInt::from(0) {
                break;
            }
            if i % 2 == 1 {
                sum -= &term;
            } else {
                sum += &term;
            }
        }
        for _ in 0..j {
            sum = (&sum * &sum) >> 256u32;
        }
        sum
    }

    /// The fixed-point probability is within rho p + 2^-64 of the exact one
    /// (computed with big integers) on a grid over the whole proposal
    /// range, and within f64 rounding of `f64::exp`.
    #[test]
    fn fixed_point_exp_is_within_the_claimed_bound() {
        let (mut worst_relative, mut worst_absolute) = (0.0f64, 0.0f64);
        for v in [1, 9, 50, 1_000_000, 10_000_000_000, 1 << 44] {
            let g = sampler(v);
            let bound = g.bound();
            let step = (bound / 1500).max(1);
            let sigma = (v as f64).sqrt();
            let near_zero = (0..64)
                .map(|i| i * ((sigma as i64 / 64).max(1)))
                .filter(|&x| x < bound);
            for x in (-bound..bound).step_by(step as usize).chain(near_zero) {
                let t = g.threshold(x);
                // |q - p| <= rho p + 2^-64, checked in units of 2^-256.
                let computed = BigInt::from(t) << 192u32;
                let exact = exp_reference(x.unsigned_abs().pow(2), 2 * v);
                let error = (&computed - &exact).magnitude().clone();
                let exact_f = exact.to_f64().unwrap() / 2f64.powi(256);
                let error_f = error.to_f64().unwrap() / 2f64.powi(256);
                assert!(
                    error_f <= RELATIVE_ERROR * exact_f + ULP,
                    "V = {v}, x = {x}: error {error_f:e} on {exact_f:e}"
                );
                worst_absolute = worst_absolute.max(error_f);
                if exact_f > 0.0 {
                    worst_relative = worst_relative.max((error_f - ULP).max(0.0) / exact_f);
                }
                // Against f64: exp(-x^2 / 2V) with t up to ~340 has a
                // relative error of a few (t + 2) 2^-53.
                let ratio = (x * x) as f64 / (2.0 * v as f64);
                let reference = (-ratio).exp();
                let tolerance =
                    RELATIVE_ERROR * reference + ULP + reference * (ratio + 2.0) * 2f64.powi(-52);
                assert!(
                    (t as f64 * ULP - reference).abs() <= tolerance,
                    "V = {v}, x = {x}"
                );
            }
        }
        // The measured errors are well inside the proven bounds.
        assert!(
            worst_relative < 2f64.powi(-60) && worst_absolute < 2f64.powi(-60),
            "relative {:.2}, absolute {:.2} (log2)",
            worst_relative.log2(),
            worst_absolute.log2()
        );
    }

    #[test]
    fn the_polynomial_core_is_accurate_at_the_ends_and_between() {
        // Exponent 0 accepts always; exponent 1 - 2^-64 gives 2^63.
        assert_eq!(exp2_threshold(0, 0), 1 << 64);
        let half = exp2_threshold(1, 0);
        assert_eq!(half, 1 << 63);
        assert!(exp2_threshold(0, u64::MAX).abs_diff(1 << 63) <= 64);
        assert_eq!(exp2_threshold(63, 0), 2);
        assert_eq!(exp2_threshold(64, 0), 1);
        for m in [65, 66, 127, 128, 200, 487, 1023] {
            assert_eq!(exp2_threshold(m, 0), 0, "m = {m}");
        }
        for i in 0..=4096u64 {
            let g = i.wrapping_mul(u64::MAX / 4096);
            let t = exp2_threshold(0, g) as f64 * ULP;
            let exact = (-(g as f64) * ULP).exp2();
            assert!((t - exact).abs() <= 4.0 * f64::EPSILON, "g = {g}");
        }
    }

    #[test]
    fn moments_match_for_small_and_large_variances() {
        for (tag, v, n) in [
            (1u8, 4u64, 1 << 17),
            (2, 50, 1 << 17),
            (3, 1_000_000, 1 << 17),
            (4, 1_000_000_000, 1 << 17),
            (5, 1 << 44, 1 << 15),
        ] {
            let g = sampler(v);
            let mut values = vec![0i64; n];
            g.fill(&mut rng(tag), &mut values);
            assert!(values.iter().all(|&x| -g.bound() <= x && x < g.bound()));
            assert_moments(&values, v as f64, &format!("V = {v}"));
        }
    }

    #[test]
    fn single_samples_have_the_same_moments() {
        let g = sampler(50);
        let mut r = rng(6);
        let values: Vec<i64> = (0..1 << 15).map(|_| g.sample(&mut r)).collect();
        assert!(values.iter().all(|x| x.abs() <= g.bound()));
        assert_moments(&values, 50.0, "sample()");
    }

    #[test]
    fn the_sum_of_eight_clients_has_eight_times_the_variance() {
        for (v, tag) in [(50u64, 10u8), (1_000_000, 20)] {
            let g = sampler(v);
            let length = 1 << 15;
            let mut total = vec![0i64; length];
            for client in 0..8u8 {
                // Quantized updates: the noise is added on top.
                let mut update: Vec<i64> = (0..length as i64).map(|i| i % 7 - 3).collect();
                g.add_noise(&mut rng(tag + client), &mut update);
                for ((sum, noisy), i) in total.iter_mut().zip(&update).zip(0i64..) {
                    *sum += noisy - (i % 7 - 3);
                }
            }
            assert_moments(&total, 8.0 * v as f64, &format!("8 clients, V = {v}"));
        }
    }

    #[test]
    fn small_variance_matches_the_exact_pmf() {
        let v = 9u64;
        let g = sampler(v);
        let n = 1 << 18;
        let mut values = vec![0i64; n];
        g.fill(&mut rng(30), &mut values);
        let range = 15i64;
        let mut counts = vec![0f64; 2 * range as usize + 1];
        for &x in &values {
            counts[(x.clamp(-range, range) + range) as usize] += 1.0;
        }
        let pmf = |variance: f64| -> Vec<f64> {
            let rho = |x: i64| (-((x * x) as f64) / (2.0 * variance)).exp();
            let z: f64 = (-200..=200).map(rho).sum();
            let mut p: Vec<f64> = (-range..=range).map(|x| rho(x) / z).collect();
            // The clamped ends collect the tails.
            let tail: f64 = (range + 1..=200).map(rho).sum::<f64>() / z;
            p[0] += tail;
            p[2 * range as usize] += tail;
            p
        };
        let (stat, df) = chi_square(&counts, &pmf(9.0), n as f64);
        assert!(stat < chi_square_limit(df), "chi2 {stat} with {df} df");
        // The test has the power to see a 5% error in the variance.
        let (wrong, df) = chi_square(&counts, &pmf(9.45), n as f64);
        assert!(wrong > chi_square_limit(df), "chi2 {wrong} with {df} df");
    }

    #[test]
    fn large_variance_matches_the_binned_pmf() {
        let v = 1_000_000u64;
        let g = sampler(v);
        let n = 1 << 17;
        let mut values = vec![0i64; n];
        g.fill(&mut rng(40), &mut values);
        // Bins of width sigma / 4 over [-4 sigma, 4 sigma), tails clamped.
        let (width, bins) = (250i64, 32i64);
        let bin = |x: i64| ((x + 4000).div_euclid(width)).clamp(-1, bins) + 1;
        let mut counts = vec![0f64; bins as usize + 2];
        for &x in &values {
            counts[bin(x) as usize] += 1.0;
        }
        let mut probabilities = vec![0f64; bins as usize + 2];
        let z: f64 = (-20_000i64..=20_000)
            .map(|x| (-((x * x) as f64) / 2e6).exp())
            .sum();
        for x in -20_000i64..=20_000 {
            probabilities[bin(x) as usize] += (-((x * x) as f64) / 2e6).exp() / z;
        }
        let (stat, df) = chi_square(&counts, &probabilities, n as f64);
        assert!(stat < chi_square_limit(df), "chi2 {stat} with {df} df");
    }

    #[test]
    fn a_fixed_seed_gives_a_fixed_stream() {
        let g = sampler(1_000_000);
        let draw = |tag: u8| {
            let mut r = rng(tag);
            let mut values = vec![0i64; 100];
            g.fill(&mut r, &mut values);
            values.push(g.sample(&mut r));
            let mut noisy = vec![5i64; 10];
            g.add_noise(&mut r, &mut noisy);
            values.extend(noisy);
            values
        };
        assert_eq!(draw(50), draw(50));
        assert_ne!(draw(50), draw(51));
    }

    #[test]
    fn add_noise_handles_empty_and_chunked_inputs() {
        let g = sampler(4);
        let mut empty: [i64; 0] = [];
        g.add_noise(&mut rng(60), &mut empty);
        let mut values = vec![1000i64; NOISE_CHUNK * 2 + 17];
        g.add_noise(&mut rng(61), &mut values);
        assert!(values.iter().all(|x| (x - 1000).abs() <= g.bound()));
        // Every chunk got noise (the chance of all-zero noise is negligible).
        for chunk in values.chunks(NOISE_CHUNK) {
            assert!(chunk.iter().any(|&x| x != 1000));
        }
    }

    /// Timing, run with `cargo test -p ringsum-math --release --lib
    /// wide::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release mode"]
    #[expect(clippy::print_stderr, reason = "reports the measured speed")]
    fn timing() {
        for v in [1_000_000u64, 10_000_000_000] {
            let g = sampler(v);
            let mut r = rng(70);
            let mut values = vec![0i64; 1 << 20];
            g.fill(&mut r, &mut values);
            let start = std::time::Instant::now();
            let rounds = 4;
            for _ in 0..rounds {
                g.add_noise(&mut r, &mut values);
            }
            let bulk = start.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
            let start = std::time::Instant::now();
            let mut acc = 0i64;
            for _ in 0..1 << 18 {
                acc = acc.wrapping_add(g.sample(&mut r));
            }
            let single = start.elapsed().as_nanos() as f64 / f64::from(1 << 18);
            eprintln!(
                "V = {v:e}: add_noise {bulk:.1} ns/sample, sample() {single:.1} ns \
                 ({:.2} trials/sample, SD {:.3e}) [{acc}]",
                g.expected_trials(),
                g.statistical_distance()
            );
        }
    }
}
