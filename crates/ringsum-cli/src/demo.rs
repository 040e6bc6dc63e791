//! `ringsum demo`: a federation in one process. A real data set is split
//! across institutions; they train with encrypted FedAvg (every message a
//! signed envelope; each client encrypts under a fresh key of the round and
//! Shamir-shares it among the holders, who reveal only the sum of the keys
//! of the set the coordinator signed) and, on the same splits and seeds,
//! with plaintext FedAvg; each round reports both accuracies, the largest
//! parameter difference, the time per phase and the bytes sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::privacy::PrivacySettings;
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_pq::{AlgorithmPolicy, PublicIdentity, SealingKey, SigningIdentity};
use ringsum_protocol::client::{Client, Submission};
use ringsum_protocol::coordinator::Coordinator;
use ringsum_protocol::holder::{Holder, MemoryJournal};
use ringsum_protocol::spec::{Federation, FederationSpec, HolderSpec, Policy};
use ringsum_protocol::{AuditLog, SetupError, verify_log};
use ringsum_threshold::HolderId;
use serde_json::json;

use crate::data::{self, DataError, Dataset, SplitMix};
use crate::error::{CliError, Result};
use crate::fedsgd::PrivateRun;
use crate::model::{Model, ModelKind, Training};

/// A data set shipped inside the binary.
struct Shipped {
    /// What the report calls it.
    name: &'static str,
    /// The repository file it comes from (named in its errors).
    path: &'static str,
    /// The file's bytes.
    bytes: &'static [u8],
}

/// The logistic regression's data set.
const BREAST_CANCER: Shipped = Shipped {
    name: "breast cancer (Wisconsin, shipped)",
    path: "examples/data/breast_cancer.csv",
    bytes: include_bytes!("../../../examples/data/breast_cancer.csv"),
};

/// The MLP's data set.
const DIGITS: Shipped = Shipped {
    name: "digits (UCI, shipped)",
    path: "examples/data/digits.csv.gz",
    bytes: include_bytes!("../../../examples/data/digits.csv.gz"),
};

/// The longest demo.
const MAX_ROUNDS: u64 = 10_000;

/// The most key holders of the demo.
const MAX_HOLDERS: u64 = 64;

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Institutions that train.
    pub clients: usize,
    /// Key holders.
    pub holders: usize,
    /// Holders needed to decrypt.
    pub threshold: u32,
    /// Training rounds.
    pub rounds: u64,
    /// Parameter-set id or TOML file.
    pub params: String,
    /// A CSV data set instead of the shipped one.
    pub dataset: Option<PathBuf>,
    /// The model.
    pub model: ModelKind,
    /// Seed of the data split, initial model and local training.
    pub seed: u64,
    /// Clients that vanish mid-round (in every round, different ones).
    pub drop_clients: usize,
    /// Holders that vanish (from the first round on, for good).
    pub drop_holders: usize,
    /// Where to write the audit log.
    pub audit_log: Option<PathBuf>,
    /// Hybrid ML-DSA + Ed25519 and ML-KEM + X25519.
    pub hybrid: bool,
    /// Show progress bars.
    pub progress: bool,
    /// Deterministic client randomness (tests only: see
    /// `ringsum_net::insecure_test_rng`).
    pub insecure_seed: Option<u64>,
    /// Write the final encrypted-FedAvg model here (JSON array).
    pub model_out: Option<PathBuf>,
    /// Differentially private FedSGD instead of FedAvg.
    pub privacy: Option<DemoPrivacy>,
}

/// The demo's differential privacy: per-record clipping, one gradient
/// step per round (FedSGD), each client's share of discrete Gaussian noise
/// added before encryption.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DemoPrivacy {
    /// Target epsilon over the run.
    pub epsilon: f64,
    /// Target delta over the run.
    pub delta: f64,
    /// L2 norm each record's gradient is clipped to.
    pub clip: f64,
    /// The step's rate.
    pub learning_rate: f64,
}

