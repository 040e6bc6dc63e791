//! The coordinator as a deterministic state machine over [`Event`]s: the
//! protocol's [`Coordinator`] owns the round (its phase, its checks, its
//! audit log); the engine adds only what the transport needs (the signed
//! publications to hand out, the order in which submissions were accepted,
//! so that holders fetch their shares incrementally, and what the service
//! answers a resend with).
//!
//! Every input that reaches the protocol (a submission, a holder's answer)
//! and every decision the service takes (open a round, close the set,
//! finish, abandon) is an event. Applying the same events in the same
//! order to a fresh engine gives the same state and the same audit chain,
//! because the coordinator draws no randomness that changes state: that
//! is what makes recovery exact. An event is recorded exactly when it was
//! accepted or its refusal is in the audit log; forged or out-of-phase
//! messages are refused before they reach the protocol and leave no trace
//! to replay.

use std::collections::BTreeMap;
use std::sync::Arc;

use ringsum_core::update::RoundId;
use ringsum_pq::{Envelope, MessageKind, ParticipantId, PqError, SigningIdentity};
use ringsum_protocol::client::Submission;
use ringsum_protocol::coordinator::{CheckedSubmission, Coordinator, RoundStatus};
use ringsum_protocol::message::{SubmissionDigest, Verified, max_answer_payload};
use ringsum_protocol::spec::Federation;
use ringsum_protocol::{AuditLog, ProtocolError, RoundResult};
use ringsum_threshold::HolderId;

use crate::error::Result;
pub use crate::event::Event;

/// A submission checked ahead of [`Engine::apply`], outside the engine's
/// lock and in parallel with others: the costly part (signatures, decoding
/// the update, the share bindings).
#[derive(Debug)]
pub struct Prepared {
    /// The round that was collecting when it was checked.
    round: Option<RoundId>,
    /// The client and the digest of what it signed.
    entry: Option<(ParticipantId, SubmissionDigest)>,
    /// Already accepted (the same signed content): nothing to check.
    duplicate: bool,
    checked: std::result::Result<CheckedSubmission, ProtocolError>,
}

/// What applying an event did.
#[derive(Debug)]
pub enum Outcome {
    /// Accepted: record it, then tell the sender.
    Accepted,
    /// The very same message was accepted before: nothing to record.
    Duplicate,
    /// Refused, with the protocol's reason.
    Refused(ProtocolError),
}

/// An applied event: its outcome, and whether it must be recorded (it was
/// accepted, or its refusal is in the audit log).
#[derive(Debug)]
pub struct Applied {
    /// What happened.
    pub outcome: Outcome,
    /// Whether the store must record the event.
    pub record: bool,
}

/// Where the federation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The open round collects submissions.
    Collecting,
    /// The set is signed; holders answer.
    Answering,
    /// Between rounds (the next one opens at once).
    Between,
    /// Every round has ended.
    Finished,
}

impl Phase {
    /// The name in logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Collecting => "collecting",
            Self::Answering => "answering",
            Self::Between => "between rounds",
            Self::Finished => "finished",
        }
    }
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// Decoded and published.
    Finished {
        /// Clients summed.
        clients: u64,
        /// Their weights' sum.
        weight_sum: i64,
        /// The quantization error bound of the average.
        error_bound: f64,
        /// Holders whose answers were used.
        used: Vec<HolderId>,
        /// Holders whose wrong answers were corrected.
        liars: Vec<HolderId>,
    },
    /// Failed (could not be decoded, or too few clients or holders by the
    /// deadline): the model is unchanged and the next round opens.
    Failed {
        /// Why, as in the audit log.
        reason: String,
    },
}

/// A round that ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundEnd {
    /// The round.
    pub round: RoundId,
    /// How.
    pub ending: Ending,
}

