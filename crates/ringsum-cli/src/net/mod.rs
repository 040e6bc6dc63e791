//! `ringsum serve`, `ringsum join`, `ringsum status`, `ringsum
//! federation-id` and `ringsum split`: the federation on several machines
//! (ringsum-net underneath), on per-round client keys.

use std::path::{Path, PathBuf};

use ringsum_net::engine::Ending;
use ringsum_net::fs::{Access, write_atomic};
use ringsum_net::participant::{
    ClientOptions, ConnectOptions, HolderOptions, run_client, run_holder,
};
use ringsum_net::proto::Phase;
use ringsum_net::{NetError, SetupDescription, federation_hex, parse_federation};
use ringsum_pq::{FederationId, SealingKey, SigningIdentity};
use ringsum_protocol::spec::Federation;

mod config;
mod trainer;

pub use self::config::{FederationConfig, LimitsConfig, ModelConfig, PrivacyConfig};
pub use self::trainer::{CsvTrainer, UpdateTrainer, application_trainer};

use crate::data::{self, Dataset};
use crate::demo;
use crate::error::{CliError, Result};

/// The signing identity in a `ringsum keygen` directory.
fn read_identity(dir: &Path) -> Result<SigningIdentity> {
    let path = dir.join("identity.key");
    SigningIdentity::read_secret(&path).map_err(CliError::key(&path))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(CliError::io(path))
}

/// How to reach the coordinator, from the command line.
#[derive(Clone, Debug)]
pub struct JoinArgs {
    /// The coordinator's URL.
    pub coordinator: String,
    /// Its certificate (or its CA's), PEM.
    pub ca: Option<PathBuf>,
    /// The federation id to insist on (required to join).
    pub federation: Option<FederationId>,
    /// Allow http://.
    pub insecure_plaintext: bool,
}

impl JoinArgs {
    fn connect(&self) -> Result<ConnectOptions> {
        let mut options = ConnectOptions::new(&self.coordinator);
        options.ca = self.ca.as_deref().map(read_bytes).transpose()?;
        options.federation = self.federation;
        options.insecure_plaintext = self.insecure_plaintext;
        Ok(options)
    }

    fn pinned(&self) -> Result<ConnectOptions> {
        if self.federation.is_none() {
            return Err(NetError::NotPinned.into());
        }
        self.connect()
    }

    /// Names the `--ca` file in an error about the coordinator's TLS that
    /// says to check it.
    fn name_ca(&self, error: CliError) -> CliError {
        match (error, &self.ca) {
            (CliError::Net(net), Some(ca))
                if matches!(
                    *net,
                    NetError::Handshake { .. } | NetError::CaNotCertificate { .. }
                ) =>
            {
                CliError::CoordinatorCa {
                    ca: ca.clone(),
                    source: net,
                }
            }
            (error, _) => error,
        }
    }
}

/// Shows a participant's warnings (a coordinator out of reach, retried)
/// on stderr for a command that sets up no logging of its own
/// (`RINGSUM_LOG` as for `join`, default `warn`).
fn show_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGSUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Prints the id of the federation a federation file describes, as
/// participants pin it (`--federation`).
///
/// # Errors
/// As [`FederationConfig::description`].
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn federation_id(config_path: &Path) -> Result<()> {
    let config = FederationConfig::load(config_path)?;
    let (description, _) = config.description(config_path)?;
    let federation = description.federation()?;
    println!("{}", federation_hex(federation.id()));
    Ok(())
}