/// One round's numbers.
#[derive(Clone, Debug)]
pub struct RoundReport {
    /// The round.
    pub round: u64,
    /// Test accuracy of the encrypted-FedAvg model.
    pub accuracy_encrypted: f64,
    /// Test accuracy of the plaintext-FedAvg model.
    pub accuracy_plaintext: f64,
    /// max |theta_encrypted - theta_plaintext| over all parameters.
    pub max_difference: f64,
    /// max |decrypted average - exact weighted average of the same updates|.
    pub aggregation_error: f64,
    /// The quantization bound on that error.
    pub error_bound: f64,
    /// Submissions summed.
    pub clients: u64,
    /// Holders that answered.
    pub holders_answered: usize,
    /// Holders whose answers were wrong (corrected and named).
    pub holders_named: Vec<u32>,
    /// Time clients spent encrypting and signing.
    pub encrypt: Duration,
    /// Time the coordinator spent verifying and adding.
    pub aggregate: Duration,
    /// Time for forwarding shares, the holders' answers, combining and
    /// decoding.
    pub decrypt: Duration,
    /// Bytes of all envelopes of the round.
    pub bytes: usize,
    /// With differential privacy: epsilon of this round alone, and spent
    /// so far (both at the run's delta).
    pub epsilon: Option<(f64, f64)>,
}

/// What a differentially private run reports beside the rounds.
#[derive(Clone, Debug)]
pub struct PrivacyReport {
    /// The settings asked for.
    pub settings: DemoPrivacy,
    /// Epsilon spent over the run.
    pub epsilon: f64,
    /// The planned epsilon over all rounds (the worst case the plan was
    /// calibrated for).
    pub planned_epsilon: f64,
    /// Clients whose noise every sum holds.
    pub noise_clients: u64,
    /// Standard deviation of the noise of a sum, per parameter, in
    /// gradient units.
    pub noise_std: f64,
    /// The learning rate after rounding the weight.
    pub learning_rate: f64,
    /// Quantization scale exponent.
    pub scale_bits: u32,
    /// The planned records per client (the public denominator).
    pub records_per_client: u64,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Data set name.
    pub dataset: String,
    /// Model name.
    pub model: String,
    /// Parameters in the model.
    pub parameters: usize,
    /// Parameter set.
    pub params: String,
    /// Key holders.
    pub holders: usize,
    /// Holders needed to open a sum.
    pub threshold: u32,
    /// Per round.
    pub rounds: Vec<RoundReport>,
    /// Time to set up the federation (keys, registry).
    pub setup: Duration,
    /// Total time.
    pub total: Duration,
    /// Audit log lines (verified).
    pub audit_lines: usize,
    /// Differential privacy, when on.
    pub privacy: Option<PrivacyReport>,
}

impl Report {
    /// The final accuracies.
    pub fn final_accuracies(&self) -> (f64, f64) {
        self.rounds
            .last()
            .map_or((0.0, 0.0), |r| (r.accuracy_encrypted, r.accuracy_plaintext))
    }
}

fn load_data(options: &Options) -> Result<(String, Dataset), DataError> {
    if let Some(path) = &options.dataset {
        return Ok((path.display().to_string(), data::load(path)?));
    }
    let shipped = match options.model {
        ModelKind::Logistic => BREAST_CANCER,
        ModelKind::Mlp { .. } => DIGITS,
    };
    let data = data::load_bytes(Path::new(shipped.path), shipped.bytes)?;
    Ok((shipped.name.to_owned(), data))
}

/// Local training in the demo and in `ringsum join`.
pub const TRAINING: Training = Training {
    epochs: 2,
    learning_rate: 0.05,
    batch: 16,
};

/// The demo's data: each institution's standardised training part and the
/// shared test set.
#[derive(Clone, Debug)]
pub struct Partition {
    /// The data set's name.
    pub name: String,
    /// One part per client.
    pub parts: Vec<Dataset>,
    /// The test set.
    pub test: Dataset,
    /// Features.
    pub dim: usize,
    /// Classes.
    pub classes: usize,
}

