//! Combining: exact sums, detection and correction of lying holders, and
//! the refusals.

use proptest::prelude::*;
use ringsum_math::Csprng;

use super::super::*;
use super::{Dealt, SECRET_BOUND, answers, committee, deal, exact_sum, field, ids};
use crate::error::ThresholdError;
use crate::holder_id::HolderId;

/// Shifts one coefficient of an answer by `delta` mod p.
fn lie_at(answer: &mut HolderAnswer, coefficient: usize, delta: u32) {
    let f = answer.field();
    let values = answer.values_mut();
    values[coefficient] = f.add(values[coefficient], delta);
}

/// Replaces every coefficient of an answer by a random element.
fn lie_everywhere(answer: &mut HolderAnswer, rng: &mut Csprng) {
    let p = answer.field().value();
    for v in answer.values_mut().iter_mut() {
        *v = (rng.next_u64() % p) as u32;
    }
}

/// n holders, threshold t, `clients` clients with random secrets of
/// `degree` coefficients in [-B_s, B_s]: the committee, the dealt messages
/// and the exact sum.
fn setup(
    n: u32,
    t: u32,
    clients: usize,
    degree: usize,
    seed: u8,
) -> (ShareCommittee, Dealt, Vec<i64>) {
    let mut rng = Csprng::from_seed([seed; 32]);
    let c = committee(65521, n, t);
    let secrets: Vec<Vec<i64>> = (0..clients)
        .map(|_| {
            (0..degree)
                .map(|_| (rng.next_u64() % 55) as i64 - SECRET_BOUND)
                .collect()
        })
        .collect();
    let dealt = deal(&c, &secrets, &mut rng);
    (c, dealt, exact_sum(&secrets))
}

fn bound(clients: usize) -> u64 {
    clients as u64 * SECRET_BOUND as u64
}

fn secret_strategy(degree: usize) -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        proptest::collection::vec(-SECRET_BOUND..=SECRET_BOUND, degree),
        Just(vec![SECRET_BOUND; degree]),
        Just(vec![-SECRET_BOUND; degree]),
    ]
}

