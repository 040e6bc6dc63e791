//! `ringsum bench`: the whole aggregation pipeline for one model size and
//! client count, in one process, next to plaintext FedAvg on the same
//! updates, with the cost floor of this machine for encryption and
//! aggregation (docs/bench.md describes every output field).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::Packing;
use ringsum_core::update::{Aggregate, EncryptedUpdate, RoundId, ciphertexts_for, encrypt_update};
use ringsum_math::{Csprng, Poly, sample::sample_ternary};
use ringsum_threshold::{
    Combiner, Committee, DecryptionRequest, HolderId, InMemoryTransport, KeyHolder, ShareLedger,
    run_ceremony,
};
use serde_json::json;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Parameters per update.
    pub params_count: usize,
    /// Clients per round.
    pub clients: usize,
    /// Key holders.
    pub holders: u32,
    /// Holders needed to decrypt.
    pub threshold: u32,
    /// Parameter set.
    pub params: String,
    /// Repeats per phase (the median is reported).
    pub repeats: usize,
    /// Show progress.
    pub progress: bool,
}

/// One phase's numbers.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Name.
    pub name: &'static str,
    /// Median time.
    pub median: Duration,
    /// Parameters processed per repeat (for the throughput).
    pub parameters: f64,
    /// The machine's floor for this phase, when there is one.
    pub floor: Option<Duration>,
}

/// The whole measurement.
#[derive(Clone, Debug)]
pub struct Report {
    /// The options.
    pub options: Options,
    /// Plaintext FedAvg round.
    pub plaintext: Phase,
    /// The encrypted phases.
    pub phases: Vec<Phase>,
    /// Wire bytes of one client's update.
    pub update_bytes: usize,
    /// Measured memory bandwidth of a u64 add loop, bytes per second.
    pub bandwidth: f64,
    /// Measured time of one forward NTT of a full RNS polynomial.
    pub ntt: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn time<T>(repeats: usize, mut run: impl FnMut() -> Result<T, String>) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        black_box(run()?);
        samples.push(t.elapsed());
    }
    Ok(median(samples))
}

fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses sizes that are zero or would not fit in memory, before any work.
fn check(options: &Options, params: &ParameterSet) -> Result<(), String> {
    if options.params_count == 0 || options.clients == 0 || options.repeats == 0 {
        return Err("--params-count, --clients and --repeats must be at least 1".into());
    }
    let max_clients = usize::try_from(params.encoding().max_clients).unwrap_or(usize::MAX);
    if options.clients > max_clients {
        return Err(format!(
            "--clients {} exceeds the {max_clients} clients parameter set {} is sized for",
            options.clients,
            params.id()
        ));
    }
    if options.threshold == 0 || options.threshold > options.holders {
        return Err(format!(
            "--threshold must be between 1 and --holders ({}), got {}",
            options.holders, options.threshold
        ));
    }
    let packing = Packing::new(params);
    let ciphertexts = (options.params_count + 1).div_ceil(packing.capacity());
    let ring = params.ring();
    let ciphertext_bytes = 2 * ring.degree() * ring.moduli().len() * 8;
    // Plaintext updates, every encrypted update and the aggregate in memory.
    let needed = (options.clients as u128) * (options.params_count as u128) * 4
        + (options.clients as u128 + 4) * (ciphertexts as u128) * (ciphertext_bytes as u128);
    if let Some(available) = available_memory()
        && needed > u128::from(available) * 8 / 10
    {
        return Err(format!(
            "{} clients x {} parameters need about {:.1} GB; this machine has {:.1} GB available",
            options.clients,
            options.params_count,
            needed as f64 / 1e9,
            available as f64 / 1e9
        ));
    }
    Ok(())
}

