//! Secret and public keys (single party; the collective key of the
//! threshold crate has the same shape).

use std::fmt;
use std::sync::Arc;

use ringsum_math::sample::sample_ternary;
use ringsum_math::{
    CrsDomain, CrsSeed, Csprng, Ntt, Poly, Representation, RingContext, SecretPoly, expand_crs,
};
use subtle::Choice;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{CoreError, Result};
use crate::params::{ParamSetId, ParameterSet};

/// The CRS purpose label of the public key's uniform polynomial a.
pub const PUBLIC_KEY_PURPOSE: &str = "ringsum/public-key-a";

/// A ternary secret key s, kept in NTT form. Wiped on drop, never printed.
#[derive(Clone)]
pub struct SecretKey {
    param_set: ParamSetId,
    s: SecretPoly<Ntt>,
}

impl SecretKey {
    /// Samples a fresh secret key.
    pub fn generate(params: &ParameterSet, rng: &mut Csprng) -> Self {
        Self {
            param_set: params.id().clone(),
            s: sample_ternary(params.ring(), rng).into_ntt(),
        }
    }

    /// Wraps a secret polynomial (for example a threshold share) as a key.
    pub fn from_secret_poly(params: &ParameterSet, s: SecretPoly<Ntt>) -> Result<Self> {
        check_ring(params, &[s.expose()])?;
        Ok(Self {
            param_set: params.id().clone(),
            s,
        })
    }

    /// The secret polynomial, in NTT form.
    pub fn secret(&self) -> &SecretPoly<Ntt> {
        &self.s
    }

    /// The parameter set of the key.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> Choice {
        self.s.ct_eq(&other.s)
    }
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.s.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("param_set", &self.param_set)
            .finish_non_exhaustive()
    }
}

/// A public key (p0, p1) = (-a*s + e, a), both in NTT form, with a expanded
/// from the CRS seed of its key epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    param_set: ParamSetId,
    p0: Poly<Ntt>,
    p1: Poly<Ntt>,
}

impl PublicKey {
    /// The uniform polynomial a of key epoch `epoch`, expanded from the CRS.
    ///
    /// # Errors
    /// None in practice: the purpose label is a valid constant.
    pub fn crs_polynomial(
        ring: &Arc<RingContext>,
        seed: &CrsSeed,
        epoch: u64,
    ) -> Result<Poly<Ntt>> {
        Ok(expand_crs(
            ring,
            seed,
            &CrsDomain::new(PUBLIC_KEY_PURPOSE, epoch, 0)?,
        ))
    }

    /// The public key of `secret`: p0 = -a*s + e with a from the CRS.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] when the key belongs to another set.
    pub fn generate(
        params: &ParameterSet,
        secret: &SecretKey,
        seed: &CrsSeed,
        epoch: u64,
        rng: &mut Csprng,
    ) -> Result<Self> {
        check_set(params, &secret.param_set)?;
        let ring = params.ring();
        let a = Self::crs_polynomial(ring, seed, epoch)?;
        let e = params.gaussian().sample_poly(ring, rng).into_ntt();
        // a*s reveals s (a is public): a wiped buffer, even on early return.
        let a_s = SecretPoly::new(a.try_mul(secret.s.expose())?);
        let mut p0 = e.expose().clone();
        p0.try_sub_assign(a_s.expose())?;
        Ok(Self {
            param_set: params.id().clone(),
            p0,
            p1: a,
        })
    }

    /// A public key from its two polynomials (for example the collective key
    /// sum_i p_i and the CRS polynomial a).
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] when a polynomial is of another ring.
    pub fn from_parts(params: &ParameterSet, p0: Poly<Ntt>, p1: Poly<Ntt>) -> Result<Self> {
        check_ring(params, &[&p0, &p1])?;
        Ok(Self {
            param_set: params.id().clone(),
            p0,
            p1,
        })
    }

    /// The parameter set of the key.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// p0 = -a*s + e.
    pub fn p0(&self) -> &Poly<Ntt> {
        &self.p0
    }

    /// p1 = a.
    pub fn p1(&self) -> &Poly<Ntt> {
        &self.p1
    }
}

/// `Ok` when every polynomial lives in the ring of `params`.
pub(crate) fn check_ring<R: Representation>(
    params: &ParameterSet,
    polys: &[&Poly<R>],
) -> Result<()> {
    if polys.iter().all(|p| params.ring().same_ring(p.context())) {
        Ok(())
    } else {
        Err(CoreError::ParameterMismatch {
            expected: params.id().to_string(),
            found: "a polynomial of another ring".to_owned(),
        })
    }
}

/// `Ok` when `found` names the parameter set `params`.
///
/// # Errors
/// [`CoreError::ParameterMismatch`] naming both sets.
pub fn check_set(params: &ParameterSet, found: &ParamSetId) -> Result<()> {
    if params.id() == found {
        Ok(())
    } else {
        Err(CoreError::ParameterMismatch {
            expected: params.id().to_string(),
            found: found.to_string(),
        })
    }
}
