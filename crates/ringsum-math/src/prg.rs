//! The fast expansion of public uniform polynomials from a seed.
//!
//! In the per-round-key scheme every client expands, for every ciphertext j
//! of a round, the public polynomial a_j (k*N residues: 1 MiB at N = 16384
//! with eight primes) and the coordinator expands each once per round, so
//! the generator is on the encryption's critical path. [`crate::crs`]
//! expands with SHAKE128, which runs at about 0.4 GB/s here; this module
//! uses AES-128 in counter mode instead, which runs about 2x faster than
//! ChaCha12 and 11x faster than SHAKE128 on a 1 MiB a_j on this machine
//! (BENCHMARKS.md, "PRG for a_j", `benches/prg.rs`). Any secure PRG of a
//! public seed is sound here (the seed is public, and so is a_j: the
//! generator must only make a_j indistinguishable from uniform, as
//! Kyber-90s did with AES-CTR).
//!
//! The `aes` crate picks the AES-NI or VAES backend (x86-64) or the ARMv8
//! AES instructions at run time; on a processor without them it falls back
//! to a constant-time bitsliced software AES, which is correct but several
//! times slower than ChaCha.
//!
//! The cipher is keyed by the first 16 bytes of a SHA3-256 digest of
//! everything a_j is bound to,
//!
//! ```text
//! digest = SHA3-256("ringsum/prg/v1" || seed (32 bytes)
//!            || len(purpose) (u16 LE) || purpose
//!            || epoch (u64 LE) || index (u64 LE)
//!            || N (u64 LE) || k (u16 LE) || q_0 (u64 LE) || ... || q_(k-1) (u64 LE))
//! key    = digest[0..16]
//! stream = AES-128-CTR(key), IV zero, 128-bit big-endian counter
//!          (block i is AES_key(i)), NIST SP 800-38A
//! ```
//!
//! and the stream is read as 64-bit little-endian words: for each prime in
//! order, each word is masked to the prime's bit length and kept if it is
//! below the prime, until the prime's N residues are filled (rejection
//! sampling on public data; the branches reveal nothing secret). Any party
//! with the seed computes the same polynomial.

use std::sync::Arc;

use aes::Aes128;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha3::{Digest, Sha3_256};

use crate::context::RingContext;
use crate::crs::{CrsDomain, CrsSeed};
use crate::poly::{Ntt, Poly};
use crate::zq::Modulus;

/// The domain-separation prefix of every expansion.
const PRG_TAG: &[u8] = b"ringsum/prg/v1";

/// Words drawn from the stream cipher at a time (4 KiB, in L1).
const WORDS: usize = 512;

/// The stream cipher: AES-128 in counter mode, 128-bit big-endian counter.
type Keystream = Ctr128BE<Aes128>;

/// A stream of uniform residues for one public polynomial, filled one
/// prime's row at a time (so that a kernel working prime by prime keeps the
/// row it fills in its cache).
pub struct UniformRows {
    stream: Keystream,
    moduli: Vec<Modulus>,
    degree: usize,
    next_prime: usize,
    words: Box<[u64; WORDS]>,
}

impl std::fmt::Debug for UniformRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UniformRows")
            .field("degree", &self.degree)
            .field("next_prime", &self.next_prime)
            .finish_non_exhaustive()
    }
}

impl UniformRows {
    /// The stream of the polynomial of `domain` under `seed` in `ctx`'s ring.
    pub fn new(ctx: &RingContext, seed: &CrsSeed, domain: &CrsDomain) -> Self {
        Self {
            stream: Keystream::new(&stream_key(ctx, seed, domain).into(), &[0; 16].into()),
            moduli: ctx.moduli().to_vec(),
            degree: ctx.degree(),
            next_prime: 0,
            words: Box::new([0; WORDS]),
        }
    }

    /// The ring degree N of the rows.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Whether the rows are for exactly these primes, in this order.
    pub fn same_primes(&self, moduli: &[Modulus]) -> bool {
        self.moduli.len() == moduli.len()
            && self
                .moduli
                .iter()
                .zip(moduli)
                .all(|(a, b)| a.value() == b.value())
    }

    /// The number of primes (rows) of the polynomial.
    pub fn primes(&self) -> usize {
        self.moduli.len()
    }

    /// The index of the prime whose row [`Self::fill_next_row`] fills next.
    pub fn next_prime(&self) -> usize {
        self.next_prime
    }

    /// Fills `row` with the next prime's N uniform residues. Rows come in
    /// prime order; past the last prime, or for a row that is not N words
    /// long, nothing is written and `false` is returned. (`false` also
    /// follows the end of the keystream, 2^132 bytes away: never.)
    pub fn fill_next_row(&mut self, row: &mut [u64]) -> bool {
        let Some(m) = self.moduli.get(self.next_prime) else {
            return false;
        };
        if row.len() != self.degree {
            return false;
        }
        let (p, mask) = (m.value(), u64::MAX >> (64 - m.bits()));
        let mut filled = 0;
        while filled < row.len() {
            // Draw only what the row still needs (the stream's position must
            // not depend on anything but the rows before); the counter mode
            // keeps the unused part of a block for the next draw.
            let want = (row.len() - filled).min(WORDS);
            let words = self.words.get_mut(..want).unwrap_or_default();
            if self
                .stream
                .try_write_keystream(bytemuck::cast_slice_mut(words))
                .is_err()
            {
                return false;
            }
            for &word in words.iter() {
                let candidate = u64::from_le(word) & mask;
                if candidate < p {
                    if let Some(slot) = row.get_mut(filled) {
                        *slot = candidate;
                    }
                    filled += 1;
                }
            }
        }
        self.next_prime += 1;
        true
    }
}