/// Runs the benchmark.
#[allow(clippy::too_many_lines, clippy::cast_precision_loss)]
pub fn run(options: &Options) -> Result<Report, String> {
    let params = crate::load_params(&options.params)?;
    check(options, &params)?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let packing = Packing::new(&params);
    let n = options.params_count;
    let layout = ModelLayout::try_new([("update", vec![n as u64])]).map_err(|e| err(&e))?;
    let bar = crate::progress_bar(options.progress, 6, "{spinner} {msg} [{bar:20}] {elapsed}")?;

    // Updates: deterministic values in [-0.5, 0.5], sample counts 20 + i.
    bar.set_message("preparing updates");
    let mut rng = Csprng::from_seed([5; 32]);
    let updates: Vec<Vec<f32>> = (0..options.clients)
        .map(|_| {
            (0..n)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                .collect()
        })
        .collect();
    let samples: Vec<u64> = (0..options.clients as u64).map(|i| 20 + i).collect();
    bar.inc(1);

    // Plaintext FedAvg: weighted sum, then divide.
    bar.set_message("plaintext FedAvg");
    let plaintext = time(options.repeats, || {
        let mut sum = vec![0f32; n];
        let mut weight = 0f32;
        for (update, s) in updates.iter().zip(&samples) {
            let w = *s as f32;
            for (acc, v) in sum.iter_mut().zip(update) {
                *acc += w * v;
            }
            weight += w;
        }
        sum.iter_mut().for_each(|v| *v /= weight);
        Ok(sum)
    })?;
    bar.inc(1);

    // Key ceremony (not part of a round).
    bar.set_message("key ceremony");
    let ids: Vec<HolderId> = (1..=options.holders).map(HolderId).collect();
    let committee = Committee::new(&params, 0, &ids, options.threshold).map_err(|e| err(&e))?;
    let seed = ringsum_math::CrsSeed::new([3; 32]);
    let ceremony = run_ceremony(
        &params,
        &committee,
        &seed,
        &mut InMemoryTransport::new(),
        &mut rng,
    )
    .map_err(|e| err(&e))?;
    bar.inc(1);

    // Encode + encrypt, every client.
    bar.set_message("encrypting");
    let round = RoundId(1);
    let mut encrypted: Vec<EncryptedUpdate> = Vec::new();
    let encrypt = time(options.repeats, || {
        encrypted = updates
            .iter()
            .zip(&samples)
            .map(|(u, s)| {
                encrypt_update(
                    &params,
                    &packing,
                    &ceremony.public_key,
                    &layout,
                    u,
                    *s,
                    round,
                    &mut rng,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(())
    })?;
    let update_bytes = encrypted
        .first()
        .map_or(0, |u| ringsum_wire::encode_update(u).len());
    bar.inc(1);

    // Aggregate.
    bar.set_message("aggregating");
    let mut aggregate = Aggregate::new(&params, &packing, &layout, round);
    let aggregate_time = time(options.repeats, || {
        aggregate = Aggregate::new(&params, &packing, &layout, round);
        aggregate.try_add_all(&encrypted).map_err(|e| e.to_string())
    })?;
    bar.inc(1);

    // Threshold decryption: t shares (one after another here), combine, decode.
    bar.set_message("threshold decryption");
    let active_ids: Vec<HolderId> = ids
        .iter()
        .copied()
        .take(options.threshold as usize)
        .collect();
    let mut decrypted = None;
    let decrypt = time(options.repeats, || {
        // A fresh aggregate copy each time: holders answer once per c1.
        let mut fresh = aggregate.clone();
        fresh
            .rerandomize(&params, &packing, &ceremony.public_key, &mut rng)
            .map_err(|e| e.to_string())?;
        let active = committee
            .active_set(&active_ids)
            .map_err(|e| e.to_string())?;
        let request = DecryptionRequest::new(&params, &committee, &active, &fresh)
            .map_err(|e| e.to_string())?;
        let mut combiner = Combiner::new(&params, request).map_err(|e| e.to_string())?;
        for key in ceremony
            .key_shares
            .iter()
            .filter(|k| active_ids.contains(&k.holder()))
        {
            let mut holder = KeyHolder::new(
                &params,
                committee.clone(),
                key.clone(),
                ShareLedger::in_memory(),
            )
            .map_err(|e| e.to_string())?;
            let share = holder
                .decryption_share(&params, &fresh, &active)
                .map_err(|e| e.to_string())?;
            combiner.add(share).map_err(|e| e.to_string())?;
        }
        decrypted = Some(
            combiner
                .decode(&params, &packing, &layout)
                .map_err(|e| e.to_string())?,
        );
        Ok(())
    })?;
    bar.inc(1);
    bar.finish_and_clear();
    if decrypted
        .as_ref()
        .is_none_or(|d| d.clients != options.clients as u64)
    {
        return Err("the decrypted aggregate does not hold every client".into());
    }

    // Floors: NTT count times the NTT time plus sampling, and bytes over
    // bandwidth.
    let (ntt, sampling, inverse) = ntt_and_sampling(&params, &mut rng);
    let ciphertexts = ciphertexts_for(&packing, &layout);
    let threads = rayon::current_num_threads().max(1);
    // Encryption: one forward and two inverse NTTs and the sampling per
    // ciphertext, spread over every core (as encrypt_update does).
    let per_ciphertext = ntt + inverse * 2 + sampling;
    let encrypt_floor =
        per_ciphertext.mul_f64((ciphertexts * options.clients) as f64 / threads as f64);
    // Aggregation: every update's residues read once, the sum read and
    // written once, at the bandwidth of a plain u64 add loop on every core.
    let bandwidth = memory_bandwidth();
    let ring = params.ring();
    let ciphertext_bytes = 2 * ring.degree() * ring.moduli().len() * 8;
    let touched = (ciphertext_bytes * ciphertexts * (options.clients + 2)) as f64;
    let aggregate_floor = Duration::from_secs_f64(touched / bandwidth);
    let total = (options.clients * n) as f64;
    Ok(Report {
        options: options.clone(),
        plaintext: Phase {
            name: "plaintext FedAvg round (weighted sum + divide, f32, one thread)",
            median: plaintext,
            parameters: total,
            floor: None,
        },
        phases: vec![
            Phase {
                name: "encode + encrypt, all clients",
                median: encrypt,
                parameters: total,
                floor: Some(encrypt_floor),
            },
            Phase {
                name: "aggregate, all clients",
                median: aggregate_time,
                parameters: total,
                floor: Some(aggregate_floor),
            },
            Phase {
                name: "threshold decryption (t shares in sequence, combine, decode)",
                median: decrypt,
                parameters: n as f64,
                floor: None,
            },
        ],
        update_bytes,
        bandwidth,
        ntt,
    })
}

/// Median times of a forward NTT, an inverse NTT of a full RNS polynomial,
/// and of sampling one encryption's randomness (ternary u, two Gaussians).
fn ntt_and_sampling(params: &ParameterSet, rng: &mut Csprng) -> (Duration, Duration, Duration) {
    let ring = params.ring();
    let poly = sample_ternary(ring, rng).declassify();
    let forward = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                black_box(poly.to_ntt());
                t.elapsed()
            })
            .collect(),
    );
    let in_ntt = poly.to_ntt();
    let inverse = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                black_box(in_ntt.to_coeff());
                t.elapsed()
            })
            .collect(),
    );
    let sampling = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                black_box(sample_ternary(ring, rng));
                let mut e = Poly::zero(ring);
                params.gaussian().add_noise_assign(&mut e, rng);
                params.gaussian().add_noise_assign(&mut e, rng);
                black_box(e);
                t.elapsed()
            })
            .collect(),
    );
    (forward, sampling, inverse)
}

