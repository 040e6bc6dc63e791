//! The common reference string: public polynomials expanded from a 32-byte
//! seed with SHAKE128 (FIPS 202), sampled directly in NTT form.
//!
//! Every polynomial is bound to its *domain*: a purpose label, an epoch or
//! round number and an index, plus the ring itself (degree and primes), so
//! two uses never share a polynomial by accident. The XOF input is
//!
//! ```text
//! "ringsum/crs/v1" || seed (32 bytes)
//!   || len(purpose) (u16 LE) || purpose
//!   || epoch (u64 LE) || index (u64 LE)
//!   || N (u64 LE) || k (u16 LE) || q_0 (u64 LE) || ... || q_(k-1) (u64 LE)
//! ```
//!
//! and the output is read as 64-bit little-endian words: for each prime in
//! order, each word is masked to the prime's bit length and kept if it is
//! below the prime. Any party with the seed computes the same polynomial.

use std::sync::Arc;

use shake::{ExtendableOutput, Shake128, Update, XofReader};

use crate::context::RingContext;
use crate::error::{MathError, Result};
use crate::poly::{Ntt, Poly};

/// The size of a CRS seed in bytes.
pub const CRS_SEED_BYTES: usize = 32;
/// The longest purpose label.
pub const MAX_PURPOSE_BYTES: usize = 64;
/// The domain-separation prefix of every expansion.
const CRS_TAG: &[u8] = b"ringsum/crs/v1";

/// A public 32-byte CRS seed, published by the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CrsSeed([u8; CRS_SEED_BYTES]);

impl CrsSeed {
    /// A seed from its 32 bytes.
    pub const fn new(bytes: [u8; CRS_SEED_BYTES]) -> Self {
        Self(bytes)
    }

    /// A seed from a byte slice.
    ///
    /// # Errors
    /// [`MathError::InvalidSeedLength`] unless the slice holds 32 bytes.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| MathError::InvalidSeedLength {
                expected: CRS_SEED_BYTES,
                found: bytes.len(),
            })
    }

    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8; CRS_SEED_BYTES] {
        &self.0
    }
}

/// What a CRS polynomial is for: purpose label, epoch (or round) and index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CrsDomain {
    purpose: String,
    epoch: u64,
    index: u64,
}

impl CrsDomain {
    /// A domain with a purpose label of 1 to 64 printable ASCII bytes.
    ///
    /// # Errors
    /// [`MathError::InvalidCrsLabel`] for an empty, long or non-printable label.
    pub fn new(purpose: &str, epoch: u64, index: u64) -> Result<Self> {
        let printable = purpose.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if purpose.is_empty() || purpose.len() > MAX_PURPOSE_BYTES || !printable {
            return Err(MathError::InvalidCrsLabel {
                length: purpose.len(),
                max: MAX_PURPOSE_BYTES,
            });
        }
        Ok(Self {
            purpose: purpose.to_owned(),
            epoch,
            index,
        })
    }

