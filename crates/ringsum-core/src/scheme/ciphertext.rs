//! Ciphertexts: public-key encryption, single-key decryption and the
//! additive arithmetic the server performs.

use rayon::prelude::*;
use ringsum_math::sample::sample_ternary;
use ringsum_math::{Coeff, Csprng, Poly, RnsScalar, SecretPoly};

use super::keys::{PublicKey, SecretKey, check_ring, check_set};
use super::packing::{Packing, Plaintext};
use crate::error::{CoreError, Result};
use crate::params::{ParamSetId, ParameterSet};

/// A ciphertext (c0, c1) in coefficient form, with c0 + c1*s = Δ*M + noise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    param_set: ParamSetId,
    c0: Poly<Coeff>,
    c1: Poly<Coeff>,
}

impl Ciphertext {
    /// A ciphertext from its two polynomials (decoders use this).
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] when a polynomial is of another ring.
    pub fn from_parts(params: &ParameterSet, c0: Poly<Coeff>, c1: Poly<Coeff>) -> Result<Self> {
        check_ring(params, &[&c0, &c1])?;
        Ok(Self {
            param_set: params.id().clone(),
            c0,
            c1,
        })
    }

    /// The parameter set.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// c0.
    pub fn c0(&self) -> &Poly<Coeff> {
        &self.c0
    }

    /// c1.
    pub fn c1(&self) -> &Poly<Coeff> {
        &self.c1
    }

    fn check_same(&self, other: &Self) -> Result<()> {
        if self.param_set == other.param_set {
            Ok(())
        } else {
            Err(CoreError::ParameterMismatch {
                expected: self.param_set.to_string(),
                found: other.param_set.to_string(),
            })
        }
    }

    /// self += other: afterwards self encrypts the sum of both plaintexts.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`]; self is unchanged on error.
    pub fn try_add_assign(&mut self, other: &Self) -> Result<()> {
        self.check_same(other)?;
        self.c0.try_add_assign(&other.c0)?;
        self.c1.try_add_assign(&other.c1)?;
        Ok(())
    }

    /// self -= other.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`]; self is unchanged on error.
    pub fn try_sub_assign(&mut self, other: &Self) -> Result<()> {
        self.check_same(other)?;
        self.c0.try_sub_assign(&other.c0)?;
        self.c1.try_sub_assign(&other.c1)?;
        Ok(())
    }

    /// self *= c for a public integer c (negative allowed). The noise grows
    /// by |c|, so the caller must keep |c| times the summed clients within
    /// the set's `max_clients`.
    pub fn mul_integer_assign(&mut self, c: i64) {
        let ring = std::sync::Arc::clone(self.c0.context());
        let scalar = RnsScalar::from_bigint_vartime(&ring, &c.into());
        // The scalar was built for this ring, so the products cannot fail.
        let _ = self.c0.try_mul_scalar_assign(&scalar);
        let _ = self.c1.try_mul_scalar_assign(&scalar);
    }
}

/// Encrypts a plaintext under a public key: with u ternary and e0, e1
/// Gaussian, c0 = p0*u + e0 + Δ*M and c1 = p1*u + e1.
///
/// # Errors
/// [`CoreError::ParameterMismatch`] when the key or the packing belongs to
/// another parameter set; [`CoreError::CountMismatch`] for a plaintext of
/// another size.
pub fn encrypt(
    params: &ParameterSet,
    packing: &Packing,
    key: &PublicKey,
    plaintext: &Plaintext,
    rng: &mut Csprng,
) -> Result<Ciphertext> {
    check_set(params, key.param_set())?;
    let ring = params.ring();
    check_packing(params, packing)?;
    // Δ*M alone reveals the message: it stays in a wiped buffer until the
    // mask p0*u + e0 is added.
    let mut c0 = SecretPoly::new(packing.scaled_message(plaintext)?);
    let u = sample_ternary(ring, rng).into_ntt();
    // p0*u would reveal the message from c0: it lives in a wiped buffer.
    let p0u = SecretPoly::new(key.p0().try_mul(u.expose())?).into_coeff();
    c0.expose_mut().try_add_assign(p0u.expose())?;
    params.gaussian().add_noise_assign(c0.expose_mut(), rng);
    let c0 = c0.declassify();
    // p1*u becomes c1 = p1*u + e1 in place, so no copy of p1*u alone stays.
    let mut c1 = key.p1().try_mul(u.expose())?.into_coeff();
    params.gaussian().add_noise_assign(&mut c1, rng);
    Ok(Ciphertext {
        param_set: params.id().clone(),
        c0,
        c1,
    })
}

