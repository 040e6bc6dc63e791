//! `ringsum bench`: one round of the per-round-key pipeline for one model
//! size and client count, in one process, next to plaintext FedAvg on the
//! same updates, with the cost floor of this machine for encryption and
//! aggregation (docs/bench.md describes every output field).
//!
//! The phases of a round: every client encrypts its update under a fresh
//! secret; every client Shamir-shares the secret, seals each share to its
//! holder and signs it, and signs its update; the coordinator adds the
//! updates; every key holder opens and verifies each client's share and
//! answers with the sum; the coordinator combines the answers (all n, so a
//! lying holder would be detected) and decodes the weighted average.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::round::{RoundAggregate, RoundContext, RoundSecret, RoundUpdate};
use ringsum_core::scheme::Packing;
use ringsum_core::update::{RoundId, UpdateShape};
use ringsum_math::{Csprng, Poly};
use ringsum_pq::{
    AlgorithmPolicy, Envelope, FederationId, Inbox, KemAlgorithm, MessageKind, ParticipantId,
    Registry, Role, Routing, SealContext, SealingKey, SignatureAlgorithm, SigningIdentity,
    open_round_share, seal_round_share,
};
use ringsum_protocol::SetupError;
use ringsum_threshold::HolderId;
use ringsum_threshold::shamir::{
    AnswerKey, HolderAnswer, KeySumAccumulator, ShareCommittee, ShareField, ShareMessage,
    combine_answers, decode_client_share, encode_client_share, share_secret,
};
use serde_json::json;

