//! The messages of a round on per-round keys (docs/formats.md, "Round
//! messages"): typed digests, the verified envelope, and the payload
//! codecs. Every decoder bounds lengths by the federation before it
//! allocates.

use std::fmt;

use ringsum_core::update::RoundId;
use ringsum_pq::codec::{Reader, hex};
use ringsum_pq::{Envelope, MessageKind, ParticipantId, PqError, ROUND_SHARE_BINDING_BYTES, Role};
use ringsum_threshold::shamir::{HolderAnswer, packed_len};
use sha3::{Digest, Sha3_256};

use crate::error::{ProtocolError, Result};
use crate::spec::Federation;

/// The version byte every round payload starts with.
pub const ROUND_PAYLOAD_VERSION: u8 = 1;

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex(&self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
    };
}

digest_type!(
    /// The identity of a client's signed update ([`Envelope::digest`]):
    /// what its key shares are bound to and what a set names.
    SubmissionDigest
);
digest_type!(
    /// The identity of a set of clients in a round ([`ClientSet::digest`]):
    /// what a holder records and masks its answer with.
    SetDigest
);
digest_type!(
    /// A client's commitment to the answer key it sealed to every holder
    /// (`AnswerKey::commitment`).
    KeyCommitment
);

/// An envelope whose signature, sender, role, federation, parameter set
/// and kind were checked once; only [`Verified::check`] makes one.
#[derive(Clone, Debug)]
pub struct Verified {
    envelope: Envelope,
    origin: ParticipantId,
    role: Role,
}

impl Verified {
    /// Checks `envelope` as a `kind` message of `federation` (and of
    /// `round`, when given): routing, registration, role and signature.
    ///
    /// # Errors
    /// [`PqError::WrongKind`], [`PqError::WrongRound`],
    /// [`PqError::WrongParameterSet`], and those of
    /// `Registry::authenticate`.
    pub fn check(
        federation: &Federation,
        envelope: Envelope,
        kind: MessageKind,
        round: Option<RoundId>,
    ) -> Result<Self> {
        let routing = envelope.routing();
        if routing.kind != kind {
            return Err(PqError::WrongKind {
                expected: kind,
                found: routing.kind,
            }
            .into());
        }
        if let Some(round) = round
            && routing.round != round.0
        {
            return Err(PqError::WrongRound {
                expected: round.0,
                found: routing.round,
            }
            .into());
        }
        if routing.parameter_set != federation.params().id().as_str() {
            return Err(PqError::WrongParameterSet {
                expected: federation.params().id().to_string(),
                found: routing.parameter_set.clone(),
            }
            .into());
        }
        let participant = federation.registry().authenticate(&envelope)?;
        let (origin, role) = (participant.origin, participant.role);
        Ok(Self {
            envelope,
            origin,
            role,
        })
    }

    /// The envelope.
    #[must_use]
    pub const fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The sender's original id (stable through key rotations).
    #[must_use]
    pub const fn origin(&self) -> ParticipantId {
        self.origin
    }

    /// The sender's role.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The round the envelope names.
    #[must_use]
    pub const fn round(&self) -> RoundId {
        RoundId(self.envelope.routing().round)
    }
}

/// The head of a client's update payload: its declared sample count and
/// the commitment to its answer key, followed on the wire by the
/// ringsum-wire encoding of the ciphertexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateHead {
    /// The declared sample count (the FedAvg weight).
    pub samples: u64,
    /// The commitment to the answer key sealed with every share.
    pub key_commitment: KeyCommitment,
}

/// Bytes of [`UpdateHead`] on the wire: version, samples, commitment.
pub const UPDATE_HEAD_BYTES: usize = 1 + 8 + 32;

impl UpdateHead {
    /// `head || update` as the payload of an update envelope.
    #[must_use]
    pub fn encode(&self, update: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(UPDATE_HEAD_BYTES + update.len());
        out.push(ROUND_PAYLOAD_VERSION);
        out.extend_from_slice(&self.samples.to_be_bytes());
        out.extend_from_slice(&self.key_commitment.0);
        out.extend_from_slice(update);
        out
    }

