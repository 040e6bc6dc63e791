//! Statistical tests of the samplers. Seeds are fixed, so each test is
//! deterministic; the tolerances are five standard errors (or a chi-square
//! quantile far in the tail), tight enough that a wrong parameter fails.

use super::*;
use crate::prime::generate_ntt_primes;
use num_bigint::BigUint;

fn ring(degree: usize, k: usize) -> Arc<RingContext> {
    RingContext::new(degree, &generate_ntt_primes(degree, &vec![50; k]).unwrap()).unwrap()
}

fn rng(tag: u8) -> Csprng {
    Csprng::from_seed([tag; 32])
}

/// Pearson's chi-square statistic of observed counts against expected
/// probabilities, merging bins with fewer than 10 expected samples into one.
fn chi_square(counts: &[(f64, f64)], total: f64) -> (f64, usize) {
    let mut stat = 0.0;
    let mut bins = 0usize;
    let (mut rest_observed, mut rest_expected) = (0.0, 0.0);
    for &(observed, probability) in counts {
        let expected = probability * total;
        if expected < 10.0 {
            rest_observed += observed;
            rest_expected += expected;
        } else {
            stat += (observed - expected).powi(2) / expected;
            bins += 1;
        }
    }
    if rest_expected > 0.0 {
        stat += (rest_observed - rest_expected).powi(2) / rest_expected;
        bins += 1;
    }
    (stat, bins.saturating_sub(1))
}

/// An upper quantile of the chi-square distribution with `df` degrees of
/// freedom far in the tail (about 1e-6), by the Wilson-Hilferty
/// approximation.
fn chi_square_limit(df: usize) -> f64 {
    let df = df as f64;
    let z = 4.75;
    df * (1.0 - 2.0 / (9.0 * df) + z * (2.0 / (9.0 * df)).sqrt()).powi(3)
}

fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance)
}

#[test]
fn same_seed_same_stream_and_os_seeding_differs() {
    let (mut a, mut b) = (rng(1), rng(1));
    assert_eq!(a.next_u64(), b.next_u64());
    let (mut x, mut y) = (Csprng::from_os().unwrap(), Csprng::from_os().unwrap());
    assert_ne!((x.next_u64(), x.next_u64()), (y.next_u64(), y.next_u64()));
    assert!(Csprng::try_from_seed_bytes(&[0; 31]).is_err());
    assert!(format!("{a:?}").contains(".."));
}

#[test]
fn uniform_residues_are_uniform() {
    // A 20-bit prime whose top bits make rejection frequent.
    let ctx = RingContext::new(1024, &[786_433]).unwrap();
    let m = ctx.moduli()[0];
    let mut values = vec![0u64; 1 << 18];
    fill_uniform_mod(&mut rng(2), &m, &mut values);
    assert!(values.iter().all(|&v| v < m.value()));
    // 64 equal-width bins.
    let mut counts = [0f64; 64];
    for &v in &values {
        counts[(v * 64 / m.value()) as usize] += 1.0;
    }
    let observed: Vec<(f64, f64)> = counts.iter().map(|&c| (c, 1.0 / 64.0)).collect();
    let (stat, df) = chi_square(&observed, values.len() as f64);
    assert!(
        stat < chi_square_limit(df),
        "chi-square {stat} with {df} degrees of freedom"
    );
    // Uniform polynomials of different calls differ.
    let ctx = ring(1024, 2);
    let a: Poly<Ntt> = sample_uniform(&ctx, &mut rng(3));
    let b: Poly<Ntt> = sample_uniform(&ctx, &mut rng(4));
    assert_ne!(a, b);
}

use crate::poly::Ntt;

/// Each of the three frequencies within five standard errors of n/3.
fn ternary_frequencies_pass(values: &[i64]) -> bool {
    let mut counts = [0f64; 3];
    for &v in values {
        counts[(v + 1) as usize] += 1.0;
    }
    let n = values.len() as f64;
    // Each count is Binomial(n, 1/3).
    let standard_error = (n * (1.0 / 3.0) * (2.0 / 3.0)).sqrt();
    counts
        .iter()
        .all(|c| (c - n / 3.0).abs() < 5.0 * standard_error)
}

