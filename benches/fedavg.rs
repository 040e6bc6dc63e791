//! Encrypted FedAvg against plaintext FedAvg, per phase, on one core: at
//! the default parameter set for 10^5, 10^6 and 10^7 parameters, and at
//! every other shipped set for 10^5. Ids are `fedavg/<phase>/<set>/<size>`.
//!
//! `cargo bench --bench fedavg`; BENCHMARKS.md records the numbers. Every
//! ringsum phase runs inside a one-thread rayon pool so that the figures are
//! per core, as the targets are stated.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::print_stderr
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringsum::core::model::ModelLayout;
use ringsum::core::scheme::{Packing, PublicKey, SecretKey};
use ringsum::core::update::{
    Aggregate, RoundId, ciphertexts_for, decrypt_aggregate, encrypt_update,
};
use ringsum::core::{DEFAULT_PARAMETER_SET, ParameterSet};
use ringsum::math::{CrsSeed, Csprng};

const SIZES: [usize; 3] = [100_000, 1_000_000, 10_000_000];

/// Every shipped set, with the sizes measured at it.
fn cases() -> Vec<(&'static str, Vec<usize>)> {
    ParameterSet::builtin_ids()
        .into_iter()
        // The collective-key sets; benches/round.rs measures the others.
        .filter(|id| ParameterSet::builtin(id).is_ok_and(|p| p.collective_key().is_ok()))
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

fn fedavg(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fedavg");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (set, sizes) in cases() {
        let params = ParameterSet::builtin(set).unwrap();
        let packing = Packing::new(&params);
        let mut rng = Csprng::from_seed([1; 32]);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::generate(&params, &sk, &CrsSeed::new([2; 32]), 0, &mut rng).unwrap();
        for size in sizes {
            let label = format!("{set}/{size}");
            let layout = ModelLayout::try_new([("model", vec![size as u64])]).unwrap();
            let values: Vec<f32> = (0..size)
                .map(|i| ((i % 2001) as f32 / 1000.0) - 1.0)
                .collect();
            group.throughput(Throughput::Elements(size as u64));

            // Plaintext FedAvg: accumulate w * x into the running sum, then divide.
            let mut sum = vec![0f32; size];
            group.bench_function(BenchmarkId::new("plaintext-weighted-add", &label), |b| {
                b.iter(|| {
                    for (acc, &x) in sum.iter_mut().zip(black_box(&values)) {
                        *acc += 0.37 * x;
                    }
                });
            });
            group.bench_function(BenchmarkId::new("plaintext-divide", &label), |b| {
                b.iter(|| {
                    black_box(&sum)
                        .iter()
                        .map(|s| s / 12.5)
                        .collect::<Vec<f32>>()
                });
            });

            group.bench_function(BenchmarkId::new("encode-encrypt", &label), |b| {
                b.iter(|| {
                    pool.install(|| {
                        encrypt_update(
                            &params,
                            &packing,
                            &pk,
                            &layout,
                            &values,
                            1000,
                            RoundId(1),
                            &mut rng,
                        )
                        .unwrap()
                    })
                });
            });
            let update = encrypt_update(
                &params,
                &packing,
                &pk,
                &layout,
                &values,
                1000,
                RoundId(1),
                &mut rng,
            )
            .unwrap();
            // The update as ringsum-wire encodes it (the last c0 truncated).
            let ciphertexts = ciphertexts_for(&packing, &layout);
            let wire_bytes = ringsum::wire::encode_update(&update).len();
            eprintln!(
                "{label}: {ciphertexts} ciphertexts, {wire_bytes} bytes on the wire, {:.2} bytes per parameter (f32: 4)",
                wire_bytes as f64 / size as f64
            );
            let mut aggregate = Aggregate::new(&params, &packing, &layout, RoundId(1));
            aggregate.try_add(&update).unwrap();
            group.bench_function(BenchmarkId::new("aggregate-add", &label), |b| {
                b.iter_batched(
                    || aggregate.clone(),
                    |mut agg| {
                        pool.install(|| agg.try_add(&update).unwrap());
                        agg
                    },
                    BatchSize::LargeInput,
                );
            });
            group.bench_function(BenchmarkId::new("decrypt-decode", &label), |b| {
                b.iter(|| {
                    pool.install(|| {
                        decrypt_aggregate(&params, &packing, &sk, &layout, &aggregate).unwrap()
                    })
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, fedavg);
criterion_main!(benches);
