//! The coordinator as a deterministic state machine over [`Event`]s.
//!
//! Every input that reaches the protocol's [`Coordinator`] (a ceremony
//! message, a submission, a share) and every decision the service takes
//! (collect the key, open a round, ask for or retry a decryption) is an
//! event. Applying the same events in the same order to a fresh engine
//! gives the same state and the same audit chain: the coordinator's only
//! randomness, the re-randomisation of an aggregate before a retried
//! decryption, comes from a generator seeded from the store. That is what
//! makes recovery exact: the store records each event with the audit lines
//! it produced, and a restart replays them.

use std::collections::BTreeMap;

use ringsum_core::update::ciphertexts_for;
use ringsum_math::Csprng;
use ringsum_pq::{Envelope, MessageKind, ParticipantId, PqError, Role, SigningIdentity};
use ringsum_protocol::payload::{
    RoundResult, decode_commitment, decode_public_share, encode_aggregate, secret_share_len,
};
use ringsum_protocol::{AuditLog, Coordinator, DecodedSubmission, ProtocolError, Setup};
use ringsum_threshold::HolderId;
use ringsum_wire::{max_update_len, packed_poly_len};
use sha3::{Digest, Sha3_256};

use crate::error::{NetError, Result};

/// An input to the coordinator, as recorded in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A signed ceremony message (commitment, public-key share, sealed share).
    Ceremony(Vec<u8>),
    /// Compute and announce the collective key.
    CollectKey,
    /// Open a round.
    Open(u64),
    /// A signed submission.
    Submission(Vec<u8>),
    /// Ask these available holders for decryption shares.
    Request(Vec<HolderId>),
    /// Re-randomise and ask these available holders again.
    Retry(Vec<HolderId>),
    /// A signed decryption share.
    Share(Vec<u8>),
}

impl Event {
    /// The recorded form: a tag byte, then the envelope, the round (u64
    /// big-endian) or the holder points (u32 big-endian each).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let holders = |tag: u8, list: &[HolderId]| {
            let mut out = vec![tag];
            for h in list {
                out.extend_from_slice(&h.0.to_be_bytes());
            }
            out
        };
        match self {
            Self::Ceremony(b) => [&[1u8][..], b].concat(),
            Self::CollectKey => vec![2],
            Self::Open(r) => [&[3u8][..], &r.to_be_bytes()].concat(),
            Self::Submission(b) => [&[4u8][..], b].concat(),
            Self::Request(h) => holders(5, h),
            Self::Retry(h) => holders(6, h),
            Self::Share(b) => [&[7u8][..], b].concat(),
        }
    }

    /// Reads a recorded event.
    ///
    /// # Errors
    /// [`NetError::Config`] for an unknown tag or a malformed body.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = || NetError::Config("a recorded event is malformed".into());
        let (tag, body) = bytes.split_first().ok_or_else(bad)?;
        let holders = |body: &[u8]| -> Result<Vec<HolderId>> {
            if !body.len().is_multiple_of(4) {
                return Err(bad());
            }
            body.chunks_exact(4)
                .map(|c| {
                    Ok(HolderId(u32::from_be_bytes(
                        c.try_into().map_err(|_| bad())?,
                    )))
                })
                .collect()
        };
        Ok(match tag {
            1 => Self::Ceremony(body.to_vec()),
            2 if body.is_empty() => Self::CollectKey,
            3 => Self::Open(u64::from_be_bytes(body.try_into().map_err(|_| bad())?)),
            4 => Self::Submission(body.to_vec()),
            5 => Self::Request(holders(body)?),
            6 => Self::Retry(holders(body)?),
            7 => Self::Share(body.to_vec()),
            _ => return Err(bad()),
        })
    }
}

/// A submission's costly checks done ahead, outside the engine's lock
/// and in parallel: the envelope's parse (which hashes the payload) and
/// the decoding of the encrypted update.
#[derive(Debug)]
pub struct PreparedSubmission {
    parsed: std::result::Result<(Envelope, DecodedSubmission), String>,
}

impl PreparedSubmission {
    /// Prepares the submission `bytes` of `setup` (payloads up to
    /// `max_payload` bytes): parses the envelope (hashing its payload) and
    /// decodes the update. Pass the same bytes to [`Engine::apply_prepared`].
    #[must_use]
    pub fn new(setup: &Setup, max_payload: usize, bytes: &[u8]) -> Self {
        let parsed = Envelope::from_bytes(bytes, max_payload)
            .map(|envelope| {
                let decoded = DecodedSubmission::decode(setup, &envelope);
                (envelope, decoded)
            })
            .map_err(|e| format!("not a valid envelope: {e}"));
        Self { parsed }
    }