/// Splits the data set as the demo does for `options.clients` clients and
/// `options.seed` (`ringsum split` writes the same parts to files).
///
/// # Errors
/// An unreadable data set, or too few rows for the clients.
pub fn partition(options: &Options, min_samples: u64) -> Result<Partition, DataError> {
    let (name, data) = load_data(options)?;
    let mut rng = SplitMix::new(options.seed);
    let (mut train, mut test) = data::train_test_split(&data, 0.2, &mut rng);
    // Scaling agreed up front (in a deployment: published with the model).
    let (mean, std) = data::standardiser(&train);
    data::standardise(&mut train, &mean, &std);
    data::standardise(&mut test, &mean, &std);
    let usize_min = usize::try_from(min_samples).unwrap_or(usize::MAX);
    let parts = data::split_non_iid(&train, options.clients, usize_min, &mut rng)?;
    Ok(Partition {
        name,
        parts,
        test,
        dim: data.dim(),
        classes: data.classes,
    })
}

/// The seed of client `index`'s local training in `round`.
#[must_use]
pub const fn training_seed(seed: u64, round: u64, index: usize) -> u64 {
    seed ^ (round << 32) ^ index as u64
}

/// The initial global model for `seed`.
#[must_use]
pub fn initial_model(model: &Model, seed: u64) -> Vec<f32> {
    model.init(&mut SplitMix::new(seed ^ 0x1234))
}

fn check(options: &Options, policy: &Policy) -> Result<()> {
    if options.clients == 0 {
        return Err(CliError::OptionTooSmall {
            option: "--clients",
            min: 1,
        });
    }
    if options.holders == 0 || options.holders as u64 > MAX_HOLDERS {
        return Err(CliError::OptionOutOfRange {
            option: "--holders",
            min: 1,
            max: MAX_HOLDERS,
        });
    }
    let threshold = options.threshold as usize;
    if threshold == 0 || threshold > options.holders {
        return Err(CliError::ThresholdOutOfRange {
            threshold: options.threshold,
            holders: options.holders as u64,
        });
    }
    if 2 * threshold <= options.holders {
        return Err(SetupError::ThresholdNotMajority {
            holders: options.holders,
            threshold: options.threshold,
        }
        .into());
    }
    if options.holders.saturating_sub(options.drop_holders) < threshold {
        return Err(CliError::TooFewHoldersLeft {
            dropped: options.drop_holders,
            holders: options.holders,
            threshold: options.threshold,
        });
    }
    if options.clients.saturating_sub(options.drop_clients) < policy.min_clients {
        return Err(CliError::TooFewClientsLeft {
            dropped: options.drop_clients,
            clients: options.clients,
            min_clients: policy.min_clients,
        });
    }
    if options.rounds == 0 || options.rounds > MAX_ROUNDS {
        return Err(CliError::OptionOutOfRange {
            option: "--rounds",
            min: 1,
            max: MAX_ROUNDS,
        });
    }
    Ok(())
}

fn clip(values: &mut [f32], c: f32) {
    values.iter_mut().for_each(|v| *v = v.clamp(-c, c));
}

/// The fewest samples a client of the demo (and of `ringsum split`'s
/// parts) trains on.
pub const MIN_SAMPLES: u64 = 10;

/// The demo's round policy: at least 3 clients per sum (2 if the demo has
/// fewer), at least [`MIN_SAMPLES`] samples each, every round of the run.
///
/// With differential privacy every sum must hold the noise of the planned
/// set (all clients but those the demo drops), so the minimum is raised to
/// it: the holders refuse a smaller set.
fn demo_policy(options: &Options, params: &ParameterSet) -> Policy {
    let least = options.clients.clamp(2, 3);
    Policy {
        min_clients: if options.privacy.is_some() {
            options
                .clients
                .saturating_sub(options.drop_clients)
                .max(least)
        } else {
            least
        },
        min_samples: MIN_SAMPLES,
        max_weight: params.encoding().max_weight,
        rounds: options.rounds,
    }
}

/// The participants of the demo's federation, in one process.
struct Members {
    federation: Arc<Federation>,
    coordinator: Coordinator,
    coordinator_public: PublicIdentity,
    clients: Vec<Client>,
    holders: Vec<Holder<MemoryJournal>>,
}

