//! Fixed-width CRT reconstruction, for decoding many public coefficients
//! fast.
//!
//! [`crate::rns::RnsBasis::centered_lift_vartime`] goes through `num-bigint`
//! and allocates per coefficient; decoding an aggregate reconstructs
//! millions of coefficients, so this module does the same in little-endian
//! `u64` limbs on the stack:
//!
//! 1. y_i = r_i * (Q/q_i)^(-1) mod q_i (Shoup multiplications);
//! 2. X = sum_i y_i * (Q/q_i), an exact multi-limb sum below kQ;
//! 3. v = round(sum_i y_i / q_i), estimated in `f64`: X/Q differs from that
//!    sum by nothing, so x = X - v*Q is the centred representative except
//!    when the fraction is within about 2^-45 of one half, i.e. when
//!    |x| is within 2^-45 Q of Q/2;
//! 4. a final comparison with ±Q/2 corrects that rare case, so the result is
//!    always exact.
//!
//! Variable time: the running time depends on the values (the correction
//! branch, taken only within 2^-45 Q of ±Q/2). Decoding an aggregate is its
//! purpose; a single-key decryption also runs it on a phase that, with the
//! ciphertext, determines the key, where the only value-dependent branch is
//! never taken for a valid ciphertext.

use crate::rns::RnsBasis;
use crate::zq::Modulus;

/// The most limbs a value of a supported basis needs (32 primes of 62 bits,
/// plus a sign limb).
pub const MAX_LIMBS: usize = 32;

/// A signed integer in two's complement over [`MAX_LIMBS`] limbs, of which
/// the first `len` are meaningful (the rest repeat the sign).
pub type Limbs = [u64; MAX_LIMBS];

/// Precomputed constants of the fixed-width reconstruction.
#[derive(Clone, Debug, PartialEq)]
pub struct FastCrt {
    moduli: Vec<Modulus>,
    inverses: Vec<(u64, u64)>,
    reciprocals: Vec<f64>,
    cofactors: Vec<Limbs>,
    product: Limbs,
    half_product: Limbs,
    len: usize,
}

impl FastCrt {
    /// Builds the constants for a basis.
    pub fn new(basis: &RnsBasis) -> Self {
        // One limb of headroom above Q for the sign and for sums below kQ.
        let len = usize::try_from(basis.product_bits().div_ceil(64) + 1)
            .unwrap_or(MAX_LIMBS)
            .min(MAX_LIMBS);
        let to_limbs = |x: &num_bigint::BigUint| {
            let mut limbs = [0u64; MAX_LIMBS];
            for (slot, digit) in limbs.iter_mut().zip(x.iter_u64_digits()) {
                *slot = digit;
            }
            limbs
        };
        let moduli = basis.moduli().to_vec();
        let (cofactors, inverses) = basis.crt_constants();
        Self {
            inverses: inverses
                .iter()
                .zip(&moduli)
                .map(|(&inv, m)| (inv, m.shoup(inv)))
                .collect(),
            #[allow(clippy::cast_precision_loss)]
            reciprocals: moduli.iter().map(|m| 1.0 / m.value() as f64).collect(),
            cofactors: cofactors.iter().map(to_limbs).collect(),
            product: to_limbs(basis.product()),
            half_product: to_limbs(&(basis.product() >> 1u32)),
            moduli,
            len,
        }
    }

    /// The number of meaningful limbs of a result.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a basis has at least one prime.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The centred representative x in (-Q/2, Q/2] of the residues (one per
    /// prime, each reduced), in two's complement limbs.
    pub fn centered_lift_vartime(&self, residues: impl Iterator<Item = u64>) -> Limbs {
        let mut x = [0u64; MAX_LIMBS];
        let mut fraction = 0.0f64;
        for ((((r, m), &(inv, inv_shoup)), reciprocal), cofactor) in residues
            .zip(&self.moduli)
            .zip(&self.inverses)
            .zip(&self.reciprocals)
            .zip(&self.cofactors)
        {
            let y = m.mul_shoup(r, inv, inv_shoup);
            #[allow(clippy::cast_precision_loss)]
            let term = y as f64 * reciprocal;
            fraction += term;
            mul_add_word(&mut x, cofactor, y, self.len);
        }
        // 0 <= fraction < k, so the rounded quotient fits a word.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let quotient = fraction.round() as u64;
        mul_sub_word(&mut x, &self.product, quotient, self.len);
        // Exactness: bring x into (-Q/2, Q/2] if the float estimate was off.
        if is_negative(&x, self.len) {
            let mut negated = x;
            negate(&mut negated, self.len);
            if compare(&negated, &self.half_product, self.len).is_gt() {
                add_assign(&mut x, &self.product, self.len);
            }
        } else if compare(&x, &self.half_product, self.len).is_gt() {
            mul_sub_word(&mut x, &self.product, 1, self.len);
        }
        sign_extend(&mut x, self.len);
        x
    }
}

