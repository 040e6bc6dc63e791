//! The `ringsum` command line: `demo`, `serve`, `join`, `status`, `split`,
//! `params list|check`, `audit verify`, `keygen`, `assess`. Every failure prints one clear line and exits non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ringsum_core::ParameterSet;
use ringsum_core::scheme::Packing;
use ringsum_pq::{KemAlgorithm, PublicIdentity, SealingKey, SignatureAlgorithm, SigningIdentity};

use ringsum_cli::demo;
use ringsum_cli::model::ModelKind;
use ringsum_cli::{CliError, Result};

/// Post-quantum secure aggregation for federated learning.
#[derive(Debug, Parser)]
#[command(name = "ringsum", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model with encrypted FedAvg across simulated institutions,
    /// next to plaintext FedAvg on the same splits, and compare.
    Demo(DemoArgs),
    /// Measure the whole aggregation pipeline against plaintext FedAvg.
    Bench(BenchArgs),
    /// The parameter sets: list them, or check a file.
    Params {
        #[command(subcommand)]
        command: ParamsCommand,
    },
    /// Audit logs.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the coordinator of a federation on several machines.
    Serve {
        /// The federation file (TOML; see README "Run a federation on
        /// several machines").
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the id of the federation a federation file describes: what
    /// every participant pins with --federation.
    FederationId {
        /// The federation file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Take part in a federation: as a client (train on a CSV, encrypt
    /// under a fresh round key, submit) or a key holder (receive the
    /// clients' sealed key shares, answer the coordinator's signed set).
    Join(JoinCli),
    /// Show a coordinator's round progress.
    Status {
        #[command(flatten)]
        connect: ConnectCli,
        /// An identity directory of a member (`identity.key`).
        #[arg(long)]
        identity: PathBuf,
        /// Print one JSON object (every field of the coordinator's status,
        /// the federation id and the coordinator's URL) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the demo's split of a data set to per-client CSV files (and
    /// test.csv), for `ringsum join --data`.
    Split {
        /// Clients.
        #[arg(long)]
        clients: usize,
        /// Seed of the split (the federation file's `seed`).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The model whose shipped data set to split.
        #[arg(long, value_enum, default_value_t = ModelArg::Logistic)]
        model: ModelArg,
        /// A CSV data set instead of the shipped one.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// The output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// The quantum threat assessment of a federation: every primitive it
    /// relies on, what it protects, its status against a quantum adversary
    /// (docs/assess.md). Exit code 0 when nothing the confidentiality of
    /// updates rests on is quantum-vulnerable, 1 otherwise.
    Assess(AssessCli),
    /// Write a new identity (ML-DSA-65) and, for key holders, a sealing
    /// key (ML-KEM-1024) to a directory.
    Keygen {
        /// The directory (created if missing; existing key files are never
        /// overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Also write a sealing key, as key holders need.
        #[arg(long)]
        holder: bool,
        /// Hybrid keys: ML-DSA-65 + Ed25519 and ML-KEM-1024 + X25519.
        #[arg(long)]
        hybrid: bool,
    },
}

#[derive(Debug, clap::Args)]
struct ConnectCli {
    /// The coordinator, https://host:port (http:// needs --insecure-plaintext).
    #[arg(long)]
    coordinator: String,
    /// The coordinator's certificate or its CA (PEM), e.g. its tls-cert.pem.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The federation id to insist on (required to join): the 64 hex
    /// digits `ringsum serve` and `ringsum federation-id` print, or the
    /// `federation.id` file the coordinator writes.
    #[arg(long)]
    federation: Option<String>,
    /// Allow a plaintext http:// coordinator (loopback tests and demos only).
    #[arg(long)]
    insecure_plaintext: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Client,
    Holder,
}

#[derive(Debug, clap::Args)]
struct JoinCli {
    /// What this participant is.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Its identity directory (from `ringsum keygen`).
    #[arg(long)]
    identity: PathBuf,
    #[command(flatten)]
    connect: ConnectCli,
    /// A client's local data (CSV, numeric features, class label last).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Instead of --data: a client's update computed elsewhere, as a
    /// safetensors file with the federation's tensor names and shapes
    /// (F32, F64, F16 or BF16), e.g. from `safetensors.torch.save_file`.
    /// It is submitted in the next round the client can join; then the
    /// client stops.
    #[arg(long)]
    update: Option<PathBuf>,
    /// With --update: the number of samples the update was trained on
    /// (its weight; within the federation's min_samples and max_weight).
    #[arg(long)]
    samples: Option<u64>,
    /// Where to keep state across restarts (default: inside --identity).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Deterministic client randomness: INSECURE, tests only.
    #[arg(long, hide = true)]
    insecure_seed: Option<u64>,
}

impl ConnectCli {
    fn args(&self) -> Result<ringsum_cli::net::JoinArgs> {
        Ok(ringsum_cli::net::JoinArgs {
            coordinator: self.coordinator.clone(),
            ca: self.ca.clone(),
            federation: self
                .federation
                .as_deref()
                .map(ringsum_cli::net::federation_arg)
                .transpose()?,
            insecure_plaintext: self.insecure_plaintext,
        })
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGSUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[derive(Debug, Subcommand)]
enum ParamsCommand {
    /// The shipped parameter sets with their security and capacity.
    List,
    /// Validate a parameter-set file.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check an audit log's chain and signatures; names the first bad line.
    Verify {
        /// The log (JSON lines).
        file: PathBuf,
        /// The coordinator's public key file (raw encoding); without it the
        /// key named in the log's first line is used.
        #[arg(long)]
        coordinator_key: Option<PathBuf>,
        /// The coordinator key's algorithm when --coordinator-key is given.
        #[arg(long, default_value = "ML-DSA-65")]
        algorithm: String,
        /// The federation id the log must belong to: its 64 hex digits, or
        /// a file holding them (the coordinator's `federation.id`).
        #[arg(long)]
        federation: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModelArg {
    /// Logistic regression (default data: breast cancer).
    Logistic,
    /// A small MLP (default data: digits).
    Mlp,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Parameters per update.
    #[arg(long, default_value_t = 1_000_000)]
    params_count: usize,
    /// Clients per round.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Key holders.
    #[arg(long, default_value_t = 5)]
    holders: u32,
    /// Holders needed to decrypt.
    #[arg(long, default_value_t = 3)]
    threshold: u32,
    /// A shipped per-round-key parameter set or a TOML file.
    #[arg(long, default_value = ringsum_core::DEFAULT_ROUND_KEY_SET)]
    params: String,
    /// Runs per phase; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// A machine-readable report on stdout (fields in docs/bench.md).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Institutions that train.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Key holders; the first ones are institutions that also train.
    #[arg(long, default_value_t = 5)]
    holders: usize,
    /// Holders needed to decrypt.
    #[arg(long, default_value_t = 3)]
    threshold: u32,
    /// Training rounds.
    #[arg(long, default_value_t = 10)]
    rounds: u64,
    /// A shipped per-round-key parameter set or a TOML file.
    #[arg(long, default_value = ringsum_core::DEFAULT_ROUND_KEY_SET)]
    params: String,
    /// The model.
    #[arg(long, value_enum, default_value_t = ModelArg::Logistic)]
    model: ModelArg,
    /// A CSV data set: numeric features, integer class label last.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Seed of the data split, initial model and local training.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Clients that vanish mid-round, in every round.
    #[arg(long, default_value_t = 0)]
    drop_clients: usize,
    /// Holders that vanish from the first round on (at least t must stay).
    #[arg(long, default_value_t = 0)]
    drop_holders: usize,
    /// Write the signed audit log here.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Hybrid signatures and sealing (ML-DSA-65 + Ed25519, ML-KEM-1024 + X25519).
    #[arg(long)]
    hybrid: bool,
    /// A machine-readable summary on stdout (no progress bars).
    #[arg(long)]
    json: bool,
    /// Deterministic client randomness from this seed: INSECURE, for
    /// comparing with a networked run (`ringsum join --insecure-seed`).
    #[arg(long, hide = true)]
    insecure_seed: Option<u64>,
    /// Write the final encrypted-FedAvg model here (JSON array).
    #[arg(long)]
    model_out: Option<PathBuf>,
    /// Differentially private training: one gradient step per round with
    /// each record's gradient clipped and each client's share of discrete
    /// Gaussian noise added before encryption, calibrated to this epsilon
    /// over all rounds (docs/privacy.md).
    #[arg(long, requires = "dp_delta")]
    dp_epsilon: Option<f64>,
    /// The delta of --dp-epsilon, over all rounds.
    #[arg(long, requires = "dp_epsilon")]
    dp_delta: Option<f64>,
    /// L2 norm each record's gradient is clipped to (with --dp-epsilon).
    #[arg(long, default_value_t = 1.0, requires = "dp_epsilon")]
    dp_clip: f64,
    /// The gradient step's rate (with --dp-epsilon).
    #[arg(long, default_value_t = 2.0, requires = "dp_epsilon")]
    dp_learning_rate: f64,
}

#[derive(Debug, clap::Args)]
struct AssessCli {
    /// The federation file (as for `ringsum serve`).
    #[arg(long)]
    config: PathBuf,
    /// Also probe the running coordinator's TLS, https://host:port.
    #[arg(long)]
    coordinator: Option<String>,
    /// The coordinator's certificate or its CA (PEM), e.g. its
    /// tls-cert.pem; without it the chain is not verified.
    #[arg(long, requires = "coordinator")]
    ca: Option<PathBuf>,
    /// The name to check the certificate against (default: the URL's host).
    #[arg(long, requires = "coordinator")]
    server_name: Option<String>,
    /// Warnings (classical TLS group or certificate, plaintext) fail too.
    #[arg(long)]
    strict: bool,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// `ringsum assess`: prints the assessment; its exit code is the gate's.
#[expect(clippy::print_stdout, reason = "the command's output")]
fn assess(args: &AssessCli) -> Result<ExitCode> {
    let assessment = ringsum_cli::assess::run(&ringsum_cli::assess::Options {
        config: args.config.clone(),
        coordinator: args.coordinator.clone(),
        ca: args.ca.clone(),
        server_name: args.server_name.clone(),
        strict: args.strict,
    })?;
    if args.json {
        println!("{}", assessment.to_json());
    } else {
        print!("{}", assessment.to_text());
    }
    Ok(ExitCode::from(assessment.gate.exit_code))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `assess` exits 1 for a failed gate without an error line.
    let result = match cli.command {
        Command::Assess(args) => assess(&args),
        command => run(Cli { command }).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "the one line a failed command prints")]
            {
                eprintln!("error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::print_stdout, reason = "the commands' output")]
fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(args) => {
            let options = demo::Options {
                clients: args.clients,
                holders: args.holders,
                threshold: args.threshold,
                rounds: args.rounds,
                params: args.params,
                dataset: args.dataset,
                model: match args.model {
                    ModelArg::Logistic => ModelKind::Logistic,
                    ModelArg::Mlp => ModelKind::Mlp { hidden: 32 },
                },
                seed: args.seed,
                drop_clients: args.drop_clients,
                drop_holders: args.drop_holders,
                audit_log: args.audit_log,
                hybrid: args.hybrid,
                progress: !args.json,
                insecure_seed: args.insecure_seed,
                model_out: args.model_out,
                privacy: match (args.dp_epsilon, args.dp_delta) {
                    (Some(epsilon), Some(delta)) => Some(demo::DemoPrivacy {
                        epsilon,
                        delta,
                        clip: args.dp_clip,
                        learning_rate: args.dp_learning_rate,
                    }),
                    _ => None,
                },
            };
            let report = demo::run(&options)?;
            if args.json {
                println!("{}", demo::to_json(&report));
            } else {
                demo::print_text(&report);
            }
            Ok(())
        }
        Command::Serve { config } => {
            init_logs();
            ringsum_cli::net::serve(&config)
        }
        Command::FederationId { config } => ringsum_cli::net::federation_id(&config),
        Command::Join(join) => {
            init_logs();
            let args = join.connect.args()?;
            match (join.role, join.data, join.update) {
                (RoleArg::Client, Some(_), Some(_)) => Err(CliError::DataAndUpdate),
                (RoleArg::Client, Some(_), None) if join.samples.is_some() => {
                    Err(CliError::SamplesWithoutUpdate)
                }
                (RoleArg::Client, Some(data), None) => ringsum_cli::net::join_client(
                    &args,
                    &join.identity,
                    &data,
                    join.state,
                    join.insecure_seed,
                ),
                (RoleArg::Client, None, Some(update)) => {
                    let samples = join.samples.ok_or(CliError::UpdateWithoutSamples)?;
                    ringsum_cli::net::join_client_update(
                        &args,
                        &join.identity,
                        &update,
                        samples,
                        join.state,
                        join.insecure_seed,
                    )
                }
                (RoleArg::Client, None, None) => Err(CliError::MissingData),
                (RoleArg::Holder, _, Some(_)) => Err(CliError::HolderUpdate { option: "--update" }),
                (RoleArg::Holder, _, None) if join.samples.is_some() => {
                    Err(CliError::HolderUpdate {
                        option: "--samples",
                    })
                }
                (RoleArg::Holder, _, None) => {
                    ringsum_cli::net::join_holder(&args, &join.identity, join.state)
                }
            }
        }
        Command::Status {
            connect,
            identity,
            json,
        } => ringsum_cli::net::status(&connect.args()?, &identity, json),
        Command::Split {
            clients,
            seed,
            model,
            dataset,
            out,
        } => {
            let options = demo::Options {
                clients,
                holders: 1,
                threshold: 1,
                rounds: 1,
                params: ringsum_core::DEFAULT_ROUND_KEY_SET.into(),
                dataset,
                model: match model {
                    ModelArg::Logistic => ModelKind::Logistic,
                    ModelArg::Mlp => ModelKind::Mlp { hidden: 32 },
                },
                seed,
                drop_clients: 0,
                drop_holders: 0,
                audit_log: None,
                hybrid: false,
                progress: false,
                insecure_seed: None,
                model_out: None,
                privacy: None,
            };
            for path in ringsum_cli::net::split(&options, &out)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Bench(args) => {
            let options = ringsum_cli::bench::Options {
                params_count: args.params_count,
                clients: args.clients,
                holders: args.holders,
                threshold: args.threshold,
                params: args.params,
                repeats: args.repeats,
                progress: !args.json,
            };
            let report = ringsum_cli::bench::run(&options)?;
            if args.json {
                println!("{}", ringsum_cli::bench::to_json(&report));
            } else {
                ringsum_cli::bench::print_text(&report);
            }
            Ok(())
        }
        Command::Params {
            command: ParamsCommand::List,
        } => {
            println!(
                "{:<14} {:>6} {:>7} {:>12} {:>12} {:>12} {:>6} {:>11}",
                "id",
                "N",
                "log2 Q",
                "security",
                "max clients",
                "max holders",
                "slots",
                "bytes/param"
            );
            for id in ParameterSet::builtin_ids() {
                let params = ParameterSet::builtin(id)?;
                print_params(&params);
            }
            Ok(())
        }
        Command::Params {
            command: ParamsCommand::Check { file },
        } => {
            let params = ParameterSet::load(&file).map_err(|source| CliError::ParameterFile {
                path: file.clone(),
                source: Box::new(source),
            })?;
            println!("{}: valid", file.display());
            print_params(&params);
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    file,
                    coordinator_key,
                    algorithm,
                    federation,
                },
        } => {
            let text = std::fs::read_to_string(&file).map_err(CliError::io(&file))?;
            let key = match coordinator_key {
                None => None,
                Some(path) => {
                    let alg = SignatureAlgorithm::ALL
                        .into_iter()
                        .find(|a| a.name() == algorithm)
                        .ok_or(CliError::UnknownAlgorithm { name: algorithm })?;
                    Some(PublicIdentity::read(alg, &path).map_err(CliError::key(&path))?)
                }
            };
            let federation = federation
                .as_deref()
                .map(ringsum_cli::net::federation_arg)
                .transpose()?;
            let summary = ringsum_protocol::verify_log(&text, key.as_ref(), federation).map_err(
                |source| CliError::AuditLog {
                    path: file.clone(),
                    source: Box::new(source),
                },
            )?;
            println!(
                "{}: {} lines verified (chain and coordinator signatures), rounds up to {}",
                file.display(),
                summary.lines,
                summary.last_round,
            );
            println!(
                "federation {}",
                ringsum_pq::codec::hex(&summary.federation.0)
            );
            println!(
                "coordinator {}{}",
                summary.coordinator,
                if key.is_none() {
                    " (key taken from the log's setup line; pass --coordinator-key to pin it)"
                } else {
                    ""
                }
            );
            println!(
                "head {} (compare with the coordinator's published head to rule out truncation)",
                ringsum_pq::codec::hex(&summary.head)
            );
            Ok(())
        }
        // main() runs it for its exit code; here it only reports errors.
        Command::Assess(args) => assess(&args).map(drop),
        Command::Keygen {
            out,
            holder,
            hybrid,
        } => {
            std::fs::create_dir_all(&out).map_err(CliError::io(&out))?;
            let (sig, kem) = if hybrid {
                (
                    SignatureAlgorithm::MlDsa65Ed25519,
                    KemAlgorithm::MlKem1024X25519,
                )
            } else {
                (SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024)
            };
            // Key files name themselves in their errors (PqError::Io).
            let identity = SigningIdentity::generate(sig)?;
            identity.write_secret(&out.join("identity.key"))?;
            identity.write_public(&out.join("identity.pub"))?;
            println!("identity {} ({})", identity.id(), sig.name());
            if holder {
                let sealing = SealingKey::generate(kem)?;
                sealing.write_secret(&out.join("sealing.key"))?;
                let public = out.join("sealing.pub");
                std::fs::write(&public, sealing.public().to_bytes())
                    .map_err(CliError::io(&public))?;
                println!("sealing key ({})", kem.name());
            }
            Ok(())
        }
    }
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn print_params(params: &ParameterSet) {
    let packing = Packing::new(params);
    let ring = params.ring();
    let bits: u32 = ring.moduli().iter().map(|m| m.bits()).sum();
    let ciphertext = 2 * ringsum_wire::packed_poly_len(ring);
    println!(
        "{:<14} {:>6} {:>7} {:>12} {:>12} {:>12} {:>6} {:>11.2}",
        params.id().to_string(),
        ring.degree(),
        bits,
        {
            let (level, model) = params.security();
            format!("{level} {model}")
        },
        params.encoding().max_clients,
        params.shares().max_holders,
        params.encoding().slots,
        ciphertext as f64 / packing.capacity() as f64,
    );
}
