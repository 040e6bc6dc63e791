//! Polynomials of R_Q in RNS form, with their representation in the type.
//!
//! A [`Poly<Coeff>`] holds coefficients, a [`Poly<Ntt>`] holds the values of
//! tfhe-ntt's negacyclic transform (in its bit-reversed order). Products exist
//! only in the NTT domain, CRT reconstruction only in the coefficient domain,
//! so mixing the two is a compile error rather than a wrong result.
//!
//! Storage is prime-major: the N residues modulo q_0, then the N residues
//! modulo q_1, and so on, so every NTT works on one contiguous row.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use num_bigint::{BigInt, BigUint};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::context::RingContext;
use crate::error::{MathError, Result};
use crate::zq::Modulus;

mod sealed {
    pub trait Sealed {}
}

/// The representation of a polynomial: [`Coeff`] or [`Ntt`].
pub trait Representation: sealed::Sealed + Copy + fmt::Debug + Send + Sync + 'static {
    /// A short name for diagnostics.
    const NAME: &'static str;
}

/// Coefficient representation: the residues of a_0, ..., a_(N-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coeff;

/// NTT representation: the negacyclic transform of each residue row, where
/// the ring product is the pointwise product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ntt;

impl sealed::Sealed for Coeff {}
impl sealed::Sealed for Ntt {}
impl Representation for Coeff {
    const NAME: &'static str = "coefficient";
}
impl Representation for Ntt {
    const NAME: &'static str = "NTT";
}

/// A polynomial of R_Q in RNS form, representation `R`.
///
/// `Poly` is for public values and values about to become public: its
/// equality is variable time and its buffer is not wiped on drop. Wrap
/// secrets in [`SecretPoly`].
pub struct Poly<R: Representation> {
    ctx: Arc<RingContext>,
    data: Vec<u64>,
    repr: PhantomData<R>,
}

impl<R: Representation> Clone for Poly<R> {
    fn clone(&self) -> Self {
        Self {
            ctx: Arc::clone(&self.ctx),
            data: self.data.clone(),
            repr: PhantomData,
        }
    }
}

impl<R: Representation> fmt::Debug for Poly<R> {
    /// Shape only: a polynomial may be a secret in the making, so its
    /// coefficients are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poly")
            .field("representation", &R::NAME)
            .field("degree", &self.ctx.degree())
            .field("primes", &self.ctx.num_primes())
            .finish_non_exhaustive()
    }
}

impl<R: Representation> PartialEq for Poly<R> {
    /// Variable-time comparison, for public polynomials.
    fn eq(&self, other: &Self) -> bool {
        self.ctx.same_ring(&other.ctx) && self.data == other.data
    }
}
impl<R: Representation> Eq for Poly<R> {}

impl<R: Representation> Zeroize for Poly<R> {
    fn zeroize(&mut self) {
        self.data.iter_mut().zeroize();
    }
}

impl<R: Representation> Poly<R> {
    /// The zero polynomial (zero in both representations).
    pub fn zero(ctx: &Arc<RingContext>) -> Self {
        Self::from_raw(ctx, vec![0; ctx.poly_len()])
    }

