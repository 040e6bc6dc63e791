//! The fused kernel of RLWE public-key encryption.
//!
//! Public-key encryption computes c0 = p0*u + e0 + m and c1 = p1*u + e1 for
//! a key (p0, p1) in NTT form, a ternary u and small errors e0, e1. Written
//! with whole-polynomial operations it makes a pass over k*N residues for
//! every step (spread u into the primes, forward NTT, two products, two
//! inverse NTTs, two normalisations, noise, message), allocates a
//! polynomial for each intermediate result and leaves several copies of
//! secret material to wipe. [`public_key_encrypt`] instead runs prime by
//! prime, so the rows it works on (one row of u, c0 and c1: 3 * 8N bytes)
//! stay in the cache, and folds the 1/N of the inverse transforms into the
//! pointwise products.
//!
//! c0 may be *truncated*: only its first `e0.len()` coefficients are
//! computed into the result, the others are set to zero. Decryption of
//! coefficient i needs c0_i and all of c1, so a ciphertext whose message
//! occupies the first coefficients only can drop the rest of c0; dropping
//! part of a ciphertext is public post-processing and cannot weaken it.

use crate::error::{MathError, Result};
use crate::poly::{Coeff, Ntt, Poly, SecretPoly, with_row_scratch};
use crate::prg::UniformRows;
use crate::sample::small_to_residue;
use crate::zq::Modulus;

/// The small random polynomials of one encryption, as signed coefficients.
/// They are secret: the caller keeps them in wiped buffers.
#[derive(Clone, Copy)]
pub struct EncryptionRandomness<'a> {
    /// The ternary u, N coefficients in {-1, 0, 1}.
    pub u: &'a [i64],
    /// e0 for the first `e0.len()` coefficients of c0 (at most N); the
    /// length sets how many coefficients of c0 are computed.
    pub e0: &'a [i64],
    /// e1, N coefficients.
    pub e1: &'a [i64],
    /// A public bound on |e0| and |e1| (the tail cut of their sampler).
    pub error_bound: u64,
}

impl std::fmt::Debug for EncryptionRandomness<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionRandomness")
            .field("degree", &self.u.len())
            .field("c0_coefficients", &self.e0.len())
            .finish_non_exhaustive()
    }
}

/// c0 = p0*u + e0 + m on the first `e0.len()` coefficients (zero on the
/// others) and c1 = p1*u + e1, in coefficient form.
///
/// `add_message(residues)` adds the message to the first `e0.len()`
/// coefficients of c0, given as its k*N residues (prime-major). It runs
/// once, after p0*u + e0 is in place for every prime, so that it can read
/// its own input once for all primes.
///
/// No intermediate value is left in memory: the scratch row holding the
/// transform of u is wiped, and c0 holds p0*u + e0 (which would reveal the
/// message) only until the message is added, with no fallible step in
/// between.
///
/// # Errors
/// [`MathError::ContextMismatch`] for keys of different rings,
/// [`MathError::LengthMismatch`] unless u and e1 have N coefficients and e0
/// at most N.
pub fn public_key_encrypt(
    p0: &Poly<Ntt>,
    p1: &Poly<Ntt>,
    randomness: &EncryptionRandomness<'_>,
    add_message: impl FnOnce(&mut [u64]),
) -> Result<(Poly<Coeff>, Poly<Coeff>)> {
    let ctx = p0.context();
    ctx.check_same(p1.context())?;
    let degree = ctx.degree();
    let check = |what: &'static str, found: usize, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(MathError::LengthMismatch {
                what,
                expected: degree,
                found,
            })
        }
    };
    let EncryptionRandomness {
        u,
        e0,
        e1,
        error_bound,
    } = *randomness;
    check("encryption randomness u", u.len(), u.len() == degree)?;
    check("encryption error e1", e1.len(), e1.len() == degree)?;
    check("encryption error e0", e0.len(), e0.len() <= degree)?;
    let used = e0.len();
    // The outputs start as copies of the key rows: the products are
    // computed in place, so nothing else needs clearing or allocating.
    let mut c0 = p0.residues().to_vec();
    let mut c1 = p1.residues().to_vec();
    with_row_scratch(degree, |u_row| {
        for (((plan, m), c0_row), c1_row) in ctx
            .plans()
            .iter()
            .zip(ctx.moduli())
            .zip(c0.chunks_exact_mut(degree))
            .zip(c1.chunks_exact_mut(degree))
        {
            spread_small(m, u, u_row, 1);
            plan.fwd(u_row);
            // p1 * u * N^-1 in the NTT domain, so that the unnormalised
            // inverse transform yields p1 * u.
            plan.mul_assign_normalize(c1_row, u_row);
            plan.inv(c1_row);
            add_small(m, c1_row, e1, error_bound);
            plan.mul_assign_normalize(c0_row, u_row);
            plan.inv(c0_row);
            let (head, tail) = c0_row.split_at_mut(used.min(degree));
            tail.fill(0);
            add_small(m, head, e0, error_bound);
        }
    });
    add_message(&mut c0);
    Ok((Poly::from_raw(ctx, c0), Poly::from_raw(ctx, c1)))
}

