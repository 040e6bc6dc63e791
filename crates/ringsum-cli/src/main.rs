//! The `ringsum` command line: `demo`, `params list|check`, `audit verify`,
//! `keygen`. Every failure prints one clear line and exits non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ringsum_core::ParameterSet;
use ringsum_core::scheme::Packing;
use ringsum_pq::{KemAlgorithm, PublicIdentity, SealingKey, SignatureAlgorithm, SigningIdentity};

use ringsum_cli::demo;
use ringsum_cli::model::ModelKind;

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
        /// The federation id (hex) the log must belong to.
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
    /// A shipped parameter set or a TOML file.
    #[arg(long, default_value = ringsum_core::DEFAULT_PARAMETER_SET)]
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
    /// A shipped parameter set or a TOML file.
    #[arg(long, default_value = ringsum_core::DEFAULT_PARAMETER_SET)]
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
    /// Holders of the first active set that vanish mid-round.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn run(cli: Cli) -> Result<(), String> {
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
            };
            let report = demo::run(&options)?;
            if args.json {
                println!("{}", demo::to_json(&report));
            } else {
                demo::print_text(&report);
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
                let params = ParameterSet::builtin(id).map_err(|e| e.to_string())?;
                print_params(&params);
            }
            Ok(())
        }
        Command::Params {
            command: ParamsCommand::Check { file },
        } => {
            let params = ParameterSet::load(&file)
                .map_err(|e| format!("{}: refused: {e}", file.display()))?;
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
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let key = match coordinator_key {
                None => None,
                Some(path) => {
                    let alg = SignatureAlgorithm::ALL
                        .into_iter()
                        .find(|a| a.name() == algorithm)
                        .ok_or_else(|| format!("unknown algorithm {algorithm:?}"))?;
                    Some(
                        PublicIdentity::read(alg, &path)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                    )
                }
            };
            let federation = match federation {
                None => None,
                Some(id) => Some(ringsum_pq::FederationId(
                    ringsum_pq::codec::unhex(&id)
                        .and_then(|b| b.try_into().ok())
                        .ok_or("--federation must be 64 hex digits")?,
                )),
            };
            let summary = ringsum_protocol::verify_log(&text, key.as_ref(), federation)
                .map_err(|e| format!("{}: {e}", file.display()))?;
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
        Command::Keygen {
            out,
            holder,
            hybrid,
        } => {
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let (sig, kem) = if hybrid {
                (
                    SignatureAlgorithm::MlDsa65Ed25519,
                    KemAlgorithm::MlKem1024X25519,
                )
            } else {
                (SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024)
            };
            let identity = SigningIdentity::generate(sig).map_err(|e| e.to_string())?;
            let write = |r: ringsum_pq::Result<()>| r.map_err(|e| e.to_string());
            write(identity.write_secret(&out.join("identity.key")))?;
            write(identity.write_public(&out.join("identity.pub")))?;
            println!("identity {} ({})", identity.id(), sig.name());
            if holder {
                let sealing = SealingKey::generate(kem).map_err(|e| e.to_string())?;
                write(sealing.write_secret(&out.join("sealing.key")))?;
                std::fs::write(out.join("sealing.pub"), sealing.public().to_bytes())
                    .map_err(|e| format!("{}: {e}", out.display()))?;
                println!("sealing key ({})", kem.name());
            }
            Ok(())
        }
    }
}

#[allow(clippy::print_stdout, clippy::cast_precision_loss)]
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
        params.threshold().max_holders,
        params.encoding().slots,
        ciphertext as f64 / packing.capacity() as f64,
    );
}