/// The AES-128 key: the first 16 bytes of the SHA3-256 digest of the tag,
/// the seed, the domain and the ring.
fn stream_key(ctx: &RingContext, seed: &CrsSeed, domain: &CrsDomain) -> [u8; 16] {
    let mut h = Sha3_256::new();
    h.update(PRG_TAG);
    h.update(seed.as_bytes());
    // Labels are at most 64 bytes and bases at most 32 primes.
    let purpose_len = u16::try_from(domain.purpose().len()).unwrap_or(u16::MAX);
    h.update(purpose_len.to_le_bytes());
    h.update(domain.purpose().as_bytes());
    h.update(domain.epoch().to_le_bytes());
    h.update(domain.index().to_le_bytes());
    h.update((ctx.degree() as u64).to_le_bytes());
    let prime_count = u16::try_from(ctx.num_primes()).unwrap_or(u16::MAX);
    h.update(prime_count.to_le_bytes());
    for m in ctx.moduli() {
        h.update(m.value().to_le_bytes());
    }
    let digest: [u8; 32] = h.finalize().into();
    let mut key = [0u8; 16];
    for (k, d) in key.iter_mut().zip(digest) {
        *k = d;
    }
    key
}

/// The uniform polynomial of `domain` under `seed`, in NTT form (the NTT is
/// a bijection, so residues drawn uniformly are a uniform polynomial in
/// either representation, and sampling in NTT form saves a transform).
pub fn expand_uniform_ntt(ctx: &Arc<RingContext>, seed: &CrsSeed, domain: &CrsDomain) -> Poly<Ntt> {
    let mut rows = UniformRows::new(ctx, seed, domain);
    let mut data = vec![0u64; ctx.poly_len()];
    for row in data.chunks_exact_mut(ctx.degree()) {
        rows.fill_next_row(row);
    }
    Poly::from_raw(ctx, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prime::generate_ntt_primes;

    fn ring(degree: usize, bits: &[u32]) -> Arc<RingContext> {
        RingContext::new(degree, &generate_ntt_primes(degree, bits).unwrap()).unwrap()
    }

    #[test]
    fn rows_match_the_whole_polynomial_and_stop_after_the_last_prime() {
        let ctx = ring(1024, &[48, 48, 30]);
        let (seed, domain) = (CrsSeed::new([3; 32]), CrsDomain::new("a", 1, 2).unwrap());
        let whole = expand_uniform_ntt(&ctx, &seed, &domain);
        let mut rows = UniformRows::new(&ctx, &seed, &domain);
        let mut row = vec![0u64; 1024];
        for prime in 0..3 {
            assert_eq!(rows.next_prime(), prime);
            assert!(rows.fill_next_row(&mut row));
            assert_eq!(row.as_slice(), whole.row(prime).unwrap());
        }
        assert!(!rows.fill_next_row(&mut row));
        let mut short = vec![0u64; 1023];
        assert!(!UniformRows::new(&ctx, &seed, &domain).fill_next_row(&mut short));
    }

    /// Pins the key derivation, the cipher and the rejection sampling: a
    /// change here changes every party's a_j and must be noticed. The values
    /// were computed independently from the module docs' definition (Python:
    /// `hashlib.sha3_256`, AES-128-CTR of the `cryptography` package) and
    /// agree with this implementation.
    #[test]
    fn known_answer() {
        let ctx = ring(1024, &[48, 48]);
        let a = expand_uniform_ntt(
            &ctx,
            &CrsSeed::new([0x42; 32]),
            &CrsDomain::new("ringsum/round-a", 1, 2).unwrap(),
        );
        let positions = [0, 1, 1023, 1024, 2047];
        let head: Vec<u64> = positions.iter().map(|&i| a.residues()[i]).collect();
        assert_eq!(head, KAT);
    }

    const KAT: [u64; 5] = [
        184971849881618,
        84358801765522,
        63739422450913,
        47511227202563,
        202296885730429,
    ];

    #[test]
    fn every_domain_field_separates_and_residues_are_uniform() {
        let ctx = ring(4096, &[48, 48]);
        let seed = CrsSeed::new([7; 32]);
        let base = expand_uniform_ntt(&ctx, &seed, &CrsDomain::new("a", 3, 0).unwrap());
        for other in [
            expand_uniform_ntt(&ctx, &seed, &CrsDomain::new("b", 3, 0).unwrap()),
            expand_uniform_ntt(&ctx, &seed, &CrsDomain::new("a", 4, 0).unwrap()),
            expand_uniform_ntt(&ctx, &seed, &CrsDomain::new("a", 3, 1).unwrap()),
            expand_uniform_ntt(
                &ctx,
                &CrsSeed::new([8; 32]),
                &CrsDomain::new("a", 3, 0).unwrap(),
            ),
        ] {
            let equal = base
                .residues()
                .iter()
                .zip(other.residues())
                .filter(|(a, b)| a == b)
                .count();
            assert_eq!(equal, 0);
        }
        for (i, m) in ctx.moduli().iter().enumerate() {
            let row = base.row(i).unwrap();
            assert!(row.iter().all(|&x| x < m.value()));
            let mean = row.iter().map(|&x| x as f64).sum::<f64>() / row.len() as f64;
            let p = m.value() as f64;
            let standard_error = p / (12.0f64 * row.len() as f64).sqrt();
            assert!((mean - p / 2.0).abs() < 5.0 * standard_error);
        }
    }
}