    /// Prepares a submission whose envelope was already parsed from the
    /// bytes that will be applied.
    #[must_use]
    pub fn from_envelope(setup: &Setup, envelope: Envelope) -> Self {
        let decoded = DecodedSubmission::decode(setup, &envelope);
        Self {
            parsed: Ok((envelope, decoded)),
        }
    }
}

/// The largest envelope payload of `kind` in the federation of `setup`:
/// what the coordinator and the participants bound a parse by, before any
/// allocation.
#[must_use]
pub fn max_payload(setup: &Setup, kind: MessageKind) -> usize {
    let params = &setup.params;
    let ciphertexts = ciphertexts_for(&setup.packing, &setup.layout);
    let poly = packed_poly_len(params.ring());
    match kind {
        MessageKind::UpdateSubmission => 8 + max_update_len(params, ciphertexts),
        MessageKind::DecryptionShare => ciphertexts
            .saturating_mul(poly + 16)
            .saturating_add(4096 + 4 * setup.holders.len()),
        MessageKind::DecryptionRequest => 4096 + 4 * setup.holders.len(),
        MessageKind::RoundResult => 64 + 4 * setup.layout.parameter_count(),
        MessageKind::CollectiveKey => 2 * poly + 8192,
        MessageKind::KeyCommitment | MessageKind::PublicKeyShare => poly + 8192,
        _ => secret_share_len(params) + 8192,
    }
}

/// What applying an event did.
#[derive(Debug)]
pub enum Outcome {
    /// Accepted: record it, then tell the sender.
    Accepted,
    /// The very same message was accepted before: nothing to record.
    Duplicate,
    /// Refused, with the reason.
    Refused(Refusal),
}

/// Why a message or decision was refused, sorted for the transport.
#[derive(Debug)]
pub enum Refusal {
    /// Not decodable, not for this federation, round or kind.
    Invalid(String),
    /// The sender is not on the allow-list, is revoked or may not send it.
    Unauthorized(String),
    /// Another message of this sender was accepted in its place.
    Conflict(String),
    /// Not now: the federation is in another phase.
    Phase(String),
}

impl Refusal {
    fn from_protocol(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::Pq(
                PqError::UnknownSender(_)
                | PqError::RevokedSender(_)
                | PqError::RotatedSender { .. }
                | PqError::Unauthorized { .. }
                | PqError::BadSignature,
            ) => Self::Unauthorized(e.to_string()),
            ProtocolError::Pq(PqError::Replay(_) | PqError::DuplicateSubmission { .. }) => {
                Self::Conflict(e.to_string())
            }
            ProtocolError::WrongPhase(_)
            | ProtocolError::NotEnoughClients { .. }
            | ProtocolError::NotEnoughHolders { .. } => Self::Phase(e.to_string()),
            _ => Self::Invalid(e.to_string()),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(m) | Self::Unauthorized(m) | Self::Conflict(m) | Self::Phase(m) => {
                f.write_str(m)
            }
        }
    }
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
    /// The key ceremony.
    Ceremony,
    /// The round's submissions are coming in.
    Collecting,
    /// The round's decryption was requested.
    Decrypting,
    /// Between rounds (the next one opens at once).
    Between,
    /// Every round is done.
    Finished,
}

impl Phase {
    /// The name on the wire.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ceremony => "ceremony",
            Self::Collecting => "collecting",
            Self::Decrypting => "decrypting",
            Self::Between => "between",
            Self::Finished => "finished",
        }
    }
}

/// The ceremony messages one participant may read.
#[derive(Clone, Debug, Default)]
pub struct CeremonyView {
    /// Every holder's signed commitment.
    pub commitments: Vec<Vec<u8>>,
    /// Every holder's signed public-key share.
    pub public_shares: Vec<Vec<u8>>,
    /// The sealed shares addressed to the reader.
    pub sealed: Vec<Vec<u8>>,
    /// The signed collective key, once announced.
    pub announcement: Option<Vec<u8>>,
}

/// The coordinator's state machine.
#[derive(Debug)]
pub struct Engine {
    setup: Setup,
    rounds: u64,
    coordinator: Coordinator,
    commitments: BTreeMap<ParticipantId, Vec<u8>>,
    reveals: BTreeMap<ParticipantId, Vec<u8>>,
    sealed: BTreeMap<(ParticipantId, ParticipantId), Vec<u8>>,
    announcement: Option<Vec<u8>>,
    /// The open round's model publication, or the last result.
    publication: Option<Vec<u8>>,
    request: Option<Vec<u8>>,
    submitted: BTreeMap<ParticipantId, [u8; 32]>,
    shares: BTreeMap<ParticipantId, [u8; 32]>,
    result: Option<RoundResult>,
    finished: bool,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
}

