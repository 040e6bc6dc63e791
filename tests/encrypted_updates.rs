//! Encrypted FedAvg end to end on per-round keys: quantize, pack, encrypt
//! under fresh secrets, send, aggregate, decode with the clients' key sum;
//! against plaintext arithmetic. (How holders reconstruct the key sum from
//! Shamir shares is tested in tests/round_keys.rs, the protocol around it
//! in tests/round_protocol.rs.)

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
use ringsum::core::round::{RoundAggregate, RoundContext, RoundSecret, RoundUpdate};
use ringsum::core::scheme::Packing;
use ringsum::core::update::{FedAvgResult, RoundId, UpdateShape};
use ringsum::core::{CoreError, ParameterSet};
use ringsum::math::Csprng;

const FEDERATION: [u8; 32] = [0x55; 32];

struct Setup {
    params: ParameterSet,
    packing: Packing,
    rng: Csprng,
}

fn setup(id: &str, seed: u8) -> Setup {
    let params = ParameterSet::builtin(id).unwrap();
    Setup {
        packing: Packing::new(&params),
        params,
        rng: Csprng::from_seed([seed; 32]),
    }
}

/// One round's aggregate and the sum of its clients' secrets (what t key
/// holders would reconstruct).
struct Round {
    context: RoundContext,
    aggregate: RoundAggregate,
    key_sum: Vec<i64>,
}

impl Round {
    fn new(s: &Setup, layout: &ModelLayout, round: u64) -> Self {
        let context = RoundContext::new(&s.params, FEDERATION, RoundId(round));
        Self {
            aggregate: RoundAggregate::new(&s.params, &s.packing, layout, &context).unwrap(),
            context,
            key_sum: vec![0; s.params.degree()],
        }
    }

    /// Encrypts under a fresh secret, adding the secret to the key sum.
    fn encrypt(
        &mut self,
        s: &mut Setup,
        layout: &ModelLayout,
        values: &[f32],
        samples: u64,
    ) -> RoundUpdate {
        let secret = RoundSecret::generate(&s.params, &mut s.rng);
        for (sum, k) in self.key_sum.iter_mut().zip(secret.coefficients()) {
            *sum += k;
        }
        secret
            .encrypt_update(
                &s.packing,
                layout,
                &self.context,
                values,
                samples,
                &mut s.rng,
            )
            .unwrap()
    }