use crate::error::{CliError, Result};

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Parameters per update.
    pub params_count: usize,
    /// Clients per round.
    pub clients: usize,
    /// Key holders.
    pub holders: u32,
    /// Holders needed to open a key sum.
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
    /// Encode + encrypt, all clients.
    pub encrypt: Phase,
    /// Shares, seals and signatures, all clients.
    pub shares: Phase,
    /// The coordinator's sum.
    pub aggregate: Phase,
    /// Every holder's answer, one holder after another.
    pub holders: Phase,
    /// Combining the answers and decoding.
    pub decode: Phase,
    /// Wire bytes of one client's encoded update (its ciphertexts).
    pub update_bytes: usize,
    /// Wire bytes a client sends besides: its sealed, signed shares and
    /// the signature on its update.
    pub fixed_bytes: usize,
    /// Measured memory bandwidth of a u64 add loop, bytes per second.
    pub bandwidth: f64,
    /// Measured time of one inverse NTT of a full RNS polynomial.
    pub ntt: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn time<T>(repeats: usize, mut run: impl FnMut() -> Result<T>) -> Result<Duration> {
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
fn check(options: &Options, params: &ParameterSet) -> Result<()> {
    for (option, value) in [
        ("--params-count", options.params_count),
        ("--clients", options.clients),
        ("--repeats", options.repeats),
    ] {
        if value == 0 {
            return Err(CliError::OptionTooSmall { option, min: 1 });
        }
    }
    crate::check_client_count(params, options.clients)?;
    if options.threshold == 0 || options.threshold > options.holders {
        return Err(CliError::ThresholdOutOfRange {
            threshold: options.threshold,
            holders: u64::from(options.holders),
        });
    }
    if 2 * options.threshold <= options.holders {
        return Err(SetupError::ThresholdNotMajority {
            holders: options.holders as usize,
            threshold: options.threshold,
        }
        .into());
    }
    let packing = Packing::new(params);
    let ciphertexts = (options.params_count + 1).div_ceil(packing.capacity());
    let ciphertext_bytes = params.ring().poly_len() * 8;
    // Plaintext updates, every encrypted update and the aggregate in memory.
    let needed = (options.clients as u128) * (options.params_count as u128) * 4
        + (options.clients as u128 + 4) * (ciphertexts as u128) * (ciphertext_bytes as u128);
    if let Some(available) = available_memory()
        && needed > u128::from(available) * 8 / 10
    {
        return Err(CliError::InsufficientMemory {
            clients: options.clients,
            params_count: options.params_count,
            needed_bytes: needed,
            available_bytes: available,
        });
    }
    Ok(())
}

/// The participants of the benchmark's federation: one signing identity
/// per client, and per holder a signing identity and a sealing key.
struct Federation {
    id: FederationId,
    registry: Registry,
    clients: Vec<SigningIdentity>,
    holders: Vec<(SigningIdentity, SealingKey)>,
    committee: ShareCommittee,
}

impl Federation {
    fn new(params: &ParameterSet, options: &Options) -> Result<Self> {
        let id = FederationId([0xbe; 32]);
        let policy = AlgorithmPolicy::POST_QUANTUM;
        let mut registry = Registry::new(id, policy);
        let clients = (0..options.clients)
            .map(|_| {
                let identity = SigningIdentity::generate(SignatureAlgorithm::MlDsa65)?;
                registry.register(Role::Client, identity.public().clone(), None)?;
                Ok(identity)
            })
            .collect::<Result<Vec<_>, ringsum_pq::PqError>>()?;
        let holders = (0..options.holders)
            .map(|_| {
                let identity = SigningIdentity::generate(SignatureAlgorithm::MlDsa65)?;
                let sealing = SealingKey::generate(KemAlgorithm::MlKem1024)?;
                registry.register(
                    Role::KeyHolder,
                    identity.public().clone(),
                    Some(sealing.public().clone()),
                )?;
                Ok((identity, sealing))
            })
            .collect::<Result<Vec<_>, ringsum_pq::PqError>>()?;
        let shares = params.shares();
        let field = ShareField::new(shares.field_prime)?;
        let points: Vec<HolderId> = (1..=options.holders).map(HolderId).collect();
        let committee = ShareCommittee::new(field, &points, options.threshold, shares.max_holders)?;
        Ok(Self {
            id,
            registry,
            clients,
            holders,
            committee,
        })
    }

    /// The holder whose Shamir point is `point` (1-based, in order).
    fn holder(&self, point: HolderId) -> Option<&(SigningIdentity, SealingKey)> {
        usize::try_from(point.0)
            .ok()
            .and_then(|p| p.checked_sub(1))
            .and_then(|i| self.holders.get(i))
    }
}

/// What one client sends in a round (besides its update, kept apart).
struct Submission {
    /// The client's signature on its encoded update.
    signed_update: Envelope,
    /// One sealed, signed share per holder, in holder order.
    shares: Vec<Envelope>,
}

/// Runs the benchmark.
pub fn run(options: &Options) -> Result<Report> {
    let params = crate::load_params(&options.params)?;
    check(options, &params)?;
    let packing = Packing::new(&params);
    let n = options.params_count;
    let layout = ModelLayout::try_new([("update", vec![n as u64])])?;
    let bar = crate::progress_bar(options.progress, 8, "{spinner} {msg} [{bar:20}] {elapsed}")?;

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

    // Identities and keys (set up once per federation, not timed).
    bar.set_message("identities");
    let federation = Federation::new(&params, options)?;
    let round = RoundId(1);
    let context = RoundContext::new(&params, federation.id.0, round);
    bar.inc(1);

    // Clients: a fresh secret, its shares kept for the next phase, and the
    // encrypted update that consumes the secret.
    bar.set_message("encrypting");
    let mut shared: Vec<(AnswerKey, Vec<(HolderId, ShareMessage)>)> = Vec::new();
    let mut encrypted: Vec<RoundUpdate> = Vec::new();
    let mut share_time = Vec::new();
    let encrypt = {
        let mut samples_encrypt = Vec::new();
        for _ in 0..options.repeats {
            shared.clear();
            encrypted.clear();
            let mut encrypt_time = Duration::ZERO;
            let mut sharing = Duration::ZERO;
            for (values, s) in updates.iter().zip(&samples) {
                let start = Instant::now();
                let secret = RoundSecret::generate(&params, &mut rng);
                let generated = start.elapsed();
                let shares_start = Instant::now();
                let key = AnswerKey::random(&mut rng);
                shared.push((
                    key,
                    share_secret(&federation.committee, secret.coefficients(), &mut rng)?,
                ));
                sharing += shares_start.elapsed();
                let encrypt_start = Instant::now();
                encrypted.push(
                    secret.encrypt_update(&packing, &layout, &context, values, *s, &mut rng)?,
                );
                encrypt_time += generated + encrypt_start.elapsed();
            }
            samples_encrypt.push(encrypt_time);
            share_time.push(sharing);
        }
        median(samples_encrypt)
    };
    bar.inc(1);

    // Clients: encode and sign the update, seal and sign each share, bound
    // to the update's digest.
    bar.set_message("sealing shares");
    let mut submissions: Vec<Submission> = Vec::new();
    let mut sealing_samples = Vec::new();
    for _ in 0..options.repeats {
        submissions.clear();
        let start = Instant::now();
        for ((client, update), (key, shares)) in
            federation.clients.iter().zip(&encrypted).zip(&shared)
        {
            let bytes = ringsum_wire::encode_round_update(update);
            let signed_update = Envelope::sign(
                client,
                Routing {
                    federation: federation.id,
                    round: round.0,
                    kind: MessageKind::UpdateSubmission,
                    recipient: ParticipantId::BROADCAST,
                    parameter_set: params.id().to_string(),
                },
                bytes,
            )?;
            // The submission's identity (SHA3-256 over the signed header
            // and the payload's hash): what each share is bound to.
            let mut binding = [0u8; ringsum_pq::ROUND_SHARE_BINDING_BYTES];
            let (digest, commitment) = binding.split_at_mut(32);
            digest.copy_from_slice(&signed_update.digest());
            commitment.copy_from_slice(&key.commitment());
            let mut envelopes = Vec::with_capacity(shares.len());
            for (point, share) in shares {
                let (holder, _) = federation
                    .holder(*point)
                    .ok_or(CliError::MissingHolder { point: point.0 })?;
                let context = SealContext {
                    federation: federation.id,
                    sender: client.id(),
                    recipient: holder.id(),
                    epoch: 0,
                    round: round.0,
                };
                envelopes.push(seal_round_share(
                    client,
                    &federation.registry,
                    context,
                    params.id().as_str(),
                    &binding,
                    &encode_client_share(key, share),
                )?);
            }
            submissions.push(Submission {
                signed_update,
                shares: envelopes,
            });
        }
        sealing_samples.push(start.elapsed());
    }
    // Sharing happened during encryption (it needs the secret before the
    // encryption consumes it): both count toward this phase.
    let shares_phase = median(
        sealing_samples
            .iter()
            .zip(&share_time)
            .map(|(a, b)| *a + *b)
            .collect(),
    );
    let update_bytes = submissions
        .first()
        .map_or(0, |s| s.signed_update.payload().len());
    let fixed_bytes = submissions.first().map_or(0, |s| {
        s.signed_update.to_bytes().len() - s.signed_update.payload().len()
            + s.shares.iter().map(|e| e.to_bytes().len()).sum::<usize>()
    });
    bar.inc(1);

    // The coordinator adds the updates.
    bar.set_message("aggregating");
    let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context)?;
    let aggregate_time = time(options.repeats, || {
        aggregate = RoundAggregate::new(&params, &packing, &layout, &context)?;
        Ok(aggregate.try_add_all(&encrypted)?)
    })?;
    bar.inc(1);

    // Every holder opens and verifies each client's share and answers.
    bar.set_message("holders answering");
    let field = federation.committee.field();
    let degree = params.degree();
    let max_share = 128 + degree * 4;
    // The request's identity, which every answer's mask depends on: the
    // federation, the round and the set (here every client, in order).
    let mut request = federation.id.0.to_vec();
    request.extend_from_slice(&round.0.to_le_bytes());
    for client in &federation.clients {
        request.extend_from_slice(client.id().as_bytes());
    }
    let mut answers: Vec<HolderAnswer> = Vec::new();
    let holders_time = time(options.repeats, || {
        answers.clear();
        for ((index, (identity, sealing)), point) in
            federation.holders.iter().enumerate().zip(1u32..)
        {
            let point = HolderId(point);
            let mut inbox = Inbox::new(
                federation.id,
                round.0,
                params.id().as_str(),
                Some(identity.id()),
            );
            let mut sum = KeySumAccumulator::new(field, degree, point)?;
            for submission in &submissions {
                let envelope = submission
                    .shares
                    .get(index)
                    .ok_or(CliError::MissingShare { point: point.0 })?;
                let (_, _digest, plaintext) = open_round_share(
                    &mut inbox,
                    &federation.registry,
                    sealing,
                    identity.id(),
                    envelope,
                    max_share,
                )?;
                let (key, share) = decode_client_share(field, degree, &plaintext)?;
                sum.add(&share.expand(), &key)?;
            }
            answers.push(sum.finish(&federation.committee, &request)?);
        }
        Ok(())
    })?;
    bar.inc(1);

    // Combine every answer (a lie would be detected) and decode.
    bar.set_message("combining and decoding");
    let bound = (options.clients as u64).saturating_mul(params.gaussian().bound().unsigned_abs());
    let mut decoded = None;
    let decode = time(options.repeats, || {
        let key_sum = combine_answers(&federation.committee, &answers, degree, bound)?;
        decoded = Some(aggregate.decode(&packing, &layout, key_sum.coefficients())?);
        Ok(())
    })?;
    bar.inc(1);
    bar.finish_and_clear();
    let expected = options.clients as u64;
    let found = decoded.as_ref().map_or(0, |d| d.clients);
    if found != expected {
        return Err(CliError::IncompleteAggregate { expected, found });
    }

    // Floors: per ciphertext one inverse NTT, the expansion of a_j and the
    // sampling of e_j, spread over every core; bytes over bandwidth.
    let ntt = inverse_ntt_time(&params, &mut rng);
    let shape = UpdateShape::new(&packing, &layout);
    let ciphertexts = shape.ciphertexts();
    let threads = rayon::current_num_threads().max(1);
    let expansion = expansion_time(&context);
    let encrypt_floor =
        (ntt + expansion).mul_f64((ciphertexts * options.clients) as f64 / threads as f64);
    // Aggregation: every update's residues read once, at the bandwidth of
    // a plain u64 add loop on every core.
    let bandwidth = memory_bandwidth();
    let touched = (params.ring().poly_len() * 8 * ciphertexts * options.clients) as f64;
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
        encrypt: Phase {
            name: "encode + encrypt, all clients (fresh secret each)",
            median: encrypt,
            parameters: total,
            floor: Some(encrypt_floor),
        },
        shares: Phase {
            name: "shares: Shamir, seal, sign (shares and update), all clients",
            median: shares_phase,
            parameters: total,
            floor: None,
        },
        aggregate: Phase {
            name: "aggregate, all clients",
            median: aggregate_time,
            parameters: total,
            floor: Some(aggregate_floor),
        },
        holders: Phase {
            name: "holders: open, verify and add every share, all holders",
            median: holders_time,
            parameters: total,
            floor: None,
        },
        decode: Phase {
            name: "combine all answers (lies detected) + decode",
            median: decode,
            parameters: n as f64,
            floor: None,
        },
        update_bytes,
        fixed_bytes,
        bandwidth,
        ntt,
    })
}