    /// Splits an update payload into its head and the update's bytes.
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] (malformed) for a short payload or another
    /// version.
    pub fn decode(payload: &[u8]) -> Result<(Self, &[u8])> {
        let mut reader = Reader::new(payload, "update submission");
        version(&mut reader)?;
        let samples = reader.u64("samples")?;
        let key_commitment = KeyCommitment(reader.array("key commitment")?);
        let rest = payload.get(UPDATE_HEAD_BYTES..).unwrap_or_default();
        Ok((
            Self {
                samples,
                key_commitment,
            },
            rest,
        ))
    }
}

fn version(reader: &mut Reader<'_>) -> Result<()> {
    let found = reader.u8("version")?;
    if found != ROUND_PAYLOAD_VERSION {
        return Err(PqError::malformed("round payload", "unknown version").into());
    }
    Ok(())
}

/// What a round key share is bound to: the digest of the client's signed
/// update and its answer-key commitment (64 bytes, signed by the client
/// with the sealed share).
#[must_use]
pub fn share_binding(
    submission: SubmissionDigest,
    key_commitment: KeyCommitment,
) -> [u8; ROUND_SHARE_BINDING_BYTES] {
    let mut out = [0u8; ROUND_SHARE_BINDING_BYTES];
    let (head, tail) = out.split_at_mut(32);
    head.copy_from_slice(&submission.0);
    tail.copy_from_slice(&key_commitment.0);
    out
}

/// The two halves of a [`share_binding`].
#[must_use]
pub fn split_binding(
    binding: &[u8; ROUND_SHARE_BINDING_BYTES],
) -> (SubmissionDigest, KeyCommitment) {
    let (head, tail) = binding.split_at(32);
    let mut submission = [0u8; 32];
    let mut commitment = [0u8; 32];
    submission.copy_from_slice(head);
    commitment.copy_from_slice(tail);
    (SubmissionDigest(submission), KeyCommitment(commitment))
}

/// The binding bytes at the head of a round-key-share envelope's payload,
/// readable by anyone (the coordinator checks them before forwarding).
///
/// # Errors
/// [`ProtocolError::Pq`] (malformed) for a payload shorter than a binding.
pub fn binding_of(envelope: &Envelope) -> Result<(SubmissionDigest, KeyCommitment)> {
    let head = envelope
        .payload()
        .first_chunk::<ROUND_SHARE_BINDING_BYTES>()
        .ok_or_else(|| PqError::malformed("round key share", "payload shorter than its binding"))?;
    Ok(split_binding(head))
}

/// One client in a set: its id, the digest of its update and its
/// answer-key commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetEntry {
    /// The client.
    pub client: ParticipantId,
    /// Its signed update.
    pub submission: SubmissionDigest,
    /// Its answer-key commitment.
    pub key_commitment: KeyCommitment,
}

/// The set of clients whose key sum the coordinator asks for in a round,
/// ordered by client id, each once: the payload of the signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSet {
    /// The round.
    pub round: RoundId,
    /// The clients, strictly increasing by id.
    pub entries: Vec<SetEntry>,
}

const SET_ENTRY_BYTES: usize = 96;

