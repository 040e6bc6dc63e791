//! Who may say what: the [`Registry`] of a federation's participants (their
//! keys, roles, rotations and the revocation list, consulted on every
//! verification), and the per-round [`Inbox`] that refuses wrong rounds,
//! replays and second submissions.

use std::collections::{HashMap, HashSet};

use sha3::{Digest, Sha3_256};

use crate::alg::{KemAlgorithm, SignatureAlgorithm};
use crate::codec::Reader;
use crate::envelope::{Envelope, FederationId, MessageKind, Routing};
use crate::error::{PqError, Result};
use crate::identity::{ParticipantId, PublicIdentity, ROTATION_CONTEXT, SigningIdentity};
use crate::kem::SealingPublicKey;

/// What a participant does in the federation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Encrypts and submits model updates.
    Client,
    /// Holds a share of the decryption key.
    KeyHolder,
    /// Runs rounds, requests decryption, publishes results, revokes keys.
    Coordinator,
}

impl Role {
    /// A readable name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::KeyHolder => "key holder",
            Self::Coordinator => "coordinator",
        }
    }

    /// Whether this role may send `kind`.
    #[must_use]
    pub const fn may_send(self, kind: MessageKind) -> bool {
        match kind {
            MessageKind::UpdateSubmission | MessageKind::RoundKeyShare => {
                matches!(self, Self::Client)
            }
            MessageKind::DecryptionShare => matches!(self, Self::KeyHolder),
            // The coordinator's identity may query its own service (its
            // operator's `ringsum status`); the service limits it to that.
            MessageKind::Query => true,
            MessageKind::DecryptionRequest
            | MessageKind::RoundResult
            | MessageKind::AuditRecord => matches!(self, Self::Coordinator),
            // Every participant rotates and may revoke its own key; only a
            // coordinator revokes others' (checked in apply_revocation).
            MessageKind::KeyRotation | MessageKind::Revocation => true,
        }
    }
}

/// Why a key was revoked (one byte on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// The secret key is or may be known to someone else.
    KeyCompromise = 1,
    /// The participant left the federation.
    Retired = 2,
    /// The coordinator removed the participant.
    Removed = 3,
}

impl RevocationReason {
    fn from_byte(byte: u8) -> Result<Self> {
        match byte {
            1 => Ok(Self::KeyCompromise),
            2 => Ok(Self::Retired),
            3 => Ok(Self::Removed),
            other => Err(PqError::malformed(
                "revocation",
                format!("unknown reason {other}"),
            )),
        }
    }
}

/// The state of a registered key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// In use.
    Active,
    /// Replaced by a new key through a signed rotation.
    Rotated(ParticipantId),
}

/// The algorithms a federation requires of every key, fixed when it is set
/// up: a hybrid federation stays hybrid through every rotation. Moving to
/// a later algorithm is a new policy (and a new set of registrations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// The signature algorithm of every identity.
    pub signature: SignatureAlgorithm,
    /// The KEM of every sealing key.
    pub kem: KemAlgorithm,
}

impl AlgorithmPolicy {
    /// ML-DSA-65 and ML-KEM-1024 alone.
    pub const POST_QUANTUM: Self = Self {
        signature: SignatureAlgorithm::MlDsa65,
        kem: KemAlgorithm::MlKem1024,
    };

    /// ML-DSA-65 + Ed25519 and ML-KEM-1024 + X25519.
    pub const HYBRID: Self = Self {
        signature: SignatureAlgorithm::MlDsa65Ed25519,
        kem: KemAlgorithm::MlKem1024X25519,
    };

    fn check(&self, signing: &PublicIdentity, sealing: Option<&SealingPublicKey>) -> Result<()> {
        if signing.algorithm() != self.signature {
            return Err(PqError::PolicyViolation {
                required: self.signature.name(),
                found: signing.algorithm().name(),
            });
        }
        match sealing {
            Some(key) if key.algorithm() != self.kem => Err(PqError::PolicyViolation {
                required: self.kem.name(),
                found: key.algorithm().name(),
            }),
            _ => Ok(()),
        }
    }
}

