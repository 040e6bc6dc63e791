//! The per-round-key scheme end to end: clients encrypt under fresh
//! secrets and Shamir-share them, the coordinator sums the updates of a
//! random set S, any t (or more) of the n holders answer with the sum of
//! their shares of S's secrets, and the combined key sum decodes S's
//! updates exactly; lying holders are caught.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use proptest::prelude::*;
use ringsum::core::ParameterSet;
use ringsum::core::model::ModelLayout;
use ringsum::core::round::{RoundAggregate, RoundContext, RoundSecret, RoundUpdate};
use ringsum::core::scheme::Packing;
use ringsum::core::update::{RoundId, UpdateShape};
use ringsum::math::Csprng;
use ringsum::threshold::shamir::{
    AnswerKey, HolderAnswer, KeySumAccumulator, ShareCommittee, ShareField, combine_answers,
    decode_client_share, encode_client_share, share_secret,
};
use ringsum::threshold::{HolderId, ThresholdError};

const SET: &str = "rk128-n4096";

struct Fixture {
    params: ParameterSet,
    packing: Packing,
    field: ShareField,
}

fn fixture() -> Fixture {
    let params = ParameterSet::builtin(SET).unwrap();
    let packing = Packing::new(&params);
    let field = ShareField::new(params.shares().field_prime).unwrap();
    Fixture {
        params,
        packing,
        field,
    }
}

/// One client's round: its update and, per holder, the bytes of its share.
struct ClientRound {
    update: RoundUpdate,
    shares: Vec<(HolderId, Vec<u8>)>,
}

fn client_round(
    f: &Fixture,
    committee: &ShareCommittee,
    layout: &ModelLayout,
    context: &RoundContext,
    quanta: &[i64],
    rng: &mut Csprng,
) -> ClientRound {
    let secret = RoundSecret::generate(&f.params, rng);
    let key = AnswerKey::random(rng);
    let shares = share_secret(committee, secret.coefficients(), rng)
        .unwrap()
        .into_iter()
        .map(|(holder, share)| (holder, encode_client_share(&key, &share).to_vec()))
        .collect();
    let values: Vec<f32> = quanta.iter().map(|&k| k as f32 / 65536.0).collect();
    let max_weight = f.params.encoding().max_weight;
    let update = secret
        .encrypt_update(&f.packing, layout, context, &values, max_weight, rng)
        .unwrap();
    ClientRound { update, shares }
}

/// Holder `holder`'s answer for the clients `rounds`, from the bytes it
/// received (parsed as a holder would).
fn answer(
    f: &Fixture,
    committee: &ShareCommittee,
    holder: HolderId,
    rounds: &[&ClientRound],
) -> HolderAnswer {
    let degree = f.params.degree();
    let mut sum = KeySumAccumulator::new(f.field, degree, holder).unwrap();
    for round in rounds {
        let (_, bytes) = round.shares.iter().find(|(h, _)| *h == holder).unwrap();
        let (key, share) = decode_client_share(f.field, degree, bytes).unwrap();
        sum.add(&share.expand(), &key).unwrap();
    }
    sum.finish(committee, b"round 2, the set").unwrap()
}

/// Picks `size` distinct items of `0..n` from `choice`.
fn pick(n: usize, size: usize, mut choice: u64) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(size);
    for _ in 0..size.min(n) {
        let i = (choice % pool.len() as u64) as usize;
        choice = (choice / pool.len() as u64) ^ choice.rotate_left(17);
        out.push(pool.swap_remove(i));
    }
    out.sort_unstable();
    out
}

fn expected_slots(quanta: &[&Vec<i64>], total: usize) -> Vec<i64> {
    let mut slots = vec![0i64; total];
    slots[0] = 65536 * quanta.len() as i64;
    for q in quanta {
        for (slot, &k) in slots[1..].iter_mut().zip(q.iter()) {
            *slot += k;
        }
    }
    slots
}

