//! Randomness: a ChaCha20 CSPRNG and the samplers of the scheme.
//!
//! | sampler | distribution | used for |
//! |---|---|---|
//! | [`sample_uniform`] | uniform on R_Q, in either representation | public randomness, tests |
//! | [`sample_ternary`] | uniform on {-1, 0, 1} per coefficient | ternary secrets (benchmarks, tests) |
//! | [`DiscreteGaussian`] | discrete Gaussian, tail-cut | per-round secrets s and errors e |
//! | [`WideGaussian`] | discrete Gaussian N_Z(0, V), V up to 2^44, by rejection | differential-privacy noise on quantized updates |
//!
//! # Constant time
//!
//! The secret samplers never branch on, or index a table with, a value they
//! return. Their only branches are rejection tests on candidates that are
//! then thrown away, so timing reveals how many candidates were discarded
//! and nothing about the ones kept:
//!
//! - ternary: a random byte below 255 is reduced mod 3 (division by a
//!   constant compiles to a multiply and shift); the byte 255 is rejected so
//!   that the three values are equally likely;
//! - Gaussian: a cumulative-distribution table is scanned *in full* for every
//!   sample, adding up comparisons instead of searching (see
//!   [`DiscreteGaussian`]);
//! - wide Gaussian: candidates from a step envelope (its step chosen by a
//!   full scan of a small threshold table) accepted with a probability
//!   computed in fixed point by the same straight-line code for every
//!   candidate; only which trials were accepted shows (see [`WideGaussian`]);
//! - signs are applied with masks, residues of negative values with masks.

mod gaussian;
mod wide;

pub use gaussian::DiscreteGaussian;
pub use wide::WideGaussian;

use std::fmt;
use std::sync::Arc;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

use crate::context::RingContext;
use crate::error::{MathError, Result};
use crate::poly::{Coeff, Poly, Representation, SecretPoly};
use crate::zq::Modulus;

/// Size of a CSPRNG seed in bytes.
pub const SEED_BYTES: usize = 32;

/// How many 64-bit words the samplers draw from the generator at a time.
const BATCH: usize = 256;

/// A ChaCha20 cryptographically secure generator, seeded from the operating
/// system (or from a fixed seed in tests). Its state is wiped on drop.
pub struct Csprng(ChaCha20Rng);

impl Csprng {
    /// A generator seeded with 32 bytes from the operating system.
    ///
    /// # Errors
    /// [`MathError::Entropy`] when the operating system cannot provide them.
    pub fn from_os() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
        getrandom::fill(seed.as_mut_slice())?;
        Ok(Self(ChaCha20Rng::from_seed(*seed)))
    }

    /// A reproducible generator: the same seed gives the same stream.
    pub fn from_seed(seed: [u8; SEED_BYTES]) -> Self {
        Self(ChaCha20Rng::from_seed(seed))
    }

    /// A reproducible generator from a seed given as a byte slice.
    ///
    /// # Errors
    /// [`MathError::InvalidSeedLength`] unless the slice holds 32 bytes.
    pub fn try_from_seed_bytes(seed: &[u8]) -> Result<Self> {
        let seed: [u8; SEED_BYTES] = seed.try_into().map_err(|_| MathError::InvalidSeedLength {
            expected: SEED_BYTES,
            found: seed.len(),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// Fills `dst` with random bytes.
    pub fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst);
    }

    /// A uniformly random word.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Fills `dst` with uniformly random words (the generator's bytes read
    /// as little-endian words, so the stream is the same on every platform).
    pub fn fill_u64(&mut self, dst: &mut [u64]) {
        self.0.fill_bytes(bytemuck::cast_slice_mut(dst));
        for word in dst.iter_mut() {
            *word = u64::from_le(*word);
        }
    }

    /// A ChaCha8 generator seeded from this one, for randomness that must be
    /// unbiased but protects no secret (the dither of stochastic rounding):
    /// eight rounds still have no known distinguisher, at 2.5 times the
    /// speed of twenty.
    pub fn fork_dither(&mut self) -> DitherRng {
        let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
        self.fill_bytes(seed.as_mut_slice());
        DitherRng(chacha20::ChaCha8Rng::from_seed(*seed))
    }

    /// A fresh generator seeded from this one, for handing to another thread.
    pub fn fork(&mut self) -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
        self.fill_bytes(seed.as_mut_slice());
        Self::from_seed(*seed)
    }
}