impl Engine {
    /// A fresh engine: the coordinator's first audit line records the setup.
    ///
    /// # Errors
    /// The protocol's checks of the setup, identity and model.
    pub fn new(
        setup: Setup,
        rounds: u64,
        identity: SigningIdentity,
        model: Vec<f32>,
        rng_seed: [u8; 32],
    ) -> Result<Self> {
        let audit = AuditLog::in_memory(setup.federation(), &setup.params.id().to_string());
        let coordinator =
            Coordinator::new(&setup, identity, model, audit, Csprng::from_seed(rng_seed))?;
        Ok(Self {
            setup,
            rounds,
            coordinator,
            commitments: BTreeMap::new(),
            reveals: BTreeMap::new(),
            sealed: BTreeMap::new(),
            announcement: None,
            publication: None,
            request: None,
            submitted: BTreeMap::new(),
            shares: BTreeMap::new(),
            result: None,
            finished: false,
        })
    }

    /// The setup.
    #[must_use]
    pub const fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The audit lines written so far (regenerated on replay: same events,
    /// hashes and order; the signatures are fresh).
    #[must_use]
    pub fn audit_lines(&self) -> &[String] {
        self.coordinator.audit().lines()
    }

    /// Where the federation stands.
    #[must_use]
    pub fn phase(&self) -> Phase {
        if self.finished {
            return Phase::Finished;
        }
        if self.announcement.is_none() {
            return Phase::Ceremony;
        }
        match self.coordinator.open_round_state() {
            Some((_, false)) => Phase::Collecting,
            Some((_, true)) => Phase::Decrypting,
            None => Phase::Between,
        }
    }

    /// The open round, or the last one.
    #[must_use]
    pub fn round(&self) -> u64 {
        self.coordinator
            .open_round_state()
            .map_or(self.coordinator.last_round(), |(r, _)| r)
    }

    /// Training rounds in all.
    #[must_use]
    pub const fn rounds(&self) -> u64 {
        self.rounds
    }

    /// The current model publication (open round) or last signed result.
    #[must_use]
    pub fn publication(&self) -> Option<&[u8]> {
        self.publication.as_deref()
    }

    /// The last decrypted round's result.
    #[must_use]
    pub const fn result(&self) -> Option<&RoundResult> {
        self.result.as_ref()
    }

    /// The current model.
    #[must_use]
    pub fn model(&self) -> &[f32] {
        self.coordinator.model()
    }

    /// Whether `id` has a submission accepted in the open round.
    #[must_use]
    pub fn has_submitted(&self, id: &ParticipantId) -> bool {
        self.origin(id)
            .is_some_and(|o| self.submitted.contains_key(&o))
    }

    /// Submissions accepted in the open round.
    #[must_use]
    pub fn accepted(&self) -> usize {
        self.coordinator.accepted_clients().len()
    }

    /// Holders of the active set that have not answered.
    #[must_use]
    pub fn missing_holders(&self) -> Vec<HolderId> {
        self.coordinator.missing_holders()
    }

    /// The ceremony messages: commitments, public-key shares, the sealed
    /// shares addressed to `reader`, and the announcement.
    #[must_use]
    pub fn ceremony_view(&self, reader: &ParticipantId) -> CeremonyView {
        CeremonyView {
            commitments: self.commitments.values().cloned().collect(),
            public_shares: self.reveals.values().cloned().collect(),
            sealed: self
                .sealed
                .iter()
                .filter(|((_, to), _)| to == reader)
                .map(|(_, b)| b.clone())
                .collect(),
            announcement: self.announcement.clone(),
        }
    }

    /// Ceremony progress: commitments, public-key shares, sealed shares
    /// addressed to `reader`, and whether the key was announced.
    #[must_use]
    pub fn ceremony_counts(&self, reader: &ParticipantId) -> (usize, usize, usize, bool) {
        (
            self.commitments.len(),
            self.reveals.len(),
            self.sealed.keys().filter(|(_, to)| to == reader).count(),
            self.announcement.is_some(),
        )
    }

    /// The decryption task for holder `id`: the signed request and the
    /// encoded aggregate, if it is in the active set and has not answered.
    #[must_use]
    pub fn task(&self, id: &ParticipantId) -> Option<(Vec<u8>, Vec<u8>)> {
        let holder = self.setup.holder_of(*id)?;
        if !self.missing_holders().contains(&holder) {
            return None;
        }
        let request = self.request.clone()?;
        let aggregate = self.coordinator.aggregate().ok()?;
        Some((request, encode_aggregate(aggregate)))
    }

    fn origin(&self, id: &ParticipantId) -> Option<ParticipantId> {
        self.setup.registry.get(id).map(|p| p.origin)
    }

    /// Applies an event.
    #[must_use]
    pub fn apply(&mut self, event: &Event) -> Applied {
        self.apply_prepared(event, None)
    }

    /// Applies an event; a submission with its [`PreparedSubmission`],
    /// made from the very same bytes.
    #[must_use]
    pub fn apply_prepared(
        &mut self,
        event: &Event,
        prepared: Option<PreparedSubmission>,
    ) -> Applied {
        let before = self.audit_lines().len();
        let outcome = match event {
            Event::Submission(bytes) => self.submission(bytes, prepared),
            Event::Ceremony(bytes) => self.ceremony(bytes),
            Event::CollectKey => self.collect_key(),
            Event::Open(round) => self.open(*round),
            Event::Request(available) => {
                self.decision(|e| e.coordinator.request_decryption(&e.setup, available))
            }
            Event::Retry(available) => {
                self.decision(|e| e.coordinator.retry_decryption(&e.setup, available))
            }
            Event::Share(bytes) => self.share(bytes),
        };
        let record = matches!(outcome, Outcome::Accepted) || self.audit_lines().len() > before;
        Applied { outcome, record }
    }

    fn parse(&self, bytes: &[u8], kind: MessageKind) -> std::result::Result<Envelope, Refusal> {
        Envelope::from_bytes(bytes, max_payload(&self.setup, kind))
            .map_err(|e| Refusal::Invalid(format!("not a valid envelope: {e}")))
    }

    fn ceremony(&mut self, bytes: &[u8]) -> Outcome {
        if self.announcement.is_some() {
            return Outcome::Refused(Refusal::Phase("the key ceremony is over".into()));
        }
        let envelope = match self.parse(bytes, MessageKind::SecretShare) {
            Ok(e) => e,
            Err(r) => return Outcome::Refused(r),
        };
        let routing = envelope.routing();
        let sender = envelope.sender();
        let checked = self
            .setup
            .registry
            .authenticate(&envelope)
            .map_err(|e| Refusal::from_protocol(&e.into()))
            .and_then(|p| {
                if p.role != Role::KeyHolder {
                    return Err(Refusal::Unauthorized(
                        "only key holders take part in the ceremony".into(),
                    ));
                }
                if routing.round != 0 || routing.parameter_set != self.setup.params.id().as_str() {
                    return Err(Refusal::Invalid(
                        "a ceremony message must be for round 0 of this parameter set".into(),
                    ));
                }
                Ok(())
            });
        if let Err(r) = checked {
            return Outcome::Refused(r);
        }
        let slot = match routing.kind {
            MessageKind::KeyCommitment => self.commitments.get(&sender),
            MessageKind::PublicKeyShare => self.reveals.get(&sender),
            MessageKind::SecretShare => {
                if !self.setup.holders.values().any(|h| *h == routing.recipient) {
                    return Outcome::Refused(Refusal::Invalid(
                        "a sealed share must be addressed to a key holder".into(),
                    ));
                }
                self.sealed.get(&(sender, routing.recipient))
            }
            other => {
                return Outcome::Refused(Refusal::Invalid(format!(
                    "{other:?} is not a ceremony message"
                )));
            }
        };
        match slot {
            Some(existing) if existing.as_slice() == bytes => return Outcome::Duplicate,
            Some(_) => {
                return Outcome::Refused(Refusal::Conflict(
                    "this holder already sent another message of this kind".into(),
                ));
            }
            None => {}
        }
        if routing.kind == MessageKind::PublicKeyShare {
            if self.commitments.len() < self.setup.holders.len() {
                return Outcome::Refused(Refusal::Phase(
                    "public-key shares are revealed once every commitment is in".into(),
                ));
            }
            // The share must be the one committed to: checked now, so
            // that a bad one is refused to its sender instead of stalling
            // the key's collection.
            let committed = self
                .commitments
                .get(&sender)
                .and_then(|b| {
                    Envelope::from_bytes(b, max_payload(&self.setup, MessageKind::KeyCommitment))
                        .ok()
                })
                .and_then(|e| decode_commitment(e.payload()).ok());
            let revealed = decode_public_share(&self.setup.params, envelope.payload())
                .ok()
                .map(|share| share.commitment());
            if committed.is_none() || committed != revealed {
                return Outcome::Refused(Refusal::Invalid(
                    "the public-key share does not match its commitment".into(),
                ));
            }
        }
        let stored = bytes.to_vec();
        match routing.kind {
            MessageKind::KeyCommitment => self.commitments.insert(sender, stored),
            MessageKind::PublicKeyShare => self.reveals.insert(sender, stored),
            _ => self.sealed.insert((sender, routing.recipient), stored),
        };
        Outcome::Accepted
    }

    /// Whether every commitment, public-key share and sealed share is in
    /// and the key is not yet collected (the ceremony ends with it).
    #[must_use]
    pub fn key_ready(&self) -> bool {
        let n = self.setup.holders.len();
        self.announcement.is_none()
            && self.commitments.len() == n
            && self.reveals.len() == n
            && self.sealed.len() == n * n
    }

    fn collect_key(&mut self) -> Outcome {
        if !self.key_ready() {
            return Outcome::Refused(Refusal::Phase("the ceremony is not complete".into()));
        }
        let parse = |list: &BTreeMap<ParticipantId, Vec<u8>>, kind| {
            list.values()
                .map(|b| self.parse(b, kind))
                .collect::<std::result::Result<Vec<_>, _>>()
        };
        let (commitments, reveals) = match (
            parse(&self.commitments, MessageKind::KeyCommitment),
            parse(&self.reveals, MessageKind::PublicKeyShare),
        ) {
            (Ok(c), Ok(r)) => (c, r),
            (Err(r), _) | (_, Err(r)) => return Outcome::Refused(r),
        };
        match self
            .coordinator
            .collect_key(&self.setup, &commitments, &reveals)
        {
            Ok(envelope) => {
                self.announcement = Some(envelope.to_bytes());
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(Refusal::from_protocol(&e)),
        }
    }

    fn open(&mut self, round: u64) -> Outcome {
        if round > self.rounds {
            return Outcome::Refused(Refusal::Phase("past the last round".into()));
        }
        match self.coordinator.open_round(&self.setup, round) {
            Ok(envelope) => {
                self.publication = Some(envelope.to_bytes());
                self.request = None;
                self.submitted.clear();
                self.shares.clear();
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(Refusal::from_protocol(&e)),
        }
    }

    fn decision(
        &mut self,
        ask: impl FnOnce(&mut Self) -> ringsum_protocol::Result<Envelope>,
    ) -> Outcome {
        match ask(self) {
            Ok(envelope) => {
                self.request = Some(envelope.to_bytes());
                self.shares.clear();
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(Refusal::from_protocol(&e)),
        }
    }

    fn submission(&mut self, bytes: &[u8], prepared: Option<PreparedSubmission>) -> Outcome {
        let prepared = prepared.unwrap_or_else(|| {
            PreparedSubmission::new(
                &self.setup,
                max_payload(&self.setup, MessageKind::UpdateSubmission),
                bytes,
            )
        });
        let (envelope, decoded) = match prepared.parsed {
            Ok(p) => p,
            Err(r) => return Outcome::Refused(Refusal::Invalid(r)),
        };
        let origin = self.origin(&envelope.sender());
        // The signed content identifies a submission: the same content
        // signed again is the same submission.
        let hash = envelope.digest();
        if let Some(o) = origin
            && self.submitted.get(&o) == Some(&hash)
        {
            return Outcome::Duplicate;
        }
        match self
            .coordinator
            .accept_decoded_submission(&self.setup, &envelope, decoded)
        {
            Ok(()) => {
                if let Some(o) = origin {
                    self.submitted.insert(o, hash);
                }
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(Refusal::from_protocol(&e)),
        }
    }

    fn share(&mut self, bytes: &[u8]) -> Outcome {
        let envelope = match self.parse(bytes, MessageKind::DecryptionShare) {
            Ok(e) => e,
            Err(r) => return Outcome::Refused(r),
        };
        let origin = self.origin(&envelope.sender());
        let hash = digest(bytes);
        if let Some(o) = origin
            && self.shares.get(&o) == Some(&hash)
        {
            return Outcome::Duplicate;
        }
        match self.coordinator.accept_share(&self.setup, &envelope) {
            Ok(done) => {
                if let Some(o) = origin {
                    self.shares.insert(o, hash);
                }
                if let Some(outcome) = done {
                    self.publication = Some(outcome.envelope.to_bytes());
                    self.request = None;
                    self.finished = outcome.result.round >= self.rounds;
                    self.result = Some(outcome.result);
                }
                Outcome::Accepted
            }
            Err(e) => Outcome::Refused(Refusal::from_protocol(&e)),
        }
    }
}
