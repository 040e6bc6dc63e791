//! A client: for each round, trains from the published model, encrypts its
//! update under a fresh round secret (with the secret's shares sealed to
//! the holders), records the submission durably, and sends it. After a
//! restart it resends the recorded bytes; it never encrypts again under a
//! secret the coordinator may have seen. A submission the coordinator
//! refuses for its content is discarded with its key, and the client stops
//! and says why; the next attempt makes a fresh one.
//!
//! In a federation with differential privacy ([`Federation::privacy`])
//! the client submits its trainer's noised contribution
//! ([`Trainer::contribute`]) instead of an update.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringsum_core::privacy::{NoisyContribution, PrivacyPlan};
use ringsum_core::update::RoundId;
use ringsum_math::Csprng;
use ringsum_pq::{Role, SigningIdentity};
use ringsum_protocol::RoundResult;
use ringsum_protocol::client::{Client, Submission};
use ringsum_protocol::spec::Federation;
use tonic::Code;

use super::{Acknowledged, Connection, read_publication};
use crate::error::{NetError, Result};
use crate::fs::{Access, remove_durably, write_atomic};
use crate::proto::Phase;

/// Why local training failed.
pub type TrainError = Box<dyn std::error::Error + Send + Sync>;

/// A client's local training.
pub trait Trainer: Send + 'static {
    /// The update (trained model minus `global`) and the sample count for
    /// `round`, trained from `global`.
    ///
    /// # Errors
    /// Why training failed.
    fn train(
        &mut self,
        round: u64,
        global: &[f32],
    ) -> std::result::Result<(Vec<f32>, u64), TrainError>;

    /// In a federation with differential privacy, what the client submits
    /// for `round` instead of [`Self::train`]'s update: its noised
    /// contribution under the federation's `plan`, computed from `global`
    /// (every record's gradient fed to [`PrivacyPlan::contribution`], then
    /// [`ringsum_core::privacy::Contribution::finish`]), drawing the
    /// rounding and the noise from `rng`. The submission declares the
    /// plan's public sample count, not a count of records.
    ///
    /// # Errors
    /// Why no contribution can be made. The default refuses: a trainer
    /// that does not see each record (e.g. one that submits an update
    /// computed elsewhere) cannot clip them one by one.
    fn contribute(
        &mut self,
        round: u64,
        global: &[f32],
        plan: &PrivacyPlan,
        rng: &mut Csprng,
    ) -> std::result::Result<NoisyContribution, TrainError> {
        let _ = (round, global, plan, rng);
        Err(
            "this federation trains with differential privacy, and this client's trainer \
             cannot clip and noise each record's gradient"
                .into(),
        )
    }

    /// The most submissions the coordinator accepts from this client
    /// before it stops: `None` (the default) takes part in every round
    /// until the federation finishes; `Some(1)` submits one update (e.g.
    /// one computed elsewhere) in the next round it can join, then stops.
    fn max_submissions(&self) -> Option<usize> {
        None
    }
}

/// How a client runs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The coordinator (and the pinned federation id, which is required).
    pub connect: super::ConnectOptions,
    /// Where the client records what it submitted (so that a restart
    /// resends the same bytes instead of encrypting again).
    pub state_dir: PathBuf,
    /// Deterministic randomness (tests and reproducible demos only; see
    /// [`crate::insecure_test_rng`]).
    pub insecure_seed: Option<u64>,
}

/// What a client did.
#[derive(Clone, Debug)]
pub struct ClientReport {
    /// Its index in the federation's client list.
    pub index: usize,
    /// The rounds it submitted to (accepted).
    pub submitted: Vec<u64>,
    /// The final model (for a client that stopped after its
    /// [`Trainer::max_submissions`], the model its last submission was
    /// trained from).
    pub model: Vec<f32>,
    /// The last decoded round's result, as published (`None` if no round
    /// was decoded).
    pub result: Option<RoundResult>,
}

fn submission_file(dir: &Path, round: u64) -> PathBuf {
    dir.join(format!("submission-{round}.bin"))
}

/// The notes of refused submissions of `round`, one per refusal.
fn refusals(dir: &Path, round: u64) -> u64 {
    let prefix = format!("refused-{round}-");
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count() as u64
    })
}