/// The coordinator's state machine.
#[derive(Debug)]
pub struct Engine {
    federation: Arc<Federation>,
    coordinator: Coordinator,
    /// The latest signed model publication: the opening of the open round,
    /// or the result of the last round that finished.
    publication: Vec<u8>,
    /// The signed set request, while holders answer.
    request: Option<Vec<u8>>,
    /// The open round's accepted submissions, in the order accepted.
    order: Vec<(ParticipantId, SubmissionDigest)>,
    /// The open round's accepted answers (payloads), by holder.
    answers: BTreeMap<HolderId, Vec<u8>>,
    ended: Vec<RoundEnd>,
    last_result: Option<RoundResult>,
}

/// Refusals of a checked submission that the protocol writes to the audit
/// log: the update's signature verified, so a member sent it, and what it
/// sent breaks the policy or does not decode. (Refusals before that, which
/// anyone can provoke, stay out of the log.)
const fn logged_refusal(e: &ProtocolError) -> bool {
    matches!(
        e,
        ProtocolError::TooFewSamples { .. }
            | ProtocolError::TooManySamples { .. }
            | ProtocolError::ShareCount { .. }
            | ProtocolError::ShareBinding { .. }
            | ProtocolError::Wire(_)
            | ProtocolError::Core(_)
    )
}

impl Engine {
    /// A fresh engine for `federation`: the coordinator's first audit line
    /// records the setup.
    ///
    /// # Errors
    /// The protocol's checks of the identity and the model.
    pub fn new(
        federation: Arc<Federation>,
        identity: SigningIdentity,
        model: Vec<f32>,
    ) -> Result<Self> {
        let audit = AuditLog::in_memory(federation.id(), federation.params().id().as_str());
        let coordinator = Coordinator::new(Arc::clone(&federation), identity, model, audit)?;
        Ok(Self {
            federation,
            coordinator,
            publication: Vec::new(),
            request: None,
            order: Vec::new(),
            answers: BTreeMap::new(),
            ended: Vec::new(),
            last_result: None,
        })
    }

    /// The federation.
    #[must_use]
    pub const fn federation(&self) -> &Arc<Federation> {
        &self.federation
    }

    /// The audit lines written so far (regenerated on replay: the same
    /// events, hashes and order; the signatures are fresh).
    #[must_use]
    pub fn audit_lines(&self) -> &[String] {
        self.coordinator.audit().lines()
    }

    /// Training rounds in all.
    #[must_use]
    pub fn rounds(&self) -> u64 {
        self.federation.policy().rounds
    }

    /// Where the federation stands.
    #[must_use]
    pub fn phase(&self) -> Phase {
        match self.coordinator.status() {
            RoundStatus::Collecting { .. } => Phase::Collecting,
            RoundStatus::Answering { .. } => Phase::Answering,
            RoundStatus::Idle { last } if last.0 >= self.rounds() => Phase::Finished,
            RoundStatus::Idle { .. } => Phase::Between,
        }
    }

    /// The open round, or the last one (0 before the first).
    #[must_use]
    pub fn round(&self) -> RoundId {
        match self.coordinator.status() {
            RoundStatus::Collecting { round, .. } | RoundStatus::Answering { round, .. } => round,
            RoundStatus::Idle { last } => last,
        }
    }

    fn collecting_round(&self) -> Option<RoundId> {
        match self.coordinator.status() {
            RoundStatus::Collecting { round, .. } => Some(round),
            _ => None,
        }
    }

    /// The latest signed model publication (empty before the first round).
    #[must_use]
    pub fn publication(&self) -> &[u8] {
        &self.publication
    }

    /// The signed set request, while holders answer.
    #[must_use]
    pub fn request(&self) -> Option<&[u8]> {
        self.request.as_deref()
    }

    /// Submissions accepted in the open round.
    #[must_use]
    pub fn accepted(&self) -> usize {
        self.order.len()
    }

    /// Holders that answered the open round's request.
    #[must_use]
    pub fn answered(&self) -> Vec<HolderId> {
        self.answers.keys().copied().collect()
    }

    /// Whether client `id` has a submission accepted in the open round.
    #[must_use]
    pub fn has_submitted(&self, id: ParticipantId) -> bool {
        let origin = self.origin(id);
        self.order.iter().any(|(c, _)| *c == origin)
    }