/// (n, t, answering holders, secrets, rng seed) with 2t > n, at least t
/// answering holders, 1 to 20 clients and 1 to 8 coefficients.
fn combine_case() -> impl Strategy<Value = (u32, u32, Vec<HolderId>, Vec<Vec<i64>>, [u8; 32])> {
    (1u32..=9, 1usize..=8, 1usize..=20).prop_flat_map(|(n, degree, clients)| {
        ((n / 2 + 1)..=n).prop_flat_map(move |t| {
            (
                Just(n),
                Just(t),
                proptest::sample::subsequence(ids(n), (t as usize)..=(n as usize)),
                proptest::collection::vec(secret_strategy(degree), clients),
                any::<[u8; 32]>(),
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn shamir_combine_gives_the_exact_sum((n, t, subset, secrets, seed) in combine_case()) {
        let mut rng = Csprng::from_seed(seed);
        let c = committee(65521, n, t);
        let degree = secrets[0].len();
        let dealt = deal(&c, &secrets, &mut rng);
        let answers = answers(&c, &dealt, &subset, degree);
        let sum = combine_answers(&c, &answers, degree, bound(secrets.len())).unwrap();
        let expected = exact_sum(&secrets);
        prop_assert_eq!(sum.coefficients(), expected.as_slice());
        prop_assert_eq!(sum.used(), subset.as_slice());
        prop_assert!(sum.liars().is_empty());
    }
}

#[test]
fn shamir_1000_clients_at_the_bound_lift_exactly() {
    // 1000 clients at |s_j| = B_s = 27: the sum reaches +-27000, and
    // 2 * 27000 < 65521, so the centred lift is exact.
    const CLIENTS: i64 = 1000;
    const { assert!(2 * CLIENTS * SECRET_BOUND < 65521) };
    let mut rng = Csprng::from_seed([10; 32]);
    let c = committee(65521, 3, 2);
    let secret = vec![SECRET_BOUND, -SECRET_BOUND, SECRET_BOUND, -SECRET_BOUND];
    let secrets = vec![secret; CLIENTS as usize];
    let dealt = deal(&c, &secrets, &mut rng);
    let bound = CLIENTS as u64 * SECRET_BOUND as u64;
    for subset in [ids(3), vec![HolderId(1), HolderId(3)]] {
        let answers = answers(&c, &dealt, &subset, 4);
        let sum = combine_answers(&c, &answers, 4, bound).unwrap();
        assert_eq!(sum.coefficients(), &[27000, -27000, 27000, -27000]);
        // One less and the bound check refuses.
        assert!(matches!(
            combine_answers(&c, &answers, 4, bound - 1),
            Err(ThresholdError::KeySumOutOfBound {
                coefficient: 0,
                bound: 26999
            })
        ));
    }
}

#[test]
fn shamir_one_liar_among_t_plus_1_is_detected() {
    let (c, dealt, _) = setup(5, 3, 3, 32, 11);
    let mut rng = Csprng::from_seed([12; 32]);
    let subset = ids(4);
    for liar in 0..4 {
        for coefficient in [0, 17, 31] {
            let mut answers = answers(&c, &dealt, &subset, 32);
            lie_at(&mut answers[liar], coefficient, 1);
            let err = combine_answers(&c, &answers, 32, bound(3)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ThresholdError::InconsistentAnswers { coefficient: found, answers: 4, threshold: 3 }
                        if found == coefficient
                ),
                "{err}"
            );
        }
        let mut answers = answers(&c, &dealt, &subset, 32);
        lie_everywhere(&mut answers[liar], &mut rng);
        assert!(matches!(
            combine_answers(&c, &answers, 32, bound(3)),
            Err(ThresholdError::InconsistentAnswers { coefficient: 0, .. })
        ));
    }
}

#[test]
fn shamir_one_liar_among_t_plus_2_is_corrected_and_named() {
    let (c, dealt, sum) = setup(5, 3, 4, 32, 13);
    let mut rng = Csprng::from_seed([14; 32]);
    for liar in ids(5) {
        for everywhere in [false, true] {
            let mut answers = answers(&c, &dealt, &ids(5), 32);
            let index = (liar.0 - 1) as usize;
            if everywhere {
                lie_everywhere(&mut answers[index], &mut rng);
            } else {
                lie_at(&mut answers[index], 31, 1);
            }
            let result = combine_answers(&c, &answers, 32, bound(4)).unwrap();
            assert_eq!(result.coefficients(), sum.as_slice());
            assert_eq!(result.liars(), &[liar]);
            let honest: Vec<HolderId> = ids(5).into_iter().filter(|&h| h != liar).collect();
            assert_eq!(result.used(), honest.as_slice());
        }
    }
}

#[test]
fn shamir_two_liars_among_t_plus_4_are_corrected_and_named() {
    let (c, dealt, sum) = setup(9, 5, 3, 24, 15);
    let mut rng = Csprng::from_seed([16; 32]);
    for (a, b) in [(1, 2), (1, 9), (8, 9), (3, 6), (5, 6)] {
        for pattern in 0..3 {
            let mut answers = answers(&c, &dealt, &ids(9), 24);
            let (ia, ib) = ((a - 1) as usize, (b - 1) as usize);
            match pattern {
                // Different single coefficients.
                0 => {
                    lie_at(&mut answers[ia], 3, 1);
                    lie_at(&mut answers[ib], 20, 65520);
                }
                // The same coefficient.
                1 => {
                    lie_at(&mut answers[ia], 7, 5);
                    lie_at(&mut answers[ib], 7, 9);
                }
                _ => {
                    lie_everywhere(&mut answers[ia], &mut rng);
                    lie_everywhere(&mut answers[ib], &mut rng);
                }
            }
            let result = combine_answers(&c, &answers, 24, bound(3)).unwrap();
            assert_eq!(result.coefficients(), sum.as_slice(), "{a} {b} {pattern}");
            assert_eq!(result.liars(), &[HolderId(a), HolderId(b)]);
            assert_eq!(result.used().len(), 7);
        }
    }
}

#[test]
fn shamir_more_liars_than_correctable_is_an_error_naming_nobody() {
    // t + 2 answers correct one liar, not two.
    let (c, dealt, _) = setup(5, 3, 2, 16, 17);
    let mut rng = Csprng::from_seed([18; 32]);
    let mut five = answers(&c, &dealt, &ids(5), 16);
    lie_everywhere(&mut five[1], &mut rng);
    lie_everywhere(&mut five[3], &mut rng);
    assert!(matches!(
        combine_answers(&c, &five, 16, bound(2)),
        Err(ThresholdError::InconsistentAnswers {
            answers: 5,
            threshold: 3,
            ..
        })
    ));
    // t + 3 answers guarantee one correction: two holders lying on every
    // coefficient are refused.
    let (c, dealt, sum) = setup(9, 5, 2, 16, 19);
    let subset = ids(8);
    let mut both = answers(&c, &dealt, &subset, 16);
    lie_everywhere(&mut both[0], &mut rng);
    lie_everywhere(&mut both[6], &mut rng);
    assert!(matches!(
        combine_answers(&c, &both, 16, bound(2)),
        Err(ThresholdError::InconsistentAnswers {
            answers: 8,
            threshold: 5,
            ..
        })
    ));
    // Lies that never meet on one coefficient stay within reach of the
    // coefficient-wise decoding, one holder at a time.
    let mut apart = answers(&c, &dealt, &subset, 16);
    lie_at(&mut apart[6], 2, 1);
    lie_at(&mut apart[0], 9, 1);
    let result = combine_answers(&c, &apart, 16, bound(2)).unwrap();
    assert_eq!(result.coefficients(), sum.as_slice());
    assert_eq!(result.liars(), &[HolderId(1), HolderId(7)]);
}

#[test]
fn shamir_exactly_t_answers_cannot_detect_a_small_lie() {
    let (c, dealt, sum) = setup(5, 3, 2, 16, 20);
    let f = c.field();
    let subset = [HolderId(1), HolderId(2), HolderId(4)];
    // A lie of l_4^-1 on holder 4's coefficient 5 moves the result by
    // exactly 1 (l_4 its Lagrange weight at 0): it fits the bound and
    // nothing can tell.
    let weight = [1u32, 2].iter().fold(1, |acc, &xj| {
        f.mul(acc, f.mul(xj, f.inv_vartime(f.sub(xj, 4)).unwrap()))
    });
    let mut answers = answers(&c, &dealt, &subset, 16);
    lie_at(&mut answers[2], 5, f.inv_vartime(weight).unwrap());
    let result = combine_answers(&c, &answers, 16, bound(2) + 1).unwrap();
    let mut expected = sum.clone();
    expected[5] += 1;
    assert_eq!(result.coefficients(), expected.as_slice());
    // A random lie almost surely leaves the bound: refused, not guessed.
    let mut rng = Csprng::from_seed([21; 32]);
    lie_everywhere(&mut answers[0], &mut rng);
    assert!(matches!(
        combine_answers(&c, &answers, 16, bound(2)),
        Err(ThresholdError::KeySumOutOfBound { .. })
    ));
}

#[test]
fn shamir_too_few_answers_are_refused() {
    let (c, dealt, _) = setup(5, 3, 1, 8, 22);
    for count in 0..3 {
        let answers = answers(&c, &dealt, &ids(count), 8);
        assert!(matches!(
            combine_answers(&c, &answers, 8, bound(1)),
            Err(ThresholdError::TooFewAnswers { needed: 3, found }) if found == count as usize
        ));
    }
}

#[test]
fn shamir_answers_that_do_not_belong_are_refused() {
    let (c, dealt, _) = setup(5, 3, 1, 8, 23);
    let good = answers(&c, &dealt, &ids(5), 8);
    let f = c.field();

    let mut twice = good.clone();
    twice[4] = good[1].clone();
    assert!(matches!(
        combine_answers(&c, &twice, 8, 27),
        Err(ThresholdError::DuplicateHolder {
            holder: HolderId(2),
            ..
        })
    ));

    let mut stranger = good.clone();
    stranger[4] = HolderAnswer::try_new(f, HolderId(6), vec![0; 8]).unwrap();
    assert!(matches!(
        combine_answers(&c, &stranger, 8, 27),
        Err(ThresholdError::NotShareHolder {
            holder: HolderId(6)
        })
    ));

    let mut short = good.clone();
    short[0] = HolderAnswer::try_new(f, HolderId(1), vec![0; 7]).unwrap();
    assert!(matches!(
        combine_answers(&c, &short, 8, 27),
        Err(ThresholdError::ShareLengthMismatch {
            expected: 8,
            found: 7,
            ..
        })
    ));
    assert!(matches!(
        combine_answers(&c, &good, 9, 27),
        Err(ThresholdError::ShareLengthMismatch {
            expected: 9,
            found: 8,
            ..
        })
    ));

    let mut other_field = good.clone();
    other_field[0] = HolderAnswer::try_new(field(257), HolderId(1), vec![0; 8]).unwrap();
    assert!(matches!(
        combine_answers(&c, &other_field, 8, 27),
        Err(ThresholdError::ShareFieldMismatch {
            expected: 65521,
            found: 257,
            ..
        })
    ));

    assert!(matches!(
        combine_answers(&c, &good, 8, 32761),
        Err(ThresholdError::LiftBoundTooLarge {
            bound: 32761,
            modulus: 65521
        })
    ));
    assert!(combine_answers(&c, &good, 8, 32760).is_ok());
    assert!(matches!(
        combine_answers(&c, &good, 0, 27),
        Err(ThresholdError::InvalidShareDegree { degree: 0, .. })
    ));
}

#[test]
fn shamir_answers_are_validated_on_construction() {
    let f = field(257);
    assert!(matches!(
        HolderAnswer::try_new(f, HolderId(1), vec![0, 257]),
        Err(ThresholdError::ShareElementOutOfRange {
            index: 1,
            modulus: 257,
            ..
        })
    ));
    assert!(matches!(
        HolderAnswer::try_new(f, HolderId(0), vec![0]),
        Err(ThresholdError::InvalidHolderId { .. })
    ));
    assert!(matches!(
        HolderAnswer::try_new(f, HolderId(1), vec![]),
        Err(ThresholdError::InvalidShareDegree { .. })
    ));
    let answer = HolderAnswer::try_new(f, HolderId(256), vec![256, 0]).unwrap();
    assert_eq!(answer.values(), &[256, 0]);
}
