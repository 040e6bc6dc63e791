//! Arithmetic in Z_p for a word-size modulus p < 2^62.
//!
//! Every operation here is constant time in its operands: reductions use
//! masks instead of branches, and multiplication uses Barrett reduction
//! (Menezes, van Oorschot, Vanstone, *Handbook of Applied Cryptography*,
//! Algorithm 14.42) or Shoup's precomputed-quotient method, never the
//! hardware divider, whose latency depends on its inputs.

use crate::error::{MathError, Result};

/// Moduli must stay below 2^62 so that every intermediate value of the
/// reductions below (at most 3p) fits in a `u64`.
pub const MAX_MODULUS_BITS: u32 = 62;

/// A modulus p in [2, 2^62) with its precomputed reduction constants.
///
/// The value is public; the operands of its methods may be secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Modulus {
    value: u64,
    bits: u32,
    /// floor(2^(2*bits) / p), the Barrett constant for products of two residues.
    barrett: u64,
    /// floor(2^64 / p), the Barrett constant for reducing a whole word.
    word_barrett: u64,
}

// Word arithmetic on 128-bit products keeps the low or the high word on
// purpose: the truncating casts below are the algorithm, not accidents.
#[allow(clippy::cast_possible_truncation)]
impl Modulus {
    /// Builds the reduction constants for `value`.
    ///
    /// # Errors
    /// [`MathError::InvalidModulus`] when `value` is below 2 or not below 2^62.
    pub fn new(value: u64) -> Result<Self> {
        if value < 2 || value >> MAX_MODULUS_BITS != 0 {
            return Err(MathError::InvalidModulus {
                modulus: value,
                max_bits: MAX_MODULUS_BITS,
            });
        }
        let bits = u64::BITS - value.leading_zeros();
        let p = u128::from(value);
        // Both quotients fit a word: 2^(2*bits) / p <= 2^(bits+1) <= 2^63 and
        // 2^64 / p <= 2^63 for p >= 2.
        let barrett = narrow((1u128 << (2 * bits)) / p);
        let word_barrett = narrow((1u128 << 64) / p);
        Ok(Self {
            value,
            bits,
            barrett,
            word_barrett,
        })
    }

    /// The modulus p.
    #[inline]
    pub const fn value(&self) -> u64 {
        self.value
    }

    /// The bit length of p.
    #[inline]
    pub const fn bits(&self) -> u32 {
        self.bits
    }

    /// Maps x in [0, 2p) to x mod p without branching.
    #[inline(always)]
    pub const fn reduce_once(&self, x: u64) -> u64 {
        let t = x.wrapping_sub(self.value);
        // x < p makes t wrap around to a value with its top bit set (p < 2^62),
        // so the mask selects x; otherwise it selects t = x - p.
        let keep_x = 0u64.wrapping_sub(t >> 63);
        t ^ ((x ^ t) & keep_x)
    }

    // add, sub and neg require reduced operands (every residue of a `Poly`
    // is); they use wrapping arithmetic so that a caller breaking that rule
    // gets a wrong value, never a panic.

    /// (a + b) mod p for a, b < p.
    #[inline(always)]
    pub const fn add(&self, a: u64, b: u64) -> u64 {
        self.reduce_once(a.wrapping_add(b))
    }

    /// (a - b) mod p for a, b < p.
    #[inline(always)]
    pub const fn sub(&self, a: u64, b: u64) -> u64 {
        self.reduce_once(a.wrapping_add(self.value).wrapping_sub(b))
    }

    /// (-a) mod p for a < p.
    #[inline(always)]
    pub const fn neg(&self, a: u64) -> u64 {
        self.reduce_once(self.value.wrapping_sub(a))
    }

    /// x mod p for any word x (Barrett reduction with 2^64 as the base).
    #[inline(always)]
    pub const fn reduce(&self, x: u64) -> u64 {
        // q = floor(x * floor(2^64/p) / 2^64) lies in [floor(x/p) - 1, floor(x/p)],
        // so x - q*p < 2p.
        let q = mul_high(x, self.word_barrett);
        self.reduce_once(x.wrapping_sub(q.wrapping_mul(self.value)))
    }

    /// x mod p for x < 2^(2*bits), in particular for x = a*b with a, b < p
    /// (HAC Algorithm 14.42 with b = 2 and k = bits).
    #[inline(always)]
    pub const fn reduce_wide(&self, x: u128) -> u64 {
        let q1 = (x >> (self.bits - 1)) as u64;
        let q3 = ((q1 as u128 * self.barrett as u128) >> (self.bits + 1)) as u64;
        // The estimate is at most 2 below the true quotient, so r < 3p < 2^64.
        let r = (x as u64).wrapping_sub(q3.wrapping_mul(self.value));
        self.reduce_once(self.reduce_once(r))
    }