/// c = a*s + e + m for a fresh secret s (in NTT form) and a public uniform
/// a expanded row by row from `a_rows`: the encryption of the per-round-key
/// scheme, where a client sends c alone and everyone can expand a.
///
/// Like [`public_key_encrypt`] it runs prime by prime: a's row is written
/// straight into c's row, multiplied by s's row with the 1/N of the inverse
/// transform folded in, transformed back, and the error added, so one row
/// of c is all the working memory. c is *truncated* to the first
/// `e.len()` coefficients (zero past them), and `add_message(residues)`
/// adds the message to those once every prime is done (it may add nothing:
/// then c = a*s + e is the precomputed mask of an update, as secret as
/// the update it will hide, and the caller keeps it wiped).
///
/// # Errors
/// [`MathError::ContextMismatch`] when `a_rows` is not at its first prime
/// or is of another degree, [`MathError::LengthMismatch`] for an error of
/// more than N coefficients.
pub fn seeded_encrypt(
    s: &SecretPoly<Ntt>,
    a_rows: &mut UniformRows,
    e: &[i64],
    error_bound: u64,
    add_message: impl FnOnce(&mut [u64]),
) -> Result<Poly<Coeff>> {
    let ctx = s.expose().context();
    let degree = ctx.degree();
    check_fresh_rows(ctx, a_rows)?;
    if e.len() > degree {
        return Err(MathError::LengthMismatch {
            what: "encryption error e",
            expected: degree,
            found: e.len(),
        });
    }
    let used = e.len();
    let mut c = vec![0u64; ctx.poly_len()];
    for (((plan, m), c_row), s_row) in ctx
        .plans()
        .iter()
        .zip(ctx.moduli())
        .zip(c.chunks_exact_mut(degree))
        .zip(s.expose().residues().chunks_exact(degree))
    {
        a_rows.fill_next_row(c_row);
        plan.mul_assign_normalize(c_row, s_row);
        plan.inv(c_row);
        let (head, tail) = c_row.split_at_mut(used);
        tail.fill(0);
        add_small(m, head, e, error_bound);
    }
    add_message(&mut c);
    Ok(Poly::from_raw(ctx, c))
}

