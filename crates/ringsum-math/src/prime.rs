//! Primality and deterministic generation of NTT-friendly primes.
//!
//! Everything here works on public values and may take variable time.

use crate::error::{MathError, Result};
use crate::zq::{MAX_MODULUS_BITS, Modulus};

/// The smallest prime size [`generate_ntt_primes`] accepts.
pub const MIN_PRIME_BITS: u32 = 20;
/// The largest prime size [`generate_ntt_primes`] accepts.
pub const MAX_PRIME_BITS: u32 = MAX_MODULUS_BITS;
/// Primes below 2^50 keep tfhe-ntt on its AVX-512 IFMA path; the shipped
/// parameter sets use this size.
pub const DEFAULT_PRIME_BITS: u32 = 50;

/// Deterministic Miller-Rabin for every 64-bit integer: these twelve bases
/// are enough below 3.3 * 10^24 (Sorenson and Webster, 2015).
const WITNESSES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

/// Whether `n` is prime. Exact for every `u64`.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for &small in &WITNESSES {
        if n.is_multiple_of(small) {
            return n == small;
        }
    }
    let mut d = n - 1;
    let mut s = 0u32;
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    // The remainder is below n, so the narrowing is exact.
    #[allow(clippy::cast_possible_truncation)]
    let mul = |a: u64, b: u64| (u128::from(a) * u128::from(b) % u128::from(n)) as u64;
    let pow = |mut base: u64, mut e: u64| {
        let mut acc = 1u64;
        while e != 0 {
            if e & 1 == 1 {
                acc = mul(acc, base);
            }
            base = mul(base, base);
            e >>= 1;
        }
        acc
    };
    'witness: for &a in &WITNESSES {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Whether `p` is a prime with p = 1 mod 2N, the condition for a negacyclic
/// NTT of degree N modulo p.
pub fn is_ntt_friendly(p: u64, degree: usize) -> bool {
    crate::context::check_degree(degree).is_ok() && p % (2 * degree as u64) == 1 && is_prime(p)
}

/// Checks that `p` can serve as an RNS prime for degree N.
///
/// # Errors
/// [`MathError::InvalidDegree`] for an unsupported degree;
/// [`MathError::InvalidModulus`], [`MathError::NotPrime`] or
/// [`MathError::NotNttFriendly`], naming the prime.
pub fn check_ntt_prime(p: u64, degree: usize) -> Result<Modulus> {
    crate::context::check_degree(degree)?;
    let modulus = Modulus::new(p)?;
    if !is_prime(p) {
        return Err(MathError::NotPrime { modulus: p });
    }
    let two_n = 2 * degree as u64;
    if p % two_n != 1 {
        return Err(MathError::NotNttFriendly {
            modulus: p,
            degree,
            residue: p % two_n,
        });
    }
    Ok(modulus)
}