    /// (a * b) mod p for a, b < p.
    #[inline(always)]
    pub const fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_wide(a as u128 * b as u128)
    }

    /// Shoup's precomputed quotient floor(w * 2^64 / p) for a constant w < p.
    #[inline]
    pub const fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.value as u128) as u64
    }

    /// (a * w) mod p for any word a and a constant w < p with its
    /// [`Self::shoup`] quotient `w_shoup`.
    #[inline(always)]
    pub const fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q = mul_high(a, w_shoup);
        // a*w - q*p lies in [0, 2p) (Shoup, "NTL: a library for number theory").
        self.reduce_once(a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.value)))
    }

    /// a^e mod p by square-and-multiply; the exponent is public.
    pub const fn pow(&self, a: u64, mut e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = self.reduce(1);
        while e != 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// The inverse of a modulo a *prime* p (Fermat), or `None` for a = 0 mod p.
    pub const fn inv_prime(&self, a: u64) -> Option<u64> {
        let a = self.reduce(a);
        if a == 0 {
            None
        } else {
            Some(self.pow(a, self.value - 2))
        }
    }

    /// The signed integer x (any i64) reduced into [0, p), in constant time.
    #[inline(always)]
    pub const fn reduce_i64(&self, x: i64) -> u64 {
        let sign = (x >> 63).cast_unsigned(); // all ones when x < 0
        let magnitude = (x.cast_unsigned() ^ sign).wrapping_sub(sign);
        let r = self.reduce(magnitude);
        let negated = self.neg(r);
        r ^ ((r ^ negated) & sign)
    }
}

/// The high word of the 128-bit product a*b.
#[allow(clippy::cast_possible_truncation)]
#[inline(always)]
pub(crate) const fn mul_high(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) >> 64) as u64
}

/// Narrows a value known to fit in 64 bits.
#[inline(always)]
fn narrow(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn moduli() -> impl Strategy<Value = Modulus> {
        prop_oneof![
            (2u64..1 << 20),
            (1u64 << 20..1 << 50),
            (1u64 << 50..1 << 62),
            Just((1u64 << 62) - 57),
            Just(3u64),
        ]
        .prop_map(|p| Modulus::new(p).unwrap())
    }

    #[test]
    fn refuses_out_of_range_moduli() {
        assert!(Modulus::new(0).is_err());
        assert!(Modulus::new(1).is_err());
        assert!(Modulus::new(1 << 62).is_err());
        assert!(Modulus::new(u64::MAX).is_err());
        assert!(Modulus::new((1 << 62) - 1).is_ok());
    }

    proptest! {
        #[test]
        fn field_operations_match_u128(m in moduli(), a in any::<u64>(), b in any::<u64>()) {
            let p = m.value();
            let (a, b) = (a % p, b % p);
            let wide = |x: u128| (x % u128::from(p)) as u64;
            prop_assert_eq!(m.add(a, b), wide(u128::from(a) + u128::from(b)));
            prop_assert_eq!(m.sub(a, b), wide(u128::from(a) + u128::from(p) - u128::from(b)));
            prop_assert_eq!(m.neg(a), wide(u128::from(p) - u128::from(a)));
            prop_assert_eq!(m.mul(a, b), wide(u128::from(a) * u128::from(b)));
            prop_assert_eq!(m.mul_shoup(a, b, m.shoup(b)), wide(u128::from(a) * u128::from(b)));
        }

        #[test]
        fn shoup_accepts_any_word(m in moduli(), a in any::<u64>(), w in any::<u64>()) {
            let w = w % m.value();
            let expected = (u128::from(a) * u128::from(w) % u128::from(m.value())) as u64;
            prop_assert_eq!(m.mul_shoup(a, w, m.shoup(w)), expected);
        }

        #[test]
        fn word_and_signed_reduction(m in moduli(), x in any::<u64>(), s in any::<i64>()) {
            prop_assert_eq!(m.reduce(x), x % m.value());
            let expected = i128::from(s).rem_euclid(i128::from(m.value())) as u64;
            prop_assert_eq!(m.reduce_i64(s), expected);
        }

        #[test]
        fn wide_reduction_covers_its_whole_domain(m in moduli(), x in any::<u128>()) {
            let x = x >> (128 - 2 * m.bits());
            prop_assert_eq!(u128::from(m.reduce_wide(x)), x % u128::from(m.value()));
        }
    }

    #[test]
    fn inverse_modulo_a_prime() {
        let m = Modulus::new(1_125_899_906_826_241).unwrap();
        assert_eq!(m.inv_prime(0), None);
        for a in [1u64, 2, 3, 12345, m.value() - 1] {
            let inv = m.inv_prime(a).unwrap();
            assert_eq!(m.mul(a, inv), 1);
        }
    }

    #[test]
    fn reduce_i64_extremes() {
        let m = Modulus::new(97).unwrap();
        assert_eq!(
            m.reduce_i64(i64::MIN),
            (i128::from(i64::MIN).rem_euclid(97)) as u64
        );
        assert_eq!(m.reduce_i64(-1), 96);
        assert_eq!(m.reduce_i64(0), 0);
    }
}