/// One registered participant.
#[derive(Clone, Debug)]
pub struct Participant {
    /// The id of the participant's first key: it stays the same through
    /// rotations, so a rotation cannot buy a second submission in a round.
    pub origin: ParticipantId,
    /// Its role.
    pub role: Role,
    /// Its signing public key.
    pub signing: PublicIdentity,
    /// Its sealing public key (every key holder has one).
    pub sealing: Option<SealingPublicKey>,
    /// Active or rotated.
    pub status: KeyStatus,
}

/// A federation's participants and its revocation list.
#[derive(Clone, Debug)]
pub struct Registry {
    federation: FederationId,
    policy: AlgorithmPolicy,
    participants: HashMap<ParticipantId, Participant>,
    revoked: HashMap<ParticipantId, RevocationReason>,
}

impl Registry {
    /// An empty registry for `federation`, whose keys must all follow `policy`.
    #[must_use]
    pub fn new(federation: FederationId, policy: AlgorithmPolicy) -> Self {
        Self {
            federation,
            policy,
            participants: HashMap::new(),
            revoked: HashMap::new(),
        }
    }

    /// The federation.
    #[must_use]
    pub const fn federation(&self) -> FederationId {
        self.federation
    }

    /// The algorithms every key must use.
    #[must_use]
    pub const fn policy(&self) -> AlgorithmPolicy {
        self.policy
    }

    /// Registers a participant and returns its id.
    ///
    /// # Errors
    /// [`PqError::AlreadyRegistered`], [`PqError::RevokedSender`] for a
    /// revoked key, [`PqError::PolicyViolation`] for a key of another
    /// algorithm than the policy's, [`PqError::Malformed`] for a key holder
    /// without a sealing key.
    pub fn register(
        &mut self,
        role: Role,
        signing: PublicIdentity,
        sealing: Option<SealingPublicKey>,
    ) -> Result<ParticipantId> {
        let id = signing.id();
        if self.participants.contains_key(&id) {
            return Err(PqError::AlreadyRegistered(id));
        }
        if self.revoked.contains_key(&id) {
            return Err(PqError::RevokedSender(id));
        }
        self.policy.check(&signing, sealing.as_ref())?;
        if role == Role::KeyHolder && sealing.is_none() {
            return Err(PqError::malformed(
                "registration",
                "a key holder needs a sealing key",
            ));
        }
        self.participants.insert(
            id,
            Participant {
                origin: id,
                role,
                signing,
                sealing,
                status: KeyStatus::Active,
            },
        );
        Ok(id)
    }

    /// The participant with this id, in whatever state.
    #[must_use]
    pub fn get(&self, id: &ParticipantId) -> Option<&Participant> {
        self.participants.get(id)
    }

    /// Puts `id` on the revocation list (an administrative decision taken
    /// locally; [`Self::apply_revocation`] takes a signed notice), together
    /// with every key it was rotated to: whoever stole a key and rotated it
    /// to one of their own loses both. Revoking an id that is not
    /// registered keeps it from ever being registered.
    pub fn revoke(&mut self, id: ParticipantId, reason: RevocationReason) {
        let mut next = Some(id);
        while let Some(current) = next {
            if self.revoked.contains_key(&current) && current != id {
                break;
            }
            self.revoked.entry(current).or_insert(reason);
            next = match self.participants.get(&current).map(|p| p.status) {
                Some(KeyStatus::Rotated(successor)) => Some(successor),
                _ => None,
            };
        }
    }

    /// Why `id` was revoked, if it was.
    #[must_use]
    pub fn revocation(&self, id: &ParticipantId) -> Option<RevocationReason> {
        self.revoked.get(id).copied()
    }