    /// The rounds that ended, in order.
    #[must_use]
    pub fn ended(&self) -> &[RoundEnd] {
        &self.ended
    }

    /// The last decoded round's result.
    #[must_use]
    pub const fn last_result(&self) -> Option<&RoundResult> {
        self.last_result.as_ref()
    }

    /// The current global model.
    #[must_use]
    pub fn model(&self) -> &[f32] {
        self.coordinator.model()
    }

    fn origin(&self, id: ParticipantId) -> ParticipantId {
        self.federation
            .registry()
            .get(&id)
            .map_or(id, |participant| participant.origin)
    }

    /// The sealed shares addressed to `holder` of the submissions accepted
    /// in `round` (the open round), from position `from` in the order they
    /// were accepted; empty for any other round.
    #[must_use]
    pub fn shares_for(&self, holder: ParticipantId, round: RoundId, from: usize) -> Vec<Vec<u8>> {
        let open = self.collecting_round().is_some() || self.request.is_some();
        if round != self.round() || !open {
            return Vec::new();
        }
        let Some(wanted) = self.order.get(from..) else {
            return Vec::new();
        };
        let by_client: BTreeMap<ParticipantId, &Envelope> = self
            .coordinator
            .shares_for(holder)
            .into_iter()
            .map(|share| (self.origin(share.sender()), share))
            .collect();
        wanted
            .iter()
            .filter_map(|(client, _)| by_client.get(client).map(|s| s.to_bytes()))
            .collect()
    }

    /// Checks `submission` against the open round without changing
    /// anything; the costly part of [`Self::apply`], run outside the lock.
    #[must_use]
    pub fn prepare(&self, submission: Submission) -> Prepared {
        let round = self.collecting_round();
        let entry = (self.origin(submission.update.sender()), submission.digest());
        if self.order.contains(&entry) {
            return Prepared {
                round,
                entry: Some(entry),
                duplicate: true,
                checked: Err(ProtocolError::WrongPhase("already accepted")),
            };
        }
        Prepared {
            round,
            entry: Some(entry),
            duplicate: false,
            checked: self.coordinator.check(submission),
        }
    }

    /// Parses and prepares recorded submission bytes.
    #[must_use]
    pub fn prepare_bytes(&self, bytes: &[u8]) -> Prepared {
        match Submission::from_bytes(&self.federation, bytes) {
            Ok(submission) => self.prepare(submission),
            Err(e) => Prepared {
                round: self.collecting_round(),
                entry: None,
                duplicate: false,
                checked: Err(e),
            },
        }
    }

    /// Applies an event; a submission with its [`Prepared`] check, made
    /// from the very same bytes (checked here when not given).
    #[must_use]
    pub fn apply(&mut self, event: &Event, prepared: Option<Prepared>) -> Applied {
        let before = self.audit_lines().len();
        let outcome = match event {
            Event::Open => self.open(),
            Event::Submission(bytes) => {
                let prepared = prepared.unwrap_or_else(|| self.prepare_bytes(bytes));
                self.submission(bytes, prepared)
            }
            Event::Close => self.close(),
            Event::Answer(bytes) => self.answer(bytes),
            Event::Finish => self.finish(),
            Event::Abandon(reason) => self.abandon(reason),
        };
        let record = matches!(outcome, Outcome::Accepted) || self.audit_lines().len() > before;
        Applied { outcome, record }
    }

    fn new_round(&mut self) {
        self.request = None;
        self.order.clear();
        self.answers.clear();
    }

