//! The prime field Z_p of the shares, with branch-free reductions.
//!
//! Elements are `u32` below p < 2^32; products fit in a `u64`. Reductions
//! of secret data use Barrett's method (one 128-bit multiply by the public
//! constant floor(2^64 / p), then one masked subtraction) and Shoup's
//! method for products with a public weight: no branch and no table look-up
//! depends on an element. Inverses work on public data only and take
//! variable time, as their `_vartime` names say.

use ringsum_math::prime::is_prime;

use crate::error::{Result, ThresholdError};

/// A validated prime modulus p with 2^8 < p < 2^32 for Shamir sharing.
///
/// The field must be large enough to hold the sum it reconstructs:
/// [`crate::shamir::combine_answers`] lifts to the centred interval
/// (-p/2, p/2), so a sum of |S| secrets with coefficients in [-B_s, B_s]
/// needs 2 |S| B_s < p. With p = 65521 ([`ShareField::DEFAULT_MODULUS`])
/// and B_s = 27 that is up to 1213 clients.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareField {
    modulus: u64,
    bits: u32,
    /// floor(2^64 / p), Barrett's constant.
    barrett: u64,
    /// 2^64 mod p, to reduce negative integers.
    wrap: u64,
}

impl ShareField {
    /// The largest prime below 2^16: the field of the shipped parameter
    /// sets (16-bit packed shares).
    pub const DEFAULT_MODULUS: u64 = 65_521;

    /// The field of [`ShareField::DEFAULT_MODULUS`].
    pub const DEFAULT: Self = Self::with_prime(Self::DEFAULT_MODULUS);

    /// The field Z_p.
    ///
    /// # Errors
    /// [`ThresholdError::ShareFieldOutOfRange`] unless 2^8 < p < 2^32, and
    /// [`ThresholdError::ShareFieldNotPrime`].
    pub fn new(modulus: u64) -> Result<Self> {
        if modulus <= 1 << 8 || modulus >= 1 << 32 {
            return Err(ThresholdError::ShareFieldOutOfRange { modulus });
        }
        if !is_prime(modulus) {
            return Err(ThresholdError::ShareFieldNotPrime { modulus });
        }
        Ok(Self::with_prime(modulus))
    }

