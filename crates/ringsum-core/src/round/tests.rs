//! Tests of the per-round-key scheme: exact sums, the noise against the
//! validator's bound, precomputation, and refusals.

use proptest::prelude::*;
use rayon::prelude::*;
use ringsum_math::Csprng;
use ringsum_math::encrypt::seeded_decrypt;
use ringsum_math::sample::small_to_poly;

use super::*;
use crate::CoreError;
use crate::model::ModelLayout;
use crate::scheme::Packing;
use crate::update::UpdateShape;

const FEDERATION: [u8; 32] = [0xfe; 32];

fn setup(id: &str) -> (ParameterSet, Packing) {
    let params = ParameterSet::builtin(id).unwrap();
    let packing = Packing::new(&params);
    (params, packing)
}

/// Values that quantize exactly: k / 2^16 with samples = max_weight, so
/// the slot of value k is k and the weight slot is 2^16.
fn exact_values(quanta: &[i64]) -> Vec<f32> {
    quanta.iter().map(|&k| k as f32 / 65536.0).collect()
}

struct Client {
    secret: Vec<i64>,
    update: RoundUpdate,
}

/// Encrypts every client's quanta (in parallel), returning each client's
/// secret coefficients (copied before the secret is consumed) and update.
fn encrypt_all(
    params: &ParameterSet,
    packing: &Packing,
    layout: &ModelLayout,
    context: &RoundContext,
    quanta: &[Vec<i64>],
    seed: u8,
) -> Vec<Client> {
    let max_weight = params.encoding().max_weight;
    quanta
        .par_iter()
        .enumerate()
        .map(|(i, q)| {
            let mut bytes = [seed; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let mut rng = Csprng::from_seed(bytes);
            let secret = RoundSecret::generate(params, &mut rng);
            let coefficients = secret.coefficients().to_vec();
            let update = secret
                .encrypt_update(
                    packing,
                    layout,
                    context,
                    &exact_values(q),
                    max_weight,
                    &mut rng,
                )
                .unwrap();
            Client {
                secret: coefficients,
                update,
            }
        })
        .collect()
}

fn key_sum(clients: &[Client]) -> Vec<i64> {
    let mut sum = vec![0i64; clients.first().map_or(0, |c| c.secret.len())];
    for c in clients {
        for (s, x) in sum.iter_mut().zip(&c.secret) {
            *s += x;
        }
    }
    sum
}

/// The slots an honest sum must decode to: weight sum, the sums, padding.
fn expected_slots(quanta: &[Vec<i64>], capacity_total: usize) -> Vec<i64> {
    let params = quanta.first().map_or(0, Vec::len);
    let mut slots = vec![0i64; capacity_total];
    slots[0] = 65536 * quanta.len() as i64;
    for q in quanta {
        for (slot, &k) in slots[1..=params].iter_mut().zip(q) {
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
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Random layouts (one to three ciphertexts, the last truncated),
    /// 1 to 12 clients with values anywhere in [-clip, clip]: the decoded
    /// slots equal the exact sums of the quantized inputs.
    #[test]
    fn decoded_sums_are_exact(
        sizes in prop::collection::vec(1u64..6000, 1..=3),
        clients in 1usize..=12,
        seed in any::<u8>(),
    ) {
        let (params, packing) = setup("rk128-n4096");
        let layout = ModelLayout::try_new(
            sizes.iter().enumerate().map(|(i, &n)| (format!("t{i}"), vec![n])),
        ).unwrap();
        let count = layout.parameter_count();
        let mut rng = Csprng::from_seed([seed; 32]);
        let quanta: Vec<Vec<i64>> = (0..clients)
            .map(|_| (0..count).map(|_| (rng.next_u64() % 131_073) as i64 - 65536).collect())
            .collect();
        let context = RoundContext::new(&params, FEDERATION, RoundId(seed.into()));
        let all = encrypt_all(&params, &packing, &layout, &context, &quanta, seed);
        let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
        // Half one by one, half in a batch: both paths of the sum.
        let (one_by_one, batch) = all.split_at(clients / 2);
        for c in one_by_one {
            aggregate.try_add(&c.update).unwrap();
        }
        let batch: Vec<RoundUpdate> = batch.iter().map(|c| c.update.clone()).collect();
        aggregate.try_add_all(&batch).unwrap();
        let slots = aggregate.decode_slots(&packing, &layout, &key_sum(&all)).unwrap();
        prop_assert_eq!(slots.to_vec(), expected_slots(&quanta, slot_total(&packing, &layout)));
    }
}

/// max_clients clients all at +clip, then all at -clip: the slots hold the
/// extreme sums (a packing that reduced M mod 2^(K*b) would fail at -clip),
/// and the summed noise stays below the validator's bound, with the spread
/// the Gaussian predicts.
#[test]
fn max_clients_at_both_clips_decode_exactly_within_the_noise_bound() {
    let (params, packing) = setup("rk128-n4096");
    let max_clients = params.encoding().max_clients as usize;
    let layout = ModelLayout::try_new([("w", vec![3000])]).unwrap();
    let context = RoundContext::new(&params, FEDERATION, RoundId(7));
    for clip in [65536i64, -65536] {
        let quanta = vec![vec![clip; 3000]; max_clients];
        let all = encrypt_all(&params, &packing, &layout, &context, &quanta, 9);
        let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
        let updates: Vec<RoundUpdate> = all.iter().map(|c| c.update.clone()).collect();
        aggregate.try_add_all(&updates).unwrap();
        assert!(matches!(
            aggregate.try_add(&updates[0]),
            Err(CoreError::TooManyClients { .. })
        ));
        let keys = key_sum(&all);
        let slots = aggregate.decode_slots(&packing, &layout, &keys).unwrap();
        assert_eq!(
            slots.to_vec(),
            expected_slots(&quanta, slot_total(&packing, &layout))
        );

        // The noise: phase - Δ*M, centred, on the used coefficients.
        let shape = UpdateShape::new(&packing, &layout);
        let used = shape.c0_coefficients(0);
        let bound = params.gaussian().bound().unsigned_abs() * max_clients as u64;
        let key = small_to_poly(params.ring(), &keys, bound).into_ntt();
        let mut a_rows = context.a_rows(0).unwrap();
        let mut phase =
            seeded_decrypt(&aggregate.ciphertexts()[0], used, &key, &mut a_rows).unwrap();
        let columns: Vec<i64> = slots[..packing.slots() * used].to_vec();
        phase.expose_mut().update_residues(|moduli, residues| {
            // Subtract Δ*M: add it to a zero polynomial, then take it away.
            let mut message = vec![0u64; residues.len()];
            packing.add_message(&columns, used, &mut message);
            for ((row, m), message_row) in residues
                .chunks_exact_mut(params.degree())
                .zip(moduli)
                .zip(message.chunks_exact(params.degree()))
            {
                for (x, &y) in row.iter_mut().zip(message_row) {
                    *x = m.sub(*x, y);
                }
            }
        });
        let noise: Vec<f64> = phase
            .expose()
            .to_centered_bigints_vartime()
            .iter()
            .take(used)
            .map(ringsum_math::rns::bigint_to_f64)
            .collect();
        let largest = noise.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        assert!(largest <= bound as f64);
        assert!(largest < f64::from(1u32 << (params.noise_budget().scale_bits - 1)));
        // Standard deviation: sqrt(clients) * the sampler's, within 10%.
        let variance = noise.iter().map(|x| x * x).sum::<f64>() / noise.len() as f64;
        let predicted = max_clients as f64 * params.gaussian().variance();
        assert!(
            (variance / predicted - 1.0).abs() < 0.1,
            "measured variance {variance}, predicted {predicted}"
        );
    }
}

#[test]
fn precomputed_masks_finish_into_the_same_sums() {
    let (params, packing) = setup("rk128-n4096");
    let layout = ModelLayout::try_new([("a", vec![5000]), ("b", vec![9000])]).unwrap();
    let context = RoundContext::new(&params, FEDERATION, RoundId(2));
    let quanta = vec![vec![1234i64; 14000], vec![-4321i64; 14000]];
    let mut rng = Csprng::from_seed([4; 32]);
    let mut keys = vec![0i64; params.degree()];
    let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
    for q in &quanta {
        let secret = RoundSecret::generate(&params, &mut rng);
        for (k, s) in keys.iter_mut().zip(secret.coefficients()) {
            *k += s;
        }
        let pre = secret
            .precompute(&packing, &layout, &context, &mut rng)
            .unwrap();
        let update = pre
            .finish(&packing, &layout, &exact_values(q), 10_000, &mut rng)
            .unwrap();
        aggregate.try_add(&update).unwrap();
    }
    let slots = aggregate.decode_slots(&packing, &layout, &keys).unwrap();
    assert_eq!(
        slots.to_vec(),
        expected_slots(&quanta, slot_total(&packing, &layout))
    );
    let average = aggregate.decode(&packing, &layout, &keys).unwrap();
    assert_eq!(average.clients, 2);
    let expected = (1234.0 - 4321.0) / 2.0 / 65536.0;
    assert!((f64::from(average.average[1][0]) - expected).abs() < 1e-6);
}

#[test]
fn refusals_are_typed_and_leave_the_aggregate_intact() {
    let (params, packing) = setup("rk128-n4096");
    let layout = ModelLayout::try_new([("w", vec![100])]).unwrap();
    let other_layout = ModelLayout::try_new([("w", vec![101])]).unwrap();
    let context = RoundContext::new(&params, FEDERATION, RoundId(1));
    let mut rng = Csprng::from_seed([5; 32]);

    let quanta = vec![vec![7i64; 100]];
    let all = encrypt_all(&params, &packing, &layout, &context, &quanta, 1);
    let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
    aggregate.try_add(&all[0].update).unwrap();
    let before = aggregate.ciphertexts().to_vec();

    // Another round, another layout: refused, nothing added.
    let later = RoundContext::new(&params, FEDERATION, RoundId(2));
    let stale = encrypt_all(&params, &packing, &layout, &later, &quanta, 2);
    assert!(matches!(
        aggregate.try_add(&stale[0].update),
        Err(CoreError::RoundMismatch {
            expected: 1,
            found: 2
        })
    ));
    let foreign = encrypt_all(
        &params,
        &packing,
        &other_layout,
        &context,
        &[vec![1; 101]],
        3,
    );
    assert!(matches!(
        aggregate.try_add_all(&[all[0].update.clone(), foreign[0].update.clone()]),
        Err(CoreError::LayoutMismatch { .. })
    ));
    assert_eq!(aggregate.ciphertexts(), before.as_slice());
    assert_eq!(aggregate.clients(), 1);

    // Key sums: wrong length, out of range, or wrong.
    let keys = key_sum(&all);
    assert!(matches!(
        aggregate.decode_slots(&packing, &layout, &keys[1..]),
        Err(CoreError::CountMismatch { .. })
    ));
    let mut large = keys.clone();
    large[5] = 28;
    assert!(matches!(
        aggregate.decode_slots(&packing, &layout, &large),
        Err(CoreError::KeySumOutOfRange {
            coefficient: 5,
            value: 28,
            bound: 27
        })
    ));
    let mut wrong = keys.clone();
    wrong[0] += if wrong[0] > 0 { -1 } else { 1 };
    assert!(matches!(
        aggregate.decode_slots(&packing, &layout, &wrong),
        Err(CoreError::DecodeOverflow { .. } | CoreError::ImplausibleSum { .. })
    ));
    // Still decodes with the right key sum afterwards.
    assert_eq!(
        aggregate.decode_slots(&packing, &layout, &keys).unwrap()[1],
        7
    );

    // A precomputed update finishes only for its own layout.
    let secret = RoundSecret::generate(&params, &mut rng);
    let pre = secret
        .precompute(&packing, &layout, &context, &mut rng)
        .unwrap();
    assert!(matches!(
        pre.finish(&packing, &other_layout, &[0.0; 101], 1, &mut rng),
        Err(CoreError::LayoutMismatch { .. })
    ));
}

#[test]
fn updates_from_parts_check_shape_and_truncation() {
    let (params, packing) = setup("rk128-n4096");
    let layout = ModelLayout::try_new([("w", vec![100])]).unwrap();
    let context = RoundContext::new(&params, FEDERATION, RoundId(1));
    let all = encrypt_all(&params, &packing, &layout, &context, &[vec![3; 100]], 4);
    let parts = all[0].update.ciphertexts().to_vec();
    let rebuilt =
        RoundUpdate::from_parts(&params, &packing, &layout, RoundId(1), parts.clone()).unwrap();
    assert_eq!(rebuilt, all[0].update);
    assert!(matches!(
        RoundUpdate::from_parts(&params, &packing, &layout, RoundId(1), Vec::new()),
        Err(CoreError::CountMismatch { .. })
    ));
    // A residue past the used coefficients (51 of 4096 here) is refused.
    let mut residues = parts[0].residues().to_vec();
    residues[4000] = 1;
    let tampered = ringsum_math::Poly::try_from_residues(params.ring(), residues).unwrap();
    assert!(matches!(
        RoundUpdate::from_parts(&params, &packing, &layout, RoundId(1), vec![tampered]),
        Err(CoreError::NonZeroTruncation {
            coefficients: 51,
            coefficient: 4000
        })
    ));
}

#[test]
fn the_public_polynomials_depend_on_federation_round_and_index() {
    let (params, _) = setup("rk128-n4096");
    let expand = |federation: [u8; 32], round: u64, index: usize| {
        let context = RoundContext::new(&params, federation, RoundId(round));
        let mut rows = context.a_rows(index).unwrap();
        let mut row = vec![0u64; params.degree()];
        rows.fill_next_row(&mut row);
        row
    };
    let base = expand(FEDERATION, 1, 0);
    assert_eq!(base, expand(FEDERATION, 1, 0));
    assert_ne!(base, expand([0; 32], 1, 0));
    assert_ne!(base, expand(FEDERATION, 2, 0));
    assert_ne!(base, expand(FEDERATION, 1, 1));
}

/// A key sum of a subset of the aggregate's clients (the review's case:
/// a one-parameter model, where the overflow check alone let about one in
/// forty through) is refused, never decoded to a wrong average.
#[test]
fn a_key_sum_of_other_clients_is_refused() {
    let (params, packing) = setup("rk128-n4096");
    let layout = ModelLayout::try_new([("w", vec![1])]).unwrap();
    for trial in 0..200u8 {
        let context = RoundContext::new(&params, FEDERATION, RoundId(u64::from(trial)));
        let all = encrypt_all(
            &params,
            &packing,
            &layout,
            &context,
            &[vec![100], vec![-300]],
            trial,
        );
        let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
        aggregate.try_add(&all[0].update).unwrap();
        aggregate.try_add(&all[1].update).unwrap();
        let outcome = aggregate.decode(&packing, &layout, &all[0].secret);
        assert!(
            matches!(
                outcome,
                Err(CoreError::DecodeOverflow { .. } | CoreError::ImplausibleSum { .. })
            ),
            "trial {trial}: {outcome:?}"
        );
    }
}