    /// The revocation list.
    pub fn revocation_list(&self) -> impl Iterator<Item = (&ParticipantId, &RevocationReason)> {
        self.revoked.iter()
    }

    /// Checks that `envelope` comes from an active, unrevoked participant
    /// of this federation whose role may send its kind, under the
    /// algorithm it registered, and that the signature verifies.
    ///
    /// # Errors
    /// [`PqError::WrongFederation`], [`PqError::UnknownSender`],
    /// [`PqError::RevokedSender`], [`PqError::RotatedSender`],
    /// [`PqError::Unauthorized`], [`PqError::AlgorithmMismatch`],
    /// [`PqError::BadSignature`].
    pub fn authenticate(&self, envelope: &Envelope) -> Result<&Participant> {
        let routing = envelope.routing();
        if routing.federation != self.federation {
            return Err(PqError::WrongFederation);
        }
        let sender = envelope.sender();
        if self.revoked.contains_key(&sender) {
            return Err(PqError::RevokedSender(sender));
        }
        let participant = self
            .participants
            .get(&sender)
            .ok_or(PqError::UnknownSender(sender))?;
        if let KeyStatus::Rotated(successor) = participant.status {
            return Err(PqError::RotatedSender { sender, successor });
        }
        if !participant.role.may_send(routing.kind) {
            return Err(PqError::Unauthorized {
                role: participant.role.name(),
                kind: routing.kind,
            });
        }
        envelope.verify_signature(&participant.signing)?;
        Ok(participant)
    }

    /// Applies a signed key rotation ([`rotation_envelope`]): the old key
    /// is retired, the new one takes over its role (and its sealing key,
    /// unless the rotation brings a new one). Returns the new id.
    ///
    /// # Errors
    /// Those of [`Self::authenticate`], [`PqError::WrongKind`],
    /// [`PqError::Malformed`] for a bad payload, [`PqError::PolicyViolation`]
    /// for new keys of another algorithm than the policy's,
    /// [`PqError::BadRotationProof`] if the new key did not sign,
    /// [`PqError::AlreadyRegistered`] or [`PqError::RevokedSender`] for a new
    /// key already known. A refused rotation changes nothing.
    ///
    /// The rotation takes effect at once, whatever round the envelope
    /// names; a participant's submissions stay counted under its
    /// [`Participant::origin`], so the new key cannot submit again in a
    /// round the old one already did.
    pub fn apply_rotation(&mut self, envelope: &Envelope) -> Result<ParticipantId> {
        expect_kind(envelope, MessageKind::KeyRotation)?;
        let old = self.authenticate(envelope)?.clone();
        let rotation = Rotation::decode(envelope.payload())?;
        let new_id = rotation.signing.id();
        self.policy
            .check(&rotation.signing, rotation.sealing.as_ref())?;
        rotation
            .signing
            .verify(
                ROTATION_CONTEXT,
                &rotation_proof_bytes(self.federation, envelope.sender(), &rotation.statement),
                &rotation.proof,
            )
            .map_err(|_| PqError::BadRotationProof)?;
        if self.participants.contains_key(&new_id) {
            return Err(PqError::AlreadyRegistered(new_id));
        }
        if self.revoked.contains_key(&new_id) {
            return Err(PqError::RevokedSender(new_id));
        }
        // Every check passed: only now does the registry change.
        let sealing = rotation.sealing.or(old.sealing);
        self.participants.insert(
            new_id,
            Participant {
                origin: old.origin,
                role: old.role,
                signing: rotation.signing,
                sealing,
                status: KeyStatus::Active,
            },
        );
        if let Some(entry) = self.participants.get_mut(&envelope.sender()) {
            entry.status = KeyStatus::Rotated(new_id);
        }
        Ok(new_id)
    }