impl fmt::Debug for Csprng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Csprng { .. }")
    }
}

/// A fast generator for dithering (see [`Csprng::fork_dither`]); wiped on
/// drop like its parent.
pub struct DitherRng(chacha20::ChaCha8Rng);

impl DitherRng {
    /// Fills `dst` with random bytes.
    pub fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst);
    }
}

impl fmt::Debug for DitherRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DitherRng { .. }")
    }
}

/// Fills `out` with independent uniform residues modulo `m` by rejection
/// sampling on `bits(m)`-bit candidates (at most half are rejected).
pub(crate) fn fill_uniform_mod(rng: &mut Csprng, m: &Modulus, out: &mut [u64]) {
    let mask = u64::MAX >> (64 - m.bits());
    let mut words = Zeroizing::new([0u64; BATCH]);
    let mut filled = 0;
    while filled < out.len() {
        rng.fill_u64(words.as_mut_slice());
        for &w in words.iter() {
            let candidate = w & mask;
            if candidate < m.value() {
                if let Some(slot) = out.get_mut(filled) {
                    *slot = candidate;
                }
                filled += 1;
            }
        }
    }
}

/// A polynomial with every residue uniform and independent: uniform on R_Q,
/// in either representation (the NTT is a bijection).
pub fn sample_uniform<R: Representation>(ctx: &Arc<RingContext>, rng: &mut Csprng) -> Poly<R> {
    let mut data = vec![0u64; ctx.poly_len()];
    for (m, row) in ctx.moduli().iter().zip(data.chunks_exact_mut(ctx.degree())) {
        fill_uniform_mod(rng, m, row);
    }
    Poly::from_raw(ctx, data)
}

/// The residue of a signed value with |x| < p, without branching.
#[inline(always)]
pub(crate) fn small_to_residue(m: &Modulus, x: i64) -> u64 {
    let negative = (x >> 63).cast_unsigned();
    x.cast_unsigned().wrapping_add(m.value() & negative)
}

/// Spreads signed coefficients with |x| <= `bound` into RNS rows, in
/// constant time; the shortcut for values below a prime is chosen from the
/// public bound, never from the values. Coefficients past N are ignored,
/// missing ones are zero.
pub fn small_to_poly(
    ctx: &Arc<RingContext>,
    coefficients: &[i64],
    bound: u64,
) -> SecretPoly<Coeff> {
    let mut data = vec![0u64; ctx.poly_len()];
    for (m, row) in ctx.moduli().iter().zip(data.chunks_exact_mut(ctx.degree())) {
        if bound < m.value() {
            crate::simd::vectorize(
                #[inline(always)]
                || {
                    for (out, &x) in row.iter_mut().zip(coefficients) {
                        *out = small_to_residue(m, x);
                    }
                },
            );
        } else {
            for (out, &x) in row.iter_mut().zip(coefficients) {
                *out = m.reduce_i64(x);
            }
        }
    }
    SecretPoly::new(Poly::from_raw(ctx, data))
}

/// Fills `out` with independent values uniform on {-1, 0, 1}, in constant
/// time per accepted value.
pub fn fill_ternary(rng: &mut Csprng, out: &mut [i64]) {
    let mut bytes = Zeroizing::new([0u8; BATCH]);
    let mut filled = 0;
    while filled < out.len() {
        rng.fill_bytes(bytes.as_mut_slice());
        for &b in bytes.iter() {
            // 255 = 3 * 85: accepting 0..=254 keeps the three values equally likely.
            if b < 255 {
                if let Some(slot) = out.get_mut(filled) {
                    *slot = i64::from(b % 3) - 1;
                }
                filled += 1;
            }
        }
    }
}

/// A secret with coefficients uniform on {-1, 0, 1}.
pub fn sample_ternary(ctx: &Arc<RingContext>, rng: &mut Csprng) -> SecretPoly<Coeff> {
    let mut coefficients = Zeroizing::new(vec![0i64; ctx.degree()]);
    fill_ternary(rng, &mut coefficients);
    small_to_poly(ctx, &coefficients, 1)
}

#[cfg(test)]
mod tests;
