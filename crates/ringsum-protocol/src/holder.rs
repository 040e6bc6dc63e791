//! A key holder's round: it receives each client's sealed share of the
//! round's secret (forwarded by the coordinator), and, asked by the
//! coordinator for a set S of clients, answers with its masked share of the
//! sum of their secrets, at most one S per round, recorded durably in its
//! [`AnswerJournal`] before the answer leaves.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ringsum_core::update::RoundId;
use ringsum_pq::{
    Envelope, Inbox, MessageKind, ParticipantId, SealingKey, SigningIdentity, open_round_share,
};
use ringsum_threshold::HolderId;
use ringsum_threshold::shamir::{AnswerKey, KeySumAccumulator, ShareMessage, decode_client_share};

use crate::error::{ProtocolError, Result};
use crate::message::{
    AnswerPayload, ClientSet, KeyCommitment, SetDigest, SubmissionDigest, Verified,
    max_sealed_share, split_binding,
};
use crate::spec::Federation;

/// What a holder answered in one round: the set and the answer's payload,
/// so that the same set asked again gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnsweredSet {
    /// The set answered.
    pub set: SetDigest,
    /// The answer's payload ([`AnswerPayload::encode`]).
    pub payload: Vec<u8>,
}

/// A holder's durable record of the sets it answered, one per round. The
/// holder calls [`AnswerJournal::record`] before its answer leaves; an
/// implementation returns only once the record survives a crash (the
/// service keeps it in its database; [`MemoryJournal`] is for tests and
/// single-process runs).
pub trait AnswerJournal {
    /// The journal's failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// What was answered in `round`, if anything.
    ///
    /// # Errors
    /// The storage's.
    fn answered(&self, round: RoundId) -> Result<Option<AnsweredSet>, Self::Error>;

    /// Records the answer of `round`, durably.
    ///
    /// # Errors
    /// The storage's; the holder then does not answer.
    fn record(&mut self, round: RoundId, answered: &AnsweredSet) -> Result<(), Self::Error>;
}

/// An [`AnswerJournal`] in memory: lost when the process ends.
#[derive(Clone, Debug, Default)]
pub struct MemoryJournal(BTreeMap<RoundId, AnsweredSet>);

impl AnswerJournal for MemoryJournal {
    type Error = std::convert::Infallible;

    fn answered(&self, round: RoundId) -> Result<Option<AnsweredSet>, Self::Error> {
        Ok(self.0.get(&round).cloned())
    }

    fn record(&mut self, round: RoundId, answered: &AnsweredSet) -> Result<(), Self::Error> {
        self.0.insert(round, answered.clone());
        Ok(())
    }
}

/// A client's share as the holder keeps it until it answers.
struct HeldShare {
    submission: SubmissionDigest,
    key_commitment: KeyCommitment,
    key: AnswerKey,
    share: ShareMessage,
}

/// One round's shares.
struct HeldRound {
    inbox: Inbox,
    shares: BTreeMap<ParticipantId, HeldShare>,
}

/// A holder collects shares of its current round and of the next one
/// (clients may be a little ahead of it), never of others, so that nobody
/// can make it drop the current round's shares or fill its memory.
const ROUNDS_AHEAD: u64 = 1;

/// A key holder.
pub struct Holder<J: AnswerJournal> {
    federation: Arc<Federation>,
    identity: Arc<SigningIdentity>,
    sealing: SealingKey,
    point: HolderId,
    journal: J,
    current: RoundId,
    rounds: BTreeMap<RoundId, HeldRound>,
}