/// Bytes per second of a plain u64 add loop (read two, write one) over
/// arrays far larger than the caches, on every core, the best of five.
#[allow(clippy::cast_precision_loss)]
fn memory_bandwidth() -> f64 {
    use rayon::prelude::*;
    let len = 1 << 24; // 128 MiB per array
    let mut sum = vec![1u64; len];
    let other = vec![2u64; len];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        sum.par_chunks_mut(1 << 16)
            .zip(other.par_chunks(1 << 16))
            .for_each(|(a, b)| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = x.wrapping_add(*y);
                }
            });
        black_box(&sum);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (3 * 8 * len) as f64 / best
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Report {
    /// The encrypted round: encryption of every client, aggregation and
    /// decryption, against the plaintext round.
    pub fn round_ratio(&self) -> f64 {
        let encrypted: f64 = self.phases.iter().map(|p| p.median.as_secs_f64()).sum();
        encrypted / self.plaintext.median.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Wire bytes per parameter of one client's update.
    #[allow(clippy::cast_precision_loss)]
    pub fn bytes_per_parameter(&self) -> f64 {
        self.update_bytes as f64 / self.options.params_count as f64
    }
}

/// The human-readable report.
#[allow(clippy::print_stdout)]
pub fn print_text(report: &Report) {
    let o = &report.options;
    println!(
        "ringsum bench: {} clients x {} parameters, {} holders (t = {}), parameter set {}, median of {} runs",
        o.clients, o.params_count, o.holders, o.threshold, o.params, o.repeats
    );
    println!(
        "{:<64} {:>10} {:>12} {:>10} {:>14}",
        "phase", "median", "M params/s", "x plain", "floor (share)"
    );
    let plain = report.plaintext.median.as_secs_f64();
    for phase in std::iter::once(&report.plaintext).chain(&report.phases) {
        let floor = phase.floor.map_or(String::new(), |f| {
            format!(
                "{:.0} ms ({:.0}%)",
                ms(f),
                f.as_secs_f64() / phase.median.as_secs_f64() * 100.0
            )
        });
        println!(
            "{:<64} {:>8.1}ms {:>12.1} {:>10.1} {:>14}",
            phase.name,
            ms(phase.median),
            phase.parameters / phase.median.as_secs_f64() / 1e6,
            phase.median.as_secs_f64() / plain,
            floor
        );
    }
    println!(
        "encrypted round / plaintext round: {:.1}x; {:.2} bytes per parameter on the wire (plaintext f32: 4)",
        report.round_ratio(),
        report.bytes_per_parameter()
    );
    println!(
        "machine: NTT of one RNS polynomial {:.0} us, memory bandwidth {:.1} GB/s",
        report.ntt.as_secs_f64() * 1e6,
        report.bandwidth / 1e9
    );
}

/// The machine-readable report (fields documented in docs/bench.md).
pub fn to_json(report: &Report) -> serde_json::Value {
    let o = &report.options;
    let phase = |p: &Phase| {
        json!({
            "name": p.name,
            "median_ms": ms(p.median),
            "parameters_per_second": p.parameters / p.median.as_secs_f64(),
            "ratio_to_plaintext": p.median.as_secs_f64() / report.plaintext.median.as_secs_f64(),
            "floor_ms": p.floor.map(ms),
            "floor_share": p.floor.map(|f| f.as_secs_f64() / p.median.as_secs_f64()),
        })
    };
    json!({
        "params_count": o.params_count,
        "clients": o.clients,
        "holders": o.holders,
        "threshold": o.threshold,
        "parameter_set": o.params,
        "repeats": o.repeats,
        "plaintext": phase(&report.plaintext),
        "encrypt": report.phases.first().map(phase),
        "aggregate": report.phases.get(1).map(phase),
        "decrypt": report.phases.get(2).map(phase),
        "round_ratio": report.round_ratio(),
        "update_bytes": report.update_bytes,
        "bytes_per_parameter": report.bytes_per_parameter(),
        "ntt_us": report.ntt.as_secs_f64() * 1e6,
        "memory_bandwidth_gb_s": report.bandwidth / 1e9,
    })
}
