//! A constant-time discrete Gaussian sampler by full-table CDT scan.

use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::{BATCH, Csprng, small_to_poly};
use crate::context::RingContext;
use crate::error::{MathError, Result};
use crate::poly::{Coeff, SecretPoly};

/// The range of standard deviations the sampler supports.
const SIGMA_RANGE: (f64, f64) = (1.0, 64.0);
/// The range of tail cuts (in multiples of sigma) the sampler supports.
const TAIL_RANGE: (f64, f64) = (4.0, 13.0);
/// 2^63 as a float: the sampler draws 63-bit uniform values.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// The discrete Gaussian on the integers with parameter sigma (probability of
/// x proportional to exp(-x^2 / (2 sigma^2))), restricted to
/// |x| <= floor(tail_cut * sigma).
///
/// # Method
///
/// A cumulative-distribution table (CDT) over |x|: with a 63-bit uniform u,
/// |x| is the number of thresholds T_j that u reaches, where
/// P(u >= T_j) = P(|x| > j). Every sample compares u with *every* threshold
/// and adds up the results, so neither the running time nor the memory
/// access pattern depends on the value drawn. One more random bit gives the
/// sign, applied with a mask (|x| = 0 keeps probability ρ(0)/S because the
/// table folds ±j into 2ρ(j)).
///
/// The thresholds are computed from the tail sums, smallest terms first, so
/// that even the rarest values carry their probability to within a relative
/// 2^-50; a tail whose probability is below 2^-63 is drawn with probability
/// at most 2^-63.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteGaussian {
    sigma: f64,
    tail_cut: f64,
    bound: i64,
    /// T_j for j = 0..bound, as signed integers (all below 2^63).
    thresholds: Vec<i64>,
    /// P(|x| = j) for j = 0..=bound, for tests and noise analysis.
    magnitude_probabilities: Vec<f64>,
}

impl DiscreteGaussian {
    /// The sampler for standard deviation `sigma`, cut at `tail_cut` sigmas.
    ///
    /// # Errors
    /// [`MathError::InvalidGaussian`] for sigma outside [1, 64] or a tail cut
    /// outside [4, 13] (or either not finite).
    pub fn new(sigma: f64, tail_cut: f64) -> Result<Self> {
        let valid = sigma.is_finite()
            && tail_cut.is_finite()
            && (SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&sigma)
            && (TAIL_RANGE.0..=TAIL_RANGE.1).contains(&tail_cut);
        if !valid {
            return Err(MathError::InvalidGaussian {
                sigma,
                tail_cut,
                min_sigma: SIGMA_RANGE.0,
                max_sigma: SIGMA_RANGE.1,
                min_tail: TAIL_RANGE.0,
                max_tail: TAIL_RANGE.1,
            });
        }
        // Within the ranges above the bound is at most 832.
        #[allow(clippy::cast_possible_truncation)]
        let bound = (tail_cut * sigma).floor() as i64;
        let weight = |j: i64| {
            let j = j as f64;
            let rho = (-(j * j) / (2.0 * sigma * sigma)).exp();
            if j == 0.0 { rho } else { 2.0 * rho }
        };
        let weights: Vec<f64> = (0..=bound).map(weight).collect();
        let total: f64 = weights.iter().rev().sum();
        let magnitude_probabilities: Vec<f64> = weights.iter().map(|w| w / total).collect();
        // tail[j] = P(|x| > j), summed from the smallest terms up.
        let mut tails = vec![0.0f64; weights.len()];
        let mut running = 0.0;
        for (tail, p) in tails.iter_mut().zip(&magnitude_probabilities).rev() {
            *tail = running;
            running += p;
        }
        #[allow(clippy::cast_possible_truncation)]
        let thresholds = tails
            .iter()
            .take(weights.len().saturating_sub(1))
            .map(|tail| {
                let complement = (tail * TWO_63).round();
                // 2^63 - complement, kept within [0, 2^63].
                // Saturates to 2^63 - 1 when the tail rounds to zero.
                (TWO_63 - complement).clamp(0.0, TWO_63) as i64
            })
            .collect();
        Ok(Self {
            sigma,
            tail_cut,
            bound,
            thresholds,
            magnitude_probabilities,
        })
    }

    /// The standard deviation parameter.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The tail cut, in multiples of sigma.
    pub fn tail_cut(&self) -> f64 {
        self.tail_cut
    }

    /// The largest magnitude the sampler returns: floor(tail_cut * sigma).
    pub fn bound(&self) -> i64 {
        self.bound
    }

    /// The exact probability of x under the sampler (0 outside the bound).
    pub fn probability(&self, x: i64) -> f64 {
        let magnitude = usize::try_from(x.unsigned_abs()).unwrap_or(usize::MAX);
        let p = self
            .magnitude_probabilities
            .get(magnitude)
            .copied()
            .unwrap_or(0.0);
        if x == 0 { p } else { p / 2.0 }
    }

    /// The exact variance of the sampler (slightly below sigma^2 because of
    /// discretisation and the tail cut).
    pub fn variance(&self) -> f64 {
        self.magnitude_probabilities
            .iter()
            .enumerate()
            .map(|(j, p)| (j * j) as f64 * p)
            .sum()
    }

    /// Fills `out` with independent samples, in constant time per sample.
    pub fn fill(&self, rng: &mut Csprng, out: &mut [i64]) {
        let mut scratch = Zeroizing::new(Scratch {
            words: [0; BATCH],
            uniform: [0; BATCH],
            magnitudes: [0; BATCH],
        });
        for chunk in out.chunks_mut(BATCH) {
            rng.fill_u64(&mut scratch.words);
            crate::simd::vectorize(
                #[inline(always)]
                || scan_table(&self.thresholds, &mut scratch, chunk),
            );
        }
    }

    /// A secret polynomial with independent Gaussian coefficients.
    pub fn sample_poly(&self, ctx: &Arc<RingContext>, rng: &mut Csprng) -> SecretPoly<Coeff> {
        let mut coefficients = Zeroizing::new(vec![0i64; ctx.degree()]);
        self.fill(rng, &mut coefficients);
        small_to_poly(ctx, &coefficients, self.bound.unsigned_abs())
    }
}

/// Working memory of [`DiscreteGaussian::fill`], wiped once per call.
#[derive(Zeroize)]
struct Scratch {
    words: [u64; BATCH],
    uniform: [i64; BATCH],
    magnitudes: [i64; BATCH],
}

/// Turns 64-bit uniform words into signed samples: the magnitude counts the
/// thresholds reached by the top 63 bits, the low bit gives the sign.
/// Threshold-major order over a fixed-size block lets the compiler
/// vectorise across samples.
#[inline(always)]
fn scan_table(thresholds: &[i64], scratch: &mut Scratch, out: &mut [i64]) {
    let Scratch {
        words,
        uniform,
        magnitudes,
    } = scratch;
    for (u, &w) in uniform.iter_mut().zip(words.iter()) {
        // (w >> 1) < 2^63, so the signed comparisons below are exact.
        *u = (w >> 1).cast_signed();
    }
    magnitudes.fill(0);
    for &t in thresholds {
        for (m, &u) in magnitudes.iter_mut().zip(uniform.iter()) {
            *m += i64::from(u >= t);
        }
    }
    for ((o, &m), &w) in out.iter_mut().zip(magnitudes.iter()).zip(words.iter()) {
        let negative = -(w & 1).cast_signed();
        *o = (m ^ negative) - negative;
    }
}