    /// Applies a signed revocation notice ([`revocation_payload`]) from a
    /// coordinator, or from the key's own holder. Returns the revoked id.
    ///
    /// # Errors
    /// Those of [`Self::authenticate`], [`PqError::WrongKind`],
    /// [`PqError::Malformed`], [`PqError::Unauthorized`] when a
    /// non-coordinator revokes another key.
    pub fn apply_revocation(&mut self, envelope: &Envelope) -> Result<ParticipantId> {
        expect_kind(envelope, MessageKind::Revocation)?;
        let sender = self.authenticate(envelope)?;
        let (target, reason) = decode_revocation(envelope.payload())?;
        if sender.role != Role::Coordinator && target != envelope.sender() {
            return Err(PqError::Unauthorized {
                role: sender.role.name(),
                kind: MessageKind::Revocation,
            });
        }
        self.revoke(target, reason);
        Ok(target)
    }
}

fn expect_kind(envelope: &Envelope, expected: MessageKind) -> Result<()> {
    let found = envelope.routing().kind;
    if found == expected {
        Ok(())
    } else {
        Err(PqError::WrongKind { expected, found })
    }
}

/// The payload of a revocation notice: the id, then the reason byte.
#[must_use]
pub fn revocation_payload(id: ParticipantId, reason: RevocationReason) -> Vec<u8> {
    let mut out = id.0.to_vec();
    out.push(reason as u8);
    out
}

fn decode_revocation(payload: &[u8]) -> Result<(ParticipantId, RevocationReason)> {
    let mut reader = Reader::new(payload, "revocation");
    let target = ParticipantId(reader.array("revoked id")?);
    let reason = RevocationReason::from_byte(reader.u8("reason")?)?;
    reader.finish()?;
    Ok((target, reason))
}

/// The payload decoders of rotations and revocations, reached directly by
/// the fuzz targets (built with `--cfg fuzzing`): through
/// [`Registry::apply_rotation`] each input would first need an ML-DSA
/// signature, which would take nearly all of the fuzzer's time.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::{Result, Rotation, decode_revocation};

    /// Decodes a key-rotation payload as [`super::Registry::apply_rotation`]
    /// does, before the proof of possession is checked.
    ///
    /// # Errors
    /// What the decoder refuses.
    pub fn decode_rotation_payload(payload: &[u8]) -> Result<()> {
        Rotation::decode(payload).map(drop)
    }

    /// Decodes a revocation payload as
    /// [`super::Registry::apply_revocation`] does.
    ///
    /// # Errors
    /// What the decoder refuses.
    pub fn decode_revocation_payload(payload: &[u8]) -> Result<()> {
        decode_revocation(payload).map(drop)
    }
}

/// The label of a rotation's proof of possession.
const ROTATION_LABEL: &[u8] = b"ringsum key rotation proof";

fn rotation_proof_bytes(federation: FederationId, old: ParticipantId, statement: &[u8]) -> Vec<u8> {
    let mut out = ROTATION_LABEL.to_vec();
    out.extend_from_slice(&federation.0);
    out.extend_from_slice(&old.0);
    out.extend_from_slice(&Sha3_256::digest(statement));
    out
}

struct Rotation {
    signing: PublicIdentity,
    sealing: Option<SealingPublicKey>,
    statement: Vec<u8>,
    proof: Vec<u8>,
}

impl Rotation {
    fn decode(payload: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(payload, "key rotation");
        let algorithm = SignatureAlgorithm::from_id(reader.u16("signature algorithm")?)?;
        let signing = PublicIdentity::from_bytes(
            algorithm,
            reader.take(algorithm.public_key_len(), "new public key")?,
        )?;
        let sealing = match reader.u16("sealing algorithm")? {
            0 => None,
            id => {
                let kem = KemAlgorithm::from_id(id)?;
                Some(SealingPublicKey::from_bytes(
                    kem,
                    reader.take(kem.public_key_len(), "new sealing key")?,
                )?)
            }
        };
        let statement_len = payload.len().saturating_sub(reader.remaining());
        let statement = payload.get(..statement_len).unwrap_or(&[]).to_vec();
        let proof = reader.take(algorithm.signature_len(), "proof")?.to_vec();
        reader.finish()?;
        Ok(Self {
            signing,
            sealing,
            statement,
            proof,
        })
    }
}

