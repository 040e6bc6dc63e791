//! The ring R_Q = Z_Q[X]/(X^N + 1): degree, RNS basis and the NTT plans,
//! built once and shared by every polynomial of the ring.

use std::fmt;
use std::sync::Arc;

use tfhe_ntt::prime64::Plan;

use crate::crt::FastCrt;
use crate::error::{MathError, Result};
use crate::prime::check_ntt_prime;
use crate::rns::RnsBasis;
use crate::zq::Modulus;

/// The smallest ring degree: tfhe-ntt's SIMD kernels need 16 coefficients.
pub const MIN_DEGREE: usize = 16;
/// The largest ring degree.
pub const MAX_DEGREE: usize = 1 << 17;

/// Checks that N is a power of two in [`MIN_DEGREE`]..=[`MAX_DEGREE`].
///
/// # Errors
/// [`MathError::InvalidDegree`].
pub fn check_degree(degree: usize) -> Result<()> {
    if degree.is_power_of_two() && (MIN_DEGREE..=MAX_DEGREE).contains(&degree) {
        Ok(())
    } else {
        Err(MathError::InvalidDegree {
            degree,
            min: MIN_DEGREE,
            max: MAX_DEGREE,
        })
    }
}

/// A negacyclic ring in RNS form with one tfhe-ntt plan per prime.
///
/// Build it once per parameter set with [`RingContext::new`] and share the
/// `Arc`: every [`crate::Poly`] keeps a reference to its ring.
pub struct RingContext {
    degree: usize,
    basis: RnsBasis,
    crt: FastCrt,
    plans: Vec<Plan>,
}

impl RingContext {
    /// Builds the ring of degree `degree` over the product of `primes`.
    ///
    /// # Errors
    /// [`MathError::InvalidDegree`], or any error of [`RnsBasis::new`] and
    /// [`crate::prime::check_ntt_prime`] for a prime that is not prime or not
    /// 1 mod 2N.
    pub fn new(degree: usize, primes: &[u64]) -> Result<Arc<Self>> {
        check_degree(degree)?;
        if primes.is_empty() || primes.len() > crate::rns::MAX_BASIS_PRIMES {
            return Err(MathError::InvalidBasisSize {
                count: primes.len(),
                max: crate::rns::MAX_BASIS_PRIMES,
            });
        }
        for &p in primes {
            check_ntt_prime(p, degree)?;
        }
        let basis = RnsBasis::new(primes)?;
        let plans = primes
            .iter()
            .map(|&p| {
                Plan::try_new(degree, p).ok_or(MathError::NttPlanUnavailable { modulus: p, degree })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            degree,
            crt: FastCrt::new(&basis),
            basis,
            plans,
        }))
    }

    /// The ring degree N.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The RNS basis of Q.
    pub fn basis(&self) -> &RnsBasis {
        &self.basis
    }

    /// The fixed-width CRT of the basis, for decoding public coefficients.
    pub fn crt(&self) -> &FastCrt {
        &self.crt
    }

    /// The primes as moduli.
    pub fn moduli(&self) -> &[Modulus] {
        self.basis.moduli()
    }

    /// The number of RNS primes k.
    pub fn num_primes(&self) -> usize {
        self.basis.len()
    }

    /// The number of `u64` words of one polynomial: k * N.
    pub fn poly_len(&self) -> usize {
        self.degree * self.basis.len()
    }

    /// Whether every prime's NTT runs on tfhe-ntt's AVX-512 IFMA path on this
    /// machine (primes below 2^50 on a CPU that has IFMA).
    pub fn uses_ifma(&self) -> bool {
        self.plans.iter().all(Plan::use_ifma)
    }

    pub(crate) fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// Whether two contexts describe the same ring.
    pub fn same_ring(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
            || (self.degree == other.degree && self.basis.moduli() == other.basis.moduli())
    }

    /// The error reported when `other` is not the same ring as `self`.
    pub(crate) fn mismatch(&self, other: &Self) -> MathError {
        MathError::ContextMismatch {
            left_degree: self.degree,
            left_primes: self.num_primes(),
            right_degree: other.degree,
            right_primes: other.num_primes(),
        }
    }

    /// `Ok` when both contexts describe the same ring.
    pub(crate) fn check_same(&self, other: &Self) -> Result<()> {
        if self.same_ring(other) {
            Ok(())
        } else {
            Err(self.mismatch(other))
        }
    }
}

impl PartialEq for RingContext {
    /// Same degree and the same primes in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.same_ring(other)
    }
}

impl Eq for RingContext {}

impl fmt::Debug for RingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingContext")
            .field("degree", &self.degree)
            .field(
                "primes",
                &self.moduli().iter().map(Modulus::value).collect::<Vec<_>>(),
            )
            .field("log2_q", &self.basis.product_bits())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_rings() {
        assert!(matches!(
            RingContext::new(1000, &[97]),
            Err(MathError::InvalidDegree { degree: 1000, .. })
        ));
        assert!(matches!(
            RingContext::new(8, &[17]),
            Err(MathError::InvalidDegree { degree: 8, .. })
        ));
        // 97 = 1 mod 32 but not 1 mod 64.
        assert!(matches!(
            RingContext::new(32, &[97]),
            Err(MathError::NotNttFriendly {
                modulus: 97,
                degree: 32,
                residue: 33
            })
        ));
        assert!(matches!(
            RingContext::new(16, &[]),
            Err(MathError::InvalidBasisSize { count: 0, .. })
        ));
        assert!(matches!(
            RingContext::new(16, &[97, 97]),
            Err(MathError::DuplicatePrime { modulus: 97 })
        ));
    }

    #[test]
    fn equal_parameters_give_the_same_ring() {
        let a = RingContext::new(16, &[97, 193]).unwrap();
        let b = RingContext::new(16, &[97, 193]).unwrap();
        let c = RingContext::new(16, &[193, 97]).unwrap();
        assert!(a.same_ring(&b));
        assert!(!a.same_ring(&c));
        assert_eq!(a.poly_len(), 32);
    }
}
