//! Criterion benches of the ring layer, one id per shipped parameter set.
//!
//! Run with `cargo bench --bench math`; BENCHMARKS.md records the numbers.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringsum::core::ParameterSet;
use ringsum::math::sample::{fill_ternary, sample_ternary, sample_uniform};
use ringsum::math::{Coeff, CrsDomain, CrsSeed, Csprng, Ntt, Poly, expand_crs};
use tfhe_ntt::prime64::Plan;

fn shipped_sets() -> Vec<ParameterSet> {
    ParameterSet::builtin_ids()
        .into_iter()
        .map(|id| ParameterSet::builtin(id).unwrap())
        .collect()
}

fn label(params: &ParameterSet) -> String {
    format!("{}/k{}", params.id(), params.primes().len())
}

fn ntt(c: &mut Criterion) {
    let mut group = c.benchmark_group("ntt");
    for params in shipped_sets() {
        let ring = params.ring();
        let mut rng = Csprng::from_seed([1; 32]);
        let a: Poly<Coeff> = sample_uniform(ring, &mut rng);
        let a_ntt = a.to_ntt();
        group.throughput(Throughput::Elements(ring.poly_len() as u64));
        group.bench_function(BenchmarkId::new("forward", label(&params)), |b| {
            b.iter_batched(|| a.clone(), |a| a.into_ntt(), BatchSize::LargeInput);
        });
        group.bench_function(BenchmarkId::new("inverse", label(&params)), |b| {
            b.iter_batched(|| a_ntt.clone(), |a| a.into_coeff(), BatchSize::LargeInput);
        });
    }
    group.finish();
}

/// The ring product with its three transforms, through `Poly` and through
/// tfhe-ntt directly, on the same inputs: the ratio is the wrapper's cost.
fn product(c: &mut Criterion) {
    let mut group = c.benchmark_group("product_with_transforms");
    for params in shipped_sets() {
        let ring = params.ring();
        let degree = ring.degree();
        let mut rng = Csprng::from_seed([2; 32]);
        let a: Poly<Coeff> = sample_uniform(ring, &mut rng);
        let b: Poly<Coeff> = sample_uniform(ring, &mut rng);
        group.throughput(Throughput::Elements(degree as u64));
        group.bench_function(BenchmarkId::new("ringsum", label(&params)), |bench| {
            bench.iter_batched(
                || (a.clone(), b.clone()),
                |(a, b)| {
                    let mut a = a.into_ntt();
                    a.try_mul_assign(&b.into_ntt()).unwrap();
                    a.into_coeff()
                },
                BatchSize::LargeInput,
            );
        });
        let plans: Vec<Plan> = params
            .primes()
            .iter()
            .map(|&p| Plan::try_new(degree, p).unwrap())
            .collect();
        let (raw_a, raw_b) = (a.residues().to_vec(), b.residues().to_vec());
        group.bench_function(
            BenchmarkId::new("tfhe-ntt-direct", label(&params)),
            |bench| {
                bench.iter_batched(
                    || (raw_a.clone(), raw_b.clone()),
                    |(mut x, mut y)| {
                        for ((plan, x), y) in plans
                            .iter()
                            .zip(x.chunks_exact_mut(degree))
                            .zip(y.chunks_exact_mut(degree))
                        {
                            plan.fwd(x);
                            plan.fwd(y);
                            plan.mul_assign_normalize(x, y);
                            plan.inv(x);
                        }
                        x
                    },
                    BatchSize::LargeInput,
                );
            },
        );
        let (na, nb) = (a.to_ntt(), b.to_ntt());
        group.bench_function(
            BenchmarkId::new("ntt-domain-only", label(&params)),
            |bench| {
                bench.iter(|| black_box(&na).try_mul(black_box(&nb)).unwrap());
            },
        );
        let mut acc = Poly::<Ntt>::zero(ring);
        group.bench_function(
            BenchmarkId::new("mul-accumulate", label(&params)),
            |bench| {
                bench.iter(|| {
                    acc.try_mul_accumulate(black_box(&na), black_box(&nb))
                        .unwrap()
                });
            },
        );
        let mut sum = na.clone();
        group.bench_function(BenchmarkId::new("add-assign", label(&params)), |bench| {
            bench.iter(|| sum.try_add_assign(black_box(&nb)).unwrap());
        });
    }
    group.finish();
}

fn sampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampling");
    let params = ParameterSet::builtin("rk128-n8192").unwrap();
    let gaussian = params.gaussian().clone();
    // Raw samples: the sampler itself, per sample.
    let mut values = vec![0i64; 1 << 16];
    group.throughput(Throughput::Elements(values.len() as u64));
    let mut rng = Csprng::from_seed([3; 32]);
    group.bench_function("gaussian-i64/65536", |b| {
        b.iter(|| gaussian.fill(&mut rng, black_box(&mut values)))
    });
    group.bench_function("ternary-i64/65536", |b| {
        b.iter(|| fill_ternary(&mut rng, black_box(&mut values)))
    });
    for params in shipped_sets() {
        let ring = params.ring();
        let degree = ring.degree() as u64;
        group.throughput(Throughput::Elements(degree));
        group.bench_function(BenchmarkId::new("gaussian-poly", label(&params)), |b| {
            b.iter(|| params.gaussian().sample_poly(ring, &mut rng));
        });
        group.bench_function(BenchmarkId::new("ternary-poly", label(&params)), |b| {
            b.iter(|| sample_ternary(ring, &mut rng));
        });
        group.bench_function(BenchmarkId::new("uniform-poly", label(&params)), |b| {
            b.iter(|| sample_uniform::<Ntt>(ring, &mut rng));
        });
        let seed = CrsSeed::new([4; 32]);
        let domain = CrsDomain::new("bench/a", 0, 0).unwrap();
        group.bench_function(BenchmarkId::new("crs-expand", label(&params)), |b| {
            b.iter(|| expand_crs(ring, &seed, &domain));
        });
    }
    group.finish();
}

criterion_group!(benches, ntt, product, sampling);
criterion_main!(benches);