/// The recorded submission of `round`, if there is a valid one.
fn recorded(federation: &Federation, file: &Path, round: u64) -> Result<Option<Vec<u8>>> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NetError::io(file)(e)),
    };
    match Submission::from_bytes(federation, &bytes) {
        Ok(s) if s.round() == RoundId(round) => Ok(Some(bytes)),
        _ => {
            // Written atomically, so not torn: another federation's or a
            // damaged file. It was never this round's, so nothing of it
            // can be resent.
            tracing::warn!(file = %file.display(), "ignoring a recorded submission that is not this round's");
            remove_durably(file)?;
            Ok(None)
        }
    }
}

/// Removes the recorded submissions of rounds before `round`: they can
/// never be sent again.
fn forget_before(dir: &Path, round: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = name
            .strip_prefix("submission-")
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|r| r < round);
        if old {
            let _ = remove_durably(&entry.path());
        }
    }
}

/// The client's state while it runs.
struct Run {
    connection: Connection,
    federation: Arc<Federation>,
    client: Option<Client>,
    trainer: Option<Box<dyn Trainer>>,
    options: ClientOptions,
    index: usize,
    submitted: Vec<u64>,
    /// Rounds this run is done with (submitted, or closed before it could).
    done: BTreeSet<u64>,
}

impl Run {
    /// A fresh submission for `round`, trained from `publication`: the
    /// secret is drawn here and consumed by the encryption.
    async fn fresh(&mut self, round: u64, publication: &[u8]) -> Result<Vec<u8>> {
        let (published, global) = read_publication(&self.federation, publication)?;
        if published != RoundId(round) {
            return Err(NetError::Publication {
                reason: "the publication is for another round than the one open",
            });
        }
        let attempt = refusals(&self.options.state_dir, round);
        let (seed, index) = (self.options.insecure_seed, self.index);
        let (mut trainer, client) = match (self.trainer.take(), self.client.take()) {
            (Some(t), Some(c)) => (t, c),
            _ => {
                return Err(NetError::Publication {
                    reason: "a submission is already being made",
                });
            }
        };
        let federation = Arc::clone(&self.federation);
        let (made, trainer, client) = tokio::task::spawn_blocking(move || {
            let made = (|| {
                let rng = || match seed {
                    Some(s) => Ok(crate::insecure_test_rng_attempt(s, index, round, attempt)),
                    None => Csprng::from_os().map_err(ringsum_protocol::ProtocolError::from),
                };
                let training = |source| NetError::Training { round, source };
                let submitted = if let Some(plan) = federation.privacy() {
                    let mut rng = rng()?;
                    let contribution = trainer
                        .contribute(round, &global.model, plan, &mut rng)
                        .map_err(training)?;
                    client.submit_private(RoundId(round), contribution, &mut rng)
                } else {
                    let (delta, samples) = trainer.train(round, &global.model).map_err(training)?;
                    client.submit(RoundId(round), &delta, samples, &mut rng()?)
                };
                submitted
                    .map(|s| s.to_bytes())
                    .map_err(|source| NetError::CannotSubmit { round, source })
            })();
            (made, trainer, client)
        })
        .await?;
        self.trainer = Some(trainer);
        self.client = Some(client);
        made
    }