    /// Wraps a buffer the caller knows to be k*N reduced residues.
    pub(crate) fn from_raw(ctx: &Arc<RingContext>, data: Vec<u64>) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            data,
            repr: PhantomData,
        }
    }

    /// A polynomial from its residues in prime-major order (N residues modulo
    /// q_0, then N modulo q_1, ...), in representation `R`.
    ///
    /// # Errors
    /// [`MathError::LengthMismatch`] unless there are k*N values,
    /// [`MathError::ValueOutOfRange`] for a value not below its prime.
    pub fn try_from_residues(ctx: &Arc<RingContext>, data: Vec<u64>) -> Result<Self> {
        if data.len() != ctx.poly_len() {
            return Err(MathError::LengthMismatch {
                what: "polynomial residues",
                expected: ctx.poly_len(),
                found: data.len(),
            });
        }
        let degree = ctx.degree();
        for (row_index, (row, m)) in data.chunks_exact(degree).zip(ctx.moduli()).enumerate() {
            if let Some(offset) = row.iter().position(|&v| v >= m.value()) {
                let index = row_index * degree + offset;
                return Err(MathError::ValueOutOfRange {
                    index,
                    value: row.get(offset).copied().unwrap_or_default(),
                    modulus: m.value(),
                });
            }
        }
        Ok(Self::from_raw(ctx, data))
    }

    /// The ring of this polynomial.
    pub fn context(&self) -> &Arc<RingContext> {
        &self.ctx
    }

    /// All residues in prime-major order.
    pub fn residues(&self) -> &[u64] {
        &self.data
    }

    /// The N residues modulo prime `index`, or `None` past the last prime.
    pub fn row(&self, index: usize) -> Option<&[u64]> {
        let degree = self.ctx.degree();
        let start = index.checked_mul(degree)?;
        self.data.get(start..start.checked_add(degree)?)
    }

    /// Runs `update` on the residues, prime-major (N residues modulo q_0,
    /// then N modulo q_1, ...), with the moduli. `update` must leave every
    /// residue below its prime (for example by adding reduced values with
    /// [`Modulus::add`]): it is for kernels that live outside this crate,
    /// such as adding the scaled message of an encryption.
    pub fn update_residues(&mut self, update: impl FnOnce(&[Modulus], &mut [u64])) {
        update(self.ctx.moduli(), &mut self.data);
        debug_assert!(
            self.data
                .chunks_exact(self.ctx.degree())
                .zip(self.ctx.moduli())
                .all(|(row, m)| row.iter().all(|&x| x < m.value()))
        );
    }

    /// Consumes the polynomial and returns its residue buffer.
    pub fn into_residues(mut self) -> Vec<u64> {
        std::mem::take(&mut self.data)
    }

    /// The residue rows, one per prime, for in-place updates inside the
    /// crate (callers keep every value reduced).
    pub(crate) fn rows_mut_crate(&mut self) -> std::slice::ChunksExactMut<'_, u64> {
        let degree = self.ctx.degree();
        self.data.chunks_exact_mut(degree)
    }

    /// Rows paired with their moduli.
    fn rows_mut(&mut self) -> impl Iterator<Item = (&Modulus, &mut [u64])> {
        let degree = self.ctx.degree();
        let ctx = &self.ctx;
        ctx.moduli().iter().zip(self.data.chunks_exact_mut(degree))
    }

    /// Applies `op` to every pair of residues of `self` and `other`, prime by
    /// prime, after checking that both live in the same ring.
    #[inline(always)]
    fn zip_assign(&mut self, other: &Self, op: impl Fn(&Modulus, u64, u64) -> u64) -> Result<()> {
        self.ctx.check_same(&other.ctx)?;
        let degree = self.ctx.degree();
        for ((m, lhs), rhs) in self
            .ctx
            .moduli()
            .iter()
            .zip(self.data.chunks_exact_mut(degree))
            .zip(other.data.chunks_exact(degree))
        {
            let m = *m;
            crate::simd::vectorize(
                #[inline(always)]
                || {
                    for (x, &y) in lhs.iter_mut().zip(rhs) {
                        *x = op(&m, *x, y);
                    }
                },
            );
        }
        Ok(())
    }

    /// self += other.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_add_assign(&mut self, other: &Self) -> Result<()> {
        self.zip_assign(other, Modulus::add)
    }

    /// self += the sum of `others`, reading each of them once.
    ///
    /// Block by block of residues, the others are added without reduction
    /// into 64-bit accumulators (as many at a time as cannot overflow: a
    /// residue is below p, so 2^64 / p - 1 of them fit) and reduced once per
    /// group, so the loop is a stream of plain vector additions over the
    /// inputs while the block of the sum stays in the L1 cache: the
    /// aggregation of many updates runs at the speed of reading them.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when any operand lives in another
    /// ring; `self` is unchanged then.
    pub fn try_add_all_assign(&mut self, others: &[&Self]) -> Result<()> {
        for other in others {
            self.ctx.check_same(&other.ctx)?;
        }
        const BLOCK: usize = 1024;
        let degree = self.ctx.degree();
        let ctx = Arc::clone(&self.ctx);
        for (row_index, (m, row)) in ctx
            .moduli()
            .iter()
            .zip(self.data.chunks_exact_mut(degree))
            .enumerate()
        {
            // Terms per group, the accumulator's own residue included.
            let group = usize::try_from(u64::MAX / m.value() - 1)
                .unwrap_or(usize::MAX)
                .max(1);
            let row_start = row_index * degree;
            for (block_index, block) in row.chunks_mut(BLOCK).enumerate() {
                let start = row_start + block_index * BLOCK;
                let len = block.len();
                for chunk in others.chunks(group) {
                    crate::simd::vectorize(
                        #[inline(always)]
                        || {
                            for other in chunk {
                                let source = other.data.get(start..start + len).unwrap_or_default();
                                for (x, &y) in block.iter_mut().zip(source) {
                                    *x = x.wrapping_add(y);
                                }
                            }
                        },
                    );
                    for x in block.iter_mut() {
                        *x = m.reduce(*x);
                    }
                }
            }
        }
        Ok(())
    }

    /// self -= other.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_sub_assign(&mut self, other: &Self) -> Result<()> {
        self.zip_assign(other, Modulus::sub)
    }

    /// self + other.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_add(&self, other: &Self) -> Result<Self> {
        let mut out = self.clone();
        out.try_add_assign(other)?;
        Ok(out)
    }

    /// self - other.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_sub(&self, other: &Self) -> Result<Self> {
        let mut out = self.clone();
        out.try_sub_assign(other)?;
        Ok(out)
    }

    /// self = -self.
    pub fn neg_assign(&mut self) {
        for (m, row) in self.rows_mut() {
            let m = *m;
            crate::simd::vectorize(
                #[inline(always)]
                || {
                    for x in row {
                        *x = m.neg(*x);
                    }
                },
            );
        }
    }

    /// -self.
    #[must_use]
    pub fn neg(&self) -> Self {
        let mut out = self.clone();
        out.neg_assign();
        out
    }

    /// self *= c for a public scalar given in RNS form.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the scalar was built for another ring.
    pub fn try_mul_scalar_assign(&mut self, scalar: &RnsScalar) -> Result<()> {
        self.ctx.check_same(&scalar.ctx)?;
        self.apply_scalar(scalar);
        Ok(())
    }

    /// self * c for a public scalar given in RNS form.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the scalar was built for another ring.
    pub fn try_mul_scalar(&self, scalar: &RnsScalar) -> Result<Self> {
        let mut out = self.clone();
        out.try_mul_scalar_assign(scalar)?;
        Ok(out)
    }

    /// self *= c for a public word c.
    pub fn mul_u64_assign(&mut self, c: u64) {
        let scalar = RnsScalar::from_u64(&self.ctx, c);
        self.apply_scalar(&scalar);
    }

    /// Multiplies every row by the scalar's residue for that prime (the
    /// caller has checked that the scalar belongs to this ring).
    fn apply_scalar(&mut self, scalar: &RnsScalar) {
        for (((m, row), &w), &w_shoup) in self.rows_mut().zip(&scalar.residues).zip(&scalar.shoup) {
            let m = *m;
            for x in row {
                *x = m.mul_shoup(*x, w, w_shoup);
            }
        }
    }
}

