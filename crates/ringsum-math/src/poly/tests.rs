use super::*;
use crate::prime::generate_ntt_primes;
use proptest::prelude::*;

fn ring(degree: usize, primes: usize) -> Arc<RingContext> {
    let primes = generate_ntt_primes(degree, &vec![50; primes]).unwrap();
    RingContext::new(degree, &primes).unwrap()
}

fn poly_from_seed(ctx: &Arc<RingContext>, seed: u64) -> Poly<Coeff> {
    // A cheap deterministic filler (splitmix64), reduced into each prime.
    let mut state = seed;
    let mut data = vec![0u64; ctx.poly_len()];
    for (row, m) in data.chunks_exact_mut(ctx.degree()).zip(ctx.moduli()) {
        for x in row {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *x = (z ^ (z >> 31)) % m.value();
        }
    }
    Poly::try_from_residues(ctx, data).unwrap()
}

/// The negacyclic product modulo each prime, by the definition.
fn schoolbook(a: &Poly<Coeff>, b: &Poly<Coeff>) -> Vec<u64> {
    let ctx = a.context();
    let n = ctx.degree();
    let mut out = vec![0u64; ctx.poly_len()];
    for (i, m) in ctx.moduli().iter().enumerate() {
        let (ra, rb) = (a.row(i).unwrap(), b.row(i).unwrap());
        let row = &mut out[i * n..(i + 1) * n];
        for (j, &x) in ra.iter().enumerate() {
            for (k, &y) in rb.iter().enumerate() {
                let prod = m.mul(x, y);
                let slot = &mut row[(j + k) % n];
                *slot = if j + k < n {
                    m.add(*slot, prod)
                } else {
                    m.sub(*slot, prod)
                };
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn ntt_round_trip(log_n in 4u32..=15, k in 1usize..=4, seed in any::<u64>()) {
        let ctx = ring(1 << log_n, k);
        let a = poly_from_seed(&ctx, seed);
        let back = a.to_ntt().into_coeff();
        prop_assert_eq!(back, a);
    }

    #[test]
    fn ntt_product_is_the_negacyclic_product(log_n in 4u32..=8, k in 1usize..=3, s1 in any::<u64>(), s2 in any::<u64>()) {
        let ctx = ring(1 << log_n, k);
        let (a, b) = (poly_from_seed(&ctx, s1), poly_from_seed(&ctx, s2));
        let product = a.to_ntt().try_mul(&b.to_ntt()).unwrap().into_coeff();
        let expected = schoolbook(&a, &b);
        prop_assert_eq!(product.residues(), expected.as_slice());
    }

    #[test]
    fn ring_laws(log_n in 4u32..=10, k in 1usize..=3, s1 in any::<u64>(), s2 in any::<u64>(), s3 in any::<u64>(), c in any::<u64>()) {
        let ctx = ring(1 << log_n, k);
        let (a, b, d) = (poly_from_seed(&ctx, s1), poly_from_seed(&ctx, s2), poly_from_seed(&ctx, s3));
        // Addition is commutative, subtraction undoes it, negation is -1 times.
        prop_assert_eq!(a.try_add(&b).unwrap(), b.try_add(&a).unwrap());
        prop_assert_eq!(a.try_add(&b).unwrap().try_sub(&b).unwrap(), a.clone());
        prop_assert_eq!(a.neg().try_add(&a).unwrap(), Poly::zero(&ctx));
        let mut minus_one = a.clone();
        minus_one.try_mul_scalar_assign(&RnsScalar::from_bigint_vartime(&ctx, &BigInt::from(-1))).unwrap();
        prop_assert_eq!(minus_one, a.neg());
        // The NTT is linear and the product distributes over addition.
        let (na, nb, nd) = (a.to_ntt(), b.to_ntt(), d.to_ntt());
        prop_assert_eq!(a.try_add(&b).unwrap().into_ntt(), na.try_add(&nb).unwrap());
        let left = na.try_mul(&nb.try_add(&nd).unwrap()).unwrap();
        let mut right = na.try_mul(&nb).unwrap();
        right.try_mul_accumulate(&na, &nd).unwrap();
        prop_assert_eq!(left, right);
        // The in-place product agrees with the out-of-place one.
        let mut in_place = na.clone();
        in_place.try_mul_assign(&nb).unwrap();
        prop_assert_eq!(in_place, na.try_mul(&nb).unwrap());
        // Scalar multiplication agrees in both domains and with repeated addition.
        let mut scaled = a.clone();
        scaled.mul_u64_assign(c);
        let mut scaled_ntt = na.clone();
        scaled_ntt.mul_u64_assign(c);
        prop_assert_eq!(scaled.to_ntt(), scaled_ntt);
        let mut three = a.clone();
        three.mul_u64_assign(3);
        prop_assert_eq!(three, a.try_add(&a).unwrap().try_add(&a).unwrap());
    }

    // Two or more 50-bit primes make Q/2 exceed every i64.
    #[test]
    fn signed_coefficients_round_trip(log_n in 4u32..=8, k in 2usize..=4, values in proptest::collection::vec(any::<i64>(), 256)) {
        let ctx = ring(1 << log_n, k);
        let coefficients = &values[..ctx.degree()];
        let p = Poly::try_from_i64(&ctx, coefficients).unwrap();
        let back = p.to_centered_bigints_vartime();
        for (x, &c) in back.iter().zip(coefficients) {
            prop_assert_eq!(x, &BigInt::from(c));
        }
        let big: Vec<BigInt> = coefficients.iter().map(|&c| BigInt::from(c)).collect();
        prop_assert_eq!(Poly::try_from_bigints_vartime(&ctx, &big).unwrap(), p);
    }
}

/// The product at a real ring size: N = 8192 with the four 50-bit primes of
/// the default parameter set, against the definition (a few seconds).
#[test]
fn ntt_product_is_the_negacyclic_product_at_real_size() {
    let ctx = ring(8192, 4);
    for seed in [1u64, 2] {
        let (a, b) = (
            poly_from_seed(&ctx, seed),
            poly_from_seed(&ctx, seed ^ 0xFFFF),
        );
        let product = a.to_ntt().try_mul(&b.to_ntt()).unwrap().into_coeff();
        assert_eq!(product.residues(), schoolbook(&a, &b).as_slice());
    }
}

#[test]
fn multiplying_by_x_rotates_negacyclically() {
    let ctx = ring(16, 2);
    let mut x = vec![0i64; 16];
    x[1] = 1;
    let x = Poly::try_from_i64(&ctx, &x).unwrap().into_ntt();
    let a: Vec<i64> = (1..=16).collect();
    let pa = Poly::try_from_i64(&ctx, &a).unwrap().into_ntt();
    let rotated = pa
        .try_mul(&x)
        .unwrap()
        .into_coeff()
        .to_centered_bigints_vartime();
    // X * (1 + 2X + ... + 16X^15) = -16 + X + 2X^2 + ... + 15X^15.
    let mut expected: Vec<BigInt> = vec![BigInt::from(-16)];
    expected.extend((1..16).map(BigInt::from));
    assert_eq!(rotated, expected);
}

#[test]
fn bad_input_gives_typed_errors() {
    let ctx = ring(16, 2);
    let other = ring(32, 2);
    let p1 = ctx.moduli()[1].value();
    assert_eq!(
        Poly::<Coeff>::try_from_residues(&ctx, vec![0; 31]).unwrap_err(),
        MathError::LengthMismatch {
            what: "polynomial residues",
            expected: 32,
            found: 31
        }
    );
    let mut data = vec![0; 32];
    data[20] = p1;
    assert_eq!(
        Poly::<Ntt>::try_from_residues(&ctx, data).unwrap_err(),
        MathError::ValueOutOfRange {
            index: 20,
            value: p1,
            modulus: p1
        }
    );
    assert!(matches!(
        Poly::try_from_i64(&ctx, &[1; 17]),
        Err(MathError::LengthMismatch { .. })
    ));
    let mut a = Poly::<Ntt>::zero(&ctx);
    let b = Poly::<Ntt>::zero(&other);
    assert!(matches!(
        a.try_add_assign(&b),
        Err(MathError::ContextMismatch {
            left_degree: 16,
            right_degree: 32,
            ..
        })
    ));
    assert!(matches!(
        a.try_mul(&b),
        Err(MathError::ContextMismatch { .. })
    ));
    assert!(matches!(
        a.try_mul_scalar_assign(&RnsScalar::from_u64(&other, 3)),
        Err(MathError::ContextMismatch { .. })
    ));
    // A failed operation leaves its target untouched.
    assert_eq!(a, Poly::zero(&ctx));
}

#[test]
fn secrets_compare_in_constant_time_and_print_nothing() {
    let ctx = ring(16, 2);
    let a = SecretPoly::new(poly_from_seed(&ctx, 7));
    let b = SecretPoly::new(poly_from_seed(&ctx, 7));
    let c = SecretPoly::new(poly_from_seed(&ctx, 8));
    assert!(bool::from(a.ct_eq(&b)));
    assert!(!bool::from(a.ct_eq(&c)));
    let printed = format!("{a:?} {:?}", a.expose());
    for v in a.expose().residues() {
        assert!(!printed.contains(&v.to_string()), "{printed}");
    }
    let back = a.into_ntt().into_coeff();
    assert!(bool::from(back.ct_eq(&b)));
}