/// Announces `new` as the successor of `old`: an envelope of kind
/// [`MessageKind::KeyRotation`] signed by the old key, whose payload carries
/// the new public key (and optionally a new sealing key) and a proof that
/// the new key's holder agreed (docs/formats.md, "Key rotation").
///
/// # Errors
/// As [`Envelope::sign`].
pub fn rotation_envelope(
    old: &SigningIdentity,
    new: &SigningIdentity,
    new_sealing: Option<&SealingPublicKey>,
    federation: FederationId,
    round: u64,
    parameter_set: &str,
) -> Result<Envelope> {
    let mut statement = new.algorithm().id().to_be_bytes().to_vec();
    statement.extend_from_slice(new.public().to_bytes());
    match new_sealing {
        None => statement.extend_from_slice(&0u16.to_be_bytes()),
        Some(key) => {
            statement.extend_from_slice(&key.algorithm().id().to_be_bytes());
            statement.extend_from_slice(key.to_bytes());
        }
    }
    let proof = new.sign(
        ROTATION_CONTEXT,
        &rotation_proof_bytes(federation, old.id(), &statement),
    )?;
    let mut payload = statement;
    payload.extend_from_slice(&proof);
    Envelope::sign(
        old,
        Routing {
            federation,
            round,
            kind: MessageKind::KeyRotation,
            recipient: ParticipantId::BROADCAST,
            parameter_set: parameter_set.to_owned(),
        },
        payload,
    )
}

/// What an [`Inbox`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The sender.
    pub sender: ParticipantId,
    /// The sender's role.
    pub role: Role,
    /// The message's digest ([`Envelope::digest`]).
    pub digest: [u8; 32],
}

/// A checked message not yet recorded: [`Inbox::commit`] records it once
/// the caller has also accepted its payload.
#[derive(Debug)]
#[must_use]
pub struct Pending {
    inbox: u64,
    accepted: Accepted,
    slot: Slot,
}

/// What one sender may fill once per round: its origin id, the kind, and
/// the recipient for kinds sent to each recipient separately.
type Slot = (ParticipantId, MessageKind, Option<ParticipantId>);

/// Tells inboxes apart, so a [`Pending`] goes back to the inbox that made it.
static NEXT_INBOX: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Pending {
    /// What will be recorded.
    #[must_use]
    pub const fn accepted(&self) -> &Accepted {
        &self.accepted
    }
}

/// One receiver's view of one round: it accepts messages of this
/// federation, round and parameter set, addressed to everyone or to it,
/// each at most once, and at most one per participant and kind (one per
/// recipient for secret shares); a participant is counted under its
/// original id through key rotations.
#[derive(Debug)]
pub struct Inbox {
    instance: u64,
    federation: FederationId,
    round: u64,
    parameter_set: String,
    me: Option<ParticipantId>,
    seen: HashSet<[u8; 32]>,
    slots: HashSet<Slot>,
}

impl Inbox {
    /// An empty inbox. `me` is the receiver's own id (messages addressed to
    /// it are accepted besides broadcasts); `None` accepts broadcasts only.
    #[must_use]
    pub fn new(
        federation: FederationId,
        round: u64,
        parameter_set: &str,
        me: Option<ParticipantId>,
    ) -> Self {
        Self {
            instance: NEXT_INBOX.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            federation,
            round,
            parameter_set: parameter_set.to_owned(),
            me,
            seen: HashSet::new(),
            slots: HashSet::new(),
        }
    }

    /// The round.
    #[must_use]
    pub const fn round(&self) -> u64 {
        self.round
    }