impl ClientSet {
    /// The set's canonical bytes: version, round, count (u32), then each
    /// entry's client id, submission digest and key commitment.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + SET_ENTRY_BYTES * self.entries.len());
        out.push(ROUND_PAYLOAD_VERSION);
        out.extend_from_slice(&self.round.0.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(self.entries.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for entry in &self.entries {
            out.extend_from_slice(&entry.client.0);
            out.extend_from_slice(&entry.submission.0);
            out.extend_from_slice(&entry.key_commitment.0);
        }
        out
    }

    /// Decodes a set of at most `max_clients` entries. The order is not
    /// checked here ([`Self::check`] does, with the federation).
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] (malformed) for a bad length or version.
    pub fn decode(payload: &[u8], max_clients: usize) -> Result<Self> {
        let mut reader = Reader::new(payload, "client set");
        version(&mut reader)?;
        let round = RoundId(reader.u64("round")?);
        let count = reader.length("clients", max_clients)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(SetEntry {
                client: ParticipantId(reader.array("client")?),
                submission: SubmissionDigest(reader.array("submission digest")?),
                key_commitment: KeyCommitment(reader.array("key commitment")?),
            });
        }
        reader.finish()?;
        Ok(Self { round, entries })
    }

    /// SHA3-256 of the federation id and the encoding: the set's identity.
    #[must_use]
    pub fn digest(&self, federation: &Federation) -> SetDigest {
        let mut h = Sha3_256::new();
        h.update(b"ringsum/v2 client set");
        h.update(federation.id().0);
        h.update(self.encode());
        SetDigest(h.finalize().into())
    }

    /// Checks the set against the federation: at least `min_clients`
    /// entries, each a client of the federation, strictly increasing by
    /// id (so none twice).
    ///
    /// # Errors
    /// [`ProtocolError::SetTooSmall`], [`ProtocolError::NotAClient`],
    /// [`ProtocolError::SetNotCanonical`].
    pub fn check(&self, federation: &Federation) -> Result<()> {
        let min = federation.policy().min_clients;
        if self.entries.len() < min {
            return Err(ProtocolError::SetTooSmall {
                size: self.entries.len(),
                min,
            });
        }
        let mut previous: Option<ParticipantId> = None;
        for entry in &self.entries {
            if !federation.clients().contains(&entry.client) {
                return Err(ProtocolError::NotAClient(entry.client));
            }
            if previous.is_some_and(|p| p.0 >= entry.client.0) {
                return Err(ProtocolError::SetNotCanonical(entry.client));
            }
            previous = Some(entry.client);
        }
        Ok(())
    }

    /// The context a holder's answer mask is keyed with: the federation,
    /// the round and the set.
    #[must_use]
    pub fn mask_context(&self, federation: &Federation) -> Vec<u8> {
        let mut out = b"ringsum/v2 answer mask".to_vec();
        out.extend_from_slice(&self.digest(federation).0);
        out
    }
}

/// A holder's answer: the set it answers, then its masked key-sum share.
#[derive(Clone, Debug)]
pub struct AnswerPayload {
    /// The set answered.
    pub set: SetDigest,
    /// The answer.
    pub answer: HolderAnswer,
}

impl AnswerPayload {
    /// `version || set digest || answer bytes`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let answer = self.answer.to_bytes();
        let mut out = Vec::with_capacity(33 + answer.len());
        out.push(ROUND_PAYLOAD_VERSION);
        out.extend_from_slice(&self.set.0);
        out.extend_from_slice(&answer);
        out
    }

    /// Decodes an answer of the federation's field and degree.
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] (malformed) and the threshold layer's for a
    /// bad answer encoding.
    pub fn decode(federation: &Federation, payload: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(payload, "holder answer");
        version(&mut reader)?;
        let set = SetDigest(reader.array("set digest")?);
        let rest = payload.get(33..).unwrap_or_default();
        let answer =
            HolderAnswer::from_bytes(federation.committee().field(), federation.degree(), rest)?;
        Ok(Self { set, answer })
    }
}

/// The most bytes a client's sealed share (answer key and share) can take.
#[must_use]
pub fn max_sealed_share(federation: &Federation) -> usize {
    packed_len(&federation.committee().field(), federation.degree())
        .unwrap_or(usize::MAX)
        .saturating_add(128)
}

/// The most bytes the payload of a round-key-share envelope can take.
#[must_use]
pub fn max_share_payload(federation: &Federation) -> usize {
    max_sealed_share(federation).saturating_add(ROUND_SHARE_BINDING_BYTES + 4096)
}

/// The most bytes the payload of an update envelope can take.
#[must_use]
pub fn max_update_payload(federation: &Federation) -> usize {
    ringsum_wire::max_round_update_len(federation.params(), federation.shape())
        .saturating_add(UPDATE_HEAD_BYTES)
}

/// The most bytes the payload of a request (a set) can take.
#[must_use]
pub fn max_set_payload(federation: &Federation) -> usize {
    13 + SET_ENTRY_BYTES * federation.clients().len()
}

/// The most bytes the payload of a holder's answer can take.
#[must_use]
pub fn max_answer_payload(federation: &Federation) -> usize {
    max_sealed_share(federation).saturating_add(64)
}