/// The phase c - a*s of a seeded ciphertext (or a sum of them), for a key
/// (or the sum of the keys) s in NTT form and the same public a, expanded
/// again from `a_rows`: Δ*M plus the (summed) errors on the first `used`
/// coefficients, zero past them (c is truncated there, and -a*s alone
/// would be all that is left). The phase is as sensitive as the plaintext
/// it holds, hence [`SecretPoly`].
///
/// # Errors
/// [`MathError::ContextMismatch`] when c, s and `a_rows` are not of one
/// ring or `a_rows` is not at its first prime,
/// [`MathError::LengthMismatch`] for `used` > N.
pub fn seeded_decrypt(
    c: &Poly<Coeff>,
    used: usize,
    s: &SecretPoly<Ntt>,
    a_rows: &mut UniformRows,
) -> Result<SecretPoly<Coeff>> {
    let ctx = c.context();
    ctx.check_same(s.expose().context())?;
    let degree = ctx.degree();
    check_fresh_rows(ctx, a_rows)?;
    if used > degree {
        return Err(MathError::LengthMismatch {
            what: "coefficients of a seeded ciphertext",
            expected: degree,
            found: used,
        });
    }
    let mut phase = SecretPoly::new(Poly::zero(ctx));
    phase.expose_mut().update_residues(|moduli, rows| {
        for ((((plan, m), row), s_row), c_row) in ctx
            .plans()
            .iter()
            .zip(moduli)
            .zip(rows.chunks_exact_mut(degree))
            .zip(s.expose().residues().chunks_exact(degree))
            .zip(c.residues().chunks_exact(degree))
        {
            a_rows.fill_next_row(row);
            plan.mul_assign_normalize(row, s_row);
            plan.inv(row);
            let (head, tail) = row.split_at_mut(used);
            tail.fill(0);
            crate::simd::vectorize(
                #[inline(always)]
                || {
                    for (x, &y) in head.iter_mut().zip(c_row) {
                        *x = m.sub(y, *x);
                    }
                },
            );
        }
    });
    Ok(phase)
}

/// `Ok` when `a_rows` expands a polynomial of `ctx`'s ring and is at its
/// first prime.
fn check_fresh_rows(ctx: &crate::RingContext, a_rows: &UniformRows) -> Result<()> {
    if a_rows.next_prime() != 0
        || a_rows.degree() != ctx.degree()
        || !a_rows.same_primes(ctx.moduli())
    {
        return Err(MathError::ContextMismatch {
            left_degree: ctx.degree(),
            left_primes: ctx.num_primes(),
            right_degree: a_rows.degree(),
            right_primes: a_rows.primes(),
        });
    }
    Ok(())
}

/// out[i] = x[i] mod m for signed |x[i]| <= bound, in constant time.
fn spread_small(m: &Modulus, x: &[i64], out: &mut [u64], bound: u64) {
    if bound < m.value() {
        crate::simd::vectorize(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = small_to_residue(m, v);
                }
            },
        );
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = m.reduce_i64(v);
        }
    }
}