fn members(
    options: &Options,
    params: &ParameterSet,
    layout: ModelLayout,
    policy: Policy,
    privacy: Option<PrivacySettings>,
    initial: Vec<f32>,
) -> Result<Members> {
    let algorithms = if options.hybrid {
        AlgorithmPolicy::HYBRID
    } else {
        AlgorithmPolicy::POST_QUANTUM
    };
    let coordinator_id = SigningIdentity::generate(algorithms.signature)?;
    let client_ids = (0..options.clients)
        .map(|_| SigningIdentity::generate(algorithms.signature))
        .collect::<Result<Vec<_>, _>>()?;
    let holder_keys = (0..options.holders)
        .map(|_| {
            Ok((
                SigningIdentity::generate(algorithms.signature)?,
                SealingKey::generate(algorithms.kem)?,
            ))
        })
        .collect::<Result<Vec<_>, ringsum_pq::PqError>>()?;
    let coordinator_public = coordinator_id.public().clone();
    let federation = Arc::new(Federation::new(FederationSpec {
        params: params.clone(),
        layout,
        policy,
        threshold: options.threshold,
        algorithms,
        coordinator: coordinator_public.clone(),
        holders: holder_keys
            .iter()
            .zip(1u32..)
            .map(|((id, key), point)| HolderSpec {
                point: HolderId(point),
                signing: id.public().clone(),
                sealing: key.public().clone(),
            })
            .collect(),
        clients: client_ids.iter().map(|c| c.public().clone()).collect(),
        privacy,
    })?);
    let audit = match &options.audit_log {
        Some(path) => AuditLog::create(federation.id(), params.id().as_str(), path)?,
        None => AuditLog::in_memory(federation.id(), params.id().as_str()),
    };
    let coordinator = Coordinator::new(Arc::clone(&federation), coordinator_id, initial, audit)?;
    let clients = client_ids
        .into_iter()
        .map(|id| Client::new(Arc::clone(&federation), id))
        .collect::<Result<Vec<_>, _>>()?;
    let holders = holder_keys
        .into_iter()
        .map(|(id, key)| Holder::new(Arc::clone(&federation), id, key, MemoryJournal::default()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Members {
        federation,
        coordinator,
        coordinator_public,
        clients,
        holders,
    })
}

/// Trains from `global` on `part` and returns the clipped update.
fn local_update(
    model: &Model,
    global: &[f32],
    part: &Dataset,
    seed: u64,
    clip_value: f32,
) -> Vec<f32> {
    let mut delta: Vec<f32> = model
        .train(global, part, TRAINING, &mut SplitMix::new(seed))
        .iter()
        .zip(global)
        .map(|(new, old)| new - old)
        .collect();
    clip(&mut delta, clip_value);
    delta
}

/// Runs the demo.
#[expect(
    clippy::cast_possible_truncation,
    reason = "model values are f32 by design; averages and the clip are computed in f64"
)]
pub fn run(options: &Options) -> Result<Report> {
    let started = Instant::now();
    let params = crate::load_params(&options.params)?;
    let policy = demo_policy(options, &params);
    check(options, &policy)?;
    crate::check_client_count(&params, options.clients)?;
    let Partition {
        name: dataset_name,
        parts,
        test,
        dim,
        classes,
    } = partition(options, policy.min_samples)?;
    let model = Model::new(options.model, dim, classes);
    let layout = ModelLayout::try_new(model.layout())?;
    let clip_value = params.encoding().clip as f32;
    let privacy = options
        .privacy
        .map(|settings| crate::fedsgd::settings(settings, &parts, policy.min_clients as u64));
    let initial = initial_model(&model, options.seed);
    let setup_started = Instant::now();
    let Members {
        federation,
        mut coordinator,
        coordinator_public,
        clients,
        mut holders,
    } = members(options, &params, layout, policy, privacy, initial.clone())?;
    let min_clients = federation.policy().min_clients as u64;
    let mut private = federation
        .privacy()
        .cloned()
        .map(|plan| PrivateRun::new(plan, min_clients));
    let setup = setup_started.elapsed();
    let mut crypto_rng = Csprng::from_os()?;

    let bar = crate::progress_bar(
        options.progress,
        options.rounds,
        "{spinner} round {pos}/{len} [{bar:30}] {elapsed} {msg}",
    )?;
    let mut plain = initial;
    let mut reports = Vec::new();
    // Holders that vanish: the last ones, from the first round on.
    let live_holders = options.holders - options.drop_holders;
    for round in 1..=options.rounds {
        let mut bytes = 0usize;
        let announcement = coordinator.open_round()?;
        bytes += announcement.to_bytes().len() * (clients.len() + holders.len());
        let round_id = RoundId(round);
        for holder in &mut holders {
            holder.follow(&announcement)?;
        }
        let global = coordinator.model().to_vec();
        let dropped: Vec<usize> = (0..options.drop_clients)
            .map(|j| (usize::try_from(round).unwrap_or(0) * 3 + j) % clients.len())
            .collect();
        let (mut encrypt, mut aggregate) = (Duration::ZERO, Duration::ZERO);
        let mut plain_sum = vec![0f64; plain.len()];
        let mut exact_sum = vec![0f64; plain.len()];
        let mut weight = 0f64;
        let mut submitted = 0u64;
        for (index, (client, part)) in clients.iter().zip(&parts).enumerate() {
            if dropped.contains(&index) {
                continue;
            }
            let seed = training_seed(options.seed, round, index);
            let mut seeded = options
                .insecure_seed
                .map(|s| ringsum_net::insecure_test_rng(s, index, round));
            let rng = seeded.as_mut().unwrap_or(&mut crypto_rng);
            let t = Instant::now();
            let wire = match &private {
                None => {
                    let samples = part.len() as u64;
                    // Encrypted FedAvg: train from the published global model.
                    let delta = local_update(&model, &global, part, seed, clip_value);
                    for (s, d) in exact_sum.iter_mut().zip(&delta) {
                        *s += f64::from(*d) * samples as f64;
                    }
                    let submission = client.submit(round_id, &delta, samples, rng)?;
                    // Plaintext FedAvg: the same client, data and seed, from its own model.
                    let plain_delta = local_update(&model, &plain, part, seed, clip_value);
                    for (s, d) in plain_sum.iter_mut().zip(&plain_delta) {
                        *s += f64::from(*d) * samples as f64;
                    }
                    weight += samples as f64;
                    submission.to_bytes()
                }
                Some(run) => {
                    let noisy = run.contribution(&model, &global, part, rng)?;
                    for (s, v) in exact_sum.iter_mut().zip(noisy.values()) {
                        *s += *v as f64;
                    }
                    weight += noisy.weight() as f64;
                    let submission = client.submit_private(round_id, noisy, rng)?;
                    // The same training without noise or quantization,
                    // from its own model.
                    for (s, g) in plain_sum
                        .iter_mut()
                        .zip(run.clipped_sum(&model, &plain, part))
                    {
                        *s += g;
                    }
                    submission.to_bytes()
                }
            };
            encrypt += t.elapsed();
            bytes += wire.len();
            let t = Instant::now();
            let submission = Submission::from_bytes(&federation, &wire)?;
            coordinator.accept_submission(submission)?;
            aggregate += t.elapsed();
            submitted += 1;
        }
        match &private {
            None => {
                for (p, s) in plain.iter_mut().zip(&plain_sum) {
                    *p += (s / weight) as f32;
                }
            }
            Some(run) => run.plain_step(&mut plain, &plain_sum, submitted),
        }

        // The holders: shares forwarded, the set asked, the answers combined.
        let t = Instant::now();
        for holder in holders.iter_mut().take(live_holders) {
            let point = holder.point();
            let id = federation
                .holders()
                .get(&point)
                .copied()
                .ok_or(CliError::MissingHolder { point: point.0 })?;
            for share in coordinator.shares_for(id) {
                bytes += share.to_bytes().len();
                holder.receive_share(share)?;
            }
        }
        let request = coordinator.close()?;
        bytes += request.to_bytes().len() * holders.len();
        for holder in holders.iter_mut().take(live_holders) {
            let answer = holder.answer(&request)?;
            bytes += answer.to_bytes().len();
            coordinator.accept_answer(answer)?;
        }
        let outcome = coordinator.finish()?;
        let decrypt = t.elapsed();
        bytes += outcome.envelope.to_bytes().len() * clients.len();

        let aggregation_error = outcome
            .result
            .model
            .iter()
            .zip(&global)
            .zip(&exact_sum)
            .map(|((new, old), exact)| (f64::from(new - old) - exact / weight).abs())
            .fold(0.0, f64::max);
        let max_difference = outcome
            .result
            .model
            .iter()
            .zip(&plain)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, f64::max);
        let (error_bound, epsilon) = match &mut private {
            None => (outcome.result.error_bound, None),
            Some(run) => {
                // Nothing is quantized after the clients' integers: the
                // decrypted average differs from their exact sum over the
                // weights by the f32 roundings of the average, the new
                // model and the difference (half an ulp each, doubled).
                let largest = |v: &mut dyn Iterator<Item = f64>| v.fold(0.0, f64::max);
                let model_max =
                    largest(&mut outcome.result.model.iter().map(|v| f64::from(v.abs())));
                let average_max = largest(&mut exact_sum.iter().map(|v| (v / weight).abs()));
                let bound = (model_max + 2.0 * average_max) * f64::from(f32::EPSILON);
                (bound, Some(run.spend(outcome.result.clients)?))
            }
        };
        let report = RoundReport {
            round,
            accuracy_encrypted: model.accuracy(&outcome.result.model, &test),
            accuracy_plaintext: model.accuracy(&plain, &test),
            max_difference,
            aggregation_error,
            error_bound,
            clients: outcome.result.clients,
            holders_answered: live_holders,
            holders_named: outcome.liars.iter().map(|h| h.0).collect(),
            encrypt,
            aggregate,
            decrypt,
            bytes,
            epsilon,
        };
        bar.set_message(format!(
            "accuracy {:.1}% (plaintext {:.1}%)",
            report.accuracy_encrypted * 100.0,
            report.accuracy_plaintext * 100.0
        ));
        bar.inc(1);
        reports.push(report);
    }
    bar.finish_and_clear();
    if let Some(path) = &options.model_out {
        let json = serde_json::to_string(coordinator.model()).map_err(|source| CliError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(path, json).map_err(CliError::io(path))?;
    }
    let log = coordinator.audit().lines().join("\n");
    let summary = verify_log(&log, Some(&coordinator_public), Some(federation.id()))
        .map_err(|e| CliError::OwnAuditLog(Box::new(e)))?;
    Ok(Report {
        dataset: dataset_name,
        model: match options.model {
            ModelKind::Logistic => "logistic regression".into(),
            ModelKind::Mlp { hidden } => format!("MLP ({hidden} hidden units)"),
        },
        parameters: model.size(),
        params: params.id().to_string(),
        holders: options.holders,
        threshold: options.threshold,
        rounds: reports,
        setup,
        total: started.elapsed(),
        audit_lines: summary.lines,
        privacy: private
            .map(|run| -> Result<PrivacyReport> {
                let plan = &run.plan;
                Ok(PrivacyReport {
                    settings: options.privacy.unwrap_or(DemoPrivacy {
                        epsilon: plan.settings().epsilon,
                        delta: plan.settings().delta,
                        clip: plan.settings().clip,
                        learning_rate: plan.settings().learning_rate,
                    }),
                    epsilon: run.spent()?,
                    planned_epsilon: plan.planned_epsilon(plan.rounds())?,
                    noise_clients: plan.settings().noise_clients,
                    noise_std: plan.noise_std(),
                    learning_rate: plan.effective_learning_rate(),
                    scale_bits: plan.scale_bits(),
                    records_per_client: plan.settings().records_per_client,
                })
            })
            .transpose()?,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The human-readable report.
#[expect(clippy::print_stdout, reason = "the demo's report")]
pub fn print_text(report: &Report) {
    println!(
        "ringsum demo: {} on {}, {} parameters, parameter set {}",
        report.model, report.dataset, report.parameters, report.params
    );
    println!(
        "{} key holders, any {} open a round's sum; setup {:.0} ms",
        report.holders,
        report.threshold,
        ms(report.setup)
    );
    if let Some(p) = &report.privacy {
        println!(
            "differential privacy: one gradient step per round (FedSGD, learning rate {:.3}), \
             each record's gradient clipped to L2 norm {}, discrete Gaussian noise of std {:.3} \
             per parameter in every sum ({} clients' shares, quantization 2^{})",
            p.learning_rate, p.settings.clip, p.noise_std, p.noise_clients, p.scale_bits
        );
        println!("  \"plaintext\" below is the same training without noise or encryption");
    }
    println!(
        "{:>5}  {:>9}  {:>9}  {:>10}  {:>9}  {:>8}  {:>9}  {:>8}  {:>9}",
        "round",
        "encrypted",
        "plaintext",
        "max|diff|",
        "clients",
        "encrypt",
        "aggregate",
        "decrypt",
        "sent"
    );
    for r in &report.rounds {
        println!(
            "{:>5}  {:>8.2}%  {:>8.2}%  {:>10.2e}  {:>9}  {:>6.0}ms  {:>7.0}ms  {:>6.0}ms  {:>7.2}MB{}{}",
            r.round,
            r.accuracy_encrypted * 100.0,
            r.accuracy_plaintext * 100.0,
            r.max_difference,
            r.clients,
            ms(r.encrypt),
            ms(r.aggregate),
            ms(r.decrypt),
            r.bytes as f64 / 1e6,
            r.epsilon
                .map_or_else(String::new, |(_, total)| format!("  epsilon {total:.3}")),
            if r.holders_named.is_empty() {
                String::new()
            } else {
                format!(
                    "  (wrong answers corrected, holders {:?} named)",
                    r.holders_named
                )
            }
        );
    }
    let (enc, plain) = report.final_accuracies();
    let worst = report
        .rounds
        .iter()
        .map(|r| r.aggregation_error / r.error_bound.max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max);
    println!(
        "final accuracy: encrypted {:.2}%, plaintext {:.2}% (difference {:.2} points)",
        enc * 100.0,
        plain * 100.0,
        (enc - plain).abs() * 100.0
    );
    if worst <= 1.0 {
        println!(
            "every decrypted average within its quantization bound (worst {:.0}% of the bound)",
            worst * 100.0
        );
    } else {
        println!(
            "WARNING: a decrypted average exceeded its quantization bound ({:.0}% of the bound)",
            worst * 100.0
        );
    }
    if let Some(p) = &report.privacy {
        println!(
            "privacy spent: epsilon {:.3} at delta {:e} over {} rounds (target {}; the plan's \
             worst case {:.3})",
            p.epsilon,
            p.settings.delta,
            report.rounds.len(),
            p.settings.epsilon,
            p.planned_epsilon
        );
    }
    println!(
        "audit log: {} lines, chain and signatures verified; total {:.1} s",
        report.audit_lines,
        report.total.as_secs_f64()
    );
}

/// The machine-readable report.
pub fn to_json(report: &Report) -> serde_json::Value {
    let (enc, plain) = report.final_accuracies();
    json!({
        "dataset": report.dataset,
        "model": report.model,
        "parameters": report.parameters,
        "parameter_set": report.params,
        "holders": report.holders,
        "threshold": report.threshold,
        "setup_ms": ms(report.setup),
        "total_ms": ms(report.total),
        "audit_lines": report.audit_lines,
        "final": {"accuracy_encrypted": enc, "accuracy_plaintext": plain},
        "epsilon": report.privacy.as_ref().map(|p| p.epsilon),
        "privacy": report.privacy.as_ref().map(|p| json!({
            "epsilon": p.epsilon,
            "delta": p.settings.delta,
            "target_epsilon": p.settings.epsilon,
            "planned_epsilon": p.planned_epsilon,
            "clip": p.settings.clip,
            "learning_rate": p.learning_rate,
            "noise_std": p.noise_std,
            "noise_clients": p.noise_clients,
            "scale_bits": p.scale_bits,
            "records_per_client": p.records_per_client,
        })),
        "rounds": report.rounds.iter().map(|r| json!({
            "round": r.round,
            "accuracy_encrypted": r.accuracy_encrypted,
            "accuracy_plaintext": r.accuracy_plaintext,
            "max_difference": r.max_difference,
            "aggregation_error": r.aggregation_error,
            "error_bound": r.error_bound,
            "clients": r.clients,
            "holders_answered": r.holders_answered,
            "holders_named": r.holders_named,
            "encrypt_ms": ms(r.encrypt),
            "aggregate_ms": ms(r.aggregate),
            "decrypt_ms": ms(r.decrypt),
            "bytes": r.bytes,
            "epsilon": r.epsilon.map(|(_, total)| total),
            "epsilon_round": r.epsilon.map(|(round, _)| round),
        })).collect::<Vec<_>>(),
    })
}