    fn open(&mut self) -> Outcome {
        match self.coordinator.open_round() {
            Ok(envelope) => {
                self.publication = envelope.to_bytes();
                self.new_round();
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(e),
        }
    }

    fn submission(&mut self, bytes: &[u8], prepared: Prepared) -> Outcome {
        // The same signed content as an accepted submission of the open
        // round (a client resending after a restart, or anyone replaying
        // it): "already accepted", also once the set is closed.
        if prepared.duplicate && prepared.entry.is_some_and(|e| self.order.contains(&e)) {
            return Outcome::Duplicate;
        }
        let collecting = self.collecting_round();
        if prepared.round != collecting || collecting.is_none() {
            // Checked against a round that has closed since: refused as the
            // protocol would, but before it, so that nothing depends on
            // when the check ran.
            return Outcome::Refused(ProtocolError::WrongPhase(
                "no round is collecting submissions (the round closed)",
            ));
        }
        match prepared.checked {
            Ok(checked) => {
                let entry = (checked.client(), checked.digest());
                if self.order.contains(&entry) {
                    return Outcome::Duplicate;
                }
                match self.coordinator.accept(checked) {
                    Ok(_) => {
                        self.order.push(entry);
                        Outcome::Accepted
                    }
                    Err(e) => Outcome::Refused(e),
                }
            }
            Err(e) if logged_refusal(&e) => {
                // A member's submission that breaks the policy: refused by
                // the protocol's own path, which writes the refusal and its
                // reason to the audit log.
                if let Ok(submission) = Submission::from_bytes(&self.federation, bytes) {
                    let _ = self.coordinator.accept_submission(submission);
                }
                Outcome::Refused(e)
            }
            Err(e) => Outcome::Refused(e),
        }
    }

    fn close(&mut self) -> Outcome {
        match self.coordinator.close() {
            Ok(request) => {
                self.request = Some(request.to_bytes());
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(e),
        }
    }

    fn answer(&mut self, bytes: &[u8]) -> Outcome {
        let federation = Arc::clone(&self.federation);
        let envelope = match Envelope::from_bytes(bytes, max_answer_payload(&federation)) {
            Ok(e) => e,
            Err(e) => return Outcome::Refused(e.into()),
        };
        let RoundStatus::Answering { round, .. } = self.coordinator.status() else {
            return Outcome::Refused(ProtocolError::WrongPhase("no set was asked in this round"));
        };
        let found = envelope.routing().round;
        if found != round.0 {
            return Outcome::Refused(
                PqError::WrongRound {
                    expected: round.0,
                    found,
                }
                .into(),
            );
        }
        // Only an authentic holder's answer reaches the protocol (and its
        // audit log).
        let verified = match Verified::check(
            &federation,
            envelope.clone(),
            MessageKind::DecryptionShare,
            Some(round),
        ) {
            Ok(v) => v,
            Err(e) => return Outcome::Refused(e),
        };
        let Some(point) = federation.holder_point(verified.origin()) else {
            return Outcome::Refused(
                PqError::Unauthorized {
                    role: verified.role().name(),
                    kind: MessageKind::DecryptionShare,
                }
                .into(),
            );
        };
        if self.answers.get(&point).map(Vec::as_slice) == Some(envelope.payload()) {
            return Outcome::Duplicate;
        }
        let payload = envelope.payload().to_vec();
        match self.coordinator.accept_answer(envelope) {
            Ok(_) => {
                self.answers.insert(point, payload);
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(e),
        }
    }

    fn finish(&mut self) -> Outcome {
        let round = self.round();
        match self.coordinator.finish() {
            Ok(outcome) => {
                self.publication = outcome.envelope.to_bytes();
                self.ended.push(RoundEnd {
                    round,
                    ending: Ending::Finished {
                        clients: outcome.result.clients,
                        weight_sum: outcome.result.weight_sum,
                        error_bound: outcome.result.error_bound,
                        used: outcome.used,
                        liars: outcome.liars,
                    },
                });
                self.last_result = Some(outcome.result);
                self.new_round();
                Outcome::Accepted
            }
            Err(ProtocolError::RoundFailed { reason, .. }) => {
                self.ended.push(RoundEnd {
                    round,
                    ending: Ending::Failed { reason },
                });
                self.new_round();
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(e),
        }
    }

    fn abandon(&mut self, reason: &str) -> Outcome {
        let round = self.round();
        match self.coordinator.abandon(reason) {
            Ok(()) => {
                self.ended.push(RoundEnd {
                    round,
                    ending: Ending::Failed {
                        reason: reason.to_owned(),
                    },
                });
                self.new_round();
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(e),
        }
    }
}