fn slot_total(packing: &Packing, layout: &ModelLayout) -> usize {
    let shape = UpdateShape::new(packing, layout);
    (0..shape.ciphertexts())
        .map(|i| shape.c0_coefficients(i) * packing.slots())
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Random layouts, committees (2t > n), client counts, sets S and
    /// answering holders (t to n of them): S's updates decode exactly.
    #[test]
    fn any_set_and_any_quorum_decode_the_exact_sum(
        size in 1u64..9000,
        n in 1u32..=7,
        t_offset in 0u32..4,
        clients in 1usize..=8,
        extreme in 0u8..3,
        choice in any::<u64>(),
    ) {
        let f = fixture();
        let t = (n / 2 + 1 + t_offset).min(n);
        let points: Vec<HolderId> = (1..=n).map(HolderId).collect();
        let committee = ShareCommittee::new(f.field, &points, t, 64).unwrap();
        let layout = ModelLayout::try_new([("w", vec![size])]).unwrap();
        let context = RoundContext::new(&f.params, [9; 32], RoundId(choice % 1000));
        let mut rng = Csprng::from_seed([(choice % 251) as u8; 32]);
        let quanta: Vec<Vec<i64>> = (0..clients)
            .map(|_| {
                (0..size)
                    .map(|_| match extreme {
                        0 => 65536,
                        1 => -65536,
                        _ => (rng.next_u64() % 131_073) as i64 - 65536,
                    })
                    .collect()
            })
            .collect();
        let rounds: Vec<ClientRound> = quanta
            .iter()
            .map(|q| client_round(&f, &committee, &layout, &context, q, &mut rng))
            .collect();
        // The set S: a random non-empty subset of the clients.
        let members = pick(clients, 1 + (choice as usize % clients), choice);
        let mut aggregate = RoundAggregate::new(&f.params, &f.packing, &layout, &context).unwrap();
        for &i in &members {
            aggregate.try_add(&rounds[i].update).unwrap();
        }
        let in_set: Vec<&ClientRound> = members.iter().map(|&i| &rounds[i]).collect();
        // Any t..=n holders answer.
        let answering = pick(n as usize, t as usize + (choice >> 7) as usize % (n - t + 1) as usize, choice >> 3);
        let answers: Vec<HolderAnswer> = answering
            .iter()
            .map(|&h| answer(&f, &committee, points[h], &in_set))
            .collect();
        let bound = members.len() as u64 * f.params.gaussian().bound().unsigned_abs();
        let key_sum = combine_answers(&committee, &answers, f.params.degree(), bound).unwrap();
        prop_assert!(key_sum.liars().is_empty());
        let slots = aggregate.decode_slots(&f.packing, &layout, key_sum.coefficients()).unwrap();
        let expected: Vec<&Vec<i64>> = members.iter().map(|&i| &quanta[i]).collect();
        prop_assert_eq!(slots.to_vec(), expected_slots(&expected, slot_total(&f.packing, &layout)));
    }
}

/// A round with 3 clients and holders 1..=n; returns the answers of every
/// holder for all three, with the aggregate and the expected slots.
fn honest_round(
    n: u32,
    t: u32,
) -> (
    Fixture,
    ShareCommittee,
    RoundAggregate,
    ModelLayout,
    Vec<HolderAnswer>,
    Vec<i64>,
) {
    let f = fixture();
    let points: Vec<HolderId> = (1..=n).map(HolderId).collect();
    let committee = ShareCommittee::new(f.field, &points, t, 64).unwrap();
    let layout = ModelLayout::try_new([("w", vec![500])]).unwrap();
    let context = RoundContext::new(&f.params, [4; 32], RoundId(2));
    let mut rng = Csprng::from_seed([8; 32]);
    let quanta: Vec<Vec<i64>> = (0..3).map(|c| vec![100 * (c + 1); 500]).collect();
    let rounds: Vec<ClientRound> = quanta
        .iter()
        .map(|q| client_round(&f, &committee, &layout, &context, q, &mut rng))
        .collect();
    let mut aggregate = RoundAggregate::new(&f.params, &f.packing, &layout, &context).unwrap();
    for r in &rounds {
        aggregate.try_add(&r.update).unwrap();
    }
    let all: Vec<&ClientRound> = rounds.iter().collect();
    let answers = points
        .iter()
        .map(|&h| answer(&f, &committee, h, &all))
        .collect();
    let expected = expected_slots(
        &quanta.iter().collect::<Vec<_>>(),
        slot_total(&f.packing, &layout),
    );
    (f, committee, aggregate, layout, answers, expected)
}

