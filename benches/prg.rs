//! The PRG that expands the public polynomial a_j (issue 14): SHAKE128
//! against ChaCha20/12/8 and AES-128-CTR (AES-NI, VAES when present, chosen
//! at run time by the `aes` crate) for one polynomial of N = 16384 with
//! eight 48-bit primes (1 MiB of residues). Ids are
//! `prg/<generator>/n16384-k8`.
//!
//! Every stream-cipher variant runs the loop of `ringsum_math::prg`: 64-bit
//! little-endian words, masked to the prime's bit length, rejected at or
//! above the prime, drawn 512 words at a time, into a freshly allocated
//! polynomial (as `expand_uniform_ntt` does), so `chacha12` and `current`
//! should agree and the others differ only by their keystream.
//!
//! `cargo bench --bench prg`; BENCHMARKS.md ("PRG for a_j") records the
//! numbers.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aes::Aes128;
use chacha20::{ChaCha8Rng, ChaCha12Rng, ChaCha20Rng};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use rand_core::{Rng, SeedableRng};
use ringsum::math::prg::expand_uniform_ntt;
use ringsum::math::prime::generate_ntt_primes;
use ringsum::math::{CrsDomain, CrsSeed, RingContext, expand_crs};

const DEGREE: usize = 16384;
const PRIMES: usize = 8;
const ID: &str = "n16384-k8";
/// Words drawn from the generator at a time, as in `ringsum_math::prg`.
const WORDS: usize = 512;

/// A keystream read as 64-bit words.
trait WordSource {
    fn fill_words(&mut self, words: &mut [u64]);
}

macro_rules! chacha_source {
    ($rng:ty) => {
        impl WordSource for $rng {
            fn fill_words(&mut self, words: &mut [u64]) {
                self.fill_bytes(bytemuck::cast_slice_mut(words));
            }
        }
    };
}
chacha_source!(ChaCha20Rng);
chacha_source!(ChaCha12Rng);
chacha_source!(ChaCha8Rng);

struct AesCtr(Ctr128BE<Aes128>);

impl WordSource for AesCtr {
    fn fill_words(&mut self, words: &mut [u64]) {
        self.0.write_keystream(bytemuck::cast_slice_mut(words));
    }
}

/// No generator: the words stay zero (all accepted), so the time is the
/// allocation and the sampling loop alone, the floor under every variant.
struct Null;

impl WordSource for Null {
    fn fill_words(&mut self, words: &mut [u64]) {
        // Hide the (zero) contents from the optimiser.
        black_box(words);
    }
}

/// The loop of `UniformRows::fill_next_row`, over every prime.
fn expand_with<S: WordSource>(ctx: &RingContext, source: &mut S) -> Vec<u64> {
    let mut data = vec![0u64; ctx.poly_len()];
    let mut words = Box::new([0u64; WORDS]);
    for (m, row) in ctx.moduli().iter().zip(data.chunks_exact_mut(ctx.degree())) {
        let (p, mask) = (m.value(), u64::MAX >> (64 - m.bits()));
        let mut filled = 0;
        while filled < row.len() {
            let want = (row.len() - filled).min(WORDS);
            let words = words.get_mut(..want).unwrap();
            source.fill_words(words);
            for &word in words.iter() {
                let candidate = u64::from_le(word) & mask;
                if candidate < p {
                    if let Some(slot) = row.get_mut(filled) {
                        *slot = candidate;
                    }
                    filled += 1;
                }
            }
        }
    }
    data
}

fn ring() -> Arc<RingContext> {
    RingContext::new(DEGREE, &generate_ntt_primes(DEGREE, &[48; PRIMES]).unwrap()).unwrap()
}

fn prg(c: &mut Criterion) {
    let ctx = ring();
    let seed = CrsSeed::new([0x42; 32]);
    let domain = CrsDomain::new("ringsum/bench-a", 1, 0).unwrap();
    let key = [0x17u8; 32];

    let mut group = c.benchmark_group("prg");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes((ctx.poly_len() * 8) as u64));

    group.bench_function(BenchmarkId::new("shake128", ID), |b| {
        b.iter(|| expand_crs(&ctx, black_box(&seed), &domain));
    });
    group.bench_function(BenchmarkId::new("chacha20", ID), |b| {
        b.iter(|| expand_with(&ctx, &mut ChaCha20Rng::from_seed(black_box(key))));
    });
    group.bench_function(BenchmarkId::new("chacha12", ID), |b| {
        b.iter(|| expand_with(&ctx, &mut ChaCha12Rng::from_seed(black_box(key))));
    });
    group.bench_function(BenchmarkId::new("chacha8", ID), |b| {
        b.iter(|| expand_with(&ctx, &mut ChaCha8Rng::from_seed(black_box(key))));
    });
    group.bench_function(BenchmarkId::new("aes128-ctr", ID), |b| {
        let (aes_key, iv) = ([0x17u8; 16], [0u8; 16]);
        b.iter(|| {
            let cipher = Ctr128BE::<Aes128>::new(&black_box(aes_key).into(), &iv.into());
            expand_with(&ctx, &mut AesCtr(cipher))
        });
    });
    group.bench_function(BenchmarkId::new("current", ID), |b| {
        b.iter(|| expand_uniform_ntt(&ctx, black_box(&seed), &domain));
    });
    group.bench_function(BenchmarkId::new("loop-only", ID), |b| {
        b.iter(|| expand_with(&ctx, &mut Null));
    });
    group.finish();

    // The keystream alone, 1 MiB into a reused buffer: the generators'
    // own speed, without the sampling loop and the allocation.
    let mut group = c.benchmark_group("prg-keystream");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(1 << 20));
    let mut buffer = vec![0u8; 1 << 20];
    group.bench_function(BenchmarkId::new("chacha20", "1mib"), |b| {
        b.iter(|| ChaCha20Rng::from_seed(black_box(key)).fill_bytes(&mut buffer));
    });
    group.bench_function(BenchmarkId::new("chacha12", "1mib"), |b| {
        b.iter(|| ChaCha12Rng::from_seed(black_box(key)).fill_bytes(&mut buffer));
    });
    group.bench_function(BenchmarkId::new("chacha8", "1mib"), |b| {
        b.iter(|| ChaCha8Rng::from_seed(black_box(key)).fill_bytes(&mut buffer));
    });
    group.bench_function(BenchmarkId::new("aes128-ctr", "1mib"), |b| {
        let (aes_key, iv) = ([0x17u8; 16], [0u8; 16]);
        b.iter(|| {
            Ctr128BE::<Aes128>::new(&black_box(aes_key).into(), &iv.into())
                .write_keystream(&mut buffer);
        });
    });
    group.finish();
}

criterion_group!(benches, prg);
criterion_main!(benches);