/// c0 + c1*s in coefficient form: Δ*M plus the noise.
/// The phase is as sensitive as the key (phase - c0 = c1*s reveals s), so
/// it lives in a wiped buffer.
pub(crate) fn phase(
    params: &ParameterSet,
    key: &SecretKey,
    ct: &Ciphertext,
) -> Result<SecretPoly<Coeff>> {
    check_set(params, key.param_set())?;
    check_set(params, &ct.param_set)?;
    let mut c1s = SecretPoly::new(ct.c1.to_ntt());
    c1s.expose_mut().try_mul_assign(key.secret().expose())?;
    let mut phase = c1s.into_coeff();
    phase.expose_mut().try_add_assign(&ct.c0)?;
    Ok(phase)
}

/// Decrypts with a single secret key.
///
/// # Errors
/// [`CoreError::ParameterMismatch`] for a key or ciphertext of another set;
/// [`CoreError::DecodeOverflow`] when a coefficient does not split into
/// slots (the sum overflowed, or the key is not the one encrypted to).
pub fn decrypt(
    params: &ParameterSet,
    packing: &Packing,
    key: &SecretKey,
    ct: &Ciphertext,
) -> Result<Plaintext> {
    check_packing(params, packing)?;
    let phase = phase(params, key, ct)?;
    decode_phase(packing, phase.expose(), 0)
}

/// `Ok` when the packing was built for `params`.
fn check_packing(params: &ParameterSet, packing: &Packing) -> Result<()> {
    check_set(params, packing.param_set())
}

/// Splits every coefficient of a decrypted phase c0 + c1*s (from a single
/// key or from combined threshold shares) into slots; `index` names the
/// ciphertext in errors.
///
/// # Errors
/// [`CoreError::DecodeOverflow`] for a coefficient that does not split into
/// slots: the sum overflowed, the key is wrong, or shares are missing.
pub fn decode_phase(packing: &Packing, phase: &Poly<Coeff>, index: usize) -> Result<Plaintext> {
    let degree = phase.context().degree();
    let mut out = vec![0i64; packing.capacity()];
    let mut digits = vec![0i64; packing.slots()];
    for coefficient in 0..degree {
        let overflow = || CoreError::DecodeOverflow {
            ciphertext: index,
            coefficient,
        };
        let x = phase
            .centered_limbs_vartime(coefficient)
            .ok_or_else(overflow)?;
        if !packing.decode_coefficient(&x, &mut digits) {
            return Err(overflow());
        }
        // Slot-major layout: slot j of coefficient i sits at j*N + i.
        for (slot, &digit) in out
            .iter_mut()
            .skip(coefficient)
            .step_by(degree)
            .zip(&digits)
        {
            *slot = digit;
        }
    }
    Ok(Plaintext::from_slots_unchecked(out))
}

/// The sum of many ciphertexts, added in parallel (rayon).
///
/// # Errors
/// [`CoreError::CountMismatch`] for an empty list,
/// [`CoreError::ParameterMismatch`] when they mix parameter sets.
pub fn sum_ciphertexts(cts: &[Ciphertext]) -> Result<Ciphertext> {
    // Each rayon task folds a run of ciphertexts into one accumulator (one
    // clone per task, not per ciphertext); the partial sums are then added.
    let partial = cts
        .par_iter()
        .try_fold(
            || None,
            |acc: Option<Ciphertext>, ct| -> Result<Option<Ciphertext>> {
                match acc {
                    None => Ok(Some(ct.clone())),
                    Some(mut sum) => {
                        sum.try_add_assign(ct)?;
                        Ok(Some(sum))
                    }
                }
            },
        )
        .try_reduce(
            || None,
            |a, b| match (a, b) {
                (Some(mut x), Some(y)) => {
                    x.try_add_assign(&y)?;
                    Ok(Some(x))
                }
                (x, None) | (None, x) => Ok(x),
            },
        )?;
    partial.ok_or(CoreError::CountMismatch {
        what: "ciphertexts to sum",
        expected: 1,
        found: 0,
    })
}

/// log2 of the largest |c0 + c1*s - Δ*M| over all coefficients: the noise
/// of a ciphertext against the plaintext it should hold (tests only).
///
/// # Errors
/// As [`decrypt`], or [`CoreError::CountMismatch`] for a plaintext of
/// another size.
pub fn measure_noise_bits_vartime(
    params: &ParameterSet,
    packing: &Packing,
    key: &SecretKey,
    ct: &Ciphertext,
    expected: &Plaintext,
) -> Result<f64> {
    let mut noise = phase(params, key, ct)?;
    noise
        .expose_mut()
        .try_sub_assign(&packing.scaled_message(expected)?)?;
    let largest = noise
        .expose()
        .to_centered_bigints_vartime()
        .iter()
        .map(|c| ringsum_math::rns::bigint_to_f64(c).abs())
        .fold(0.0f64, f64::max);
    Ok(largest.log2())
}