impl<J: AnswerJournal> fmt::Debug for Holder<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Holder")
            .field("id", &self.identity.id())
            .field("point", &self.point)
            .field("rounds", &self.rounds.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<J: AnswerJournal> Holder<J> {
    /// The holder of `federation` with these keys and its journal.
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] for an identity that is not a holder of
    /// the federation.
    pub fn new(
        federation: Arc<Federation>,
        identity: impl Into<Arc<SigningIdentity>>,
        sealing: SealingKey,
        journal: J,
    ) -> Result<Self> {
        let identity = identity.into();
        let point = federation.holder_point(identity.id()).ok_or_else(|| {
            ProtocolError::Setup("this identity is not a key holder of the federation".into())
        })?;
        Ok(Self {
            federation,
            identity,
            sealing,
            point,
            journal,
            current: RoundId(1),
            rounds: BTreeMap::new(),
        })
    }

    /// Its Shamir point.
    #[must_use]
    pub const fn point(&self) -> HolderId {
        self.point
    }

    /// The round whose shares it collects (and the next).
    #[must_use]
    pub const fn current_round(&self) -> RoundId {
        self.current
    }

    /// Its journal.
    #[must_use]
    pub const fn journal(&self) -> &J {
        &self.journal
    }

    /// How many shares it holds for `round`.
    #[must_use]
    pub fn shares_held(&self, round: RoundId) -> usize {
        self.rounds.get(&round).map_or(0, |r| r.shares.len())
    }

    fn answered(&self, round: RoundId) -> Result<Option<AnsweredSet>> {
        self.journal
            .answered(round)
            .map_err(|e| ProtocolError::Journal(Box::new(e)))
    }

    /// Checks, opens and keeps a client's sealed share: signed by a client
    /// of the federation, for a current round this holder has not answered
    /// yet, addressed to this holder, one per client and round, and whose
    /// answer key matches the commitment the client signed with it. A
    /// refused share changes nothing (a share that opens but whose key does
    /// not match its commitment is recorded as received, so the client
    /// cannot replace it). Returns the client.
    ///
    /// # Errors
    /// [`ProtocolError::RoundOutOfRange`], [`ProtocolError::WrongPhase`] for
    /// a round too old or already answered, [`ProtocolError::ShareBinding`]
    /// for a key that is not the committed one, and the pq and threshold
    /// layers' (signature, replay, duplicate, recipient, encoding).
    pub fn receive_share(&mut self, envelope: &Envelope) -> Result<ParticipantId> {
        let federation = Arc::clone(&self.federation);
        let round = RoundId(envelope.routing().round);
        federation.check_round(round)?;
        if round < self.current || round.0 > self.current.0 + ROUNDS_AHEAD {
            return Err(ProtocolError::RoundNotCollected {
                round: round.0,
                current: self.current.0,
            });
        }
        if self.answered(round)?.is_some() {
            return Err(ProtocolError::WrongPhase(
                "a share of a round this holder already answered",
            ));
        }
        let me = self.identity.id();
        let held = self.rounds.entry(round).or_insert_with(|| HeldRound {
            inbox: federation.inbox(round, me),
            shares: BTreeMap::new(),
        });
        let opened = open_round_share(
            &mut held.inbox,
            federation.registry(),
            &self.sealing,
            me,
            envelope,
            max_sealed_share(&federation),
        );
        let (accepted, binding, plaintext) = opened?;
        let (submission, key_commitment) = split_binding(&binding);
        let (key, share) = decode_client_share(
            federation.committee().field(),
            federation.degree(),
            &plaintext,
        )?;
        if key.commitment() != key_commitment.0 {
            return Err(ProtocolError::ShareBinding {
                holder: me,
                reason: "seals an answer key that differs from the client's commitment",
            });
        }
        // Checked on every path before: the client is a registered sender.
        let client = federation
            .registry()
            .get(&accepted.sender)
            .map_or(accepted.sender, |p| p.origin);
        held.shares.insert(
            client,
            HeldShare {
                submission,
                key_commitment,
                key,
                share,
            },
        );
        Ok(client)
    }

    /// Follows the coordinator to `round`: from then on it collects shares
    /// of `round` and the next, and drops those of earlier rounds.
    fn advance(&mut self, round: RoundId) {
        if round > self.current {
            self.current = round;
            self.rounds.retain(|r, _| *r >= round);
        }
    }

    /// Reads the coordinator's signed opening of a round
    /// ([`crate::Coordinator::open_round`]'s announcement) and follows it.
    /// Returns the round.
    ///
    /// # Errors
    /// The pq layer's for an envelope that is not the coordinator's
    /// [`MessageKind::RoundResult`]; [`ProtocolError::RoundOutOfRange`].
    pub fn follow(&mut self, announcement: &Envelope) -> Result<RoundId> {
        let verified = Verified::check(
            &self.federation,
            announcement.clone(),
            MessageKind::RoundResult,
            None,
        )?;
        if verified.origin() != self.federation.coordinator() {
            return Err(ProtocolError::Setup(
                "the announcement is not signed by the federation's coordinator".into(),
            ));
        }
        let round = verified.round();
        self.federation.check_round(round)?;
        self.advance(round);
        Ok(round)
    }

    /// Answers the coordinator's signed request for a set S of clients:
    /// checks the signature and round, that S has at least `min_clients`
    /// clients of the federation, each once, that this holder holds a
    /// share from each bound to the submission S names, and that it has
    /// not answered another set in this round; records (round, S) in the
    /// journal, then returns the signed answer. The same S asked again
    /// gets the same answer.
    ///
    /// # Errors
    /// [`ProtocolError::SetTooSmall`], [`ProtocolError::NotAClient`],
    /// [`ProtocolError::SetNotCanonical`], [`ProtocolError::MissingShare`],
    /// [`ProtocolError::SetMismatch`], [`ProtocolError::AlreadyAnswered`],
    /// [`ProtocolError::WrongSet`] for a set of another round than its
    /// envelope, [`ProtocolError::Journal`], and the pq layer's for the
    /// envelope. Nothing is recorded on a refusal.
    pub fn answer(&mut self, request: &Envelope) -> Result<Envelope> {
        let federation = Arc::clone(&self.federation);
        let verified = Verified::check(
            &federation,
            request.clone(),
            MessageKind::DecryptionRequest,
            None,
        )?;
        if verified.origin() != federation.coordinator() {
            return Err(ProtocolError::Setup(
                "the request is not signed by the federation's coordinator".into(),
            ));
        }
        let round = verified.round();
        federation.check_round(round)?;
        let set = ClientSet::decode(request.payload(), federation.clients().len())?;
        if set.round != round {
            return Err(ProtocolError::WrongSet);
        }
        set.check(&federation)?;
        let digest = set.digest(&federation);
        let payload = match self.answered(round)? {
            Some(answered) if answered.set == digest => answered.payload,
            Some(_) => return Err(ProtocolError::AlreadyAnswered { round: round.0 }),
            None => {
                let payload = self.compute(&set, digest)?.encode();
                self.journal
                    .record(
                        round,
                        &AnsweredSet {
                            set: digest,
                            payload: payload.clone(),
                        },
                    )
                    .map_err(|e| ProtocolError::Journal(Box::new(e)))?;
                // The round is answered: its shares are no longer needed.
                self.advance(RoundId(round.0 + 1));
                payload
            }
        };
        Ok(Envelope::sign(
            &self.identity,
            federation.routing(
                round,
                MessageKind::DecryptionShare,
                federation.coordinator(),
            ),
            payload,
        )?)
    }

    /// The masked answer for `set`, from the shares held.
    fn compute(&self, set: &ClientSet, digest: SetDigest) -> Result<AnswerPayload> {
        let federation = &self.federation;
        let held = self.rounds.get(&set.round);
        let mut accumulator = KeySumAccumulator::new(
            federation.committee().field(),
            federation.degree(),
            self.point,
        )?;
        for entry in &set.entries {
            let share = held
                .and_then(|h| h.shares.get(&entry.client))
                .ok_or(ProtocolError::MissingShare(entry.client))?;
            if share.submission != entry.submission || share.key_commitment != entry.key_commitment
            {
                return Err(ProtocolError::SetMismatch(entry.client));
            }
            accumulator.add(&share.share.expand(), &share.key)?;
        }
        let answer = accumulator.finish(federation.committee(), &set.mask_context(federation))?;
        Ok(AnswerPayload {
            set: digest,
            answer,
        })
    }
}
