//! The coordinator's round on per-round keys, as one typed phase:
//! `Phase::Idle` -> [`Coordinator::open_round`] -> collecting
//! ([`Coordinator::accept`] adds each client's update and keeps its sealed
//! shares for [`Coordinator::shares_for`]) -> [`Coordinator::close`] signs
//! the set S and asks every holder -> answering
//! ([`Coordinator::accept_answer`]) -> [`Coordinator::finish`] combines,
//! decodes and publishes, or ends the round with a typed error that the
//! audit log records; either way the next round can open.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ringsum_core::round::{RoundAggregate, RoundUpdate};
use ringsum_core::update::{FedAvgResult, RoundId};
use ringsum_pq::codec::hex;
use ringsum_pq::{Envelope, MessageKind, ParticipantId, PqError, Role, SigningIdentity};
use ringsum_threshold::HolderId;
use ringsum_threshold::shamir::{HolderAnswer, combine_answers};
use serde_json::json;
use sha3::{Digest, Sha3_256};

use crate::audit::AuditLog;
use crate::client::{Submission, check_samples};
use crate::error::{ProtocolError, Result};
use crate::message::{
    AnswerPayload, ClientSet, KeyCommitment, SetDigest, SetEntry, SubmissionDigest, UpdateHead,
    Verified, binding_of,
};
use crate::result::RoundResult;
use crate::spec::Federation;

/// A submission whose signatures, shapes, round, policy and share bindings
/// were checked ([`Coordinator::check`]); only [`Coordinator::accept`]
/// adds it. Checking is the costly part and needs only `&Coordinator`, so
/// a service checks in parallel.
#[derive(Debug)]
pub struct CheckedSubmission {
    round: RoundId,
    client: ParticipantId,
    digest: SubmissionDigest,
    key_commitment: KeyCommitment,
    samples: u64,
    update: RoundUpdate,
    shares: BTreeMap<ParticipantId, Envelope>,
}

impl CheckedSubmission {
    /// The client (its original id).
    #[must_use]
    pub const fn client(&self) -> ParticipantId {
        self.client
    }

    /// The digest its shares are bound to.
    #[must_use]
    pub const fn digest(&self) -> SubmissionDigest {
        self.digest
    }

    /// The declared samples.
    #[must_use]
    pub const fn samples(&self) -> u64 {
        self.samples
    }
}

/// What the coordinator keeps of an accepted submission.
#[derive(Debug)]
struct Accepted {
    digest: SubmissionDigest,
    key_commitment: KeyCommitment,
    samples: u64,
    shares: BTreeMap<ParticipantId, Envelope>,
}

/// The state of the open round.
#[derive(Debug)]
struct Collecting {
    round: RoundId,
    aggregate: RoundAggregate,
    accepted: BTreeMap<ParticipantId, Accepted>,
}

/// The round after S was signed.
#[derive(Debug)]
struct Answering {
    collecting: Box<Collecting>,
    set: ClientSet,
    digest: SetDigest,
    request: Envelope,
    answers: BTreeMap<HolderId, HolderAnswer>,
}

/// The coordinator's phase.
#[derive(Debug)]
enum Phase {
    /// No round open.
    Idle,
    /// Submissions are being collected.
    Collecting(Box<Collecting>),
    /// The set is signed; holders are answering.
    Answering(Box<Answering>),
}

/// Where the coordinator is, as the outside sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundStatus {
    /// No round open; the last one ended (or none started).
    Idle {
        /// The last round opened (0 before the first).
        last: RoundId,
    },
    /// Collecting submissions.
    Collecting {
        /// The round.
        round: RoundId,
        /// Submissions accepted.
        accepted: usize,
    },
    /// Waiting for holders' answers.
    Answering {
        /// The round.
        round: RoundId,
        /// Clients in the set.
        clients: usize,
        /// Answers received.
        answers: usize,
    },
}

/// A finished round.
#[derive(Clone, Debug)]
pub struct RoundOutcome {
    /// The published result (the new global model).
    pub result: RoundResult,
    /// Its signed publication.
    pub envelope: Envelope,
    /// The decoded average of the updates (before it is added to the
    /// model).
    pub average: FedAvgResult,
    /// Holders whose answers were wrong and corrected.
    pub liars: Vec<HolderId>,
    /// Holders whose answers were used.
    pub used: Vec<HolderId>,
}