/// Median time of an inverse NTT of a full RNS polynomial.
fn inverse_ntt_time(params: &ParameterSet, rng: &mut Csprng) -> Duration {
    let poly: Poly<ringsum_math::Ntt> = ringsum_math::sample::sample_uniform(params.ring(), rng);
    median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                black_box(poly.to_coeff());
                t.elapsed()
            })
            .collect(),
    )
}

/// Median time of the expansion of one a_j.
fn expansion_time(context: &RoundContext) -> Duration {
    median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                if let Ok(rows) = context.a_rows(0) {
                    let mut rows = rows;
                    let mut row = vec![0u64; rows.degree()];
                    while rows.fill_next_row(&mut row) {
                        black_box(&row);
                    }
                }
                t.elapsed()
            })
            .collect(),
    )
}

/// Bytes per second of a plain u64 add loop (read two, write one) over
/// arrays far larger than the caches, on every core, the best of five.
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
    /// The encrypted phases in order.
    pub fn phases(&self) -> [&Phase; 5] {
        [
            &self.encrypt,
            &self.shares,
            &self.aggregate,
            &self.holders,
            &self.decode,
        ]
    }

    /// The encrypted round (every phase) against the plaintext round.
    pub fn round_ratio(&self) -> f64 {
        let encrypted: f64 = self.phases().iter().map(|p| p.median.as_secs_f64()).sum();
        encrypted / self.plaintext.median.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Wire bytes per parameter of what one client sends: its update, its
    /// sealed shares and its signatures.
    pub fn bytes_per_parameter(&self) -> f64 {
        (self.update_bytes + self.fixed_bytes) as f64 / self.options.params_count as f64
    }

    /// A holder's time per client (its answer's share of the holders'
    /// phase, over the clients).
    pub fn holder_ms_per_client(&self) -> f64 {
        ms(self.holders.median)
            / f64::from(self.options.holders.max(1))
            / self.options.clients.max(1) as f64
    }
}

