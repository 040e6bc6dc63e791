//! Encrypted FedAvg end to end: quantize, pack, encrypt, aggregate, decrypt,
//! decode; against plaintext arithmetic.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss
)]

use proptest::prelude::*;
use ringsum::core::model::{ModelLayout, quantize};
use ringsum::core::scheme::{Packing, PublicKey, SecretKey, measure_noise_bits_vartime};
use ringsum::core::update::{
    Aggregate, EncryptedUpdate, RoundId, UpdateShape, decrypt_aggregate, encrypt_update,
};
use ringsum::core::{CoreError, ParameterSet};
use ringsum::math::{CrsSeed, Csprng};

struct Setup {
    params: ParameterSet,
    packing: Packing,
    sk: SecretKey,
    pk: PublicKey,
    rng: Csprng,
}

fn setup(id: &str, seed: u8) -> Setup {
    let params = ParameterSet::builtin(id).unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([seed; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk =
        PublicKey::generate(&params, &sk, &CrsSeed::new([seed ^ 0x55; 32]), 0, &mut rng).unwrap();
    Setup {
        params,
        packing,
        sk,
        pk,
        rng,
    }
}

fn layout() -> ModelLayout {
    ModelLayout::try_new([
        ("dense.weight", vec![30, 20]),
        ("dense.bias", vec![20]),
        ("head", vec![5000]),
    ])
    .unwrap()
}

fn encrypt(
    s: &mut Setup,
    layout: &ModelLayout,
    values: &[f32],
    samples: u64,
    round: u64,
) -> EncryptedUpdate {
    encrypt_update(
        &s.params,
        &s.packing,
        &s.pk,
        layout,
        values,
        samples,
        RoundId(round),
        &mut s.rng,
    )
    .unwrap()
}

/// Weighted FedAvg in f64 of the clipped inputs.
fn plaintext_fedavg(clients: &[(Vec<f32>, u64)], clip: f64) -> Vec<f64> {
    let total: f64 = clients.iter().map(|(_, w)| *w as f64).sum();
    (0..clients[0].0.len())
        .map(|i| {
            clients
                .iter()
                .map(|(v, w)| f64::from(v[i]).clamp(-clip, clip) * *w as f64)
                .sum::<f64>()
                / total
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// Random updates from 1 to 24 clients with random weights: the decoded
    /// average is within the stated quantization bound of plaintext FedAvg.
    #[test]
    fn weighted_average_is_within_the_quantization_bound(
        clients in 1usize..24,
        seed in any::<u8>(),
        weights in proptest::collection::vec(100u64..10_000, 24),
    ) {
        let mut s = setup("pq128-n8192", seed);
        // 20,000 parameters span slots 0 to 2 of the coefficients (N = 8192);
        // inputs in [-2, 2] exercise the clipping to [-1, 1].
        let layout = ModelLayout::try_new([("dense.weight", vec![100, 150]), ("bias", vec![5000])]).unwrap();
        let n = layout.parameter_count();
        let inputs: Vec<(Vec<f32>, u64)> = (0..clients)
            .map(|c| {
                let values = (0..n).map(|i| (((i * 7919 + c * 104_729 + usize::from(seed)) % 4001) as f32 / 1000.0) - 2.0).collect();
                (values, weights[c])
            })
            .collect();
        let mut aggregate = Aggregate::new(&s.params, &s.packing, &layout, RoundId(1));
        for (values, w) in &inputs {
            let update = encrypt(&mut s, &layout, values, *w, 1);
            aggregate.try_add(&update).unwrap();
        }
        let result = decrypt_aggregate(&s.params, &s.packing, &s.sk, &layout, &aggregate).unwrap();
        let expected = plaintext_fedavg(&inputs, s.params.encoding().clip);
        let flat: Vec<f32> = result.average.concat();
        prop_assert_eq!(flat.len(), n);
        prop_assert!(result.error_bound.is_finite() && result.error_bound < 1e-2, "bound {}", result.error_bound);
        for (got, want) in flat.iter().zip(&expected) {
            prop_assert!((f64::from(*got) - want).abs() <= result.error_bound + 1e-12, "{} vs {} (bound {})", got, want, result.error_bound);
        }
        prop_assert_eq!(result.clients, clients as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Models of any size, so that the last ciphertext's c0 is truncated to
    /// anything from 1 coefficient to all N: every update goes through the
    /// wire (the receiver derives the truncation from the layout) and the
    /// decoded sum is exact. Weight 1 and values on the quantization grid,
    /// so nothing is rounded and the average is known exactly.
    #[test]
    fn truncated_updates_travel_and_sum_exactly(
        parameters in 1usize..70_000,
        clients in 1usize..4,
        seed in any::<u8>(),
    ) {
        let mut s = setup("pq128-n8192", seed);
        let layout = ModelLayout::try_new([("w", vec![parameters as u64])]).unwrap();
        let shape = UpdateShape::new(&s.packing, &layout);
        let max_weight = s.params.encoding().max_weight;
        let quantum = 2f32.powi(-(s.params.encoding().fraction_bits as i32));
        let inputs: Vec<Vec<f32>> = (0..clients)
            .map(|c| {
                (0..parameters)
                    .map(|i| ((i * 31 + c * 17 + usize::from(seed)) % 4001) as f32 * quantum * 16.0 - 2000.0 * quantum * 16.0)
                    .collect()
            })
            .collect();
        let mut aggregate = Aggregate::new(&s.params, &s.packing, &layout, RoundId(4));
        for values in &inputs {
            let update = encrypt(&mut s, &layout, values, max_weight, 4);
            let last = shape.ciphertexts() - 1;
            prop_assert_eq!(update.ciphertexts[last].c0_coefficients(), shape.c0_coefficients(last));
            let bytes = ringsum::wire::encode_update(&update);
            let received = ringsum::wire::decode_update(&s.params, &bytes, &shape).unwrap();
            prop_assert_eq!(&received, &update);
            aggregate.try_add(&received).unwrap();
        }
        let result = decrypt_aggregate(&s.params, &s.packing, &s.sk, &layout, &aggregate).unwrap();
        prop_assert_eq!(result.weight_sum, (clients as i64) << s.params.encoding().fraction_bits);
        for (i, got) in result.average.concat().iter().enumerate() {
            let sum: f64 = inputs.iter().map(|v| f64::from(v[i])).sum();
            prop_assert_eq!(f64::from(*got), (sum / clients as f64) as f32 as f64, "parameter {}", i);
        }
    }
}

/// With weight 1 (samples = max_weight) and values on the quantization grid
/// nothing is rounded, so the decrypted sum is exactly the sum of inputs.
#[test]
fn grid_values_sum_exactly() {
    let mut s = setup("pq128-n4096", 3);
    let layout = layout();
    let n = layout.parameter_count();
    let max_weight = s.params.encoding().max_weight;
    let quantum = 2f32.powi(-(s.params.encoding().fraction_bits as i32));
    let clients: Vec<Vec<f32>> = (0..7)
        .map(|c| {
            (0..n)
                .map(|i| ((i as i64 * 31 + c * 17) % 4001 - 2000) as f32 * quantum * 16.0)
                .collect()
        })
        .collect();
    let updates: Vec<EncryptedUpdate> = clients
        .iter()
        .map(|v| encrypt(&mut s, &layout, v, max_weight, 9))
        .collect();
    let mut aggregate = Aggregate::new(&s.params, &s.packing, &layout, RoundId(9));
    aggregate.try_add_all(&updates).unwrap();
    let result = decrypt_aggregate(&s.params, &s.packing, &s.sk, &layout, &aggregate).unwrap();
    assert_eq!(result.weight_sum, 7 << s.params.encoding().fraction_bits);
    for (i, got) in result.average.concat().iter().enumerate() {
        let sum: f64 = clients.iter().map(|v| f64::from(v[i])).sum();
        assert_eq!(f64::from(*got), (sum / 7.0) as f32 as f64, "parameter {i}");
    }
}

/// max_clients clients all sending +c (then -c) with weight 1, filling every
/// slot of the ciphertext (all K slots of every coefficient, the top one
/// included) to n * 2^f: decodes exactly. The plaintext-level tests in
/// ringsum-core push slots to the validator's n * (2^f + 1) edge.
#[test]
fn max_clients_at_the_clip_decode_without_overflow() {
    for id in ["pq128-n4096", "pq128-n16384"] {
        let mut s = setup(id, 4);
        // One ciphertext, every slot used: the weight plus capacity - 1 values.
        let count = s.packing.capacity() - 1;
        let layout = ModelLayout::try_new([("w", vec![count as u64])]).unwrap();
        let encoding = s.params.encoding().clone();
        for sign in [1.0f32, -1.0] {
            let values = vec![sign * 5.0; count]; // clipped to ±c
            let update = encrypt(&mut s, &layout, &values, encoding.max_weight, 2);
            let mut aggregate = Aggregate::new(&s.params, &s.packing, &layout, RoundId(2));
            // Adding one update max_clients times gives the same slot sums
            // (and a larger worst-case noise) as max_clients distinct ones.
            for _ in 0..encoding.max_clients {
                aggregate.try_add(&update).unwrap();
            }
            assert!(matches!(
                aggregate.try_add(&update),
                Err(CoreError::TooManyClients { .. })
            ));
            let result =
                decrypt_aggregate(&s.params, &s.packing, &s.sk, &layout, &aggregate).unwrap();
            assert_eq!(
                result.weight_sum,
                (encoding.max_clients as i64) << encoding.fraction_bits
            );
            assert!(
                result
                    .average
                    .concat()
                    .iter()
                    .all(|&v| v == sign * encoding.clip as f32),
                "{id}"
            );
        }
    }
}

/// The noise of a sum of max_clients distinct fresh encryptions, measured,
/// against the proven bound the validator assumes.
#[test]
fn measured_noise_at_max_clients_is_far_below_the_bound() {
    let s = setup("pq128-n8192", 6);
    let clients = s.params.encoding().max_clients as usize;
    let zero = ringsum::core::scheme::Plaintext::try_new(&s.params, vec![0; s.packing.capacity()])
        .unwrap();
    let mut rng = Csprng::from_seed([7; 32]);
    let cts: Vec<_> = (0..clients)
        .map(|_| {
            ringsum::core::scheme::encrypt(&s.params, &s.packing, &s.pk, &zero, &mut rng).unwrap()
        })
        .collect();
    let sum = ringsum::core::scheme::sum_ciphertexts(&cts).unwrap();
    let measured = measure_noise_bits_vartime(&s.params, &s.packing, &s.sk, &sum, &zero).unwrap();
    // The validator's aggregate bound assumes max_holders key shares; a
    // single key is bounded by B_e (2N + 1) per client.
    let single_key_bound = (19.0 * (2.0 * 8192.0 + 1.0) * clients as f64).log2();
    let validator_bound = s.params.noise_budget().aggregate.bits() as f64;
    assert!(
        measured < single_key_bound - 8.0,
        "measured {measured:.1} bits, single-key bound {single_key_bound:.1}"
    );
    assert!(
        measured < validator_bound - 10.0,
        "measured {measured:.1}, validator {validator_bound}"
    );
}

#[test]
fn mismatched_updates_are_refused_and_the_aggregate_stays_intact() {
    let mut s = setup("pq128-n4096", 8);
    let layout = layout();
    let values = vec![0.25f32; layout.parameter_count()];
    let good = encrypt(&mut s, &layout, &values, 500, 3);
    let mut aggregate = Aggregate::new(&s.params, &s.packing, &layout, RoundId(3));
    aggregate.try_add(&good).unwrap();
    let before = aggregate.clone();

    let other_round = encrypt(&mut s, &layout, &values, 500, 4);
    assert!(matches!(
        aggregate.try_add(&other_round),
        Err(CoreError::RoundMismatch {
            expected: 3,
            found: 4
        })
    ));
    let other_layout = ModelLayout::try_new([
        ("dense.weight", vec![20, 30]),
        ("dense.bias", vec![20]),
        ("head", vec![5000]),
    ])
    .unwrap();
    let shaped = encrypt(&mut s, &other_layout, &values, 500, 3);
    assert!(matches!(
        aggregate.try_add(&shaped),
        Err(CoreError::LayoutMismatch { .. })
    ));
    let mut truncated = good.clone();
    truncated.ciphertexts.pop();
    assert!(matches!(
        aggregate.try_add(&truncated),
        Err(CoreError::CountMismatch { .. })
    ));
    // A last ciphertext whose c0 is not truncated as the layout says (here
    // a full-width encryption) is refused, so every sum stays truncated.
    let mut untruncated = good.clone();
    let zero = ringsum::core::scheme::Plaintext::try_new(&s.params, vec![0; s.packing.capacity()])
        .unwrap();
    let full =
        ringsum::core::scheme::encrypt(&s.params, &s.packing, &s.pk, &zero, &mut s.rng).unwrap();
    assert_eq!(full.c0_coefficients(), s.params.degree());
    *untruncated.ciphertexts.last_mut().unwrap() = full;
    assert!(matches!(
        aggregate.try_add(&untruncated),
        Err(CoreError::CountMismatch {
            what: "coefficients of c0 in a ciphertext of the update",
            ..
        })
    ));
    let mut foreign = setup("pq128-n8192", 9);
    let foreign_update = encrypt(&mut foreign, &layout, &values, 500, 3);
    assert!(matches!(
        aggregate.try_add(&foreign_update),
        Err(CoreError::ParameterMismatch { .. })
    ));
    // A batch with one bad update adds nothing.
    assert!(aggregate.try_add_all(&[good.clone(), other_round]).is_err());
    assert_eq!(aggregate, before);

    // Bad model input.
    let mut nan = values.clone();
    nan[650] = f32::NAN;
    let err = encrypt_update(
        &s.params,
        &s.packing,
        &s.pk,
        &layout,
        &nan,
        500,
        RoundId(3),
        &mut s.rng,
    )
    .unwrap_err();
    assert!(
        matches!(&err, CoreError::NonFiniteValue { tensor, index: 30, .. } if tensor == "head"),
        "{err}"
    );
    let inf = vec![f32::INFINITY; layout.parameter_count()];
    assert!(
        encrypt_update(
            &s.params,
            &s.packing,
            &s.pk,
            &layout,
            &inf,
            500,
            RoundId(3),
            &mut s.rng
        )
        .is_err()
    );
    assert!(matches!(
        encrypt_update(
            &s.params,
            &s.packing,
            &s.pk,
            &layout,
            &values[1..],
            500,
            RoundId(3),
            &mut s.rng
        ),
        Err(CoreError::CountMismatch { .. })
    ));
    for samples in [0, s.params.encoding().max_weight + 1] {
        assert!(matches!(
            encrypt_update(
                &s.params,
                &s.packing,
                &s.pk,
                &layout,
                &values,
                samples,
                RoundId(3),
                &mut s.rng
            ),
            Err(CoreError::InvalidWeight { .. })
        ));
    }
    assert!(ModelLayout::try_new(Vec::<(String, Vec<u64>)>::new()).is_err());
    assert!(ModelLayout::try_new([("a", vec![2]), ("a", vec![3])]).is_err());
    assert!(ModelLayout::try_new([("a", vec![0])]).is_err());
    assert!(ModelLayout::try_new([("", vec![1])]).is_err());
    assert!(ModelLayout::try_new([("a", vec![1 << 31, 4])]).is_err());
    // Quantizing is unbiased: the mean of many roundings of 0.3 quanta is 0.3.
    let encoding = s.params.encoding();
    let third = 0.3 * 2f32.powi(-(encoding.fraction_bits as i32));
    let (q, _) = quantize(
        encoding,
        &vec![third; 100_000],
        encoding.max_weight,
        &mut s.rng,
    )
    .unwrap();
    let mean = q.iter().sum::<i64>() as f64 / q.len() as f64;
    assert!(
        (mean - 0.3).abs() < 5.0 * (0.21f64 / 100_000.0).sqrt(),
        "mean {mean}"
    );
}