    /// The purpose label.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The epoch or round number.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The index within the epoch.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// Expands the CRS polynomial of `domain` from `seed`, in NTT form.
pub fn expand_crs(ctx: &Arc<RingContext>, seed: &CrsSeed, domain: &CrsDomain) -> Poly<Ntt> {
    let mut xof = Shake128::default();
    xof.update(CRS_TAG);
    xof.update(seed.as_bytes());
    // Labels are at most 64 bytes and bases at most 32 primes.
    let purpose_len = u16::try_from(domain.purpose.len()).unwrap_or(u16::MAX);
    xof.update(&purpose_len.to_le_bytes());
    xof.update(domain.purpose.as_bytes());
    xof.update(&domain.epoch.to_le_bytes());
    xof.update(&domain.index.to_le_bytes());
    xof.update(&(ctx.degree() as u64).to_le_bytes());
    let prime_count = u16::try_from(ctx.num_primes()).unwrap_or(u16::MAX);
    xof.update(&prime_count.to_le_bytes());
    for m in ctx.moduli() {
        xof.update(&m.value().to_le_bytes());
    }
    let mut reader = xof.finalize_xof();

    let mut data = vec![0u64; ctx.poly_len()];
    let mut block = [0u8; 8 * 168];
    for (m, row) in ctx.moduli().iter().zip(data.chunks_exact_mut(ctx.degree())) {
        let mask = u64::MAX >> (64 - m.bits());
        let mut filled = 0;
        while filled < row.len() {
            // Read only what this row still needs (at least one word), so the
            // stream position does not depend on the read size.
            let want = (row.len() - filled).min(168);
            let bytes = block.get_mut(..8 * want).unwrap_or_default();
            reader.read(bytes);
            for word in bytes.chunks_exact(8) {
                let mut le = [0u8; 8];
                le.copy_from_slice(word);
                let candidate = u64::from_le_bytes(le) & mask;
                if candidate < m.value() {
                    if let Some(slot) = row.get_mut(filled) {
                        *slot = candidate;
                    }
                    filled += 1;
                }
            }
        }
    }
    Poly::from_raw(ctx, data)
}

/// As [`expand_crs`], with the seed given as a byte slice.
///
/// # Errors
/// [`MathError::InvalidSeedLength`] unless the seed holds 32 bytes.
pub fn try_expand_crs(
    ctx: &Arc<RingContext>,
    seed: &[u8],
    domain: &CrsDomain,
) -> Result<Poly<Ntt>> {
    Ok(expand_crs(ctx, &CrsSeed::try_from_slice(seed)?, domain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prime::generate_ntt_primes;

    const KAT_NTT: [u64; 6] = [
        1118214860273137,
        1075926345620201,
        1066182824224476,
        243967347764165,
        199157171027220,
        485379713025746,
    ];
    const KAT_COEFF: [u64; 6] = [
        225554391712166,
        1115895883976277,
        898162668979354,
        813810264356086,
        819923910707394,
        69285271014901,
    ];

    fn ring(degree: usize, k: usize) -> Arc<RingContext> {
        RingContext::new(degree, &generate_ntt_primes(degree, &vec![50; k]).unwrap()).unwrap()
    }

    #[test]
    fn same_seed_and_domain_give_the_same_polynomial() {
        let ctx = ring(4096, 2);
        let seed = CrsSeed::new([7; 32]);
        let domain = CrsDomain::new("public-key", 3, 0).unwrap();
        assert_eq!(
            expand_crs(&ctx, &seed, &domain),
            expand_crs(&ctx, &seed, &domain)
        );
        // A context built separately for the same ring agrees too.
        let again = ring(4096, 2);
        assert_eq!(
            expand_crs(&ctx, &seed, &domain).residues(),
            expand_crs(&again, &seed, &domain).residues()
        );
    }

    /// Known answers: the NTT-form values pin the XOF input and the rejection
    /// sampling; the coefficient form pins the NTT's evaluation order and
    /// roots, which the CRS inherits from tfhe-ntt (a dependency upgrade that
    /// changed them would change every party's `a` and must be noticed).
    #[test]
    fn known_answer() {
        let ctx = ring(1024, 2);
        let a = expand_crs(
            &ctx,
            &CrsSeed::new([0x42; 32]),
            &CrsDomain::new("public-key", 1, 2).unwrap(),
        );
        let positions = [0, 1, 1022, 1023, 1024, 2047];
        let ntt_head: Vec<u64> = positions.iter().map(|&i| a.residues()[i]).collect();
        let coeff = a.to_coeff();
        let coeff_head: Vec<u64> = positions.iter().map(|&i| coeff.residues()[i]).collect();
        assert_eq!(ntt_head, KAT_NTT);
        assert_eq!(coeff_head, KAT_COEFF);
    }

    #[test]
    fn every_domain_field_separates() {
        let ctx = ring(1024, 2);
        let seed = CrsSeed::new([7; 32]);
        let base = expand_crs(&ctx, &seed, &CrsDomain::new("public-key", 3, 0).unwrap());
        let variants = [
            expand_crs(&ctx, &seed, &CrsDomain::new("public-key!", 3, 0).unwrap()),
            expand_crs(&ctx, &seed, &CrsDomain::new("public-key", 4, 0).unwrap()),
            expand_crs(&ctx, &seed, &CrsDomain::new("public-key", 3, 1).unwrap()),
            expand_crs(
                &ctx,
                &CrsSeed::new([8; 32]),
                &CrsDomain::new("public-key", 3, 0).unwrap(),
            ),
        ];
        for v in &variants {
            let equal = base
                .residues()
                .iter()
                .zip(v.residues())
                .filter(|(a, b)| a == b)
                .count();
            // Independent uniform residues agree on about 2^-50 of the positions.
            assert_eq!(equal, 0);
        }
        // Another ring (other primes) with the same seed and domain differs too.
        let other = RingContext::new(1024, &generate_ntt_primes(1024, &[50, 49]).unwrap()).unwrap();
        let shifted = expand_crs(&other, &seed, &CrsDomain::new("public-key", 3, 0).unwrap());
        assert_ne!(base.row(0), shifted.row(0));
    }

    #[test]
    fn residues_are_reduced_and_spread_out() {
        let ctx = ring(4096, 3);
        let a = expand_crs(
            &ctx,
            &CrsSeed::new([1; 32]),
            &CrsDomain::new("test", 0, 0).unwrap(),
        );
        for (i, m) in ctx.moduli().iter().enumerate() {
            let row = a.row(i).unwrap();
            assert!(row.iter().all(|&x| x < m.value()));
            // The mean of 4096 uniform values lies within 5 standard errors of p/2.
            let mean = row.iter().map(|&x| x as f64).sum::<f64>() / row.len() as f64;
            let p = m.value() as f64;
            let standard_error = p / (12.0f64 * row.len() as f64).sqrt();
            assert!((mean - p / 2.0).abs() < 5.0 * standard_error);
        }
    }

    #[test]
    fn bad_seeds_and_labels_are_refused() {
        let ctx = ring(1024, 1);
        let domain = CrsDomain::new("x", 0, 0).unwrap();
        assert_eq!(
            try_expand_crs(&ctx, &[0; 31], &domain).unwrap_err(),
            MathError::InvalidSeedLength {
                expected: 32,
                found: 31
            }
        );
        assert!(try_expand_crs(&ctx, &[0; 32], &domain).is_ok());
        assert!(matches!(
            CrsDomain::new("", 0, 0),
            Err(MathError::InvalidCrsLabel { length: 0, .. })
        ));
        assert!(CrsDomain::new(&"a".repeat(65), 0, 0).is_err());
        assert!(CrsDomain::new("tab\there", 0, 0).is_err());
        assert!(CrsDomain::new("é", 0, 0).is_err());
    }
}