/// The human-readable report.
#[expect(clippy::print_stdout, reason = "the benchmark's report")]
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
    for phase in std::iter::once(&report.plaintext).chain(report.phases()) {
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
        "encrypted round / plaintext round: {:.1}x; {:.2} bytes per parameter on the wire (update {} B + shares and signatures {} B; plaintext f32: 4)",
        report.round_ratio(),
        report.bytes_per_parameter(),
        report.update_bytes,
        report.fixed_bytes
    );
    println!(
        "a holder's work: {:.3} ms per client; machine: inverse NTT of one RNS polynomial {:.0} us, memory bandwidth {:.1} GB/s",
        report.holder_ms_per_client(),
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
        "scheme": "per-round keys",
        "params_count": o.params_count,
        "clients": o.clients,
        "holders": o.holders,
        "threshold": o.threshold,
        "parameter_set": o.params,
        "repeats": o.repeats,
        "plaintext": phase(&report.plaintext),
        "encrypt": phase(&report.encrypt),
        "shares": phase(&report.shares),
        "aggregate": phase(&report.aggregate),
        "holders_answer": phase(&report.holders),
        "decrypt": phase(&report.decode),
        "round_ratio": report.round_ratio(),
        "update_bytes": report.update_bytes,
        "fixed_bytes_per_client": report.fixed_bytes,
        "bytes_per_parameter": report.bytes_per_parameter(),
        "update_bytes_per_parameter": report.update_bytes as f64 / o.params_count as f64,
        "holder_ms_per_client": report.holder_ms_per_client(),
        "ntt_us": report.ntt.as_secs_f64() * 1e6,
        "memory_bandwidth_gb_s": report.bandwidth / 1e9,
    })
}