/// Runs the coordinator until the last round has ended.
///
/// # Errors
/// An invalid file, a store of another federation, a bind failure.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn serve(config_path: &Path) -> Result<()> {
    let config = FederationConfig::load(config_path)?;
    let plan = config.plan(config_path)?;
    let privacy = plan.description.federation()?.privacy().map(privacy_line);
    let (options, ca) = config.serve_options()?;
    let data_dir = config.data_dir.clone();
    runtime()?.block_on(async move {
        // Listen for the stop signals before the service starts: one that
        // arrives during recovery stops it as soon as it runs.
        let stop_signal = StopSignal::listen()?;
        let running = ringsum_net::server::start(plan, options).await?;
        // The id participants pin, beside the state, for the operator.
        let id_file = data_dir.join("federation.id");
        write_atomic(
            &id_file,
            format!("{}\n", running.federation).as_bytes(),
            Access::Shared,
        )?;
        println!("ringsum serve: federation {}", running.federation);
        println!(
            "listening on {} ({}), recovered {} events in {:.0} ms",
            running.addr,
            if ca.is_some() {
                "TLS, key exchange X25519MLKEM768 preferred"
            } else {
                "PLAINTEXT: loopback tests only"
            },
            running.replayed,
            running.recovery.as_secs_f64() * 1e3
        );
        if let Some(line) = &privacy {
            println!("{line}");
        }
        for (point, dir) in (1u32..).zip(&config.holders) {
            println!("holder {point}: {}", dir.display());
        }
        println!(
            "participants pin the federation with --federation {} (also in {})",
            running.federation,
            id_file.display()
        );
        if let Some(ca) = &ca {
            println!("participants trust {} (--ca)", ca.display());
        }
        // Ctrl-C or SIGTERM: the write in progress is recorded, the
        // service stops, and the command exits 0.
        let stopper = running.stop_handle();
        tokio::spawn(async move {
            if stop_signal.wait().await {
                stopper.stop();
            }
        });
        let summary = running.wait().await?;
        let decoded = summary
            .ended
            .iter()
            .filter(|e| matches!(e.ending, Ending::Finished { .. }))
            .count();
        let failed = summary.ended.len() - decoded;
        println!(
            "{}: {} of {} rounds ended ({decoded} decoded, {failed} failed); final model in {}; {} audit lines in {}",
            if summary.finished {
                "finished"
            } else {
                "stopped"
            },
            summary.ended.len(),
            config.rounds,
            data_dir.join("final-model.json").display(),
            summary.audit_lines,
            data_dir.join("audit.jsonl").display()
        );
        Ok(())
    })
}