/// row[i] += x[i] mod m for signed |x[i]| <= bound, in constant time.
fn add_small(m: &Modulus, row: &mut [u64], x: &[i64], bound: u64) {
    if bound < m.value() {
        crate::simd::vectorize(
            #[inline(always)]
            || {
                for (o, &v) in row.iter_mut().zip(x) {
                    *o = m.add(*o, small_to_residue(m, v));
                }
            },
        );
    } else {
        for (o, &v) in row.iter_mut().zip(x) {
            *o = m.add(*o, m.reduce_i64(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RingContext;
    use crate::prime::generate_ntt_primes;
    use crate::sample::{Csprng, DiscreteGaussian, fill_ternary, sample_uniform};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn ring(degree: usize, bits: &[u32]) -> Arc<RingContext> {
        RingContext::new(degree, &generate_ntt_primes(degree, bits).unwrap()).unwrap()
    }

    /// The same encryption with whole-polynomial operations.
    fn reference(
        p0: &Poly<Ntt>,
        p1: &Poly<Ntt>,
        u: &[i64],
        e0: &[i64],
        e1: &[i64],
        message: &Poly<Coeff>,
    ) -> (Poly<Coeff>, Poly<Coeff>) {
        let ctx = p0.context();
        let n = ctx.degree();
        let u = Poly::try_from_i64(ctx, u).unwrap().into_ntt();
        let mut e0_full = e0.to_vec();
        e0_full.resize(n, 0);
        let mut c0 = p0.try_mul(&u).unwrap().into_coeff();
        c0.try_add_assign(&Poly::try_from_i64(ctx, &e0_full).unwrap())
            .unwrap();
        c0.try_add_assign(message).unwrap();
        // Truncation: zero past e0.len().
        let mut data = c0.into_residues();
        for row in data.chunks_exact_mut(n) {
            row[e0.len()..].fill(0);
        }
        let c0 = Poly::try_from_residues(ctx, data).unwrap();
        let mut c1 = p1.try_mul(&u).unwrap().into_coeff();
        c1.try_add_assign(&Poly::try_from_i64(ctx, e1).unwrap())
            .unwrap();
        (c0, c1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The fused kernel computes exactly p0*u + e0 + m (truncated) and
        /// p1*u + e1, for every truncation length, at 50-bit (IFMA) and
        /// 61-bit primes.
        #[test]
        fn fused_encryption_matches_the_polynomial_operations(
            seed in any::<u8>(),
            used_fraction in 0usize..=64,
            wide in any::<bool>(),
        ) {
            let bits: &[u32] = if wide { &[61, 60, 50] } else { &[50, 50] };
            let ctx = ring(64, bits);
            let n = ctx.degree();
            let used = n * used_fraction / 64;
            let mut rng = Csprng::from_seed([seed; 32]);
            let p0: Poly<Ntt> = sample_uniform(&ctx, &mut rng);
            let p1: Poly<Ntt> = sample_uniform(&ctx, &mut rng);
            let message: Poly<Coeff> = sample_uniform(&ctx, &mut rng);
            let gaussian = DiscreteGaussian::new(3.2, 6.0).unwrap();
            let mut u = vec![0i64; n];
            let mut e0 = vec![0i64; used];
            let mut e1 = vec![0i64; n];
            fill_ternary(&mut rng, &mut u);
            gaussian.fill(&mut rng, &mut e0);
            gaussian.fill(&mut rng, &mut e1);
            let randomness = EncryptionRandomness {
                u: &u,
                e0: &e0,
                e1: &e1,
                error_bound: gaussian.bound().unsigned_abs(),
            };
            let (c0, c1) = public_key_encrypt(&p0, &p1, &randomness, |c0| {
                for ((row, m), prime) in c0.chunks_exact_mut(n).zip(ctx.moduli()).zip(0..) {
                    let source = message.row(prime).unwrap();
                    for (o, &x) in row.iter_mut().zip(source).take(used) {
                        *o = m.add(*o, x);
                    }
                }
            })
            .unwrap();
            let (r0, r1) = reference(&p0, &p1, &u, &e0, &e1, &message);
            prop_assert_eq!(c0, r0);
            prop_assert_eq!(c1, r1);
        }
    }

    #[test]
    fn wrong_lengths_and_rings_are_refused() {
        let ctx = ring(64, &[50, 50]);
        let other = ring(32, &[50, 50]);
        let mut rng = Csprng::from_seed([1; 32]);
        let p: Poly<Ntt> = sample_uniform(&ctx, &mut rng);
        let q: Poly<Ntt> = sample_uniform(&other, &mut rng);
        let (u, e) = (vec![0i64; 64], vec![0i64; 64]);
        let long = vec![0i64; 65];
        let ok = EncryptionRandomness {
            u: &u,
            e0: &e,
            e1: &e,
            error_bound: 19,
        };
        assert!(matches!(
            public_key_encrypt(&p, &q, &ok, |_| {}),
            Err(MathError::ContextMismatch { .. })
        ));
        for bad in [
            EncryptionRandomness { u: &long, ..ok },
            EncryptionRandomness { e0: &long, ..ok },
            EncryptionRandomness { e1: &u[..63], ..ok },
        ] {
            assert!(matches!(
                public_key_encrypt(&p, &p, &bad, |_| {}),
                Err(MathError::LengthMismatch { .. })
            ));
        }
    }
}
