//! A constant-time discrete Gaussian sampler by full-table CDT scan.

use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::{BATCH, Csprng, small_to_poly};
use crate::context::RingContext;
use crate::error::{MathError, Result};
use crate::poly::{Coeff, Poly, SecretPoly};

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
/// The thresholds come from the tail sums, added smallest term first in
/// `f64` and then rounded to integers in units of 2^-63 (integer arithmetic
/// from there on), so each realised probability is within about 2^-63 of the
/// ideal one (plus the `f64` rounding of the tail sums, a relative 2^-50).
/// [`Self::probability`] reports the realised distribution, exactly;
/// [`Self::ideal_probability`] the ideal one.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteGaussian {
    sigma: f64,
    tail_cut: f64,
    bound: i64,
    /// T_j - 1 for j = 0..bound, where P(u >= T_j) = P(|x| > j); stored
    /// minus one so that T_j = 2^63 (a tail that rounds to zero) still fits.
    thresholds: Vec<i64>,
    /// The ideal P(|x| = j) for j = 0..=bound.
    ideal_magnitude: Vec<f64>,
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
        let ideal_magnitude: Vec<f64> = weights.iter().map(|w| w / total).collect();
        // tail[j] = P(|x| > j), summed from the smallest terms up.
        let mut tails = vec![0.0f64; weights.len()];
        let mut running = 0.0;
        for (tail, p) in tails.iter_mut().zip(&ideal_magnitude).rev() {
            *tail = running;
            running += p;
        }
        let thresholds = tails
            .iter()
            .take(weights.len().saturating_sub(1))
            .map(|tail| {
                // tail < 1, so the rounded count fits in [0, 2^63].
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let count = (tail * TWO_63).round() as u64;
                let threshold = (1i128 << 63) - i128::from(count.min(1 << 63));
                i64::try_from(threshold - 1).unwrap_or(i64::MAX)
            })
            .collect();
        Ok(Self {
            sigma,
            tail_cut,
            bound,
            thresholds,
            ideal_magnitude,
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

    /// The probability of x under the sampler as built: exact, from the
    /// integer thresholds (0 outside the bound).
    pub fn probability(&self, x: i64) -> f64 {
        let magnitude = x.unsigned_abs();
        if magnitude > self.bound.unsigned_abs() {
            return 0.0;
        }
        // P(|x| > j) = (2^63 - T_j) / 2^63, with T_(-1) = 0 and T_bound = 2^63.
        let threshold = |j: u64| -> i128 {
            usize::try_from(j)
                .ok()
                .and_then(|j| self.thresholds.get(j))
                .map_or(1i128 << 63, |&t| i128::from(t) + 1)
        };
        let upper = threshold(magnitude);
        let lower = magnitude.checked_sub(1).map_or(0, threshold);
        #[allow(clippy::cast_precision_loss)]
        let p = (upper - lower) as f64 / TWO_63;
        if x == 0 { p } else { p / 2.0 }
    }

    /// The probability of x under the ideal tail-cut discrete Gaussian.
    pub fn ideal_probability(&self, x: i64) -> f64 {
        let magnitude = usize::try_from(x.unsigned_abs()).unwrap_or(usize::MAX);
        let p = self.ideal_magnitude.get(magnitude).copied().unwrap_or(0.0);
        if x == 0 { p } else { p / 2.0 }
    }

    /// The variance of the sampler as built (slightly below sigma^2 because
    /// of discretisation and the tail cut).
    pub fn variance(&self) -> f64 {
        (-self.bound..=self.bound)
            .map(|x| (x * x) as f64 * self.probability(x))
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

    /// Adds independent Gaussian noise to every coefficient of `poly`, in
    /// place: the same distribution as adding [`Self::sample_poly`], without
    /// building (and wiping) a separate polynomial. The noise values exist
    /// only in a wiped buffer of N words.
    pub fn add_noise_assign(&self, poly: &mut Poly<Coeff>, rng: &mut Csprng) {
        let ctx = Arc::clone(poly.context());
        let degree = ctx.degree();
        let mut coefficients = Zeroizing::new(vec![0i64; degree]);
        self.fill(rng, &mut coefficients);
        let bound = self.bound.unsigned_abs();
        for (m, row) in ctx.moduli().iter().zip(poly.rows_mut_crate()) {
            if bound < m.value() {
                crate::simd::vectorize(
                    #[inline(always)]
                    || {
                        for (out, &x) in row.iter_mut().zip(coefficients.iter()) {
                            *out = m.add(*out, super::small_to_residue(m, x));
                        }
                    },
                );
            } else {
                for (out, &x) in row.iter_mut().zip(coefficients.iter()) {
                    *out = m.add(*out, m.reduce_i64(x));
                }
            }
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
            // u >= T_j, with the stored value T_j - 1.
            *m += i64::from(u > t);
        }
    }
    for ((o, &m), &w) in out.iter_mut().zip(magnitudes.iter()).zip(words.iter()) {
        let negative = -(w & 1).cast_signed();
        *o = (m ^ negative) - negative;
    }
}