#[test]
fn ternary_is_uniform_on_three_values() {
    let mut values = vec![0i64; 1 << 20];
    fill_ternary(&mut rng(5), &mut values);
    assert!(values.iter().all(|v| (-1..=1).contains(v)));
    assert!(ternary_frequencies_pass(&values));
    // The check has teeth: the same samples with one in a hundred forced to
    // zero (P(0) = 0.34 instead of 0.33) fail it.
    let mut biased = values.clone();
    for v in biased.iter_mut().step_by(100) {
        *v = 0;
    }
    assert!(!ternary_frequencies_pass(&biased));

    let ctx = ring(4096, 2);
    let secret = sample_ternary(&ctx, &mut rng(6));
    let lifted = secret.expose().to_centered_bigints_vartime();
    assert!(lifted.iter().all(|c| c.magnitude() <= &BigUint::from(1u32)));
}

#[test]
fn gaussian_matches_its_distribution() {
    let gaussian = DiscreteGaussian::new(3.2, 6.0).unwrap();
    assert_eq!(gaussian.bound(), 19);
    // The truncated discrete Gaussian's variance is within 0.1% of sigma^2.
    assert!(
        (gaussian.variance() - 3.2f64 * 3.2).abs() < 0.01,
        "{}",
        gaussian.variance()
    );
    let total_probability: f64 = (-19..=19).map(|x| gaussian.probability(x)).sum();
    assert!((total_probability - 1.0).abs() < 1e-12);

    let n = 1usize << 21;
    let mut values = vec![0i64; n];
    gaussian.fill(&mut rng(7), &mut values);
    assert!(values.iter().all(|v| v.abs() <= 19));
    let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    let (mean, variance) = mean_and_variance(&floats);
    let var = gaussian.variance();
    // Standard errors: sqrt(var / n) for the mean, about var * sqrt(2 / n)
    // for the variance (the fourth moment of a Gaussian is 3 var^2).
    let mean_tolerance = 5.0 * (var / n as f64).sqrt();
    let variance_tolerance = 5.0 * var * (2.0 / n as f64).sqrt();
    assert!(mean.abs() < mean_tolerance, "mean {mean}");
    assert!(
        (variance - var).abs() < variance_tolerance,
        "variance {variance} vs {var}"
    );
    // The variance tolerance (about 0.05) separates sigma 3.2 from 3.1 or 3.3.
    for wrong_sigma in [3.1f64, 3.3] {
        assert!((wrong_sigma * wrong_sigma - var).abs() > 10.0 * variance_tolerance);
    }

    // Chi-square over every value against the exact probabilities.
    let mut counts = vec![0f64; 39];
    for &v in &values {
        counts[(v + 19) as usize] += 1.0;
    }
    let observed: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, gaussian.probability(i as i64 - 19)))
        .collect();
    let (stat, df) = chi_square(&observed, n as f64);
    assert!(
        stat < chi_square_limit(df),
        "chi-square {stat} with {df} degrees of freedom"
    );
}