/// acc += a * w over `len` limbs (wrapping).
fn mul_add_word(acc: &mut Limbs, a: &Limbs, w: u64, len: usize) {
    let mut carry = 0u128;
    for (acc, &a) in acc.iter_mut().zip(a).take(len) {
        let t = u128::from(a) * u128::from(w) + u128::from(*acc) + carry;
        #[allow(clippy::cast_possible_truncation)]
        {
            *acc = t as u64;
        }
        carry = t >> 64;
    }
}

/// acc -= a * w over `len` limbs (wrapping).
fn mul_sub_word(acc: &mut Limbs, a: &Limbs, w: u64, len: usize) {
    let mut borrow = 0u128;
    for (acc, &a) in acc.iter_mut().zip(a).take(len) {
        let t = u128::from(a) * u128::from(w) + borrow;
        #[allow(clippy::cast_possible_truncation)]
        let low = t as u64;
        let (d, underflow) = acc.overflowing_sub(low);
        *acc = d;
        borrow = (t >> 64) + u128::from(underflow);
    }
}

fn add_assign(acc: &mut Limbs, a: &Limbs, len: usize) {
    let mut carry = false;
    for (acc, &a) in acc.iter_mut().zip(a).take(len) {
        let (s1, c1) = acc.overflowing_add(a);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        *acc = s2;
        carry = c1 || c2;
    }
}

fn negate(x: &mut Limbs, len: usize) {
    let mut carry = true;
    for limb in x.iter_mut().take(len) {
        let (s, c) = (!*limb).overflowing_add(u64::from(carry));
        *limb = s;
        carry = c;
    }
}

fn is_negative(x: &Limbs, len: usize) -> bool {
    len.checked_sub(1)
        .and_then(|top| x.get(top))
        .is_some_and(|&top| top >> 63 == 1)
}

fn compare(a: &Limbs, b: &Limbs, len: usize) -> std::cmp::Ordering {
    a.iter().take(len).rev().cmp(b.iter().take(len).rev())
}

fn sign_extend(x: &mut Limbs, len: usize) {
    let fill = if is_negative(x, len) { u64::MAX } else { 0 };
    for limb in x.iter_mut().skip(len) {
        *limb = fill;
    }
}

/// The limbs of a signed integer as a `BigInt` (tests and diagnostics).
pub fn limbs_to_bigint(x: &Limbs) -> num_bigint::BigInt {
    let negative = x.last().is_some_and(|&top| top >> 63 == 1);
    let mut magnitude = *x;
    if negative {
        negate(&mut magnitude, MAX_LIMBS);
    }
    let digits: Vec<u32> = magnitude
        .iter()
        .flat_map(|&limb| {
            #[allow(clippy::cast_possible_truncation)]
            [limb as u32, (limb >> 32) as u32]
        })
        .collect();
    let value = num_bigint::BigInt::from(num_bigint::BigUint::from_slice(&digits));
    if negative { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prime::generate_ntt_primes;
    use num_bigint::BigInt;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_the_big_integer_lift(k in 1usize..=16, seed in any::<u64>(), edge in 0u8..4) {
            let basis = RnsBasis::new(&generate_ntt_primes(4096, &vec![50; k]).unwrap()).unwrap();
            let crt = FastCrt::new(&basis);
            let q = BigInt::from(basis.product().clone());
            let half: BigInt = &q / BigInt::from(2);
            // Random values, and values at the edges of (-Q/2, Q/2].
            let x = match edge {
                0 => half.clone(),
                1 => -half.clone(),
                2 => &half - BigInt::from(seed % 1000),
                _ => BigInt::from(seed) * BigInt::from(seed.rotate_left(17)) * BigInt::from(seed | 1),
            };
            let x = ((x % &q) + &q) % &q;
            let residues = basis.reduce_bigint_vartime(&x);
            let expected = basis.centered_lift_vartime(&residues).unwrap();
            let fast = crt.centered_lift_vartime(residues.iter().copied());
            prop_assert_eq!(limbs_to_bigint(&fast), expected);
        }
    }
}