impl Poly<Coeff> {
    /// The polynomial with the given signed integer coefficients (one per
    /// ring coefficient, any `i64`), reduced into every prime in constant time.
    ///
    /// # Errors
    /// [`MathError::LengthMismatch`] unless there are exactly N coefficients.
    pub fn try_from_i64(ctx: &Arc<RingContext>, coefficients: &[i64]) -> Result<Self> {
        let degree = ctx.degree();
        if coefficients.len() != degree {
            return Err(MathError::LengthMismatch {
                what: "polynomial coefficients",
                expected: degree,
                found: coefficients.len(),
            });
        }
        let mut data = vec![0u64; ctx.poly_len()];
        for (m, row) in ctx.moduli().iter().zip(data.chunks_exact_mut(degree)) {
            for (out, &c) in row.iter_mut().zip(coefficients) {
                *out = m.reduce_i64(c);
            }
        }
        Ok(Self::from_raw(ctx, data))
    }

    /// The polynomial with the given big-integer coefficients, reduced mod Q
    /// (variable time: public values only).
    ///
    /// # Errors
    /// [`MathError::LengthMismatch`] unless there are exactly N coefficients.
    pub fn try_from_bigints_vartime(
        ctx: &Arc<RingContext>,
        coefficients: &[BigInt],
    ) -> Result<Self> {
        let degree = ctx.degree();
        if coefficients.len() != degree {
            return Err(MathError::LengthMismatch {
                what: "polynomial coefficients",
                expected: degree,
                found: coefficients.len(),
            });
        }
        let mut data = vec![0u64; ctx.poly_len()];
        for (j, c) in coefficients.iter().enumerate() {
            let residues = ctx.basis().reduce_bigint_vartime(c);
            for (row, r) in data.chunks_exact_mut(degree).zip(residues) {
                if let Some(slot) = row.get_mut(j) {
                    *slot = r;
                }
            }
        }
        Ok(Self::from_raw(ctx, data))
    }