/// The signals that stop `ringsum serve` gracefully: Ctrl-C (SIGINT) and,
/// on Unix, SIGTERM, which `kill`, systemd and container runtimes send.
#[derive(Debug)]
struct StopSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Starts listening (within a runtime).
    ///
    /// # Errors
    /// [`CliError::Runtime`] if the handler cannot be installed.
    fn listen() -> Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(CliError::Runtime)?,
        })
    }

    /// Waits for a stop signal; false if none can arrive any more.
    async fn wait(self) -> bool {
        #[cfg(unix)]
        {
            let mut terminate = self.terminate;
            // A signal whose listener fails leaves the other one.
            tokio::select! {
                Ok(()) = tokio::signal::ctrl_c() => true,
                Some(()) = terminate.recv() => true,
                else => false,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// What `ringsum serve` says of a federation's privacy plan.
fn privacy_line(plan: &ringsum_core::privacy::PrivacyPlan) -> String {
    let settings = plan.settings();
    format!(
        "differential privacy: epsilon {} and delta {} over {} rounds; every sum holds the noise of at least {} clients (std {:.4} per parameter, in gradient units); one gradient step per round at learning rate {:.4}, records clipped to norm {}, {} records per client planned, at most {}",
        settings.epsilon,
        settings.delta,
        plan.rounds(),
        settings.noise_clients,
        plan.noise_std(),
        plan.effective_learning_rate(),
        settings.clip,
        settings.records_per_client,
        settings.max_records,
    )
}

/// Runs a client: trains on `data`, encrypts under a fresh round key,
/// records, submits, each round.
///
/// # Errors
/// As [`run_client`] (a refused submission says why), and unreadable keys
/// or data, or no pinned federation.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn join_client(
    args: &JoinArgs,
    identity_dir: &Path,
    data_path: &Path,
    state: Option<PathBuf>,
    insecure_seed: Option<u64>,
) -> Result<()> {
    let connect = args.pinned()?;
    let identity = read_identity(identity_dir)?;
    let data = data::load(data_path)?;
    let state_dir = state.unwrap_or_else(|| identity_dir.join("client-state"));
    let result = runtime()?.block_on(async move {
        // The trainer needs the description's model settings: fetch them
        // first (checked against the pinned id).
        let identity = std::sync::Arc::new(identity);
        let (description, federation, index) = client_setup(&connect, &identity).await?;
        let trainer = application_trainer(&description, &federation, data, index)?;
        let report = run_client(
            ClientOptions {
                connect,
                state_dir,
                insecure_seed,
            },
            identity,
            Box::new(trainer),
        )
        .await?;
        match &report.result {
            Some(result) => println!(
                "client {index}: submitted in rounds {:?}; final model of round {} ({} clients)",
                report.submitted, result.round, result.clients
            ),
            None => println!(
                "client {index}: submitted in rounds {:?}; no round was decoded",
                report.submitted
            ),
        }
        Ok(())
    });
    result.map_err(|e| args.name_ca(e))
}

/// Runs a client that submits one update computed elsewhere: the values
/// of the safetensors file `update` (every tensor of the federation's
/// model by name and shape; F32, F64, F16 or BF16), declaring `samples`,
/// in the next round it can join; then it stops.
///
/// # Errors
/// An unreadable file ([`CliError::Io`]), a federation with differential
/// privacy ([`CliError::UpdateWithPrivacy`]: per-record clipping cannot be
/// checked on an update computed elsewhere), one that does not fit the
/// federation's model ([`CliError::Update`], naming the tensor), a sample
/// count outside the policy ([`CliError::Samples`]), a federation that
/// finishes first ([`CliError::UpdateNotSubmitted`]), and as
/// [`join_client`].
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn join_client_update(
    args: &JoinArgs,
    identity_dir: &Path,
    update: &Path,
    samples: u64,
    state: Option<PathBuf>,
    insecure_seed: Option<u64>,
) -> Result<()> {
    let connect = args.pinned()?;
    let identity = read_identity(identity_dir)?;
    // Read before connecting: a missing file fails at once.
    let bytes = read_bytes(update)?;
    let state_dir = state.unwrap_or_else(|| identity_dir.join("client-state"));
    let result = runtime()?.block_on(async move {
        let identity = std::sync::Arc::new(identity);
        let (_, federation, index) = client_setup(&connect, &identity).await?;
        if federation.privacy().is_some() {
            return Err(CliError::UpdateWithPrivacy {
                path: update.to_path_buf(),
            });
        }
        let policy = federation.policy();
        if !(policy.min_samples..=policy.max_weight).contains(&samples) {
            return Err(CliError::Samples {
                samples,
                min: policy.min_samples,
                max: policy.max_weight,
            });
        }
        let values = ringsum_net::safetensors_file::read_values(federation.layout(), &bytes)
            .map_err(|source| CliError::Update {
                path: update.to_path_buf(),
                source: Box::new(source),
            })?;
        drop(bytes);
        let report = run_client(
            ClientOptions {
                connect,
                state_dir,
                insecure_seed,
            },
            identity,
            Box::new(UpdateTrainer::new(values, samples)),
        )
        .await?;
        let Some(round) = report.submitted.last() else {
            return Err(CliError::UpdateNotSubmitted {
                path: update.to_path_buf(),
            });
        };
        println!(
            "client {index}: submitted the update of {} ({samples} samples) in round {round}",
            update.display()
        );
        Ok(())
    });
    result.map_err(|e| args.name_ca(e))
}

/// The federation a client joins, from the coordinator (checked against
/// the pinned id), and the client's index in it.
///
/// # Errors
/// The service's, and [`NetError::NotAMember`] for an identity that is not
/// one of its clients.
async fn client_setup(
    connect: &ConnectOptions,
    identity: &std::sync::Arc<SigningIdentity>,
) -> Result<(SetupDescription, Federation, usize)> {
    let id = identity.id();
    let (description, federation) =
        ringsum_net::participant::fetch_setup(connect, std::sync::Arc::clone(identity)).await?;
    let index = description
        .client_index(&federation, id)
        .ok_or_else(|| NetError::NotAMember {
            id,
            role: "client",
            federation: federation_hex(federation.id()),
        })?;
    Ok((description, federation, index))
}

/// Runs a key holder.
///
/// # Errors
/// As [`run_holder`], and unreadable keys, or no pinned federation.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn join_holder(args: &JoinArgs, identity_dir: &Path, state: Option<PathBuf>) -> Result<()> {
    let connect = args.pinned()?;
    let identity = read_identity(identity_dir)?;
    let key_file = identity_dir.join("sealing.key");
    let sealing = SealingKey::read_secret(&key_file).map_err(|e| match e {
        // identity.key was read: a directory without a sealing key is a
        // client's.
        ringsum_pq::PqError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            CliError::NotAHolder {
                dir: identity_dir.to_path_buf(),
            }
        }
        e => CliError::key(&key_file)(e),
    })?;
    let options = HolderOptions {
        connect,
        state_dir: state.unwrap_or_else(|| identity_dir.join("holder-state")),
    };
    let result = runtime()?.block_on(async move {
        let report = run_holder(options, identity, sealing).await?;
        println!(
            "holder {point} (Shamir point {point}, identity {}): answered rounds {:?}; {} answers sent by this run",
            identity_dir.display(),
            report.answered,
            report.sent,
            point = report.point.0,
        );
        Ok(())
    });
    result.map_err(|e| args.name_ca(e))
}

