//! Ciphertexts: public-key encryption, single-key decryption and the
//! additive arithmetic the server performs.

use std::cell::RefCell;

use rayon::prelude::*;
use ringsum_math::encrypt::{EncryptionRandomness, public_key_encrypt};
use ringsum_math::sample::fill_ternary;
use ringsum_math::{Coeff, Csprng, Poly, RnsScalar, SecretPoly};
use zeroize::Zeroize;

use super::keys::{PublicKey, SecretKey, check_ring, check_set};
use super::packing::{Packing, Plaintext};
use crate::error::{CoreError, Result};
use crate::params::{ParamSetId, ParameterSet};

/// A ciphertext (c0, c1) in coefficient form, with c0 + c1*s = Δ*M + noise.
///
/// c0 may be *truncated*: when the message occupies only the first n
/// coefficients (the last ciphertext of an update, see
/// [`crate::update::UpdateShape`]), c0 carries those n coefficients and is
/// zero past them, on the wire and in memory. Decryption of coefficient i
/// needs only c0_i and c1, so nothing is lost; sums of ciphertexts
/// truncated alike stay truncated alike and exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    param_set: ParamSetId,
    c0: Poly<Coeff>,
    c1: Poly<Coeff>,
    c0_coefficients: usize,
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
            c0_coefficients: params.degree(),
            c0,
            c1,
        })
    }

    /// A ciphertext whose c0 carries only its first `coefficients`
    /// coefficients (at most N): every coefficient of c0 past them must be
    /// zero.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] when a polynomial is of another
    /// ring, [`CoreError::CountMismatch`] for more than N coefficients,
    /// [`CoreError::NonZeroTruncation`] for a non-zero coefficient past them.
    pub fn from_parts_truncated(
        params: &ParameterSet,
        c0: Poly<Coeff>,
        c1: Poly<Coeff>,
        coefficients: usize,
    ) -> Result<Self> {
        let mut ct = Self::from_parts(params, c0, c1)?;
        ct.set_truncation(coefficients)?;
        Ok(ct)
    }

    /// Declares that c0 carries only its first `coefficients` coefficients.
    fn set_truncation(&mut self, coefficients: usize) -> Result<()> {
        let degree = self.c0.context().degree();
        if coefficients > degree {
            return Err(CoreError::CountMismatch {
                what: "coefficients of a truncated c0",
                expected: degree,
                found: coefficients,
            });
        }
        let nonzero = self
            .c0
            .residues()
            .chunks_exact(degree)
            .filter_map(|row| {
                row.iter()
                    .skip(coefficients)
                    .position(|&x| x != 0)
                    .map(|p| p + coefficients)
            })
            .min();
        if let Some(coefficient) = nonzero {
            return Err(CoreError::NonZeroTruncation {
                coefficients,
                coefficient,
            });
        }
        self.c0_coefficients = coefficients;
        Ok(())
    }

    /// How many leading coefficients of c0 the ciphertext carries (N unless
    /// truncated); c0 is zero past them.
    pub fn c0_coefficients(&self) -> usize {
        self.c0_coefficients
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
        // Both c0 are zero past their lengths, so the sum is past the longer.
        self.c0_coefficients = self.c0_coefficients.max(other.c0_coefficients);
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
        self.c0_coefficients = self.c0_coefficients.max(other.c0_coefficients);
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
    check_packing(params, packing)?;
    if plaintext.slots().len() != packing.capacity() {
        return Err(CoreError::CountMismatch {
            what: "plaintext slots",
            expected: packing.capacity(),
            found: plaintext.slots().len(),
        });
    }
    encrypt_columns(
        params,
        packing,
        key,
        plaintext.slots(),
        params.degree(),
        rng,
    )
}

/// Per-thread working memory of [`encrypt_columns`]: the small random
/// polynomials u, e0 and e1 as signed integers. Wiped after every use, kept
/// between uses so that encryption does not allocate (and page-fault) it
/// again for every ciphertext.
#[derive(Default)]
struct EncryptScratch {
    u: Vec<i64>,
    e0: Vec<i64>,
    e1: Vec<i64>,
}

std::thread_local! {
    static ENCRYPT_SCRATCH: RefCell<EncryptScratch> = RefCell::new(EncryptScratch::default());
}