    /// The coefficients as integers in [0, Q) (variable time: public values only).
    pub fn to_biguints_vartime(&self) -> Vec<BigUint> {
        let degree = self.ctx.degree();
        let basis = self.ctx.basis();
        (0..degree)
            .map(|j| basis.reconstruct_unchecked_vartime(self.column(j)))
            .collect()
    }

    /// The coefficients as integers in (-Q/2, Q/2] (variable time: public
    /// values only).
    pub fn to_centered_bigints_vartime(&self) -> Vec<BigInt> {
        let basis = self.ctx.basis();
        self.to_biguints_vartime()
            .into_iter()
            .map(|x| basis.center_vartime(x))
            .collect()
    }

    /// The centred value of coefficient j in (-Q/2, Q/2] as two's complement
    /// limbs, through the fixed-width CRT (variable time: public values), or
    /// `None` past the last coefficient.
    pub fn centered_limbs_vartime(&self, j: usize) -> Option<crate::crt::Limbs> {
        (j < self.ctx.degree()).then(|| self.ctx.crt().centered_lift_vartime(self.column(j)))
    }

    /// The residues of coefficient j across the primes.
    fn column(&self, j: usize) -> impl Iterator<Item = u64> + '_ {
        self.data
            .chunks_exact(self.ctx.degree())
            .filter_map(move |row| row.get(j).copied())
    }

    /// The forward negacyclic NTT, in place.
    #[must_use]
    pub fn into_ntt(mut self) -> Poly<Ntt> {
        let degree = self.ctx.degree();
        for (plan, row) in self
            .ctx
            .plans()
            .iter()
            .zip(self.data.chunks_exact_mut(degree))
        {
            plan.fwd(row);
        }
        Poly {
            ctx: self.ctx,
            data: self.data,
            repr: PhantomData,
        }
    }

    /// The forward negacyclic NTT of a copy.
    #[must_use]
    pub fn to_ntt(&self) -> Poly<Ntt> {
        self.clone().into_ntt()
    }
}

impl Poly<Ntt> {
    /// The inverse negacyclic NTT (with the 1/N normalisation), in place.
    #[must_use]
    pub fn into_coeff(mut self) -> Poly<Coeff> {
        let degree = self.ctx.degree();
        for (plan, row) in self
            .ctx
            .plans()
            .iter()
            .zip(self.data.chunks_exact_mut(degree))
        {
            plan.inv(row);
            plan.normalize(row);
        }
        Poly {
            ctx: self.ctx,
            data: self.data,
            repr: PhantomData,
        }
    }