/// An answer with one coefficient moved by `delta` (mod p).
fn altered(f: &Fixture, answer: &HolderAnswer, coefficient: usize, delta: u32) -> HolderAnswer {
    let mut values = answer.values().to_vec();
    let p = f.field.value() as u32;
    values[coefficient] = (values[coefficient] + delta) % p;
    HolderAnswer::try_new(f.field, answer.holder(), values).unwrap()
}

#[test]
fn a_lying_holder_is_detected_with_t_plus_one_and_corrected_with_t_plus_two() {
    let (f, committee, aggregate, layout, answers, expected) = honest_round(5, 3);
    let degree = f.params.degree();
    let bound = 3 * f.params.gaussian().bound().unsigned_abs();
    // Holder 2 alters a single coefficient by one.
    let mut lied = answers.clone();
    lied[1] = altered(&f, &answers[1], 1234, 1);

    // t + 1 = 4 answers: detected, nobody guessed.
    let four = &lied[..4];
    assert!(matches!(
        combine_answers(&committee, four, degree, bound),
        Err(ThresholdError::InconsistentAnswers { .. })
    ));
    // t + 2 = 5 answers: corrected, holder 2 named, the round decodes.
    let key_sum = combine_answers(&committee, &lied, degree, bound).unwrap();
    assert_eq!(key_sum.liars(), &[HolderId(2)]);
    let slots = aggregate
        .decode_slots(&f.packing, &layout, key_sum.coefficients())
        .unwrap();
    assert_eq!(slots.to_vec(), expected);

    // Fewer than t answers: a typed error, never a guess.
    assert!(matches!(
        combine_answers(&committee, &answers[..2], degree, bound),
        Err(ThresholdError::TooFewAnswers {
            needed: 3,
            found: 2
        })
    ));
}

#[test]
fn two_liars_among_seven_holders_with_threshold_four() {
    let (f, committee, aggregate, layout, answers, expected) = honest_round(7, 4);
    let degree = f.params.degree();
    let bound = 3 * f.params.gaussian().bound().unsigned_abs();
    // 7 answers with t = 4 correct one wrong point per coefficient. Two
    // liars on the same coefficient are detected, not corrected: an error
    // that names nobody.
    let mut lied = answers.clone();
    lied[0] = altered(&f, &answers[0], 7, 5);
    lied[5] = altered(&f, &answers[5], 7, 60_000);
    assert!(matches!(
        combine_answers(&committee, &lied, degree, bound),
        Err(ThresholdError::InconsistentAnswers { .. })
    ));
    // On different coefficients each coefficient has one wrong point:
    // both liars are found, named, and left out.
    lied[5] = altered(&f, &answers[5], 4000, 60_000);
    let key_sum = combine_answers(&committee, &lied, degree, bound).unwrap();
    assert_eq!(key_sum.liars(), &[HolderId(1), HolderId(6)]);
    let slots = aggregate
        .decode_slots(&f.packing, &layout, key_sum.coefficients())
        .unwrap();
    assert_eq!(slots.to_vec(), expected);
}

#[test]
fn a_lie_among_exactly_t_answers_fails_the_decoding_instead_of_passing() {
    let (f, committee, aggregate, layout, answers, _) = honest_round(5, 3);
    let degree = f.params.degree();
    let bound = 3 * f.params.gaussian().bound().unsigned_abs();
    // With exactly t answers a lie cannot be seen in the answers; it shows
    // as an out-of-range key sum or a coefficient that does not decode.
    let lied = vec![
        answers[0].clone(),
        altered(&f, &answers[1], 10, 999),
        answers[2].clone(),
    ];
    let outcome = combine_answers(&committee, &lied, degree, bound)
        .map_err(|e| e.to_string())
        .and_then(|key_sum| {
            aggregate
                .decode_slots(&f.packing, &layout, key_sum.coefficients())
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    assert!(outcome.is_err());
}
