//! The per-round-key scheme, per phase, on one core: at the default set
//! (rk128-n16384) for 10^5, 10^6 and 10^7 parameters, and at every other
//! shipped set for 10^5. Ids are `round/<phase>/<set>/<size>`; the
//! phases that do not depend on the model size (Shamir sharing, a holder's
//! work per client, combining) are `round/<phase>/<set>/n<holders>-t<t>`.
//!
//! `cargo bench --bench round`; BENCHMARKS.md records the numbers. Every
//! phase runs inside a one-thread rayon pool so that the figures are per
//! core, as the targets are stated.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringsum::core::model::ModelLayout;
use ringsum::core::privacy::{PrivacyPlan, PrivacySettings};
use ringsum::core::round::{RoundAggregate, RoundContext, RoundSecret};
use ringsum::core::scheme::Packing;
use ringsum::core::update::RoundId;
use ringsum::core::{DEFAULT_PARAMETER_SET, ParameterSet};
use ringsum::math::Csprng;
use ringsum::threshold::HolderId;
use ringsum::threshold::shamir::{
    AnswerKey, KeySumAccumulator, ShareCommittee, ShareField, combine_answers, share_secret,
};

const SIZES: [usize; 3] = [100_000, 1_000_000, 10_000_000];

fn cases() -> Vec<(&'static str, Vec<usize>)> {
    ParameterSet::builtin_ids()
        .into_iter()
        .map(|id| {
            let sizes = if id == DEFAULT_PARAMETER_SET {
                SIZES.to_vec()
            } else {
                vec![100_000]
            };
            (id, sizes)
        })
        .collect()
}

/// Times one client's encryption of `values` (100 samples) under a fresh
/// round secret, on `pool`.
fn encrypt_plain(
    b: &mut criterion::Bencher<'_>,
    pool: &rayon::ThreadPool,
    params: &ParameterSet,
    packing: &Packing,
    layout: &ModelLayout,
    context: &RoundContext,
    values: &[f32],
) {
    b.iter_batched(
        || RoundSecret::generate(params, &mut Csprng::from_seed([2; 32])),
        |secret| {
            pool.install(|| {
                secret
                    .encrypt_update(
                        packing,
                        layout,
                        context,
                        values,
                        100,
                        &mut Csprng::from_seed([4; 32]),
                    )
                    .unwrap()
            })
        },
        BatchSize::PerIteration,
    );
}

fn round(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("round");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (set, sizes) in cases() {
        let params = ParameterSet::builtin(set).unwrap();
        let packing = Packing::new(&params);
        let context = RoundContext::new(&params, [3; 32], RoundId(1));
        let mut rng = Csprng::from_seed([1; 32]);
        for size in sizes {
            let layout = ModelLayout::try_new([("model", vec![size as u64])]).unwrap();
            let values: Vec<f32> = (0..size)
                .map(|i| ((i % 2001) as f32 / 1000.0) - 1.0)
                .collect();
            let id = format!("{set}/{size}");
            group.throughput(Throughput::Elements(size as u64));
            group.bench_function(BenchmarkId::new("encrypt", &id), |b| {
                encrypt_plain(b, &pool, &params, &packing, &layout, &context, &values);
            });
            group.bench_function(BenchmarkId::new("precompute", &id), |b| {
                b.iter_batched(
                    || RoundSecret::generate(&params, &mut Csprng::from_seed([2; 32])),
                    |secret| {
                        pool.install(|| {
                            secret
                                .precompute(
                                    &packing,
                                    &layout,
                                    &context,
                                    &mut Csprng::from_seed([4; 32]),
                                )
                                .unwrap()
                        })
                    },
                    BatchSize::PerIteration,
                );
            });
            group.bench_function(BenchmarkId::new("online", &id), |b| {
                b.iter_batched(
                    || {
                        RoundSecret::generate(&params, &mut Csprng::from_seed([2; 32]))
                            .precompute(
                                &packing,
                                &layout,
                                &context,
                                &mut Csprng::from_seed([4; 32]),
                            )
                            .unwrap()
                    },
                    |masks| {
                        pool.install(|| {
                            masks
                                .finish(
                                    &packing,
                                    &layout,
                                    &values,
                                    100,
                                    &mut Csprng::from_seed([5; 32]),
                                )
                                .unwrap()
                        })
                    },
                    BatchSize::PerIteration,
                );
            });
            // One update and its secret, for the coordinator's phases.
            let secret = RoundSecret::generate(&params, &mut rng);
            let key_sum = secret.coefficients().to_vec();
            let update = secret
                .encrypt_update(&packing, &layout, &context, &values, 100, &mut rng)
                .unwrap();
            let updates = vec![update.clone(); 8];
            group.throughput(Throughput::Elements((size * updates.len()) as u64));
            group.bench_function(BenchmarkId::new("aggregate-8", &id), |b| {
                b.iter(|| {
                    pool.install(|| {
                        let mut aggregate =
                            RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
                        aggregate.try_add_all(&updates).unwrap();
                        aggregate
                    })
                });
            });
            let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context).unwrap();
            aggregate.try_add(&update).unwrap();
            group.throughput(Throughput::Elements(size as u64));
            group.bench_function(BenchmarkId::new("decode", &id), |b| {
                b.iter(|| pool.install(|| aggregate.decode(&packing, &layout, &key_sum).unwrap()));
            });
        }

        // Shamir: sharing, a holder's work per client, combining.
        let shares = params.shares();
        let field = ShareField::new(shares.field_prime).unwrap();
        let degree = params.degree();
        for (holders, threshold) in [(5u32, 3u32), (9, 5)] {
            let points: Vec<HolderId> = (1..=holders).map(HolderId).collect();
            let committee =
                ShareCommittee::new(field, &points, threshold, shares.max_holders).unwrap();
            let secret = RoundSecret::generate(&params, &mut rng);
            let id = format!("{set}/n{holders}-t{threshold}");
            group.throughput(Throughput::Elements(degree as u64));
            group.bench_function(BenchmarkId::new("share", &id), |b| {
                b.iter(|| share_secret(&committee, secret.coefficients(), &mut rng).unwrap());
            });
            let messages = share_secret(&committee, secret.coefficients(), &mut rng).unwrap();
            let key = AnswerKey::random(&mut rng);
            let (last_holder, last_share) = messages.last().unwrap();
            let expanded = last_share.expand();
            group.bench_function(BenchmarkId::new("holder-add-one-client", &id), |b| {
                b.iter_batched(
                    || KeySumAccumulator::new(field, degree, *last_holder).unwrap(),
                    |mut accumulator| {
                        accumulator.add(black_box(&expanded), &key).unwrap();
                        accumulator
                    },
                    BatchSize::LargeInput,
                );
            });
            let answers: Vec<_> = messages
                .iter()
                .map(|(holder, share)| {
                    let mut accumulator = KeySumAccumulator::new(field, degree, *holder).unwrap();
                    accumulator.add(&share.expand(), &key).unwrap();
                    accumulator.finish(&committee, b"bench").unwrap()
                })
                .collect();
            let bound = params.gaussian().bound().unsigned_abs();
            group.bench_function(BenchmarkId::new("combine-all-answers", &id), |b| {
                b.iter(|| combine_answers(&committee, black_box(&answers), degree, bound).unwrap());
            });
        }
    }
    group.finish();
}