    /// The inverse negacyclic NTT of a copy.
    #[must_use]
    pub fn to_coeff(&self) -> Poly<Coeff> {
        self.clone().into_coeff()
    }

    /// self + a * b, accumulated in place: the workhorse of key generation and
    /// encryption.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_mul_accumulate(&mut self, a: &Self, b: &Self) -> Result<()> {
        self.ctx.check_same(&a.ctx)?;
        self.ctx.check_same(&b.ctx)?;
        let degree = self.ctx.degree();
        for (((plan, acc), lhs), rhs) in self
            .ctx
            .plans()
            .iter()
            .zip(self.data.chunks_exact_mut(degree))
            .zip(a.data.chunks_exact(degree))
            .zip(b.data.chunks_exact(degree))
        {
            plan.mul_accumulate(acc, lhs, rhs);
        }
        Ok(())
    }

    /// self * other, the ring product.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_mul(&self, other: &Self) -> Result<Self> {
        let mut out = Self::zero(&self.ctx);
        out.try_mul_accumulate(self, other)?;
        Ok(out)
    }

    /// self *= other, in place: no polynomial-sized allocation, which
    /// matters for large rings, where a fresh multi-megabyte buffer costs
    /// more in page faults than the product itself.
    ///
    /// # Errors
    /// [`MathError::ContextMismatch`] when the operands live in different rings.
    pub fn try_mul_assign(&mut self, other: &Self) -> Result<()> {
        self.ctx.check_same(&other.ctx)?;
        let degree = self.ctx.degree();
        with_row_scratch(degree, |scratch| {
            for ((plan, lhs), rhs) in self
                .ctx
                .plans()
                .iter()
                .zip(self.data.chunks_exact_mut(degree))
                .zip(other.data.chunks_exact(degree))
            {
                // tfhe-ntt multiplies into an accumulator: move the row out
                // of the way, clear it, and accumulate the product into it.
                scratch.copy_from_slice(lhs);
                lhs.fill(0);
                plan.mul_accumulate(lhs, scratch, rhs);
            }
        });
        Ok(())
    }
}

std::thread_local! {
    /// One row of scratch space per thread, reused by in-place products.
    static ROW_SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with an N-word scratch row, wiped afterwards (it held a copy of
/// an operand, which may be secret).
pub(crate) fn with_row_scratch(degree: usize, f: impl FnOnce(&mut [u64])) {
    let run = |scratch: &mut Vec<u64>| {
        scratch.resize(degree, 0);
        f(scratch);
        scratch.iter_mut().zeroize();
    };
    ROW_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => run(&mut scratch),
        // Not reachable today (nothing re-enters), but never panic for it.
        Err(_) => run(&mut Vec::new()),
    });
}

/// A public scalar in RNS form with its Shoup constants, built once and
/// applied to many polynomials (for example the BFV scaling factor
/// floor(Q/t)).
#[derive(Clone, Debug)]
pub struct RnsScalar {
    ctx: Arc<RingContext>,
    residues: Vec<u64>,
    shoup: Vec<u64>,
}

impl RnsScalar {
    fn from_residues(ctx: &Arc<RingContext>, residues: Vec<u64>) -> Self {
        let shoup = residues
            .iter()
            .zip(ctx.moduli())
            .map(|(&r, m)| m.shoup(r))
            .collect();
        Self {
            ctx: Arc::clone(ctx),
            residues,
            shoup,
        }
    }