/// The coordinator of a federation.
#[derive(Debug)]
pub struct Coordinator {
    federation: Arc<Federation>,
    identity: SigningIdentity,
    audit: AuditLog,
    model: Vec<f32>,
    last: RoundId,
    phase: Phase,
}

impl Coordinator {
    /// The coordinator of `federation` with its identity, the initial
    /// global model and an audit log, whose first line records the setup.
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] for an identity that is not the
    /// federation's coordinator or a model of the wrong length; the log's.
    pub fn new(
        federation: Arc<Federation>,
        identity: SigningIdentity,
        model: Vec<f32>,
        mut audit: AuditLog,
    ) -> Result<Self> {
        if identity.id() != federation.coordinator() {
            return Err(ProtocolError::Setup(
                "this identity is not the federation's coordinator".into(),
            ));
        }
        let parameters = federation.layout().parameter_count();
        if model.len() != parameters {
            return Err(ProtocolError::Setup(format!(
                "the initial model has {} parameters, the layout {parameters}",
                model.len()
            )));
        }
        let policy = federation.policy();
        audit.append(
            &identity,
            0,
            &json!({
                "type": "setup",
                "federation": hex(&federation.id().0),
                "parameter_set": federation.params().id().to_string(),
                "threshold": federation.committee().threshold(),
                "holders": federation.holders().iter().map(|(h, p)| json!({"point": h.0, "id": p.to_string()})).collect::<Vec<_>>(),
                "clients": federation.clients().len(),
                "min_clients": policy.min_clients,
                "min_samples": policy.min_samples,
                "max_weight": policy.max_weight,
                "rounds": policy.rounds,
                "layout_hash": hex(federation.layout().hash()),
                // verify_log takes the coordinator's key from here when
                // none is given: without it no log of this coordinator
                // verifies on its own.
                "coordinator_algorithm": identity.algorithm().name(),
                "coordinator_key": hex(identity.public().to_bytes()),
            }),
        )?;
        Ok(Self {
            federation,
            identity,
            audit,
            model,
            last: RoundId(0),
            phase: Phase::Idle,
        })
    }

    /// The federation.
    #[must_use]
    pub const fn federation(&self) -> &Arc<Federation> {
        &self.federation
    }

    /// The audit log.
    #[must_use]
    pub const fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The current global model, flattened in layout order.
    #[must_use]
    pub fn model(&self) -> &[f32] {
        &self.model
    }

    /// Where the round stands.
    #[must_use]
    pub fn status(&self) -> RoundStatus {
        match &self.phase {
            Phase::Idle => RoundStatus::Idle { last: self.last },
            Phase::Collecting(c) => RoundStatus::Collecting {
                round: c.round,
                accepted: c.accepted.len(),
            },
            Phase::Answering(a) => RoundStatus::Answering {
                round: a.collecting.round,
                clients: a.set.entries.len(),
                answers: a.answers.len(),
            },
        }
    }

    /// The clients accepted in the open round, by id.
    #[must_use]
    pub fn accepted(&self) -> Vec<ParticipantId> {
        self.collecting()
            .map(|c| c.accepted.keys().copied().collect())
            .unwrap_or_default()
    }

    fn collecting(&self) -> Option<&Collecting> {
        match &self.phase {
            Phase::Idle => None,
            Phase::Collecting(c) => Some(c),
            Phase::Answering(a) => Some(&a.collecting),
        }
    }

    fn log(&mut self, round: RoundId, event: &serde_json::Value) -> Result<()> {
        self.audit.append(&self.identity, round.0, event)
    }

    /// Opens the next round and returns the signed announcement of the
    /// global model the clients train from (a [`MessageKind::RoundResult`]
    /// of the new round whose payload is the previous round's result).
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] while a round is open,
    /// [`ProtocolError::RoundOutOfRange`] after the last round.
    pub fn open_round(&mut self) -> Result<Envelope> {
        if !matches!(self.phase, Phase::Idle) {
            return Err(ProtocolError::WrongPhase("the open round is not finished"));
        }
        let round = RoundId(self.last.0 + 1);
        self.federation.check_round(round)?;
        let federation = Arc::clone(&self.federation);
        let context = federation.round_context(round);
        let mut aggregate = RoundAggregate::new(
            federation.params(),
            federation.packing(),
            federation.layout(),
            &context,
        )?;
        if let Some(plan) = federation.privacy() {
            aggregate = aggregate.with_value_bound(plan.worst_contribution());
        }
        let published = RoundResult {
            round: self.last.0,
            clients: 0,
            weight_sum: 0,
            error_bound: 0.0,
            model: self.model.clone(),
        };
        let envelope = Envelope::sign(
            &self.identity,
            federation.routing(round, MessageKind::RoundResult, ParticipantId::BROADCAST),
            published.encode(),
        )?;
        self.log(
            round,
            &json!({"type": "round_opened", "model_sha3": model_hash(&self.model)}),
        )?;
        self.phase = Phase::Collecting(Box::new(Collecting {
            round,
            aggregate,
            accepted: BTreeMap::new(),
        }));
        self.last = round;
        Ok(envelope)
    }

    /// Checks a submission for the open round without changing anything:
    /// the update is signed by a client of the federation for this round
    /// and decodes to the layout; the declared samples are within the
    /// policy; there is one share per holder, each signed by the same
    /// client for this round and bound to this update and its key
    /// commitment.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] when no round collects; the pq layer's
    /// for a bad signature, sender, kind, round or recipient;
    /// [`ProtocolError::TooFewSamples`], [`ProtocolError::TooManySamples`];
    /// [`ProtocolError::ShareCount`], [`ProtocolError::ShareBinding`]; the
    /// wire layer's for an update of the wrong shape.
    pub fn check(&self, submission: Submission) -> Result<CheckedSubmission> {
        let round = match &self.phase {
            Phase::Collecting(c) => c.round,
            _ => {
                return Err(ProtocolError::WrongPhase(
                    "no round is collecting submissions",
                ));
            }
        };
        let federation = &*self.federation;
        let Submission { update, shares } = submission;
        if update.routing().recipient != federation.coordinator() {
            return Err(PqError::WrongRecipient {
                found: update.routing().recipient,
            }
            .into());
        }
        let update = Verified::check(
            federation,
            update,
            MessageKind::UpdateSubmission,
            Some(round),
        )?;
        let client = update.origin();
        let digest = SubmissionDigest(update.envelope().digest());
        let (head, bytes) = UpdateHead::decode(update.envelope().payload())?;
        check_samples(federation, head.samples)?;
        let decoded = ringsum_wire::decode_round_update(
            federation.params(),
            federation.packing(),
            federation.layout(),
            bytes,
        )?;
        if decoded.round() != round {
            return Err(ProtocolError::WrongPhase(
                "the update is encrypted for another round",
            ));
        }
        if shares.len() != federation.holders().len() {
            return Err(ProtocolError::ShareCount {
                expected: federation.holders().len(),
                found: shares.len(),
            });
        }
        let holders: BTreeSet<ParticipantId> = federation.holders().values().copied().collect();
        let mut by_holder = BTreeMap::new();
        for share in shares {
            let holder = share.routing().recipient;
            let bad = |reason| ProtocolError::ShareBinding { holder, reason };
            if !holders.contains(&holder) {
                return Err(bad("is addressed to someone who is not a key holder"));
            }
            if by_holder.contains_key(&holder) {
                return Err(bad("comes twice"));
            }
            let share =
                Verified::check(federation, share, MessageKind::RoundKeyShare, Some(round))?;
            if share.origin() != client {
                return Err(bad("is signed by another client than the update"));
            }
            if binding_of(share.envelope())? != (digest, head.key_commitment) {
                return Err(bad("is bound to another update or answer key"));
            }
            by_holder.insert(holder, share.envelope().clone());
        }
        Ok(CheckedSubmission {
            round,
            client,
            digest,
            key_commitment: head.key_commitment,
            samples: head.samples,
            update: decoded,
            shares: by_holder,
        })
    }

    /// Adds a checked submission to the open round: one per client (a
    /// byte-identical resend is a replay, anything else a duplicate).
    /// Returns the client.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] unless the round it was checked for is
    /// collecting; [`PqError::Replay`], [`PqError::DuplicateSubmission`];
    /// the core layer's if the sum would overflow. Nothing changes then.
    pub fn accept(&mut self, checked: CheckedSubmission) -> Result<ParticipantId> {
        let outcome = self.add(checked);
        self.log_submission(&outcome)?;
        outcome
    }

    fn add(&mut self, checked: CheckedSubmission) -> Result<ParticipantId> {
        let Phase::Collecting(collecting) = &mut self.phase else {
            return Err(ProtocolError::WrongPhase(
                "no round is collecting submissions",
            ));
        };
        if collecting.round != checked.round {
            return Err(ProtocolError::WrongPhase(
                "the submission was checked for another round",
            ));
        }
        if let Some(previous) = collecting.accepted.get(&checked.client) {
            return Err(if previous.digest == checked.digest {
                PqError::Replay(checked.client)
            } else {
                PqError::DuplicateSubmission {
                    sender: checked.client,
                    kind: MessageKind::UpdateSubmission,
                }
            }
            .into());
        }
        collecting.aggregate.try_add(&checked.update)?;
        collecting.accepted.insert(
            checked.client,
            Accepted {
                digest: checked.digest,
                key_commitment: checked.key_commitment,
                samples: checked.samples,
                shares: checked.shares,
            },
        );
        Ok(checked.client)
    }

    fn log_submission(&mut self, outcome: &Result<ParticipantId>) -> Result<()> {
        let round = self.collecting().map_or(self.last, |c| c.round);
        let event = match outcome {
            Ok(client) => json!({"type": "submission_accepted", "client": client.to_string()}),
            Err(e) => json!({"type": "submission_refused", "reason": e.to_string()}),
        };
        self.log(round, &event)
    }

    /// [`Self::check`] then [`Self::accept`]; a refusal is logged with its
    /// reason.
    ///
    /// # Errors
    /// As both.
    pub fn accept_submission(&mut self, submission: Submission) -> Result<ParticipantId> {
        match self.check(submission) {
            Ok(checked) => self.accept(checked),
            Err(e) => {
                let refused = Err(e);
                self.log_submission(&refused)?;
                refused
            }
        }
    }

    /// The sealed shares the accepted clients of the open round sent to
    /// `holder`, to forward to it.
    #[must_use]
    pub fn shares_for(&self, holder: ParticipantId) -> Vec<&Envelope> {
        self.collecting()
            .map(|c| {
                c.accepted
                    .values()
                    .filter_map(|a| a.shares.get(&holder))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closes collection: signs the set S of the accepted clients (at
    /// least `min_clients`) and returns the request to send to every
    /// holder. The same request again, while the round answers.
    ///
    /// # Errors
    /// [`ProtocolError::NotEnoughClients`] below the minimum (the round
    /// keeps collecting), [`ProtocolError::WrongPhase`] when no round is
    /// open.
    pub fn close(&mut self) -> Result<Envelope> {
        let collecting = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Collecting(c) => c,
            Phase::Answering(a) => {
                let request = a.request.clone();
                self.phase = Phase::Answering(a);
                return Ok(request);
            }
            Phase::Idle => return Err(ProtocolError::WrongPhase("no round is open")),
        };
        let min = self.federation.policy().min_clients;
        if collecting.accepted.len() < min {
            let accepted = collecting.accepted.len();
            self.phase = Phase::Collecting(collecting);
            return Err(ProtocolError::NotEnoughClients { accepted, min });
        }
        let set = ClientSet {
            round: collecting.round,
            entries: collecting
                .accepted
                .iter()
                .map(|(client, a)| SetEntry {
                    client: *client,
                    submission: a.digest,
                    key_commitment: a.key_commitment,
                })
                .collect(),
        };
        let digest = set.digest(&self.federation);
        let signed = Envelope::sign(
            &self.identity,
            self.federation.routing(
                collecting.round,
                MessageKind::DecryptionRequest,
                ParticipantId::BROADCAST,
            ),
            set.encode(),
        );
        let request = match signed {
            Ok(request) => request,
            Err(e) => {
                self.phase = Phase::Collecting(collecting);
                return Err(e.into());
            }
        };
        let round = collecting.round;
        let clients: Vec<String> = set.entries.iter().map(|e| e.client.to_string()).collect();
        self.phase = Phase::Answering(Box::new(Answering {
            collecting,
            set,
            digest,
            request: request.clone(),
            answers: BTreeMap::new(),
        }));
        self.log(
            round,
            &json!({"type": "set_closed", "set": digest.to_string(), "clients": clients}),
        )?;
        Ok(request)
    }

    /// Takes a holder's signed answer to the open request. Returns how many
    /// holders have answered.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] unless a set was asked;
    /// [`ProtocolError::WrongSet`] for an answer to another set; the pq
    /// layer's for the envelope; [`PqError::DuplicateSubmission`] for a
    /// second answer of one holder; the threshold layer's for an answer
    /// that does not decode or names another point than its sender's.
    pub fn accept_answer(&mut self, envelope: Envelope) -> Result<usize> {
        let outcome = self.take_answer(envelope);
        let round = self.last;
        let event = match &outcome {
            Ok((holder, _)) => json!({"type": "answer_accepted", "holder": holder.0}),
            Err(e) => json!({"type": "answer_refused", "reason": e.to_string()}),
        };
        self.log(round, &event)?;
        outcome.map(|(_, count)| count)
    }

    fn take_answer(&mut self, envelope: Envelope) -> Result<(HolderId, usize)> {
        let federation = Arc::clone(&self.federation);
        let Phase::Answering(answering) = &mut self.phase else {
            return Err(ProtocolError::WrongPhase("no set was asked in this round"));
        };
        if envelope.routing().recipient != federation.coordinator() {
            return Err(PqError::WrongRecipient {
                found: envelope.routing().recipient,
            }
            .into());
        }
        let verified = Verified::check(
            &federation,
            envelope,
            MessageKind::DecryptionShare,
            Some(answering.collecting.round),
        )?;
        let point = federation
            .holder_point(verified.origin())
            .filter(|_| verified.role() == Role::KeyHolder)
            .ok_or_else(|| ProtocolError::Setup("the answer is not from a key holder".into()))?;
        let payload = AnswerPayload::decode(&federation, verified.envelope().payload())?;
        if payload.set != answering.digest {
            return Err(ProtocolError::WrongSet);
        }
        if payload.answer.holder() != point {
            return Err(ProtocolError::Setup(format!(
                "holder {} answered for point {}",
                point.0,
                payload.answer.holder().0
            )));
        }
        if answering.answers.contains_key(&point) {
            return Err(PqError::DuplicateSubmission {
                sender: verified.origin(),
                kind: MessageKind::DecryptionShare,
            }
            .into());
        }
        answering.answers.insert(point, payload.answer);
        Ok((point, answering.answers.len()))
    }

    /// Whether every holder has answered.
    #[must_use]
    pub fn all_answered(&self) -> bool {
        match &self.phase {
            Phase::Answering(a) => a.answers.len() == self.federation.holders().len(),
            _ => false,
        }
    }

    /// Ends the round: from the answers received (at least t), recovers the
    /// clients' key sum, correcting and naming wrong answers where enough
    /// holders answered, decodes the average, checks the weight against
    /// the declared samples, and publishes the new model. A round that
    /// cannot be decoded ends with [`ProtocolError::RoundFailed`], recorded
    /// in the audit log; the next round can open either way.
    ///
    /// # Errors
    /// [`ProtocolError::NotEnoughHolders`] with fewer than t answers (the
    /// round keeps waiting); [`ProtocolError::WrongPhase`] unless a set was
    /// asked; [`ProtocolError::RoundFailed`].
    pub fn finish(&mut self) -> Result<RoundOutcome> {
        let Phase::Answering(answering) = &self.phase else {
            return Err(ProtocolError::WrongPhase("no set was asked in this round"));
        };
        let threshold = self.federation.committee().threshold();
        if answering.answers.len() < threshold as usize {
            return Err(ProtocolError::NotEnoughHolders {
                available: answering.answers.len(),
                threshold,
            });
        }
        let round = answering.collecting.round;
        let decoded = self.decode(answering);
        self.phase = Phase::Idle;
        match decoded {
            Ok((average, liars, used)) => self.publish(round, average, liars, used),
            Err(e) => {
                let reason = e.to_string();
                self.log(round, &json!({"type": "round_failed", "reason": reason}))?;
                Err(ProtocolError::RoundFailed {
                    round: round.0,
                    reason,
                })
            }
        }
    }

    /// Ends the open round without a result (too few clients or holders
    /// before a deadline), with `reason` in the audit log.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] when no round is open; the log's.
    pub fn abandon(&mut self, reason: &str) -> Result<()> {
        if matches!(self.phase, Phase::Idle) {
            return Err(ProtocolError::WrongPhase("no round is open"));
        }
        self.phase = Phase::Idle;
        self.log(
            self.last,
            &json!({"type": "round_failed", "reason": reason}),
        )
    }

    /// Combines, decodes and checks; changes nothing.
    fn decode(
        &self,
        answering: &Answering,
    ) -> Result<(FedAvgResult, Vec<HolderId>, Vec<HolderId>)> {
        let federation = &*self.federation;
        let answers: Vec<HolderAnswer> = answering.answers.values().cloned().collect();
        let clients = answering.set.entries.len() as u64;
        let bound = clients.saturating_mul(federation.params().gaussian().bound().unsigned_abs());
        let key_sum =
            combine_answers(federation.committee(), &answers, federation.degree(), bound)?;
        let aggregate = &answering.collecting.aggregate;
        let average = aggregate.decode(
            federation.packing(),
            federation.layout(),
            key_sum.coefficients(),
        )?;
        let declared: Vec<u64> = answering
            .collecting
            .accepted
            .values()
            .map(|a| a.samples)
            .collect();
        check_weight(federation, &declared, average.weight_sum)?;
        Ok((average, key_sum.liars().to_vec(), key_sum.used().to_vec()))
    }

    fn publish(
        &mut self,
        round: RoundId,
        average: FedAvgResult,
        liars: Vec<HolderId>,
        used: Vec<HolderId>,
    ) -> Result<RoundOutcome> {
        let mut model = self.model.clone();
        for (global, delta) in model.iter_mut().zip(average.average.concat()) {
            *global += delta;
        }
        let result = RoundResult {
            round: round.0,
            clients: average.clients,
            weight_sum: average.weight_sum,
            error_bound: average.error_bound,
            model,
        };
        let envelope = Envelope::sign(
            &self.identity,
            self.federation
                .routing(round, MessageKind::RoundResult, ParticipantId::BROADCAST),
            result.encode(),
        )?;
        self.log(
            round,
            &json!({
                "type": "round_finished",
                "clients": average.clients,
                "weight_sum": average.weight_sum,
                "holders_used": used.iter().map(|h| h.0).collect::<Vec<_>>(),
                "holders_named": liars.iter().map(|h| h.0).collect::<Vec<_>>(),
                "model_sha3": model_hash(&result.model),
            }),
        )?;
        self.model.clone_from(&result.model);
        Ok(RoundOutcome {
            result,
            envelope,
            average,
            liars,
            used,
        })
    }
}

/// The decrypted weight sum must be what the declared sample counts give:
/// each client's weight is samples / max_weight in units of 2^-f,
/// stochastically rounded, so the sum may differ by less than one unit per
/// client. A client whose encrypted weight disagrees with the count it
/// declared fails this.
fn check_weight(federation: &Federation, declared: &[u64], weight_sum: i64) -> Result<()> {
    let encoding = federation.params().encoding();
    let unit = f64::from(encoding.fraction_bits).exp2();
    #[expect(
        clippy::cast_precision_loss,
        reason = "sample counts and weights are far below 2^52"
    )]
    let (expected, found, slack) = (
        declared
            .iter()
            .map(|s| *s as f64 / encoding.max_weight as f64 * unit)
            .sum::<f64>(),
        weight_sum as f64,
        declared.len() as f64 + 1.0,
    );
    if (found - expected).abs() > slack {
        return Err(ProtocolError::WeightMismatch {
            declared: declared.iter().fold(0u64, |a, s| a.saturating_add(*s)),
            found: weight_sum,
        });
    }
    Ok(())
}

fn model_hash(model: &[f32]) -> String {
    let mut h = Sha3_256::new();
    for v in model {
        h.update(v.to_be_bytes());
    }
    hex(&h.finalize())
}