/// Differential privacy's cost in encryption: a plain update (f32 values
/// quantized on the way in), a noised one (the client's discrete Gaussian
/// noise drawn, then its integers encrypted), and a noised one whose noise
/// was drawn ahead, while the model trained. Ids are
/// `privacy/<case>/<set>/<size>`; the demo's logistic regression has 62
/// parameters.
fn privacy(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("privacy");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (set, size) in [
        ("rk128-n4096", 62usize),
        (DEFAULT_PARAMETER_SET, 100_000),
        (DEFAULT_PARAMETER_SET, 1_000_000),
    ] {
        let params = ParameterSet::builtin(set).unwrap();
        let packing = Packing::new(&params);
        let context = RoundContext::new(&params, [3; 32], RoundId(1));
        let layout = ModelLayout::try_new([("model", vec![size as u64])]).unwrap();
        let values: Vec<f32> = (0..size)
            .map(|i| ((i % 2001) as f32 / 1000.0) - 1.0)
            .collect();
        let plan = PrivacyPlan::new(
            PrivacySettings {
                epsilon: 1.0,
                delta: 1e-5,
                clip: 1.0,
                learning_rate: 2.0,
                records_per_client: 20,
                max_records: 20,
                noise_clients: 8,
            },
            &params,
            size,
            10,
            8,
        )
        .unwrap();
        let id = format!("{set}/{size}");
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::new("encrypt-plain", &id), |b| {
            encrypt_plain(b, &pool, &params, &packing, &layout, &context, &values);
        });
        for ahead in [false, true] {
            let case = if ahead {
                "encrypt-noise-drawn-ahead"
            } else {
                "encrypt-noised"
            };
            group.bench_function(BenchmarkId::new(case, &id), |b| {
                b.iter_batched(
                    || {
                        let mut contribution = plan.contribution();
                        if ahead {
                            contribution.draw_noise(&mut Csprng::from_seed([6; 32]));
                        }
                        (
                            RoundSecret::generate(&params, &mut Csprng::from_seed([2; 32])),
                            contribution,
                        )
                    },
                    |(secret, contribution)| {
                        pool.install(|| {
                            let mut rng = Csprng::from_seed([4; 32]);
                            let noisy = contribution.finish(&mut rng);
                            secret
                                .encrypt_quantized(
                                    &packing,
                                    &layout,
                                    &context,
                                    noisy.weight(),
                                    noisy.values(),
                                    &mut rng,
                                )
                                .unwrap()
                        })
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, round, privacy);
criterion_main!(benches);