/// The integer thresholds realise the ideal distribution to within 2^-62
/// absolute per value (plus a relative 2^-45 for the float tail sums), with
/// the shipped cut and with the widest cut, where the rarest values have
/// probabilities near 2^-63.
#[test]
fn realised_probabilities_match_the_ideal_table() {
    for (sigma, tail_cut) in [(3.2, 6.0), (3.2, 13.0), (20.0, 8.0)] {
        let gaussian = DiscreteGaussian::new(sigma, tail_cut).unwrap();
        let bound = gaussian.bound();
        for x in -bound..=bound {
            let (realised, ideal) = (gaussian.probability(x), gaussian.ideal_probability(x));
            let tolerance = 2f64.powi(-62) + ideal * 2f64.powi(-45);
            assert!(
                (realised - ideal).abs() <= tolerance,
                "sigma {sigma}, cut {tail_cut}, x = {x}: realised {realised:e}, ideal {ideal:e}"
            );
        }
        assert_eq!(gaussian.probability(bound + 1), 0.0);
        let total: f64 = (-bound..=bound).map(|x| gaussian.probability(x)).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
    // With the shipped parameters every value up to the bound can occur.
    let shipped = DiscreteGaussian::new(3.2, 6.0).unwrap();
    assert!((-19..=19).all(|x| shipped.probability(x) > 0.0));
}

#[test]
fn a_wrong_sigma_fails_the_chi_square_test() {
    // Samples drawn with sigma 3.3 checked against the sigma 3.2 table.
    let expected = DiscreteGaussian::new(3.2, 6.0).unwrap();
    let wrong = DiscreteGaussian::new(3.3, 6.0).unwrap();
    let n = 1usize << 21;
    let mut values = vec![0i64; n];
    wrong.fill(&mut rng(8), &mut values);
    let mut counts = vec![0f64; 41];
    for &v in &values {
        counts[(v + 20) as usize] += 1.0;
    }
    let observed: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, expected.probability(i as i64 - 20).max(1e-300)))
        .collect();
    let (stat, df) = chi_square(&observed, n as f64);
    assert!(
        stat > 10.0 * chi_square_limit(df),
        "chi-square {stat} with {df} degrees of freedom"
    );
}

#[test]
fn gaussian_polynomials_are_consistent_across_primes() {
    let ctx = ring(4096, 3);
    let gaussian = DiscreteGaussian::new(3.2, 6.0).unwrap();
    let e = gaussian.sample_poly(&ctx, &mut rng(9));
    let lifted = e.expose().to_centered_bigints_vartime();
    assert!(
        lifted
            .iter()
            .all(|c| c.magnitude() <= &BigUint::from(19u32))
    );
    assert!(lifted.iter().any(|c| c.magnitude() > &BigUint::from(5u32)));
}

#[test]
fn gaussian_refuses_bad_parameters() {
    for (sigma, tail) in [
        (0.5, 6.0),
        (3.2, 2.0),
        (f64::NAN, 6.0),
        (3.2, f64::INFINITY),
        (100.0, 6.0),
    ] {
        assert!(matches!(
            DiscreteGaussian::new(sigma, tail),
            Err(MathError::InvalidGaussian { .. })
        ));
    }
}

#[test]
fn wide_sigma_uses_the_safe_reduction() {
    // sigma 64 cut at 13 sigmas reaches 832 > 97: residues must still be right.
    let ctx = RingContext::new(16, &[97, 193]).unwrap();
    let gaussian = DiscreteGaussian::new(64.0, 13.0).unwrap();
    let mut r = rng(10);
    let e = gaussian.sample_poly(&ctx, &mut r);
    for (i, m) in ctx.moduli().iter().enumerate() {
        assert!(e.expose().row(i).unwrap().iter().all(|&x| x < m.value()));
    }
    // Reconstructing both rows gives one consistent integer per coefficient.
    let lifted = e.expose().to_centered_bigints_vartime();
    for (j, c) in lifted.iter().enumerate() {
        let r0 = e.expose().row(0).unwrap()[j];
        assert_eq!(ctx.basis().reduce_bigint_vartime(c)[0], r0);
    }
}

#[test]
fn adding_noise_in_place_matches_sampling_a_noise_polynomial() {
    let ctx = ring(1024, 3);
    let gaussian = DiscreteGaussian::new(3.2, 6.0).unwrap();
    let sampled = gaussian.sample_poly(&ctx, &mut rng(14));
    let mut added = Poly::<Coeff>::zero(&ctx);
    gaussian.add_noise_assign(&mut added, &mut rng(14));
    assert_eq!(&added, sampled.expose());
    // On top of a non-zero polynomial it is an addition.
    let base: Poly<Coeff> = sample_uniform(&ctx, &mut rng(15));
    let mut noisy = base.clone();
    gaussian.add_noise_assign(&mut noisy, &mut rng(14));
    assert_eq!(noisy, base.try_add(sampled.expose()).unwrap());
}