    /// The scalar with the given residues, one per prime (for example a
    /// Lagrange coefficient computed prime by prime).
    ///
    /// # Errors
    /// [`MathError::LengthMismatch`] for the wrong number of residues,
    /// [`MathError::ValueOutOfRange`] for a residue not below its prime.
    pub fn try_from_residues(ctx: &Arc<RingContext>, residues: Vec<u64>) -> Result<Self> {
        if residues.len() != ctx.num_primes() {
            return Err(MathError::LengthMismatch {
                what: "scalar residues",
                expected: ctx.num_primes(),
                found: residues.len(),
            });
        }
        let bad = residues
            .iter()
            .zip(ctx.moduli())
            .position(|(&r, m)| r >= m.value());
        if let Some(index) = bad {
            let modulus = ctx.moduli().get(index).map_or(0, Modulus::value);
            return Err(MathError::ValueOutOfRange {
                index,
                value: residues.get(index).copied().unwrap_or_default(),
                modulus,
            });
        }
        Ok(Self::from_residues(ctx, residues))
    }

    /// The scalar c mod Q for a word c.
    pub fn from_u64(ctx: &Arc<RingContext>, c: u64) -> Self {
        let residues = ctx.moduli().iter().map(|m| m.reduce(c)).collect();
        Self::from_residues(ctx, residues)
    }

    /// The scalar c mod Q for a big integer c (variable time: public values).
    pub fn from_bigint_vartime(ctx: &Arc<RingContext>, c: &BigInt) -> Self {
        Self::from_residues(ctx, ctx.basis().reduce_bigint_vartime(c))
    }

    /// The residues of the scalar, one per prime.
    pub fn residues(&self) -> &[u64] {
        &self.residues
    }
}

/// A secret polynomial: wiped on drop, compared in constant time, never
/// printed. Key shares, secret keys and encryption randomness live in one.
#[derive(Clone)]
pub struct SecretPoly<R: Representation>(Poly<R>);

impl<R: Representation> SecretPoly<R> {
    /// Takes ownership of a polynomial that holds a secret.
    pub fn new(poly: Poly<R>) -> Self {
        Self(poly)
    }

    /// Read access to the secret, for arithmetic.
    pub fn expose(&self) -> &Poly<R> {
        &self.0
    }

    /// Write access to the secret, for in-place arithmetic.
    pub fn expose_mut(&mut self) -> &mut Poly<R> {
        &mut self.0
    }

    /// Constant-time equality (same ring and same residues).
    pub fn ct_eq(&self, other: &Self) -> Choice {
        let same_ring = Choice::from(u8::from(self.0.ctx.same_ring(&other.0.ctx)));
        same_ring & self.0.data.as_slice().ct_eq(other.0.data.as_slice())
    }

    /// Gives up secrecy: returns the polynomial as public data, without a
    /// copy. Only for values that are about to be published anyway (for
    /// example c1 = p1*u + e1, a ciphertext component).
    pub fn declassify(self) -> Poly<R> {
        self.take()
    }

    /// Moves the buffer out, leaving an empty one to be dropped.
    fn take(mut self) -> Poly<R> {
        Poly {
            ctx: Arc::clone(&self.0.ctx),
            data: std::mem::take(&mut self.0.data),
            repr: PhantomData,
        }
    }
}

impl SecretPoly<Coeff> {
    /// The forward NTT, in place (no copy of the secret is left behind).
    #[must_use]
    pub fn into_ntt(self) -> SecretPoly<Ntt> {
        SecretPoly(self.take().into_ntt())
    }
}

impl SecretPoly<Ntt> {
    /// The inverse NTT, in place (no copy of the secret is left behind).
    #[must_use]
    pub fn into_coeff(self) -> SecretPoly<Coeff> {
        SecretPoly(self.take().into_coeff())
    }
}

impl<R: Representation> Zeroize for SecretPoly<R> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl<R: Representation> Drop for SecretPoly<R> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<R: Representation> ZeroizeOnDrop for SecretPoly<R> {}

impl<R: Representation> fmt::Debug for SecretPoly<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretPoly")
            .field("representation", &R::NAME)
            .field("degree", &self.0.ctx.degree())
            .field("primes", &self.0.ctx.num_primes())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