/// Prints where the federation stands: the open round and what it waits
/// for, and how every ended round ended; with `json`, one JSON object
/// instead ([`status_json`]).
///
/// # Errors
/// An unreachable coordinator, another federation than the pinned one, or
/// an identity it refuses.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn status(args: &JoinArgs, identity_dir: &Path, json: bool) -> Result<()> {
    let identity = read_identity(identity_dir)?;
    let connect = args.connect()?;
    show_warnings();
    let result = runtime()?.block_on(async move {
        let status = ringsum_net::participant::fetch_status(&connect, identity).await?;
        if json {
            // The pinned id, which the coordinator's was checked against
            // (calls are made only for a pinned federation).
            let federation = connect.federation.ok_or(NetError::NotPinned)?;
            println!("{}", status_json(&status, federation, &connect.url));
        } else {
            for line in status_lines(&status) {
                println!("{line}");
            }
        }
        Ok(())
    });
    result.map_err(|e| args.name_ca(e))
}

/// The lower-case word `ringsum status --json` gives a phase.
#[must_use]
pub const fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Unspecified => "unspecified",
        Phase::Collecting => "collecting",
        Phase::Answering => "answering",
        Phase::Between => "between",
        Phase::Finished => "finished",
    }
}

/// What `ringsum status --json` prints: every field of the coordinator's
/// status reply (the phase as a lower-case word, see [`phase_name`]), the
/// federation id (hex) and the coordinator's URL.
#[must_use]
pub fn status_json(
    status: &ringsum_net::proto::StatusReply,
    federation: FederationId,
    coordinator: &str,
) -> serde_json::Value {
    serde_json::json!({
        "federation": federation_hex(federation),
        "coordinator": coordinator,
        "round": status.round,
        "phase": phase_name(status.phase()),
        "rounds": status.rounds,
        "accepted": status.accepted,
        "clients": status.clients,
        "min_clients": status.min_clients,
        "holders": status.holders,
        "answered": status.answered,
        "threshold": status.threshold,
        "audit_lines": status.audit_lines,
        "audit_head": status.audit_head,
        "ended": status.ended.iter().map(|end| serde_json::json!({
            "round": end.round,
            "failed": end.failed,
            "clients": end.clients,
            "reason": end.reason,
            "holders_named": end.holders_named,
        })).collect::<Vec<_>>(),
        "phase_seconds": status.phase_seconds,
    })
}

