//! Residue number system: Q = q_0 * ... * q_(k-1) with word-size primes, and
//! exact reconstruction through the Chinese remainder theorem.
//!
//! Reconstruction goes through `num-bigint`, which is not constant time: the
//! `_vartime` functions are for public data only (aggregates, public keys,
//! decoded sums), never for secret keys or their shares.

use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{ToPrimitive, Zero};

use crate::error::{MathError, Result};
use crate::zq::Modulus;

/// The most primes a basis may hold (32 primes of 62 bits exceed every
/// security bound the project uses).
pub const MAX_BASIS_PRIMES: usize = 32;

/// An RNS basis: distinct primes, their product Q and the CRT constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnsBasis {
    moduli: Vec<Modulus>,
    product: BigUint,
    half_product: BigUint,
    /// Q / q_i.
    cofactors: Vec<BigUint>,
    /// (Q / q_i)^(-1) mod q_i.
    cofactor_inverses: Vec<u64>,
}

impl RnsBasis {
    /// Builds a basis from distinct primes.
    ///
    /// # Errors
    /// [`MathError::InvalidBasisSize`] for an empty or oversized list,
    /// [`MathError::InvalidModulus`] / [`MathError::NotPrime`] for a bad
    /// entry, [`MathError::DuplicatePrime`] for a repeated one.
    pub fn new(primes: &[u64]) -> Result<Self> {
        if primes.is_empty() || primes.len() > MAX_BASIS_PRIMES {
            return Err(MathError::InvalidBasisSize {
                count: primes.len(),
                max: MAX_BASIS_PRIMES,
            });
        }
        let mut moduli = Vec::with_capacity(primes.len());
        for (i, &p) in primes.iter().enumerate() {
            if primes.get(..i).is_some_and(|before| before.contains(&p)) {
                return Err(MathError::DuplicatePrime { modulus: p });
            }
            if !crate::prime::is_prime(p) {
                return Err(MathError::NotPrime { modulus: p });
            }
            moduli.push(Modulus::new(p)?);
        }
        let product: BigUint = primes.iter().map(|&p| BigUint::from(p)).product();
        let half_product = &product >> 1u32;
        let mut cofactors = Vec::with_capacity(moduli.len());
        let mut cofactor_inverses = Vec::with_capacity(moduli.len());
        for m in &moduli {
            let cofactor = &product / m.value();
            let residue = reduce_biguint_word(&cofactor, m);
            // Distinct primes make Q/q_i invertible modulo q_i.
            let inverse = m
                .inv_prime(residue)
                .ok_or(MathError::DuplicatePrime { modulus: m.value() })?;
            cofactors.push(cofactor);
            cofactor_inverses.push(inverse);
        }
        Ok(Self {
            moduli,
            product,
            half_product,
            cofactors,
            cofactor_inverses,
        })
    }

    /// The primes, as moduli.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// The number of primes k.
    pub fn len(&self) -> usize {
        self.moduli.len()
    }

    /// Always false: a basis holds at least one prime.
    pub fn is_empty(&self) -> bool {
        self.moduli.is_empty()
    }

    /// Q, the product of the primes.
    pub fn product(&self) -> &BigUint {
        &self.product
    }

    /// The bit length of Q (Q < 2^bits).
    pub fn product_bits(&self) -> u64 {
        self.product.bits()
    }

    /// Checks the length and the range of one coefficient's residues.
    fn check_residues(&self, residues: &[u64]) -> Result<()> {
        if residues.len() != self.moduli.len() {
            return Err(MathError::LengthMismatch {
                what: "residues of one coefficient",
                expected: self.moduli.len(),
                found: residues.len(),
            });
        }
        for (index, (&value, m)) in residues.iter().zip(&self.moduli).enumerate() {
            if value >= m.value() {
                return Err(MathError::ValueOutOfRange {
                    index,
                    value,
                    modulus: m.value(),
                });
            }
        }
        Ok(())
    }

    /// The integer x in [0, Q) with x = r_i mod q_i for every i (variable
    /// time, public data only).
    ///
    /// # Errors
    /// [`MathError::LengthMismatch`] unless there is one residue per prime,
    /// [`MathError::ValueOutOfRange`] for a residue not below its prime.
    pub fn reconstruct_vartime(&self, residues: &[u64]) -> Result<BigUint> {
        self.check_residues(residues)?;
        Ok(self.reconstruct_unchecked_vartime(residues.iter().copied()))
    }

    /// The centred representative of x in (-Q/2, Q/2] (variable time, public
    /// data only).
    ///
    /// # Errors
    /// As [`Self::reconstruct_vartime`].
    pub fn centered_lift_vartime(&self, residues: &[u64]) -> Result<BigInt> {
        let x = self.reconstruct_vartime(residues)?;
        Ok(self.center_vartime(x))
    }

    /// CRT reconstruction from residues already known to be in range.
    pub(crate) fn reconstruct_unchecked_vartime(
        &self,
        residues: impl Iterator<Item = u64>,
    ) -> BigUint {
        // x = sum_i [r_i * (Q/q_i)^-1 mod q_i] * (Q/q_i)  (mod Q); the sum is
        // below k*Q, so one division finishes it.
        let mut acc = BigUint::zero();
        for (((r, m), inverse), cofactor) in residues
            .zip(&self.moduli)
            .zip(&self.cofactor_inverses)
            .zip(&self.cofactors)
        {
            acc += cofactor * m.mul(r, *inverse);
        }
        if acc >= self.product {
            acc %= &self.product;
        }
        acc
    }

    /// The CRT constants: Q/q_i and (Q/q_i)^(-1) mod q_i.
    pub(crate) fn crt_constants(&self) -> (&[BigUint], &[u64]) {
        (&self.cofactors, &self.cofactor_inverses)
    }