    fn decode(&self, s: &Setup, layout: &ModelLayout) -> FedAvgResult {
        self.aggregate
            .decode(&s.packing, layout, &self.key_sum)
            .unwrap()
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
        let mut s = setup("rk128-n8192", seed);
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
        let mut round = Round::new(&s, &layout, 1);
        for (values, w) in &inputs {
            let update = round.encrypt(&mut s, &layout, values, *w);
            round.aggregate.try_add(&update).unwrap();
        }
        let result = round.decode(&s, &layout);
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

    /// Models of any size, so that the last ciphertext is truncated to
    /// anything from 1 coefficient to all N: every update goes through the
    /// wire (the receiver derives the truncation from the layout) and the
    /// decoded sum is exact. Weight 1 and values on the quantization grid,
    /// so nothing is rounded and the average is known exactly.
    #[test]
    fn truncated_updates_travel_and_sum_exactly(
        parameters in 1usize..110_000,
        clients in 1usize..4,
        seed in any::<u8>(),
    ) {
        let mut s = setup("rk128-n8192", seed);
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
        let mut round = Round::new(&s, &layout, 4);
        for values in &inputs {
            let update = round.encrypt(&mut s, &layout, values, max_weight);
            let last = shape.ciphertexts() - 1;
            prop_assert_eq!(update.used_coefficients(last), shape.c0_coefficients(last));
            let bytes = ringsum::wire::encode_round_update(&update);
            let received =
                ringsum::wire::decode_round_update(&s.params, &s.packing, &layout, &bytes).unwrap();
            prop_assert_eq!(&received, &update);
            round.aggregate.try_add(&received).unwrap();
        }
        let result = round.decode(&s, &layout);
        prop_assert_eq!(result.weight_sum, (clients as i64) << s.params.encoding().fraction_bits);
        for (i, got) in result.average.concat().iter().enumerate() {
            let sum: f64 = inputs.iter().map(|v| f64::from(v[i])).sum();
            prop_assert_eq!(f64::from(*got), (sum / clients as f64) as f32 as f64, "parameter {}", i);
        }
    }
}

/// With weight 1 (samples = max_weight) and values on the quantization grid
/// nothing is rounded, so the decoded sum is exactly the sum of inputs.
#[test]
fn grid_values_sum_exactly() {
    let mut s = setup("rk128-n4096", 3);
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
    let mut round = Round::new(&s, &layout, 9);
    let updates: Vec<RoundUpdate> = clients
        .iter()
        .map(|v| round.encrypt(&mut s, &layout, v, max_weight))
        .collect();
    round.aggregate.try_add_all(&updates).unwrap();
    let result = round.decode(&s, &layout);
    assert_eq!(result.weight_sum, 7 << s.params.encoding().fraction_bits);
    for (i, got) in result.average.concat().iter().enumerate() {
        let sum: f64 = clients.iter().map(|v| f64::from(v[i])).sum();
        assert_eq!(f64::from(*got), (sum / 7.0) as f32 as f64, "parameter {i}");
    }
}

/// max_clients clients all sending +c (then -c) with weight 1, filling every
/// slot of a ciphertext of the default set (all 13 slots of every
/// coefficient, the top one included) to n * 2^f: decodes exactly. The
/// plaintext-level tests in ringsum-core push slots to the validator's
/// n * (2^f + 1) edge.
#[test]
fn max_clients_at_the_clip_decode_without_overflow_at_the_default_set() {
    let mut s = setup(ringsum::core::DEFAULT_PARAMETER_SET, 4);
    assert_eq!(s.packing.slots(), 13);
    // One ciphertext, every slot used: the weight plus capacity - 1 values.
    let count = s.packing.capacity() - 1;
    let layout = ModelLayout::try_new([("w", vec![count as u64])]).unwrap();
    let encoding = s.params.encoding().clone();
    for sign in [1.0f32, -1.0] {
        let values = vec![sign * 5.0; count]; // clipped to ±c
        let mut round = Round::new(&s, &layout, 2);
        let update = round.encrypt(&mut s, &layout, &values, encoding.max_weight);
        // Adding one update max_clients times gives the same slot sums (and
        // the key sum max_clients * s, within the bound of max_clients
        // secrets) as max_clients distinct ones.
        for _ in 0..encoding.max_clients {
            round.aggregate.try_add(&update).unwrap();
        }
        assert!(matches!(
            round.aggregate.try_add(&update),
            Err(CoreError::TooManyClients { .. })
        ));
        for k in &mut round.key_sum {
            *k *= encoding.max_clients as i64;
        }
        let result = round.decode(&s, &layout);
        assert_eq!(
            result.weight_sum,
            (encoding.max_clients as i64) << encoding.fraction_bits
        );
        assert!(
            result
                .average
                .concat()
                .iter()
                .all(|&v| v == sign * encoding.clip as f32)
        );
    }
}

#[test]
fn bad_model_input_is_refused_and_quantizing_is_unbiased() {
    let mut s = setup("rk128-n4096", 8);
    let layout = layout();
    let values = vec![0.25f32; layout.parameter_count()];
    let context = RoundContext::new(&s.params, FEDERATION, RoundId(3));
    let mut encrypt = |values: &[f32], samples: u64| {
        RoundSecret::generate(&s.params, &mut s.rng)
            .encrypt_update(&s.packing, &layout, &context, values, samples, &mut s.rng)
    };
    let mut nan = values.clone();
    nan[650] = f32::NAN;
    let err = encrypt(&nan, 500).unwrap_err();
    assert!(
        matches!(&err, CoreError::NonFiniteValue { tensor, index: 30, .. } if tensor == "head"),
        "{err}"
    );
    assert!(encrypt(&vec![f32::INFINITY; values.len()], 500).is_err());
    assert!(matches!(
        encrypt(&values[1..], 500),
        Err(CoreError::CountMismatch { .. })
    ));
    for samples in [0, s.params.encoding().max_weight + 1] {
        assert!(matches!(
            encrypt(&values, samples),
            Err(CoreError::InvalidWeight { .. })
        ));
    }
    assert!(encrypt(&values, 500).is_ok());
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
