//! The fused kernels of RLWE encryption in the per-round-key scheme.
//!
//! A client encrypts under a fresh secret s and a public uniform a:
//! c = a*s + e + m. Written with whole-polynomial operations it would make
//! a pass over k*N residues for every step (expand a, product, inverse
//! NTT, normalisation, noise, message), allocate a polynomial for each
//! intermediate result and leave copies of secret material to wipe.
//! [`seeded_encrypt`] instead runs prime by prime, so the row it works on
//! stays in the cache, and folds the 1/N of the inverse transform into the
//! pointwise product; [`seeded_decrypt`] computes the phase c - a*s the
//! same way.
//!
//! c may be *truncated*: only its first `e.len()` coefficients are
//! computed, the others are set to zero. The phase of coefficient i needs
//! c_i alone, so a ciphertext whose message occupies the first
//! coefficients only can drop the rest; dropping part of a ciphertext is
//! public post-processing and cannot weaken it.

use crate::error::{MathError, Result};
use crate::poly::{Coeff, Ntt, Poly, SecretPoly};
use crate::prg::UniformRows;
use crate::sample::small_to_residue;
use crate::zq::Modulus;

/// c = a*s + e + m for a fresh secret s (in NTT form) and a public uniform
/// a expanded row by row from `a_rows`: the encryption of the per-round-key
/// scheme, where a client sends c alone and everyone can expand a.
///
/// It runs prime by prime: a's row is written
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
    use crate::prime::generate_ntt_primes;
    use crate::sample::{Csprng, DiscreteGaussian, sample_uniform};
    use crate::{CrsDomain, CrsSeed, RingContext};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn ring(degree: usize, bits: &[u32]) -> Arc<RingContext> {
        RingContext::new(degree, &generate_ntt_primes(degree, bits).unwrap()).unwrap()
    }

    fn rows(ctx: &RingContext) -> UniformRows {
        UniformRows::new(
            ctx,
            &CrsSeed::new([3; 32]),
            &CrsDomain::new("test/a", 1, 0).unwrap(),
        )
    }

    /// The same encryption with whole-polynomial operations: a*s + e + m,
    /// zero past `e.len()`.
    fn reference(
        ctx: &Arc<RingContext>,
        s: &SecretPoly<Ntt>,
        e: &[i64],
        message: &Poly<Coeff>,
    ) -> Poly<Coeff> {
        let n = ctx.degree();
        let a = crate::prg::expand_uniform_ntt(
            ctx,
            &CrsSeed::new([3; 32]),
            &CrsDomain::new("test/a", 1, 0).unwrap(),
        );
        let mut e_full = e.to_vec();
        e_full.resize(n, 0);
        let mut c = a.try_mul(s.expose()).unwrap().into_coeff();
        c.try_add_assign(&Poly::try_from_i64(ctx, &e_full).unwrap())
            .unwrap();
        c.try_add_assign(message).unwrap();
        let mut data = c.into_residues();
        for row in data.chunks_exact_mut(n) {
            row[e.len()..].fill(0);
        }
        Poly::try_from_residues(ctx, data).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The fused kernel computes exactly a*s + e + m (truncated), and
        /// the phase c - a*s gives back e + m on the coefficients c
        /// carries, for every truncation length, at 50-bit (IFMA) and
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
            let gaussian = DiscreteGaussian::new(4.53, 6.0).unwrap();
            let s = SecretPoly::new(gaussian.sample_poly(&ctx, &mut rng).expose().to_ntt());
            let message: Poly<Coeff> = sample_uniform(&ctx, &mut rng);
            let mut e = vec![0i64; used];
            gaussian.fill(&mut rng, &mut e);
            let bound = gaussian.bound().unsigned_abs();
            let c = seeded_encrypt(&s, &mut rows(&ctx), &e, bound, |c| {
                for ((row, m), prime) in c.chunks_exact_mut(n).zip(ctx.moduli()).zip(0..) {
                    let source = message.row(prime).unwrap();
                    for (o, &x) in row.iter_mut().zip(source).take(used) {
                        *o = m.add(*o, x);
                    }
                }
            })
            .unwrap();
            prop_assert_eq!(&c, &reference(&ctx, &s, &e, &message));
            let phase = seeded_decrypt(&c, used, &s, &mut rows(&ctx)).unwrap();
            let mut e_full = e.clone();
            e_full.resize(n, 0);
            let mut expected = Poly::try_from_i64(&ctx, &e_full).unwrap();
            expected.try_add_assign(&message).unwrap();
            for (prime, m) in ctx.moduli().iter().enumerate() {
                let got = phase.expose().row(prime).unwrap();
                let want = expected.row(prime).unwrap();
                prop_assert_eq!(&got[..used], &want[..used]);
                prop_assert!(got[used..].iter().all(|&x| x == 0), "prime {}", m.value());
            }
        }
    }

    #[test]
    fn wrong_lengths_and_rings_are_refused() {
        let ctx = ring(64, &[50, 50]);
        let other = ring(32, &[50, 50]);
        let mut rng = Csprng::from_seed([1; 32]);
        let s = SecretPoly::new(sample_uniform::<Ntt>(&ctx, &mut rng));
        let long = vec![0i64; 65];
        assert!(matches!(
            seeded_encrypt(&s, &mut rows(&ctx), &long, 19, |_| {}),
            Err(MathError::LengthMismatch { .. })
        ));
        assert!(matches!(
            seeded_encrypt(&s, &mut rows(&other), &[0; 64], 19, |_| {}),
            Err(MathError::ContextMismatch { .. })
        ));
        // Rows already advanced past their first prime.
        let mut advanced = rows(&ctx);
        advanced.fill_next_row(&mut [0; 64]);
        assert!(matches!(
            seeded_encrypt(&s, &mut advanced, &[0; 64], 19, |_| {}),
            Err(MathError::ContextMismatch { .. })
        ));
        let c = seeded_encrypt(&s, &mut rows(&ctx), &[0; 64], 19, |_| {}).unwrap();
        assert!(matches!(
            seeded_decrypt(&c, 65, &s, &mut rows(&ctx)),
            Err(MathError::LengthMismatch { .. })
        ));
    }
}
