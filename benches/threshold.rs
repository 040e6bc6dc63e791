//! Threshold decryption and the key ceremony at the default parameter set,
//! on one core: a holder's decryption share and the combiner's combine +
//! decode for 10^6 parameters with n = 10, t = 6; a holder's ceremony work
//! at n = 10, t = 6 and n = 50, t = 26.
//!
//! `cargo bench --bench threshold`; BENCHMARKS.md records the numbers.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringsum::core::model::ModelLayout;
use ringsum::core::scheme::Packing;
use ringsum::core::update::{Aggregate, RoundId, encrypt_update};
use ringsum::core::{DEFAULT_PARAMETER_SET, ParameterSet};
use ringsum::math::{CrsSeed, Csprng};
use ringsum::threshold::{
    Combiner, Committee, DecryptionRequest, HolderId, InMemoryTransport, KeyGenerator, KeyHolder,
    ShareLedger, ThresholdKeyShare, run_ceremony,
};

fn one_core() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

fn decryption(c: &mut Criterion) {
    let pool = one_core();
    let params = ParameterSet::builtin(DEFAULT_PARAMETER_SET).unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([1; 32]);
    let (n, t, size) = (10u32, 6u32, 1_000_000usize);
    let ids: Vec<HolderId> = (1..=n).map(HolderId).collect();
    let committee = Committee::new(&params, 0, &ids, t).unwrap();
    let ceremony = run_ceremony(
        &params,
        &committee,
        &CrsSeed::new([2; 32]),
        &mut InMemoryTransport::new(),
        &mut rng,
    )
    .unwrap();
    let layout = ModelLayout::try_new([("model", vec![size as u64])]).unwrap();
    let values: Vec<f32> = (0..size)
        .map(|i| ((i % 2001) as f32 / 1000.0) - 1.0)
        .collect();
    let update = encrypt_update(
        &params,
        &packing,
        &ceremony.public_key,
        &layout,
        &values,
        1000,
        RoundId(1),
        &mut rng,
    )
    .unwrap();
    let mut aggregate = Aggregate::new(&params, &packing, &layout, RoundId(1));
    aggregate.try_add(&update).unwrap();
    let active = committee.active_set(&ids[..t as usize]).unwrap();
    let mut holders: Vec<KeyHolder> = ceremony
        .key_shares
        .into_iter()
        .take(t as usize)
        .map(|k| KeyHolder::new(&params, committee.clone(), k, ShareLedger::in_memory()).unwrap())
        .collect();
    let shares: Vec<_> = holders
        .iter_mut()
        .map(|h| h.decryption_share(&params, &aggregate, &active).unwrap())
        .collect();

    let mut group = c.benchmark_group("threshold");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(size as u64));
    let label = format!("{DEFAULT_PARAMETER_SET}/{size}/n{n}-t{t}");
    // A repeated request with the same set is answered afresh (and
    // identically): the full work of a share, ledger check included.
    group.bench_function(BenchmarkId::new("decryption-share", &label), |b| {
        b.iter(|| {
            pool.install(|| {
                holders[0]
                    .decryption_share(&params, &aggregate, &active)
                    .unwrap()
            })
        });
    });
    // The coordinator computes the aggregate's decryption digest once, when
    // it asks the holders; the combiner reuses it.
    group.bench_function(BenchmarkId::new("request", &label), |b| {
        b.iter(|| {
            pool.install(|| {
                DecryptionRequest::new(&params, &committee, &active, &aggregate).unwrap()
            })
        });
    });
    let request = DecryptionRequest::new(&params, &committee, &active, &aggregate).unwrap();
    group.bench_function(BenchmarkId::new("combine-decode", &label), |b| {
        b.iter_batched(
            || shares.clone(),
            |shares| {
                pool.install(|| {
                    let mut combiner = Combiner::new(&params, request.clone()).unwrap();
                    for s in shares {
                        combiner.add(s).unwrap();
                    }
                    combiner.decode(&params, &packing, &layout).unwrap()
                })
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn ceremony(c: &mut Criterion) {
    let pool = one_core();
    let params = ParameterSet::builtin(DEFAULT_PARAMETER_SET).unwrap();
    let mut rng = Csprng::from_seed([3; 32]);
    let seed = CrsSeed::new([4; 32]);
    let mut group = c.benchmark_group("key-ceremony");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (n, t) in [(10u32, 6u32), (50, 26)] {
        let ids: Vec<HolderId> = (1..=n).map(HolderId).collect();
        let committee = Committee::new(&params, 0, &ids, t).unwrap();
        let label = format!("{DEFAULT_PARAMETER_SET}/n{n}-t{t}");
        // One holder's part: sample s_i, publish p_i, deal n Shamir shares.
        group.bench_function(BenchmarkId::new("holder-generate-deal", &label), |b| {
            b.iter(|| {
                pool.install(|| {
                    let g = KeyGenerator::new(&params, &committee, ids[0], &mut rng).unwrap();
                    let p = g.public_key_share(&params, &seed, &mut rng).unwrap();
                    (p, g.deal(&params, &mut rng).unwrap())
                })
            });
        });
        // One holder's part: add the n shares it received.
        let received: Vec<_> = ids
            .iter()
            .map(|&from| {
                let g = KeyGenerator::new(&params, &committee, from, &mut rng).unwrap();
                g.deal(&params, &mut rng).unwrap().swap_remove(0)
            })
            .collect();
        group.bench_function(BenchmarkId::new("holder-combine-shares", &label), |b| {
            b.iter(|| {
                pool.install(|| {
                    ThresholdKeyShare::from_messages(&params, &committee, ids[0], &received)
                        .unwrap()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decryption, ceremony);
criterion_main!(benches);