/// The lines `ringsum status` prints.
#[must_use]
pub fn status_lines(status: &ringsum_net::proto::StatusReply) -> Vec<String> {
    let decoded = status.ended.iter().filter(|e| !e.failed).count();
    let failed = status.ended.len() - decoded;
    let waiting: Vec<u32> = status
        .holders
        .iter()
        .copied()
        .filter(|h| !status.answered.contains(h))
        .collect();
    let mut lines = vec![match status.phase() {
        Phase::Collecting if status.accepted < status.min_clients => format!(
            "round {} of {}: collecting submissions: {} of {} clients submitted, fewer than the {} a round needs: waiting for {} more ({} s so far)",
            status.round,
            status.rounds,
            status.accepted,
            status.clients,
            status.min_clients,
            status.min_clients - status.accepted,
            status.phase_seconds
        ),
        Phase::Collecting => format!(
            "round {} of {}: collecting submissions: {} of {} clients submitted (at least {} needed, reached); {} s so far",
            status.round,
            status.rounds,
            status.accepted,
            status.clients,
            status.min_clients,
            status.phase_seconds
        ),
        Phase::Answering => format!(
            "round {} of {}: the set of {} clients is out to the key holders: holders {:?} answered, {} needed; waiting for {:?} ({} s so far)",
            status.round,
            status.rounds,
            status.accepted,
            status.answered,
            status.threshold,
            waiting,
            status.phase_seconds
        ),
        Phase::Between | Phase::Unspecified => format!(
            "round {} of {} ended; the next one opens",
            status.round, status.rounds
        ),
        Phase::Finished => format!(
            "federation finished: all {} rounds ended ({decoded} decoded, {failed} failed)",
            status.rounds
        ),
    }];
    for end in &status.ended {
        lines.push(if end.failed {
            format!("  round {}: failed: {}", end.round, end.reason)
        } else if end.holders_named.is_empty() {
            format!(
                "  round {}: decoded from {} clients",
                end.round, end.clients
            )
        } else {
            format!(
                "  round {}: decoded from {} clients; wrong answers of holders {:?} corrected",
                end.round, end.clients, end.holders_named
            )
        });
    }
    lines.push(format!(
        "audit log: {} lines, head {}",
        status.audit_lines, status.audit_head
    ));
    lines
}

/// Writes the demo's split of the data set: `client-<i>.csv` for each
/// client and `test.csv`, standardised as the demo does.
///
/// # Errors
/// An unreadable data set or an unwritable directory.
pub fn split(options: &demo::Options, out: &Path) -> Result<Vec<PathBuf>> {
    let partition = demo::partition(options, demo::MIN_SAMPLES)?;
    ringsum_net::fs::ensure_dir(out)?;
    let mut written = Vec::new();
    let mut write = |name: String, data: &Dataset| -> Result<()> {
        let path = out.join(name);
        let mut text = String::new();
        for (row, label) in data.features.iter().zip(&data.labels) {
            for v in row {
                text.push_str(&v.to_string());
                text.push(',');
            }
            text.push_str(&label.to_string());
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes(), Access::Shared)?;
        written.push(path);
        Ok(())
    };
    for (i, part) in partition.parts.iter().enumerate() {
        write(format!("client-{i}.csv"), part)?;
    }
    write("test.csv".into(), &partition.test)?;
    Ok(written)
}

/// A federation id from `--federation`: its 64 hex digits, or a file
/// holding them (the `federation.id` that `ringsum serve` writes).
///
/// # Errors
/// [`CliError::FederationArg`].
pub fn federation_arg(text: &str) -> Result<FederationId> {
    if let Some(id) = parse_federation(text) {
        return Ok(id);
    }
    std::fs::read_to_string(text)
        .ok()
        .and_then(|contents| parse_federation(&contents))
        .ok_or_else(|| CliError::FederationArg(text.to_owned()))
}

#[cfg(test)]
mod status_json_tests {
    use ringsum_net::proto::{RoundEnd, StatusReply};

    use super::*;

    fn reply() -> StatusReply {
        let mut reply = StatusReply {
            round: 3,
            rounds: 5,
            accepted: 2,
            clients: 4,
            min_clients: 3,
            holders: vec![1, 2, 3],
            answered: vec![2],
            threshold: 2,
            audit_lines: 17,
            audit_head: "ab".repeat(32),
            ended: vec![
                RoundEnd {
                    round: 1,
                    failed: false,
                    clients: 4,
                    reason: String::new(),
                    holders_named: vec![3],
                },
                RoundEnd {
                    round: 2,
                    failed: true,
                    clients: 0,
                    reason: "only 1 of the 3 submissions arrived".into(),
                    holders_named: Vec::new(),
                },
            ],
            phase_seconds: 42,
            ..StatusReply::default()
        };
        reply.set_phase(Phase::Answering);
        reply
    }