/// Encrypts a message given as K columns of `used` slot values (slot j of
/// coefficient i at `columns[j * used + i]`), so that c0 carries the first
/// `used` coefficients only (all N when `used` = N). The column values must
/// fit a signed b-bit slot.
///
/// # Errors
/// [`CoreError::ParameterMismatch`] for a key or packing of another set,
/// [`CoreError::CountMismatch`] unless 1 <= `used` <= N and there are
/// K * `used` values.
pub(crate) fn encrypt_columns(
    params: &ParameterSet,
    packing: &Packing,
    key: &PublicKey,
    columns: &[i64],
    used: usize,
    rng: &mut Csprng,
) -> Result<Ciphertext> {
    check_set(params, key.param_set())?;
    check_packing(params, packing)?;
    let degree = params.degree();
    if used == 0 || used > degree {
        return Err(CoreError::CountMismatch {
            what: "coefficients of c0",
            expected: degree,
            found: used,
        });
    }
    if columns.len() != packing.slots() * used {
        return Err(CoreError::CountMismatch {
            what: "message slots",
            expected: packing.slots() * used,
            found: columns.len(),
        });
    }
    let mut run = |scratch: &mut EncryptScratch| {
        scratch.u.resize(degree, 0);
        scratch.e1.resize(degree, 0);
        scratch.e0.resize(degree, 0);
        let e0 = scratch.e0.get_mut(..used).unwrap_or_default();
        fill_ternary(rng, &mut scratch.u);
        params.gaussian().fill(rng, e0);
        params.gaussian().fill(rng, &mut scratch.e1);
        let randomness = EncryptionRandomness {
            u: &scratch.u,
            e0: scratch.e0.get(..used).unwrap_or_default(),
            e1: &scratch.e1,
            error_bound: params.gaussian().bound().unsigned_abs(),
        };
        let result = public_key_encrypt(key.p0(), key.p1(), &randomness, |c0| {
            packing.add_message(columns, used, c0);
        });
        scratch.u.zeroize();
        scratch.e0.zeroize();
        scratch.e1.zeroize();
        result
    };
    let (c0, c1) = ENCRYPT_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => run(&mut scratch),
        // Not reachable (nothing re-enters), but never panic for it.
        Err(_) => run(&mut EncryptScratch::default()),
    })?;
    Ok(Ciphertext {
        param_set: params.id().clone(),
        c0,
        c1,
        c0_coefficients: used,
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

/// Decrypts with a single secret key. A truncated ciphertext (c0 of U < N
/// coefficients) decrypts to the plaintext with its message in the first U
/// coefficients, in place, and zeros in the others.
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
    let used = ct.c0_coefficients;
    let degree = params.degree();
    if used == degree {
        return decode_phase(packing, phase.expose(), 0);
    }
    // A truncated ciphertext: its columns go back in place, zeros past them.
    let columns = zeroize::Zeroizing::new(decode_columns(packing, phase.expose(), 0, used)?);
    let mut slots = vec![0i64; packing.capacity()];
    for (slot, column) in slots
        .chunks_exact_mut(degree)
        .zip(columns.chunks(used.max(1)))
    {
        for (s, &v) in slot.iter_mut().zip(column) {
            *s = v;
        }
    }
    Ok(Plaintext::from_slots_unchecked(slots))
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
    let slots = decode_columns(packing, phase, index, degree)?;
    Ok(Plaintext::from_slots_unchecked(slots))
}

/// Splits the first `used` coefficients of a decrypted phase into slots,
/// as K columns of `used` values (slot j of coefficient i at
/// `j * used + i`, the layout [`encrypt_columns`] takes). The coefficients
/// past `used` are not looked at: a truncated c0 leaves only c1*s there.
///
/// # Errors
/// [`CoreError::DecodeOverflow`] as [`decode_phase`].
pub(crate) fn decode_columns(
    packing: &Packing,
    phase: &Poly<Coeff>,
    index: usize,
    used: usize,
) -> Result<Vec<i64>> {
    let used = used.min(phase.context().degree());
    let mut out = vec![0i64; packing.slots() * used];
    let mut digits = vec![0i64; packing.slots()];
    for coefficient in 0..used {
        let overflow = || CoreError::DecodeOverflow {
            ciphertext: index,
            coefficient,
        };
        let x = phase
            .centered_limbs_vartime(coefficient)
            .ok_or_else(overflow)?;
        if !packing.decode_coefficient(&x, &mut digits) {
            out.zeroize();
            return Err(overflow());
        }
        for (slot, &digit) in out.iter_mut().skip(coefficient).step_by(used).zip(&digits) {
            *slot = digit;
        }
    }
    digits.zeroize();
    Ok(out)
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
    // Past a truncated c0 the phase is c1*s alone: only the used
    // coefficients carry the noise.
    let largest = noise
        .expose()
        .to_centered_bigints_vartime()
        .iter()
        .take(ct.c0_coefficients)
        .map(|c| ringsum_math::rns::bigint_to_f64(c).abs())
        .fold(0.0f64, f64::max);
    Ok(largest.log2())
}
