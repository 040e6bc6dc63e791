//! Wide uniform noise for flooding decryption shares, drawn directly in RNS.

use std::sync::Arc;

use num_bigint::BigUint;
use zeroize::Zeroizing;

use super::Csprng;
use crate::context::RingContext;
use crate::error::{MathError, Result};
use crate::poly::{Coeff, Poly, SecretPoly};

/// A secret polynomial with coefficients independent and uniform on
/// [-B, B], for B as wide as (Q - 1)/2.
///
/// Each coefficient is an integer x uniform on [0, 2B] drawn by rejection on
/// bits(2B)-bit candidates (fewer than half are rejected); the comparison
/// with 2B + 1 runs through a borrow chain over all limbs. x is then reduced
/// into every prime by Horner's rule with constant-time Shoup
/// multiplications, and B is subtracted, so the big integer never exists
/// outside this function's wiped buffers.
///
/// Threshold decryption adds this noise to each share so that the share
/// hides the ciphertext noise (smudging: Asharov et al., 2012).
///
/// # Errors
/// [`MathError::FloodingBoundTooWide`] when 2B + 1 > Q, where values of
/// [-B, B] would collide modulo Q.
pub fn sample_flooding_uniform(
    ctx: &Arc<RingContext>,
    bound: &BigUint,
    rng: &mut Csprng,
) -> Result<SecretPoly<Coeff>> {
    let range: BigUint = (bound << 1u32) + 1u32;
    if &range > ctx.basis().product() {
        return Err(MathError::FloodingBoundTooWide {
            bound_bits: bound.bits(),
            modulus_bits: ctx.basis().product_bits(),
        });
    }
    // Candidates have the bit length of 2B, so 2B + 1 <= 2^bits and at least
    // half of them are accepted.
    let bits = (range.clone() - 1u32).bits().max(1);
    let range_limbs: Vec<u64> = range.iter_u64_digits().collect();
    let limb_count = usize::try_from(bits.div_ceil(64)).unwrap_or(usize::MAX);
    let top_mask = u64::MAX >> ((64 - bits % 64) % 64);

    // Per prime: 2^64 mod p with its Shoup quotient, and B mod p (B is public).
    let bound_residues = ctx.basis().reduce_biguint_vartime(bound);
    let primes: Vec<_> = ctx
        .moduli()
        .iter()
        .zip(bound_residues)
        .map(|(m, bound_residue)| {
            let two_64 = m.reduce_once(m.reduce(u64::MAX) + 1);
            (*m, two_64, m.shoup(two_64), bound_residue)
        })
        .collect();

    let degree = ctx.degree();
    let mut data = vec![0u64; ctx.poly_len()];
    let mut limbs = Zeroizing::new(vec![0u64; limb_count]);
    for j in 0..degree {
        loop {
            rng.fill_u64(&mut limbs);
            if let Some(top) = limbs.last_mut() {
                *top &= top_mask;
            }
            if less_than(&limbs, &range_limbs) {
                break;
            }
        }
        for ((m, two_64, two_64_shoup, bound_residue), row) in
            primes.iter().zip(data.chunks_exact_mut(degree))
        {
            let x = limbs.iter().rev().fold(0u64, |acc, &limb| {
                m.add(m.mul_shoup(acc, *two_64, *two_64_shoup), m.reduce(limb))
            });
            if let Some(slot) = row.get_mut(j) {
                *slot = m.sub(x, *bound_residue);
            }
        }
    }
    Ok(SecretPoly::new(Poly::from_raw(ctx, data)))
}

/// Whether the little-endian integer `a` is below `b` (missing limbs stand
/// for zeros), by the final borrow of a - b: every limb is visited and no
/// branch depends on `a`.
fn less_than(a: &[u64], b: &[u64]) -> bool {
    let mut borrow = 0u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        let (d1, b1) = x.overflowing_sub(y);
        let (_, b2) = d1.overflowing_sub(borrow);
        borrow = u64::from(b1 | b2);
    }
    borrow == 1
}

#[cfg(test)]
mod tests {
    use super::less_than;

    #[test]
    fn borrow_chain_comparison() {
        assert!(less_than(&[1, 0], &[2]));
        assert!(!less_than(&[2, 0], &[2]));
        assert!(less_than(&[u64::MAX, 0], &[0, 1]));
        assert!(!less_than(&[0, 1], &[u64::MAX, 0]));
        assert!(!less_than(&[0, 1], &[0, 1]));
        assert!(less_than(&[5, 7], &[6, 7]));
        assert!(less_than(&[u64::MAX], &[0, 1]));
    }
}