    /// Every field of the reply, the federation id and the URL are there,
    /// with their values; nothing else is.
    #[test]
    fn every_field_of_the_status_is_in_the_json() {
        let federation = FederationId([7; 32]);
        let json = status_json(&reply(), federation, "https://coordinator:7300");
        let expected = serde_json::json!({
            "federation": "07".repeat(32),
            "coordinator": "https://coordinator:7300",
            "round": 3,
            "phase": "answering",
            "rounds": 5,
            "accepted": 2,
            "clients": 4,
            "min_clients": 3,
            "holders": [1, 2, 3],
            "answered": [2],
            "threshold": 2,
            "audit_lines": 17,
            "audit_head": "ab".repeat(32),
            "ended": [
                {"round": 1, "failed": false, "clients": 4, "reason": "", "holders_named": [3]},
                {
                    "round": 2,
                    "failed": true,
                    "clients": 0,
                    "reason": "only 1 of the 3 submissions arrived",
                    "holders_named": [],
                },
            ],
            "phase_seconds": 42,
        });
        assert_eq!(json, expected);
        // One line of text that parses back.
        let text = json.to_string();
        assert!(!text.contains('\n'));
        let parsed: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(parsed, expected);
    }

    #[test]
    fn phases_are_lower_case_words() {
        let mut reply = reply();
        for (phase, name) in [
            (Phase::Unspecified, "unspecified"),
            (Phase::Collecting, "collecting"),
            (Phase::Answering, "answering"),
            (Phase::Between, "between"),
            (Phase::Finished, "finished"),
        ] {
            reply.set_phase(phase);
            let json = status_json(&reply, FederationId([0; 32]), "http://127.0.0.1:1");
            assert_eq!(json["phase"], name);
        }
        // A phase number the reply does not know reads as unspecified.
        reply.phase = 99;
        let json = status_json(&reply, FederationId([0; 32]), "http://127.0.0.1:1");
        assert_eq!(json["phase"], "unspecified");
    }
}

#[cfg(test)]
mod identity_tests {
    use ringsum_pq::SignatureAlgorithm;

    use super::*;

    fn args(ca: Option<&str>) -> JoinArgs {
        JoinArgs {
            // Never reached: the identity is refused first.
            coordinator: "http://127.0.0.1:1".into(),
            ca: ca.map(PathBuf::from),
            federation: Some(FederationId([1; 32])),
            insecure_plaintext: true,
        }
    }

    #[test]
    fn a_client_identity_is_not_a_holder() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let client = dir.path().join("client-0");
        std::fs::create_dir_all(&client).unwrap_or_else(|e| unreachable!("{e}"));
        SigningIdentity::generate(SignatureAlgorithm::MlDsa65)
            .and_then(|id| id.write_secret(&client.join("identity.key")))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let refused = join_holder(&args(None), &client, None)
            .err()
            .unwrap_or_else(|| unreachable!("a client identity joined as a holder"));
        let message = refused.to_string();
        assert!(
            matches!(&refused, CliError::NotAHolder { dir } if *dir == client),
            "{message}"
        );
        assert!(message.contains("not a key holder's identity"), "{message}");
        assert!(message.contains("--role client"), "{message}");
        assert_eq!(message.matches("client-0").count(), 1, "{message}");
    }

    #[test]
    fn a_refused_certificate_names_the_ca_file() {
        let handshake = || {
            CliError::from(NetError::Handshake {
                url: "https://c:1".into(),
                reason: "its certificate was not accepted".into(),
                hint: "check --ca".into(),
            })
        };
        let named = args(Some("other/tls-cert.pem")).name_ca(handshake());
        assert!(
            named
                .to_string()
                .ends_with("check --ca (--ca other/tls-cert.pem)"),
            "{named}"
        );
        // Without a file, the message already says none was given.
        assert!(matches!(args(None).name_ca(handshake()), CliError::Net(_)));
        // Other errors pass through.
        let other = args(Some("x.pem")).name_ca(NetError::NotPinned.into());
        assert!(matches!(other, CliError::Net(e) if matches!(*e, NetError::NotPinned)));
    }
}
