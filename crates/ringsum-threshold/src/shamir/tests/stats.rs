//! Any t - 1 shares look uniform whatever the secret: chi-square tests over
//! many sharings in a small field, for seeded and computed holders.

use ringsum_math::Csprng;

use super::super::*;
use super::{SECRET_BOUND, committee};

const P: u64 = 257;
const SHARINGS: usize = 2000;
/// Coarse bins per coordinate for the joint law of two shares.
const BINS: usize = 8;

/// The first coefficient of every holder's share, over `SHARINGS`
/// sharings of the constant secret `value` (n = 5, t = 3: holders 1 and 2
/// get seeds, 3 to 5 values).
fn first_coefficients(value: i64, seed: u8) -> Vec<[u32; 5]> {
    let c = committee(P, 5, 3);
    let mut rng = Csprng::from_seed([seed; 32]);
    (0..SHARINGS)
        .map(|_| {
            let dealt = share_secret(&c, &[value], &mut rng).unwrap();
            std::array::from_fn(|h| dealt[h].1.expand().values()[0])
        })
        .collect()
}

fn bin(v: u32) -> usize {
    v as usize * BINS / P as usize
}

/// The probability of each coarse bin under the uniform law on Z_257.
fn bin_probabilities() -> [f64; BINS] {
    let mut counts = [0u32; BINS];
    for v in 0..P as u32 {
        counts[bin(v)] += 1;
    }
    counts.map(|c| f64::from(c) / P as f64)
}

/// Pearson's statistic of `observed` against `probabilities`.
fn chi_square(observed: &[u32], probabilities: &[f64]) -> f64 {
    let total: f64 = observed.iter().map(|&o| f64::from(o)).sum();
    observed
        .iter()
        .zip(probabilities)
        .map(|(&o, &q)| (f64::from(o) - total * q).powi(2) / (total * q))
        .sum()
}

/// Mean plus six standard deviations of a chi-square law with `df`
/// degrees of freedom: generous, and the RNG seeds are fixed anyway.
fn threshold(df: usize) -> f64 {
    df as f64 + 6.0 * (2.0 * df as f64).sqrt()
}

fn joint_histogram(samples: &[[u32; 5]], a: usize, b: usize) -> Vec<u32> {
    let mut counts = vec![0u32; BINS * BINS];
    for s in samples {
        counts[bin(s[a]) * BINS + bin(s[b])] += 1;
    }
    counts
}

#[test]
fn shamir_any_t_minus_1_shares_are_uniform_whatever_the_secret() {
    let zero = first_coefficients(0, 30);
    let high = first_coefficients(SECRET_BOUND, 31);
    let marginal = vec![1.0 / P as f64; P as usize];
    let coarse = bin_probabilities();
    let joint: Vec<f64> = coarse
        .iter()
        .flat_map(|&a| coarse.iter().map(move |&b| a * b))
        .collect();

    for samples in [&zero, &high] {
        // Each holder alone (seeded: 0, 1; computed: 2, 3, 4).
        for h in 0..5 {
            let mut counts = vec![0u32; P as usize];
            for s in samples {
                counts[s[h] as usize] += 1;
            }
            let stat = chi_square(&counts, &marginal);
            assert!(stat < threshold(P as usize - 1), "holder {h}: {stat}");
        }
        // Pairs, i.e. t - 1 = 2 holders: seeded and seeded, seeded and
        // computed, computed and computed.
        for (a, b) in [(0, 1), (0, 2), (1, 4), (2, 3), (3, 4)] {
            let stat = chi_square(&joint_histogram(samples, a, b), &joint);
            assert!(
                stat < threshold(BINS * BINS - 1),
                "holders {a}, {b}: {stat}"
            );
        }
    }

    // The two secrets' laws of a pair, compared with each other.
    for (a, b) in [(0, 1), (1, 2), (2, 4)] {
        let (x, y) = (joint_histogram(&zero, a, b), joint_histogram(&high, a, b));
        let stat: f64 = x
            .iter()
            .zip(&y)
            .filter(|(x, y)| **x + **y > 0)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2) / f64::from(x + y))
            .sum();
        assert!(
            stat < threshold(BINS * BINS - 1),
            "holders {a}, {b}: {stat}"
        );
    }
}

#[test]
fn shamir_uniformity_test_has_power() {
    // t = 3 shares determine the secret: the same statistic on the
    // interpolated value (l_1 y_1 + l_2 y_2 + l_3 y_3 = s) must fail.
    let high = first_coefficients(SECRET_BOUND, 32);
    let f = ShareField::new(P).unwrap();
    // Lagrange weights at 0 for the points 1, 2, 3: 3, -3, 1.
    let weights = [3u32, P as u32 - 3, 1];
    let mut counts = vec![0u32; P as usize];
    for s in &high {
        let v = (0..3).fold(0, |acc, i| f.add(acc, f.mul(weights[i], s[i])));
        counts[v as usize] += 1;
    }
    assert_eq!(counts[SECRET_BOUND as usize], SHARINGS as u32);
    let stat = chi_square(&counts, &vec![1.0 / P as f64; P as usize]);
    assert!(stat > threshold(P as usize - 1));
}