/// Generates distinct NTT-friendly primes for ring degree `degree`, one of
/// each requested bit size, deterministically: for every size it takes the
/// largest prime p < 2^bits with p = 1 mod 2N that has not been taken yet.
///
/// The same inputs always give the same primes, so a parameter set may name
/// its primes by size alone.
///
/// # Errors
/// [`MathError::InvalidDegree`] for a degree that is not a power of two in the
/// supported range, [`MathError::InvalidPrimeBits`] for a size outside
/// [`MIN_PRIME_BITS`]..=[`MAX_PRIME_BITS`], [`MathError::NotEnoughPrimes`] when
/// the size holds fewer such primes than requested,
/// [`MathError::InvalidBasisSize`] for more primes than a basis may hold.
pub fn generate_ntt_primes(degree: usize, bit_sizes: &[u32]) -> Result<Vec<u64>> {
    crate::context::check_degree(degree)?;
    if bit_sizes.len() > crate::rns::MAX_BASIS_PRIMES {
        return Err(MathError::InvalidBasisSize {
            count: bit_sizes.len(),
            max: crate::rns::MAX_BASIS_PRIMES,
        });
    }
    let two_n = 2 * degree as u64;
    let mut primes: Vec<u64> = Vec::with_capacity(bit_sizes.len());
    for &bits in bit_sizes {
        if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits) {
            return Err(MathError::InvalidPrimeBits {
                bits,
                min: MIN_PRIME_BITS,
                max: MAX_PRIME_BITS,
            });
        }
        let low = 1u64 << (bits - 1);
        let high = 1u64 << bits;
        // The largest candidate below 2^bits that is 1 mod 2N (2N divides 2^bits).
        let mut candidate = high - two_n + 1;
        loop {
            if candidate < low {
                let found = bit_sizes
                    .iter()
                    .zip(&primes)
                    .filter(|&(&b, _)| b == bits)
                    .count();
                return Err(MathError::NotEnoughPrimes {
                    bits,
                    two_n,
                    requested: bit_sizes.iter().filter(|&&b| b == bits).count(),
                    found,
                });
            }
            if !primes.contains(&candidate) && is_prime(candidate) {
                primes.push(candidate);
                break;
            }
            candidate -= two_n;
        }
    }
    Ok(primes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trial_division(n: u64) -> bool {
        n >= 2
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn agrees_with_trial_division_on_small_numbers() {
        for n in 0..20_000u64 {
            assert_eq!(is_prime(n), trial_division(n), "n = {n}");
        }
    }

    #[test]
    fn known_primes_and_pseudoprimes() {
        // 2^61 - 1 is a Mersenne prime; 3215031751 is a strong pseudoprime to
        // bases 2, 3, 5 and 7; 2^64 - 59 is the largest 64-bit prime.
        assert!(is_prime((1 << 61) - 1));
        assert!(!is_prime(3_215_031_751));
        assert!(is_prime(u64::MAX - 58));
        assert!(!is_prime(u64::MAX));
        // A Carmichael number.
        assert!(!is_prime(561));
    }

    proptest! {
        #[test]
        fn products_of_two_primes_are_composite(a in 3u64..(1 << 31), b in 3u64..(1 << 31)) {
            let next_prime = |n: u64| (n..).find(|&x| is_prime(x)).unwrap();
            let (a, b) = (next_prime(a), next_prime(b));
            prop_assert!(is_prime(a) && is_prime(b));
            prop_assert!(!is_prime(a * b));
        }

        #[test]
        fn large_numbers_agree_with_trial_division(n in (1u64 << 30)..(1u64 << 34)) {
            prop_assert_eq!(is_prime(n), trial_division(n));
        }
    }

    #[test]
    fn generated_primes_are_distinct_friendly_and_of_their_size() {
        for log_n in 4..=15 {
            let degree = 1usize << log_n;
            let sizes = [50, 50, 50, 49, 40, 30, 62];
            let primes = generate_ntt_primes(degree, &sizes).unwrap();
            for (&p, &bits) in primes.iter().zip(&sizes) {
                assert!(is_ntt_friendly(p, degree));
                assert_eq!(64 - p.leading_zeros(), bits);
            }
            let mut sorted = primes.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), primes.len());
            assert_eq!(generate_ntt_primes(degree, &sizes).unwrap(), primes);
        }
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(matches!(
            generate_ntt_primes(1000, &[50]),
            Err(MathError::InvalidDegree { .. })
        ));
        assert!(matches!(
            generate_ntt_primes(1024, &[63]),
            Err(MathError::InvalidPrimeBits { bits: 63, .. })
        ));
        // Few 20-bit primes are 1 mod 2^16: asking for 30 of them must fail.
        assert!(matches!(
            generate_ntt_primes(32768, &[20; 30]),
            Err(MathError::NotEnoughPrimes { bits: 20, .. })
        ));
        assert_eq!(check_ntt_prime(97, 16).unwrap().value(), 97);
        assert!(matches!(
            check_ntt_prime(15, 16),
            Err(MathError::NotPrime { modulus: 15 })
        ));
        // Degenerate degrees are refused, never divided by.
        assert!(matches!(
            check_ntt_prime(97, 0),
            Err(MathError::InvalidDegree { degree: 0, .. })
        ));
        assert!(!is_ntt_friendly(97, 0));
        assert!(!is_ntt_friendly(97, 1 << 63));
        assert!(matches!(
            generate_ntt_primes(1024, &[50; 33]),
            Err(MathError::InvalidBasisSize { count: 33, .. })
        ));
        assert!(matches!(
            check_ntt_prime(101, 16),
            Err(MathError::NotNttFriendly { residue: 5, .. })
        ));
    }
}