    /// How many messages were accepted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing was accepted yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Checks `envelope` as a `kind` message of this round and records it.
    ///
    /// # Errors
    /// See [`Self::check`]. A refused message leaves the inbox unchanged.
    pub fn accept(
        &mut self,
        registry: &Registry,
        envelope: &Envelope,
        kind: MessageKind,
    ) -> Result<Accepted> {
        let pending = self.check(registry, envelope, kind)?;
        self.commit(pending)
    }

    /// Checks `envelope` without recording it: federation, round, kind,
    /// parameter set, recipient, replay, the sender's registration, role
    /// and signature, and that the sender has not sent this kind to this
    /// recipient in the round before.
    ///
    /// # Errors
    /// [`PqError::WrongFederation`], [`PqError::WrongRound`],
    /// [`PqError::WrongKind`], [`PqError::WrongParameterSet`],
    /// [`PqError::WrongRecipient`], [`PqError::Replay`],
    /// [`PqError::DuplicateSubmission`], and those of
    /// [`Registry::authenticate`].
    pub fn check(
        &self,
        registry: &Registry,
        envelope: &Envelope,
        kind: MessageKind,
    ) -> Result<Pending> {
        let routing = envelope.routing();
        if routing.federation != self.federation || registry.federation() != self.federation {
            return Err(PqError::WrongFederation);
        }
        if routing.round != self.round {
            return Err(PqError::WrongRound {
                expected: self.round,
                found: routing.round,
            });
        }
        if routing.kind != kind {
            return Err(PqError::WrongKind {
                expected: kind,
                found: routing.kind,
            });
        }
        if routing.parameter_set != self.parameter_set {
            return Err(PqError::WrongParameterSet {
                expected: self.parameter_set.clone(),
                found: routing.parameter_set.clone(),
            });
        }
        if routing.recipient != ParticipantId::BROADCAST && Some(routing.recipient) != self.me {
            return Err(PqError::WrongRecipient {
                found: routing.recipient,
            });
        }
        if kind.is_per_recipient() && routing.recipient == ParticipantId::BROADCAST {
            return Err(PqError::UnaddressedShare);
        }
        // A byte-identical (or re-signed) copy of an accepted message is
        // refused before its signature is checked: replays cost no
        // verification. A forged copy is reported as a replay too.
        let digest = envelope.digest();
        if self.seen.contains(&digest) {
            return Err(PqError::Replay(envelope.sender()));
        }
        let participant = registry.authenticate(envelope)?;
        let recipient = kind.is_per_recipient().then_some(routing.recipient);
        let slot = (participant.origin, kind, recipient);
        if self.slots.contains(&slot) {
            return Err(PqError::DuplicateSubmission {
                sender: envelope.sender(),
                kind,
            });
        }
        Ok(Pending {
            inbox: self.instance,
            accepted: Accepted {
                sender: envelope.sender(),
                role: participant.role,
                digest,
            },
            slot,
        })
    }

    /// Records a message that [`Self::check`] of this inbox passed. Call it
    /// right after the check: a revocation applied in between is not seen.
    ///
    /// # Errors
    /// [`PqError::ForeignPending`] for a message another inbox checked,
    /// [`PqError::Replay`] or [`PqError::DuplicateSubmission`] if another
    /// message was committed in between; the inbox is then unchanged.
    pub fn commit(&mut self, pending: Pending) -> Result<Accepted> {
        let Pending {
            inbox,
            accepted,
            slot,
        } = pending;
        if inbox != self.instance {
            return Err(PqError::ForeignPending);
        }
        if self.seen.contains(&accepted.digest) {
            return Err(PqError::Replay(accepted.sender));
        }
        if self.slots.contains(&slot) {
            return Err(PqError::DuplicateSubmission {
                sender: accepted.sender,
                kind: slot.1,
            });
        }
        self.seen.insert(accepted.digest);
        self.slots.insert(slot);
        Ok(accepted)
    }
}