    /// Makes (or reloads) and sends the submission of `round`.
    async fn submit(&mut self, round: u64, publication: &[u8]) -> Result<()> {
        let dir = self.options.state_dir.clone();
        let file = submission_file(&dir, round);
        let bytes = if let Some(bytes) = recorded(&self.federation, &file, round)? {
            tracing::info!(round, "resending the submission recorded before a restart");
            bytes
        } else {
            let bytes = self.fresh(round, publication).await?;
            // Recorded before it leaves: a restart resends these bytes.
            write_atomic(&file, &bytes, Access::Private)?;
            bytes
        };
        match self.connection.send("submission", &bytes, false).await {
            Ok(ack) => {
                tracing::info!(
                    round,
                    bytes = bytes.len(),
                    already = ack == Acknowledged::AlreadyAccepted,
                    "submitted"
                );
                self.submitted.push(round);
                self.done.insert(round);
                Ok(())
            }
            Err(NetError::Status(s)) if s.code() == Code::AlreadyExists => {
                // The coordinator holds another submission of this client
                // for the round (its state directory was lost or replaced).
                tracing::warn!(
                    round,
                    reason = s.message(),
                    "the coordinator holds another submission of this client for this round"
                );
                self.done.insert(round);
                Ok(())
            }
            Err(NetError::Status(s)) if s.code() == Code::FailedPrecondition => {
                // The round closed before the submission arrived: it can
                // never be sent again.
                tracing::warn!(
                    round,
                    reason = s.message(),
                    "the round closed before this submission arrived; waiting for the next round"
                );
                remove_durably(&file)?;
                self.done.insert(round);
                Ok(())
            }
            Err(NetError::Status(s))
                if matches!(s.code(), Code::InvalidArgument | Code::PermissionDenied) =>
            {
                // Refused for what it is. The coordinator has seen the
                // ciphertexts: the key goes with the submission, and a
                // next attempt draws a fresh one.
                let reason = s.message().to_owned();
                remove_durably(&file)?;
                let note = dir.join(format!("refused-{round}-{}.txt", refusals(&dir, round) + 1));
                write_atomic(&note, format!("{reason}\n").as_bytes(), Access::Private)?;
                tracing::error!(round, %reason, "the coordinator refused this client's submission; it was discarded with its key");
                Err(NetError::SubmissionRefused { round, reason })
            }
            Err(e) => Err(e),
        }
    }
}

/// Runs a client until the federation's last round has ended (or until
/// the coordinator accepted the trainer's
/// [`Trainer::max_submissions`]).
///
/// # Errors
/// [`NetError::NotPinned`] without a pinned federation; a federation it is
/// not a client of; a coordinator that stays away longer than the give-up
/// time; [`NetError::SubmissionRefused`] when the coordinator refuses its
/// submission (discarded with its key, the reason given);
/// [`NetError::CannotSubmit`]; a failed training.
pub async fn run_client(
    options: ClientOptions,
    identity: impl Into<Arc<SigningIdentity>>,
    trainer: Box<dyn Trainer>,
) -> Result<ClientReport> {
    let identity: Arc<SigningIdentity> = identity.into();
    if options.connect.federation.is_none() {
        return Err(NetError::NotPinned);
    }
    let me = identity.id();
    let mut connection = Connection::new(&options.connect, Arc::clone(&identity))?;
    let (description, federation) = connection.join(Some(Role::Client)).await?;
    let federation = Arc::new(federation);
    let not_member = || NetError::NotAMember {
        id: me,
        role: "client",
        federation: crate::federation_hex(federation.id()),
    };
    let index = description
        .client_index(&federation, me)
        .ok_or_else(not_member)?;
    let client = Client::new(Arc::clone(&federation), identity)?;
    crate::fs::ensure_dir(&options.state_dir)?;
    let poll = options.connect.poll;
    let max_submissions = trainer.max_submissions();
    let mut run = Run {
        connection,
        federation,
        client: Some(client),
        trainer: Some(trainer),
        options,
        index,
        submitted: Vec::new(),
        done: BTreeSet::new(),
    };
    let mut last_round = 0;
    loop {
        let reply = run.connection.round().await?;
        if reply.round != last_round {
            last_round = reply.round;
            forget_before(&run.options.state_dir, reply.round);
        }
        match reply.phase() {
            Phase::Finished => {
                let (_, published) = read_publication(&run.federation, &reply.publication)?;
                // A round's result sums its clients; an opening (the last
                // round failed) carries the model with no clients.
                let result = (published.clients > 0).then(|| published.clone());
                tracing::info!(client = index, "federation finished");
                forget_before(&run.options.state_dir, u64::MAX);
                return Ok(ClientReport {
                    index,
                    submitted: run.submitted,
                    model: published.model,
                    result,
                });
            }
            Phase::Collecting if !reply.submitted && !run.done.contains(&reply.round) => {
                run.submit(reply.round, &reply.publication).await?;
                if max_submissions.is_some_and(|most| run.submitted.len() >= most) {
                    let (_, published) = read_publication(&run.federation, &reply.publication)?;
                    let result = (published.clients > 0).then(|| published.clone());
                    tracing::info!(
                        client = index,
                        submitted = ?run.submitted,
                        "made the submissions it was started for; stopping"
                    );
                    return Ok(ClientReport {
                        index,
                        submitted: run.submitted,
                        model: published.model,
                        result,
                    });
                }
            }
            _ => tokio::time::sleep(poll).await,
        }
    }
}
