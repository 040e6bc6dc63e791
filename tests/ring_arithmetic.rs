//! End-to-end checks of the ring layer through the facade, at the sizes of
//! the shipped parameter sets.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss
)]

use num_bigint::BigInt;
use proptest::prelude::*;
use ringsum::core::ParameterSet;
use ringsum::math::sample::sample_uniform;
use ringsum::math::{Coeff, CrsDomain, CrsSeed, Csprng, Ntt, Poly, expand_crs};

/// An RLWE sample b = -a*s + e decrypts back to e: the identity every later
/// layer (encryption under a round secret, decoding with a key sum) rests
/// on, with the shipped sets' Gaussian secrets.
#[test]
fn rlwe_identity_holds_for_every_shipped_set() {
    for id in ParameterSet::builtin_ids() {
        let params = ParameterSet::builtin(id).unwrap();
        let ring = params.ring();
        let mut rng = Csprng::from_seed([42; 32]);
        let a = expand_crs(
            ring,
            &CrsSeed::new([1; 32]),
            &CrsDomain::new("test/a", 0, 0).unwrap(),
        );
        let s = params.gaussian().sample_poly(ring, &mut rng).into_ntt();
        let e = params.gaussian().sample_poly(ring, &mut rng);
        // b = -(a*s) + e
        let mut b = a.try_mul(s.expose()).unwrap().neg();
        b.try_add_assign(&e.expose().to_ntt()).unwrap();
        // b + a*s = e, whose coefficients are at most the Gaussian bound.
        b.try_mul_accumulate(&a, s.expose()).unwrap();
        let recovered = b.into_coeff();
        assert_eq!(&recovered, e.expose(), "{id}");
        let bound = BigInt::from(params.gaussian().bound());
        assert!(
            recovered
                .to_centered_bigints_vartime()
                .iter()
                .all(|c| c.magnitude() <= bound.magnitude())
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// At the real N = 8192, four-prime ring: the NTT round trip is the
    /// identity and the NTT product agrees with a product computed through
    /// big integers on a sparse operand (a few monomials, so the reference
    /// stays cheap).
    #[test]
    fn product_at_real_size_matches_big_integer_reference(
        seed in any::<[u8; 32]>(),
        monomials in proptest::collection::vec((0usize..8192, -1000i64..1000), 1..4),
    ) {
        let params = ParameterSet::builtin("rk128-n8192").unwrap();
        let ring = params.ring();
        let mut rng = Csprng::from_seed(seed);
        let a: Poly<Coeff> = sample_uniform(ring, &mut rng);
        prop_assert_eq!(a.to_ntt().into_coeff(), a.clone());

        let mut sparse = vec![0i64; 8192];
        for &(position, value) in &monomials {
            sparse[position] += value;
        }
        let b = Poly::try_from_i64(ring, &sparse).unwrap();
        let product: Poly<Ntt> = a.to_ntt().try_mul(&b.to_ntt()).unwrap();

        // Reference: sum over monomials c X^k of c * X^k * a, with X^k * a a
        // negacyclic rotation, all in big integers modulo Q.
        let q = BigInt::from(ring.basis().product().clone());
        let coefficients: Vec<BigInt> = a.to_biguints_vartime().into_iter().map(BigInt::from).collect();
        let mut expected = vec![BigInt::from(0); 8192];
        for (k, &c) in sparse.iter().enumerate().filter(|(_, c)| **c != 0) {
            for (j, x) in coefficients.iter().enumerate() {
                let target = (j + k) % 8192;
                let term = x * c;
                if j + k < 8192 { expected[target] += term } else { expected[target] -= term }
            }
        }
        let expected: Vec<BigInt> = expected.into_iter().map(|x| ((x % &q) + &q) % &q).collect();
        let actual: Vec<BigInt> = product.into_coeff().to_biguints_vartime().into_iter().map(BigInt::from).collect();
        prop_assert_eq!(actual, expected);
    }
}