    /// Maps x in [0, Q) to (-Q/2, Q/2].
    pub(crate) fn center_vartime(&self, x: BigUint) -> BigInt {
        if x > self.half_product {
            BigInt::from_biguint(Sign::Plus, x)
                - BigInt::from_biguint(Sign::Plus, self.product.clone())
        } else {
            BigInt::from_biguint(Sign::Plus, x)
        }
    }

    /// The residues of a non-negative integer (variable time, public data only).
    pub fn reduce_biguint_vartime(&self, x: &BigUint) -> Vec<u64> {
        self.moduli
            .iter()
            .map(|m| reduce_biguint_word(x, m))
            .collect()
    }

    /// The residues of a signed integer (variable time, public data only).
    pub fn reduce_bigint_vartime(&self, x: &BigInt) -> Vec<u64> {
        let magnitude = self.reduce_biguint_vartime(x.magnitude());
        if x.sign() == Sign::Minus {
            magnitude
                .iter()
                .zip(&self.moduli)
                .map(|(&r, m)| m.neg(r))
                .collect()
        } else {
            magnitude
        }
    }
}

/// x mod p for a big integer, by Horner's rule over its 64-bit limbs.
fn reduce_biguint_word(x: &BigUint, m: &Modulus) -> u64 {
    let two_64 = m.reduce(u64::MAX).wrapping_add(1);
    let two_64 = m.reduce_once(two_64);
    let two_64_shoup = m.shoup(two_64);
    x.iter_u64_digits().rev().fold(0u64, |acc, limb| {
        m.add(m.mul_shoup(acc, two_64, two_64_shoup), m.reduce(limb))
    })
}

/// Converts a reconstructed value to `f64` for statistics (lossy; tests and
/// diagnostics only).
pub fn bigint_to_f64(x: &BigInt) -> f64 {
    x.to_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prime::generate_ntt_primes;
    use proptest::prelude::*;

    fn basis(k: usize) -> RnsBasis {
        RnsBasis::new(&generate_ntt_primes(4096, &vec![50; k]).unwrap()).unwrap()
    }

    #[test]
    fn refuses_bad_bases() {
        assert_eq!(
            RnsBasis::new(&[]),
            Err(MathError::InvalidBasisSize {
                count: 0,
                max: MAX_BASIS_PRIMES
            })
        );
        assert_eq!(
            RnsBasis::new(&[97, 97]),
            Err(MathError::DuplicatePrime { modulus: 97 })
        );
        assert_eq!(
            RnsBasis::new(&[97, 91]),
            Err(MathError::NotPrime { modulus: 91 })
        );
        assert!(RnsBasis::new(&[97; 33]).is_err());
    }

    #[test]
    fn refuses_bad_residues() {
        let b = basis(3);
        assert!(matches!(
            b.reconstruct_vartime(&[1, 2]),
            Err(MathError::LengthMismatch {
                expected: 3,
                found: 2,
                ..
            })
        ));
        let p1 = b.moduli()[1].value();
        assert_eq!(
            b.reconstruct_vartime(&[0, p1, 0]),
            Err(MathError::ValueOutOfRange {
                index: 1,
                value: p1,
                modulus: p1
            })
        );
    }

    proptest! {
        #[test]
        fn crt_round_trip_matches_bigint_arithmetic(
            k in 1usize..8,
            limbs in proptest::collection::vec(any::<u64>(), 8),
            negative in any::<bool>(),
        ) {
            let b = basis(k);
            let x = BigUint::from_slice(&limbs.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]).collect::<Vec<_>>())
                % b.product();
            let residues = b.reduce_biguint_vartime(&x);
            for (r, m) in residues.iter().zip(b.moduli()) {
                prop_assert_eq!(BigUint::from(*r), &x % m.value());
            }
            prop_assert_eq!(b.reconstruct_vartime(&residues).unwrap(), x.clone());

            // A signed value round-trips through the centred lift while it
            // lies in (-Q/2, Q/2].
            let half = b.product() >> 1u32;
            let y = x % &half;
            let signed = if negative { -BigInt::from(y) } else { BigInt::from(y) };
            let residues = b.reduce_bigint_vartime(&signed);
            prop_assert_eq!(b.centered_lift_vartime(&residues).unwrap(), signed);
        }

        #[test]
        fn centred_lift_is_bounded_and_congruent(k in 1usize..6, seed in any::<u64>()) {
            let b = basis(k);
            let residues: Vec<u64> = b.moduli().iter().enumerate()
                .map(|(i, m)| seed.rotate_left(7 * i as u32) % m.value())
                .collect();
            let lifted = b.centered_lift_vartime(&residues).unwrap();
            let q = BigInt::from(b.product().clone());
            // -Q/2 < lifted <= Q/2
            prop_assert!(BigInt::from(2) * &lifted > -q.clone());
            prop_assert!(BigInt::from(2) * &lifted <= q);
            prop_assert_eq!(b.reduce_bigint_vartime(&lifted), residues);
        }
    }

    #[test]
    fn centred_lift_at_the_edges() {
        let b = basis(2);
        let q = BigInt::from(b.product().clone());
        let half = BigInt::from(b.product() >> 1u32);
        // Q is odd: (Q-1)/2 stays positive, (Q+1)/2 becomes -(Q-1)/2.
        let r = b.reduce_bigint_vartime(&half);
        assert_eq!(b.centered_lift_vartime(&r).unwrap(), half);
        let r = b.reduce_bigint_vartime(&(&half + 1));
        assert_eq!(b.centered_lift_vartime(&r).unwrap(), &half + 1 - &q);
        let r = b.reduce_bigint_vartime(&BigInt::from(-1));
        assert_eq!(b.centered_lift_vartime(&r).unwrap(), BigInt::from(-1));
    }
}