    /// The field of a modulus already known to be a prime in range.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "p > 2^8, so 2^64 / p < 2^56 and 2^64 mod p < p fit in a u64"
    )]
    const fn with_prime(modulus: u64) -> Self {
        Self {
            modulus,
            bits: u64::BITS - (modulus - 1).leading_zeros(),
            barrett: ((1u128 << 64) / modulus as u128) as u64,
            wrap: ((1u128 << 64) % modulus as u128) as u64,
        }
    }

    /// The prime p.
    pub fn value(&self) -> u64 {
        self.modulus
    }

    /// The bit length of p - 1: the width of one packed element.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// p as a `u32` (p < 2^32 by construction).
    pub(crate) fn modulus_u32(&self) -> u32 {
        low_u32(self.modulus)
    }

    /// x mod p for any `u64`, without branches: Barrett's estimate
    /// q = floor(x floor(2^64/p) / 2^64) is floor(x/p) or one less, so one
    /// masked subtraction finishes.
    #[inline]
    pub(crate) fn reduce(&self, x: u64) -> u32 {
        let q = high_u64(x, self.barrett);
        let r = x.wrapping_sub(q.wrapping_mul(self.modulus));
        low_u32(conditional_subtract(r, self.modulus))
    }

    /// x mod p for x < 3p, with two masked subtractions.
    #[inline]
    pub(crate) fn reduce_small(&self, x: u64) -> u32 {
        low_u32(conditional_subtract(
            conditional_subtract(x, self.modulus),
            self.modulus,
        ))
    }

    /// (a + b) mod p for a, b < p.
    #[inline]
    pub(crate) fn add(&self, a: u32, b: u32) -> u32 {
        low_u32(conditional_subtract(
            u64::from(a) + u64::from(b),
            self.modulus,
        ))
    }

    /// (a - b) mod p for a, b < p.
    #[inline]
    pub(crate) fn sub(&self, a: u32, b: u32) -> u32 {
        let d = u64::from(a).wrapping_sub(u64::from(b));
        let borrow = (d >> 63).wrapping_neg();
        low_u32(d.wrapping_add(self.modulus & borrow))
    }

    /// a b mod p for a, b < p.
    #[inline]
    pub(crate) fn mul(&self, a: u32, b: u32) -> u32 {
        self.reduce(u64::from(a) * u64::from(b))
    }

    /// v mod p for a signed integer, without branches: the two's-complement
    /// word of a negative v is v + 2^64, so 2^64 mod p is taken back off
    /// under a mask.
    #[inline]
    pub(crate) fn reduce_signed(&self, v: i64) -> u32 {
        let word = v.cast_unsigned();
        let negative = (word >> 63).wrapping_neg();
        let wrap = low_u32(self.wrap & negative);
        self.sub(self.reduce(word), wrap)
    }

    /// The centred representative of v < p, in [-(p-1)/2, (p-1)/2],
    /// without branches.
    #[inline]
    pub(crate) fn centre(&self, v: u32) -> i64 {
        let half = (self.modulus - 1) / 2;
        let above = half.wrapping_sub(u64::from(v)) >> 63;
        let shift = self.modulus & above.wrapping_neg();
        i64::from(v) - shift.cast_signed()
    }

    /// `1` when v >= p, `0` otherwise, without branches; or-ed over a
    /// vector it says whether any element is out of range.
    #[inline]
    pub(crate) fn out_of_range(&self, v: u32) -> u64 {
        // v - p is negative (top bit set) exactly when v < p.
        (u64::from(v).wrapping_sub(self.modulus) >> 63) ^ 1
    }

    /// A public weight w < p prepared for Shoup multiplication.
    pub(crate) fn weight(&self, w: u32) -> Weight {
        let shoup = (u64::from(w) << 32) / self.modulus;
        Weight {
            value: w,
            // w < p, so w 2^32 / p < 2^32.
            shoup: low_u32(shoup),
        }
    }

    /// w y reduced only to [0, 2p): Shoup's multiplication by a prepared
    /// public weight, branch-free in y (y < 2^32).
    #[inline]
    pub(crate) fn mul_weight_lazy(&self, y: u32, w: Weight) -> u64 {
        // Every factor is a zero-extended 32-bit word (p too), so each
        // product is one 32 x 32 -> 64-bit multiply, which vectorises.
        let q = (u64::from(w.shoup) * u64::from(y)) >> 32;
        let p = u64::from(self.modulus_u32());
        (u64::from(w.value) * u64::from(y)).wrapping_sub(q.wrapping_mul(p))
    }

    /// a^e mod p, square and multiply; public data only.
    pub(crate) fn pow_vartime(&self, a: u32, mut e: u64) -> u32 {
        let (mut base, mut acc) = (a, 1u32);
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// a^-1 mod p by Fermat's little theorem, `None` for a = 0; public data
    /// only.
    pub(crate) fn inv_vartime(&self, a: u32) -> Option<u32> {
        (a != 0).then(|| self.pow_vartime(a, self.modulus - 2))
    }

    /// x mod p for a public holder id or any u64, as an element.
    pub(crate) fn element(&self, x: u64) -> u32 {
        self.reduce(x)
    }
}

impl std::fmt::Debug for ShareField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareField")
            .field("modulus", &self.modulus)
            .field("bits", &self.bits)
            .finish()
    }
}

impl std::fmt::Display for ShareField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Z_{}", self.modulus)
    }
}

/// A public multiplier with its Shoup companion floor(w 2^32 / p).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Weight {
    value: u32,
    shoup: u32,
}

/// r - p if r >= p, else r, for r < 2^63, without branches.
#[inline]
fn conditional_subtract(r: u64, p: u64) -> u64 {
    let d = r.wrapping_sub(p);
    let borrow = (d >> 63).wrapping_neg();
    d.wrapping_add(p & borrow)
}

/// The high word of the 128-bit product a b.
#[inline]
fn high_u64(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) >> 64) as u64
}

/// The low 32 bits (every caller has reduced below p < 2^32 already).
#[inline]
#[expect(
    clippy::cast_possible_truncation,
    reason = "callers pass values below p < 2^32"
)]
fn low_u32(x: u64) -> u32 {
    x as u32
}
