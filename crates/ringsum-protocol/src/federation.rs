//! The participants of a federation and the round state machine. Each
//! participant is a value that takes and returns signed envelopes; how the
//! envelopes travel (in one process, or over a network) is the caller's
//! business.
//!
//! Setup -> key ceremony ([`HolderNode::commit`], [`HolderNode::reveal`],
//! [`HolderNode::deal`], [`HolderNode::receive_shares`],
//! [`Coordinator::collect_key`]) -> per round: [`Coordinator::open_round`]
//! publishes the global model, clients [`ClientNode::submit`], the
//! coordinator [`Coordinator::accept_submission`]s, then
//! [`Coordinator::request_decryption`] from an active set of at least t
//! available holders, each holder answers with
//! [`HolderNode::decryption_share`], [`Coordinator::accept_share`] combines
//! and publishes the new global model. A holder that does not answer is
//! handled by [`Coordinator::retry_decryption`]: the aggregate is
//! re-randomised and a new set asked.

use std::collections::{BTreeMap, BTreeSet};

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::{Packing, PublicKey};
use ringsum_core::update::{Aggregate, EncryptedUpdate, RoundId, UpdateShape, encrypt_update};
use ringsum_math::{CrsSeed, Csprng};
use ringsum_pq::{
    Envelope, FederationId, Inbox, MessageKind, ParticipantId, Registry, Role, Routing,
    SealContext, SealingKey, SigningIdentity, open_share, seal_share,
};
use ringsum_threshold::{
    Combiner, Committee, DecryptionRequest, DecryptionShare, HolderId, KeyCommitment, KeyGenerator,
    KeyHolder, PublicKeyShare, ShareLedger, ThresholdKeyShare, collective_public_key,
};
use serde_json::json;
use sha3::{Digest, Sha3_256};

use crate::audit::AuditLog;
use crate::error::{ProtocolError, Result};
use crate::payload::{
    RequestPayload, RoundResult, decode_commitment, decode_decryption_share, decode_public_share,
    decode_secret_share, decode_submission, encode_commitment, encode_decryption_share,
    encode_public_share, encode_secret_share, encode_submission, secret_share_len,
};

/// The key ceremony runs as round 0; training rounds count from 1.
pub const CEREMONY_ROUND: u64 = 0;

/// What the coordinator requires before it decrypts a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundPolicy {
    /// Fewest submissions a round may be decrypted with.
    pub min_clients: usize,
    /// Fewest samples a client may train on (small-cohort protection).
    pub min_samples: u64,
}

impl Default for RoundPolicy {
    fn default() -> Self {
        Self {
            min_clients: 3,
            min_samples: 10,
        }
    }
}

/// Everything the participants agree on before the first message: the
/// parameter set, the model layout, the committee and its threshold, the
/// CRS seed, the policy, and the registry of everyone's public keys.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The parameter set.
    pub params: ParameterSet,
    /// Its packing constants.
    pub packing: Packing,
    /// The model's tensors.
    pub layout: ModelLayout,
    /// The round policy.
    pub policy: RoundPolicy,
    /// The key holders and t.
    pub committee: Committee,
    /// The seed of the common reference string.
    pub crs: CrsSeed,
    /// Everyone's keys and roles.
    pub registry: Registry,
    /// The coordinator's id.
    pub coordinator: ParticipantId,
    /// Which participant holds which Shamir point.
    pub holders: BTreeMap<HolderId, ParticipantId>,
}

/// The federation id: SHA3-256 over the parameter set, epoch, threshold,
/// CRS seed, layout hash and every member's role and id, so that two
/// federations never accept each other's messages.
#[must_use]
pub fn federation_id(
    params: &ParameterSet,
    committee: &Committee,
    crs: &CrsSeed,
    layout: &ModelLayout,
    members: &[(Role, ParticipantId)],
) -> FederationId {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/v1 federation");
    h.update(params.id().to_string().as_bytes());
    h.update(committee.epoch().to_be_bytes());
    h.update(committee.threshold().to_be_bytes());
    h.update(crs.as_bytes());
    h.update(layout.hash());
    let mut sorted: Vec<_> = members.iter().map(|(r, id)| (r.name(), id.0)).collect();
    sorted.sort_unstable();
    for (role, id) in sorted {
        h.update(role.as_bytes());
        h.update(id);
    }
    FederationId(h.finalize().into())
}

impl Setup {
    /// The federation.
    #[must_use]
    pub fn federation(&self) -> FederationId {
        self.registry.federation()
    }

    fn routing(&self, round: u64, kind: MessageKind, recipient: ParticipantId) -> Routing {
        Routing {
            federation: self.federation(),
            round,
            kind,
            recipient,
            parameter_set: self.params.id().to_string(),
        }
    }

    fn inbox(&self, round: u64, me: ParticipantId) -> Inbox {
        Inbox::new(
            self.federation(),
            round,
            &self.params.id().to_string(),
            Some(me),
        )
    }

    fn shape(&self) -> UpdateShape {
        UpdateShape::new(&self.packing, &self.layout)
    }

    fn ciphertexts(&self) -> usize {
        self.shape().ciphertexts()
    }

    /// The Shamir point of key holder `id`, if it is one.
    #[must_use]
    pub fn holder_of(&self, id: ParticipantId) -> Option<HolderId> {
        self.holders
            .iter()
            .find(|(_, p)| **p == id)
            .map(|(h, _)| *h)
    }

    /// Checks that every holder and the coordinator are registered in the
    /// right role.
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] naming the first inconsistency.
    pub fn check(&self) -> Result<()> {
        let role_of = |id: &ParticipantId| self.registry.get(id).map(|p| p.role);
        if role_of(&self.coordinator) != Some(Role::Coordinator) {
            return Err(ProtocolError::Setup(
                "the coordinator is not registered as one".into(),
            ));
        }
        for (holder, id) in &self.holders {
            if role_of(id) != Some(Role::KeyHolder) || !self.committee.contains(*holder) {
                return Err(ProtocolError::Setup(format!(
                    "holder {holder:?} is not a registered key holder of the committee"
                )));
            }
        }
        if self.holders.len() != self.committee.holders().len() {
            return Err(ProtocolError::Setup(
                "every committee member needs a participant".into(),
            ));
        }
        Ok(())
    }
}

/// A client: encrypts and signs its update for a round.
#[derive(Debug)]
pub struct ClientNode {
    identity: SigningIdentity,
}

impl ClientNode {
    /// A client with its signing identity.
    #[must_use]
    pub fn new(identity: SigningIdentity) -> Self {
        Self { identity }
    }

    /// The client's id.
    #[must_use]
    pub fn id(&self) -> ParticipantId {
        self.identity.id()
    }

    /// Checks the coordinator's signed announcement of the collective key
    /// against the key the client rebuilds itself from the holders' own
    /// signed commitments and public-key shares: a coordinator cannot
    /// substitute a key whose secret it knows.
    ///
    /// # Errors
    /// A bad signature or sender, a key that does not decode, a refused
    /// commitment or share, or [`ProtocolError::Setup`] when the announced
    /// key is not the holders' key.
    pub fn accept_key(
        &self,
        setup: &Setup,
        announcement: &Envelope,
        commitments: &[Envelope],
        shares: &[Envelope],
    ) -> Result<PublicKey> {
        let mut inbox = setup.inbox(CEREMONY_ROUND, self.id());
        inbox.accept(&setup.registry, announcement, MessageKind::CollectiveKey)?;
        let (key, epoch) = ringsum_wire::decode_public_key(&setup.params, announcement.payload())?;
        if epoch != setup.committee.epoch() {
            return Err(ProtocolError::Setup(format!(
                "collective key of epoch {epoch}, the committee's is {}",
                setup.committee.epoch()
            )));
        }
        let (rebuilt, _) = rebuild_key(setup, self.id(), commitments, shares)?;
        if ringsum_wire::encode_public_key(&rebuilt, epoch) != announcement.payload() {
            return Err(ProtocolError::Setup(
                "the announced collective key is not the one the holders' shares give".into(),
            ));
        }
        Ok(key)
    }

    /// Encrypts `update` (the change to the global model, in layout order)
    /// trained on `samples` samples, and signs it for `round`.
    ///
    /// # Errors
    /// Those of [`encrypt_update`] and [`Envelope::sign`].
    pub fn submit(
        &self,
        setup: &Setup,
        key: &PublicKey,
        round: u64,
        update: &[f32],
        samples: u64,
        rng: &mut Csprng,
    ) -> Result<Envelope> {
        let encrypted = encrypt_update(
            &setup.params,
            &setup.packing,
            key,
            &setup.layout,
            update,
            samples,
            RoundId(round),
            rng,
        )?;
        Ok(Envelope::sign(
            &self.identity,
            setup.routing(
                round,
                MessageKind::UpdateSubmission,
                ParticipantId::BROADCAST,
            ),
            encode_submission(samples, &encrypted),
        )?)
    }
}

/// A key holder: takes part in the ceremony, then answers decryption
/// requests, at most once per aggregate (its ledger).
pub struct HolderNode {
    identity: SigningIdentity,
    sealing: SealingKey,
    me: HolderId,
    generator: Option<KeyGenerator>,
    public_share: Option<PublicKeyShare>,
    key: Option<KeyHolder>,
    ledger: Option<ShareLedger>,
}

impl std::fmt::Debug for HolderNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderNode")
            .field("id", &self.identity.id())
            .field("holder", &self.me)
            .field("ready", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl HolderNode {
    /// A holder with its identity, sealing key, Shamir point and ledger
    /// (`ShareLedger::open(path)` in a deployment, so the record of issued
    /// shares survives a restart).
    #[must_use]
    pub fn new(
        identity: SigningIdentity,
        sealing: SealingKey,
        me: HolderId,
        ledger: ShareLedger,
    ) -> Self {
        Self {
            identity,
            sealing,
            me,
            generator: None,
            public_share: None,
            key: None,
            ledger: Some(ledger),
        }
    }

    /// A holder whose ceremony finished in an earlier run: its identity,
    /// sealing key and Shamir point, the key share it stored (see
    /// [`Self::key_share`]) and its ledger (`ShareLedger::open(path)`).
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] when the share is another holder's, and the
    /// threshold layer's checks of the share against the committee.
    pub fn restore(
        setup: &Setup,
        identity: SigningIdentity,
        sealing: SealingKey,
        me: HolderId,
        share: ThresholdKeyShare,
        ledger: ShareLedger,
    ) -> Result<Self> {
        if share.holder() != me || setup.holders.get(&me) != Some(&identity.id()) {
            return Err(ProtocolError::Setup(format!(
                "the stored key share is not holder {}'s of this federation",
                me.0
            )));
        }
        let key = KeyHolder::new(&setup.params, setup.committee.clone(), share, ledger)?;
        Ok(Self {
            identity,
            sealing,
            me,
            generator: None,
            public_share: None,
            key: Some(key),
            ledger: None,
        })
    }

    /// The threshold key share once the ceremony is done (store it
    /// encrypted: it is a secret).
    #[must_use]
    pub fn key_share(&self) -> Option<&ThresholdKeyShare> {
        self.key.as_ref().map(KeyHolder::key_share)
    }

    /// The holder's participant id.
    #[must_use]
    pub fn id(&self) -> ParticipantId {
        self.identity.id()
    }

    /// The holder's Shamir point.
    #[must_use]
    pub const fn holder(&self) -> HolderId {
        self.me
    }

    /// Ceremony step 1: samples s_i, computes p_i, and signs a commitment
    /// to p_i.
    ///
    /// # Errors
    /// Those of the threshold layer and of signing.
    pub fn commit(&mut self, setup: &Setup, rng: &mut Csprng) -> Result<Envelope> {
        let generator = KeyGenerator::new(&setup.params, &setup.committee, self.me, rng)?;
        let share = generator.public_key_share(&setup.params, &setup.crs, rng)?;
        let commitment = share.commitment();
        self.generator = Some(generator);
        self.public_share = Some(share);
        Ok(Envelope::sign(
            &self.identity,
            setup.routing(
                CEREMONY_ROUND,
                MessageKind::KeyCommitment,
                ParticipantId::BROADCAST,
            ),
            encode_commitment(&commitment),
        )?)
    }

    /// Ceremony step 2, once every commitment is out: reveals p_i.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] before [`Self::commit`].
    pub fn reveal(&self, setup: &Setup) -> Result<Envelope> {
        let share = self
            .public_share
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("reveal comes after commit"))?;
        Ok(Envelope::sign(
            &self.identity,
            setup.routing(
                CEREMONY_ROUND,
                MessageKind::PublicKeyShare,
                ParticipantId::BROADCAST,
            ),
            encode_public_share(share),
        )?)
    }

    /// Ceremony step 3: Shamir-shares s_i, one sealed and signed share per
    /// holder (itself included).
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] before [`Self::commit`], and those of
    /// dealing and sealing.
    pub fn deal(&self, setup: &Setup, rng: &mut Csprng) -> Result<Vec<Envelope>> {
        let generator = self
            .generator
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("deal comes after commit"))?;
        let parameter_set = setup.params.id().to_string();
        generator
            .deal(&setup.params, rng)?
            .iter()
            .map(|message| {
                let recipient = *setup.holders.get(&message.to).ok_or_else(|| {
                    ProtocolError::Setup(format!("no participant for holder {:?}", message.to))
                })?;
                let context = SealContext {
                    federation: setup.federation(),
                    sender: self.id(),
                    recipient,
                    epoch: setup.committee.epoch(),
                    round: CEREMONY_ROUND,
                };
                let plaintext = encode_secret_share(message);
                Ok(seal_share(
                    &self.identity,
                    &setup.registry,
                    context,
                    &parameter_set,
                    &plaintext,
                )?)
            })
            .collect()
    }

    /// Ceremony step 4: opens the sealed shares addressed to this holder
    /// (each checked: signature, sender, replay, seal) and adds them up
    /// into its threshold key share. Shares that fail are refused without
    /// affecting the others; the holder is ready once every dealer's share
    /// is in.
    ///
    /// # Errors
    /// The first refused share's error, or the threshold layer's if a
    /// dealer is missing.
    pub fn receive_shares(&mut self, setup: &Setup, envelopes: &[Envelope]) -> Result<()> {
        // The generator exists from commit until the shares are in.
        if self.generator.is_none() {
            return Err(ProtocolError::WrongPhase("shares come after commit, once"));
        }
        // A fresh inbox per batch: a batch that fails leaves nothing
        // recorded, and the holder can try again with a corrected batch.
        let mut batch = setup.inbox(CEREMONY_ROUND, self.id());
        let mut messages = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let (accepted, plaintext) = open_share(
                &mut batch,
                &setup.registry,
                &self.sealing,
                self.identity.id(),
                setup.committee.epoch(),
                envelope,
                secret_share_len(&setup.params),
            )?;
            let message = decode_secret_share(&setup.params, &plaintext)?;
            if setup.holders.get(&message.from) != Some(&accepted.sender) || message.to != self.me {
                return Err(ProtocolError::Setup(format!(
                    "a share claims dealer {:?} but was sent by another participant",
                    message.from
                )));
            }
            messages.push(message);
        }
        let share =
            ThresholdKeyShare::from_messages(&setup.params, &setup.committee, self.me, &messages)?;
        let ledger = self
            .ledger
            .take()
            .ok_or(ProtocolError::WrongPhase("the ceremony already finished"))?;
        self.key = Some(KeyHolder::new(
            &setup.params,
            setup.committee.clone(),
            share,
            ledger,
        )?);
        self.generator = None;
        Ok(())
    }

    /// Answers the coordinator's signed request for `aggregate`: checks the
    /// request's signature, epoch and round, that the aggregate holds at
    /// least the policy's minimum of submissions and as many as the request
    /// says, and that the request's digest is this aggregate's for this
    /// active set; only then does the ledger record the answer and the
    /// holder return a signed, flooded decryption share. The ledger refuses
    /// a second active set for the same aggregate.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] before the ceremony finished, a bad
    /// request, [`ProtocolError::StaleShare`] if the digest does not match,
    /// and the ledger's refusals.
    pub fn decryption_share(
        &mut self,
        setup: &Setup,
        request: &Envelope,
        aggregate: &Aggregate,
    ) -> Result<Envelope> {
        let round = request.routing().round;
        let mut inbox = setup.inbox(round, self.id());
        inbox.accept(&setup.registry, request, MessageKind::DecryptionRequest)?;
        let max_holders = setup.committee.holders().len();
        let asked = RequestPayload::decode(request.payload(), max_holders)?;
        let active = setup.committee.active_set(&asked.active)?;
        if !active.contains(self.me) {
            return Err(ProtocolError::NotInActiveSet(self.me));
        }
        // Everything about the request is checked before the ledger is
        // touched: the ledger records an answer for good.
        if asked.epoch != setup.committee.epoch()
            || aggregate.round() != RoundId(round)
            || asked.clients != aggregate.clients()
        {
            return Err(ProtocolError::StaleShare(self.me));
        }
        let clients = usize::try_from(aggregate.clients()).unwrap_or(usize::MAX);
        if clients < setup.policy.min_clients {
            return Err(ProtocolError::NotEnoughClients {
                accepted: clients,
                min: setup.policy.min_clients,
            });
        }
        let expected = DecryptionRequest::new(&setup.params, &setup.committee, &active, aggregate)?;
        if *expected.digest() != asked.digest {
            return Err(ProtocolError::StaleShare(self.me));
        }
        let key = self.key.as_mut().ok_or(ProtocolError::WrongPhase(
            "decryption comes after the ceremony",
        ))?;
        let share = key.decryption_share(&setup.params, aggregate, &active)?;
        Ok(Envelope::sign(
            &self.identity,
            setup.routing(round, MessageKind::DecryptionShare, setup.coordinator),
            encode_decryption_share(&share),
        )?)
    }
}

/// Where a round stands.
#[derive(Debug)]
enum Phase {
    Collecting,
    Decrypting {
        active: Vec<HolderId>,
        digest: [u8; 32],
        shares: BTreeMap<HolderId, DecryptionShare>,
        /// One inbox per request: after a retry, every holder of the new
        /// set answers again; a share for an earlier request carries the
        /// earlier digest and is refused as stale.
        inbox: Box<Inbox>,
    },
}

#[derive(Debug)]
struct RoundState {
    round: u64,
    inbox: Inbox,
    aggregate: Aggregate,
    clients: Vec<ParticipantId>,
    declared: Vec<u64>,
    phase: Phase,
}

/// A submission's payload decoded ahead of [`Coordinator::accept_decoded_submission`],
/// bound to its envelope.
#[derive(Debug)]
pub struct DecodedSubmission {
    digest: [u8; 32],
    result: Result<(u64, EncryptedUpdate)>,
}

impl DecodedSubmission {
    /// Decodes `envelope`'s payload as a submission of `setup` (an error is
    /// kept and reported when the submission is accepted).
    #[must_use]
    pub fn decode(setup: &Setup, envelope: &Envelope) -> Self {
        Self {
            digest: envelope.digest(),
            result: decode_submission(&setup.params, envelope.payload(), &setup.shape()),
        }
    }
}

/// The outcome of a decrypted round.
#[derive(Clone, Debug)]
pub struct RoundOutcome {
    /// The published result.
    pub result: RoundResult,
    /// The signed publication.
    pub envelope: Envelope,
}

/// The coordinator: publishes keys and models, checks and adds submissions,
/// asks for and combines decryption shares, and keeps the audit log.
#[derive(Debug)]
pub struct Coordinator {
    identity: SigningIdentity,
    audit: AuditLog,
    key: Option<PublicKey>,
    model: Vec<f32>,
    state: Option<RoundState>,
    last_round: u64,
    rng: Csprng,
}

impl Coordinator {
    /// A coordinator with its identity, the initial global model and an
    /// audit log, whose first line records the setup.
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] for an inconsistent setup or a model of the
    /// wrong length, and the log's errors.
    pub fn new(
        setup: &Setup,
        identity: SigningIdentity,
        model: Vec<f32>,
        mut audit: AuditLog,
        rng: Csprng,
    ) -> Result<Self> {
        setup.check()?;
        if identity.id() != setup.coordinator {
            return Err(ProtocolError::Setup(
                "this identity is not the setup's coordinator".into(),
            ));
        }
        if model.len() != setup.layout.parameter_count() {
            return Err(ProtocolError::Setup(format!(
                "the initial model has {} parameters, the layout {}",
                model.len(),
                setup.layout.parameter_count()
            )));
        }
        audit.append(
            &identity,
            CEREMONY_ROUND,
            &json!({
                "type": "setup",
                "federation": ringsum_pq::codec::hex(&setup.federation().0),
                "parameter_set": setup.params.id().to_string(),
                "epoch": setup.committee.epoch(),
                "threshold": setup.committee.threshold(),
                "holders": setup.holders.iter().map(|(h, p)| json!({"holder": h.0, "id": p.to_string()})).collect::<Vec<_>>(),
                "min_clients": setup.policy.min_clients,
                "min_samples": setup.policy.min_samples,
                "layout_hash": ringsum_pq::codec::hex(setup.layout.hash()),
                "coordinator_algorithm": identity.algorithm().name(),
                "coordinator_key": ringsum_pq::codec::hex(identity.public().to_bytes()),
            }),
        )?;
        Ok(Self {
            identity,
            audit,
            key: None,
            model,
            state: None,
            last_round: CEREMONY_ROUND,
            rng,
        })
    }

    /// The audit log.
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The current global model.
    #[must_use]
    pub fn model(&self) -> &[f32] {
        &self.model
    }

    /// The collective public key, once the ceremony is done.
    #[must_use]
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.key.as_ref()
    }

    fn log(&mut self, round: u64, event: serde_json::Value) -> Result<()> {
        self.audit.append(&self.identity, round, &event)
    }

    /// Checks every holder's signed commitment and public-key share,
    /// computes the collective public key (refusing a share that differs
    /// from its commitment), and returns its signed announcement.
    ///
    /// # Errors
    /// Any refused message, and the threshold layer's checks.
    pub fn collect_key(
        &mut self,
        setup: &Setup,
        commitments: &[Envelope],
        shares: &[Envelope],
    ) -> Result<Envelope> {
        let (key, holders) = rebuild_key(setup, self.identity.id(), commitments, shares)?;
        let encoded = ringsum_wire::encode_public_key(&key, setup.committee.epoch());
        let envelope = Envelope::sign(
            &self.identity,
            setup.routing(
                CEREMONY_ROUND,
                MessageKind::CollectiveKey,
                ParticipantId::BROADCAST,
            ),
            encoded,
        )?;
        self.log(
            CEREMONY_ROUND,
            json!({
                "type": "collective_key",
                "holders": holders,
                "key_sha3": ringsum_pq::codec::hex(&Sha3_256::digest(envelope.payload())),
            }),
        )?;
        self.key = Some(key);
        Ok(envelope)
    }

    /// Opens `round` and returns the signed publication of the global model
    /// the clients train from.
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] before the ceremony, while another
    /// round is open, or for a round not after the last one.
    pub fn open_round(&mut self, setup: &Setup, round: u64) -> Result<Envelope> {
        if self.key.is_none() {
            return Err(ProtocolError::WrongPhase(
                "rounds start after the key ceremony",
            ));
        }
        if self.state.is_some() {
            return Err(ProtocolError::WrongPhase("the open round is not finished"));
        }
        if round <= self.last_round {
            return Err(ProtocolError::WrongPhase(
                "each round must come after the last one",
            ));
        }
        let aggregate =
            Aggregate::new(&setup.params, &setup.packing, &setup.layout, RoundId(round));
        self.state = Some(RoundState {
            round,
            inbox: setup.inbox(round, self.identity.id()),
            aggregate,
            clients: Vec::new(),
            declared: Vec::new(),
            phase: Phase::Collecting,
        });
        let published = RoundResult {
            round: round - 1,
            clients: 0,
            weight_sum: 0,
            error_bound: 0.0,
            model: self.model.clone(),
        };
        self.log(
            round,
            json!({"type": "round_opened", "model_sha3": model_hash(&self.model)}),
        )?;
        Ok(Envelope::sign(
            &self.identity,
            setup.routing(round, MessageKind::RoundResult, ParticipantId::BROADCAST),
            published.encode(),
        )?)
    }

    /// Checks a client's submission (signature, sender, round, replay, one
    /// per client, declared samples, parameter set, layout) and adds it to
    /// the round's aggregate. A refused submission changes nothing and is
    /// logged with its reason.
    ///
    /// # Errors
    /// Why the submission was refused.
    pub fn accept_submission(&mut self, setup: &Setup, envelope: &Envelope) -> Result<()> {
        let decoded = DecodedSubmission::decode(setup, envelope);
        self.accept_decoded_submission(setup, envelope, decoded)
    }

    /// As [`Self::accept_submission`], with the payload decoded beforehand
    /// by [`DecodedSubmission::decode`] (decoding is the costly part; a
    /// service can do it in parallel, outside whatever serialises the
    /// coordinator). A decoding of another envelope is refused.
    ///
    /// # Errors
    /// As [`Self::accept_submission`].
    pub fn accept_decoded_submission(
        &mut self,
        setup: &Setup,
        envelope: &Envelope,
        decoded: DecodedSubmission,
    ) -> Result<()> {
        let state = self
            .state
            .as_mut()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        let round = state.round;
        let outcome = (|| {
            if !matches!(state.phase, Phase::Collecting) {
                return Err(ProtocolError::WrongPhase("the round is being decrypted"));
            }
            let pending =
                state
                    .inbox
                    .check(&setup.registry, envelope, MessageKind::UpdateSubmission)?;
            if decoded.digest != envelope.digest() {
                return Err(ProtocolError::Setup(
                    "the decoded submission is of another envelope".into(),
                ));
            }
            let (samples, update) = decoded.result?;
            if samples < setup.policy.min_samples {
                return Err(ProtocolError::TooFewSamples {
                    samples,
                    min: setup.policy.min_samples,
                });
            }
            if update.round != RoundId(round) {
                return Err(ProtocolError::WrongPhase(
                    "the update is encrypted for another round",
                ));
            }
            state.aggregate.try_add(&update)?;
            let accepted = state.inbox.commit(pending)?;
            state.clients.push(accepted.sender);
            state.declared.push(samples);
            Ok(accepted.sender)
        })();
        let event = match &outcome {
            Ok(sender) => json!({"type": "submission_accepted", "client": sender.to_string()}),
            Err(e) => {
                json!({"type": "submission_refused", "sender": envelope.sender().to_string(), "reason": e.to_string()})
            }
        };
        self.log(round, event)?;
        outcome.map(|_| ())
    }

    /// The open round, if any, and whether its decryption was requested.
    #[must_use]
    pub fn open_round_state(&self) -> Option<(u64, bool)> {
        self.state
            .as_ref()
            .map(|s| (s.round, matches!(s.phase, Phase::Decrypting { .. })))
    }

    /// The last round opened (0 before the first).
    #[must_use]
    pub const fn last_round(&self) -> u64 {
        self.last_round
    }

    /// Submissions accepted in the open round.
    #[must_use]
    pub fn accepted_clients(&self) -> &[ParticipantId] {
        self.state.as_ref().map_or(&[], |s| &s.clients)
    }

    /// The open round's aggregate (what holders compute their shares on).
    ///
    /// # Errors
    /// [`ProtocolError::WrongPhase`] when no round is open.
    pub fn aggregate(&self) -> Result<&Aggregate> {
        self.state
            .as_ref()
            .map(|s| &s.aggregate)
            .ok_or(ProtocolError::WrongPhase("no round is open"))
    }

    /// Closes submissions and asks the first t of the `available` holders
    /// for decryption shares.
    ///
    /// # Errors
    /// [`ProtocolError::NotEnoughClients`] below the policy's minimum,
    /// [`ProtocolError::NotEnoughHolders`] with fewer than t available; in
    /// both cases the round and its submissions stay as they are.
    pub fn request_decryption(
        &mut self,
        setup: &Setup,
        available: &[HolderId],
    ) -> Result<Envelope> {
        let state = self
            .state
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        if !matches!(state.phase, Phase::Collecting) {
            return Err(ProtocolError::WrongPhase(
                "decryption was already requested; retry_decryption asks a new set",
            ));
        }
        if state.clients.len() < setup.policy.min_clients {
            return Err(ProtocolError::NotEnoughClients {
                accepted: state.clients.len(),
                min: setup.policy.min_clients,
            });
        }
        self.ask(setup, available, None)
    }

    /// After a holder of the active set failed to answer: re-randomises the
    /// aggregate (a fresh encryption of zero, so no holder is asked twice
    /// about the same c1 with another set) and asks the first t of the
    /// still `available` holders. The shares already received are dropped.
    /// Nothing changes unless the new request is made.
    ///
    /// # Errors
    /// [`ProtocolError::NotEnoughHolders`] with fewer than t available (the
    /// submissions are kept), and the core layer's limit on
    /// re-randomisations.
    pub fn retry_decryption(&mut self, setup: &Setup, available: &[HolderId]) -> Result<Envelope> {
        check_available(setup, available)?;
        let key = self
            .key
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("no collective key"))?;
        let state = self
            .state
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        let Phase::Decrypting { shares, active, .. } = &state.phase else {
            return Err(ProtocolError::WrongPhase("no decryption to retry"));
        };
        let missing: Vec<u32> = active
            .iter()
            .filter(|h| !shares.contains_key(h))
            .map(|h| h.0)
            .collect();
        // Re-randomise a copy; it replaces the aggregate only once the new
        // request is made.
        let mut fresh = state.aggregate.clone();
        fresh.rerandomize(&setup.params, &setup.packing, key, &mut self.rng)?;
        let envelope = self.ask(setup, available, Some(fresh))?;
        let round = self.state.as_ref().map_or(0, |s| s.round);
        self.log(
            round,
            json!({"type": "rerandomized", "missing_holders": missing}),
        )?;
        Ok(envelope)
    }

    fn ask(
        &mut self,
        setup: &Setup,
        available: &[HolderId],
        replacement: Option<Aggregate>,
    ) -> Result<Envelope> {
        check_available(setup, available)?;
        let threshold = usize::try_from(setup.committee.threshold()).unwrap_or(usize::MAX);
        let members: BTreeSet<HolderId> = available
            .iter()
            .copied()
            .filter(|h| setup.committee.contains(*h))
            .collect();
        let chosen: Vec<HolderId> = members.into_iter().take(threshold).collect();
        let active = setup.committee.active_set(&chosen)?;
        let state = self
            .state
            .as_mut()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        let aggregate = replacement.as_ref().unwrap_or(&state.aggregate);
        let request = DecryptionRequest::new(&setup.params, &setup.committee, &active, aggregate)?;
        let payload = RequestPayload {
            epoch: setup.committee.epoch(),
            digest: *request.digest(),
            active: chosen.clone(),
            clients: aggregate.clients(),
        };
        let round = state.round;
        let envelope = Envelope::sign(
            &self.identity,
            setup.routing(
                round,
                MessageKind::DecryptionRequest,
                ParticipantId::BROADCAST,
            ),
            payload.encode(),
        )?;
        // The request is made: only now does the round's state change.
        if let Some(fresh) = replacement {
            state.aggregate = fresh;
        }
        state.phase = Phase::Decrypting {
            active: chosen.clone(),
            digest: payload.digest,
            shares: BTreeMap::new(),
            inbox: Box::new(setup.inbox(round, self.identity.id())),
        };
        self.log(
            round,
            json!({
                "type": "decryption_requested",
                "active_set": chosen.iter().map(|h| h.0).collect::<Vec<_>>(),
                "clients": payload.clients,
                "digest": ringsum_pq::codec::hex(&payload.digest),
            }),
        )?;
        Ok(envelope)
    }

    /// The holders of the active set that have not answered yet.
    #[must_use]
    pub fn missing_holders(&self) -> Vec<HolderId> {
        match self.state.as_ref().map(|s| &s.phase) {
            Some(Phase::Decrypting { active, shares, .. }) => active
                .iter()
                .filter(|h| !shares.contains_key(h))
                .copied()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Checks a holder's decryption share (signature, sender, round, one
    /// per holder, membership of the active set, digest). Once the whole
    /// set has answered, combines, decodes, moves the global model by the
    /// weighted average of the updates and returns the signed result.
    ///
    /// # Errors
    /// Why the share was refused; the shares accepted before stay.
    pub fn accept_share(
        &mut self,
        setup: &Setup,
        envelope: &Envelope,
    ) -> Result<Option<RoundOutcome>> {
        let state = self
            .state
            .as_mut()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        let round = state.round;
        let outcome = (|| {
            let Phase::Decrypting {
                active,
                digest,
                shares,
                inbox,
            } = &mut state.phase
            else {
                return Err(ProtocolError::WrongPhase("no decryption was requested"));
            };
            let pending = inbox.check(&setup.registry, envelope, MessageKind::DecryptionShare)?;
            let share =
                decode_decryption_share(&setup.params, envelope.payload(), setup.ciphertexts())?;
            let holder = setup
                .holder_of(pending.accepted().sender)
                .filter(|h| *h == share.holder)
                .ok_or(ProtocolError::NotInActiveSet(share.holder))?;
            if !active.contains(&holder) {
                return Err(ProtocolError::NotInActiveSet(holder));
            }
            if share.digest != *digest
                || share.active_set != *active
                || share.epoch != setup.committee.epoch()
                || share.parts.len() != setup.ciphertexts()
            {
                return Err(ProtocolError::StaleShare(holder));
            }
            inbox.commit(pending)?;
            shares.insert(holder, share);
            Ok(holder)
        })();
        let event = match &outcome {
            Ok(holder) => json!({"type": "share_accepted", "holder": holder.0}),
            Err(e) => {
                json!({"type": "share_refused", "sender": envelope.sender().to_string(), "reason": e.to_string()})
            }
        };
        self.log(round, event)?;
        outcome?;
        if !self.missing_holders().is_empty() {
            return Ok(None);
        }
        self.finish(setup).map(Some)
    }

    fn finish(&mut self, setup: &Setup) -> Result<RoundOutcome> {
        let attempt = self.combine(setup);
        let state = self
            .state
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        let round = state.round;
        let (result, envelope) = match attempt {
            Ok(done) => done,
            Err(e) => {
                // The shares and submissions stay; a retry asks a new set.
                self.log(
                    round,
                    json!({"type": "decryption_failed", "reason": e.to_string()}),
                )?;
                return Err(e);
            }
        };
        self.model.clone_from(&result.model);
        self.state = None;
        self.last_round = round;
        self.log(
            round,
            json!({
                "type": "round_result",
                "clients": result.clients,
                "weight_sum": result.weight_sum,
                "error_bound": result.error_bound,
                "model_sha3": model_hash(&result.model),
            }),
        )?;
        Ok(RoundOutcome { result, envelope })
    }

    /// Combines the shares, decodes, checks the weight sum against the
    /// declared sample counts, and signs the new model; changes nothing.
    fn combine(&self, setup: &Setup) -> Result<(RoundResult, Envelope)> {
        let state = self
            .state
            .as_ref()
            .ok_or(ProtocolError::WrongPhase("no round is open"))?;
        let Phase::Decrypting { active, shares, .. } = &state.phase else {
            return Err(ProtocolError::WrongPhase("no decryption was requested"));
        };
        let active_set = setup.committee.active_set(active)?;
        let request = DecryptionRequest::new(
            &setup.params,
            &setup.committee,
            &active_set,
            &state.aggregate,
        )?;
        let mut combiner = Combiner::new(&setup.params, request)?;
        for share in shares.values() {
            combiner.add(share.clone())?;
        }
        let average = combiner.decode(&setup.params, &setup.packing, &setup.layout)?;
        check_weight(setup, &state.declared, average.weight_sum)?;
        let mut model = self.model.clone();
        for (global, delta) in model.iter_mut().zip(average.average.concat()) {
            *global += delta;
        }
        let result = RoundResult {
            round: state.round,
            clients: average.clients,
            weight_sum: average.weight_sum,
            error_bound: average.error_bound,
            model,
        };
        let envelope = Envelope::sign(
            &self.identity,
            setup.routing(
                state.round,
                MessageKind::RoundResult,
                ParticipantId::BROADCAST,
            ),
            result.encode(),
        )?;
        Ok((result, envelope))
    }
}

/// The decrypted weight sum must be what the declared sample counts give:
/// each client's weight is samples / max_weight in units of 2^-f,
/// stochastically rounded, so the sum may differ by less than one unit
/// per client. A client whose encrypted weight disagrees with the count it
/// declared (and the coordinator checked against the minimum) fails this.
fn check_weight(setup: &Setup, declared: &[u64], weight_sum: i64) -> Result<()> {
    let encoding = setup.params.encoding();
    let unit = f64::from(encoding.fraction_bits).exp2();
    #[allow(clippy::cast_precision_loss)]
    let expected: f64 = declared
        .iter()
        .map(|s| *s as f64 / encoding.max_weight as f64 * unit)
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let (found, slack) = (weight_sum as f64, declared.len() as f64 + 1.0);
    if (found - expected).abs() > slack {
        return Err(ProtocolError::WeightMismatch {
            declared: declared.iter().sum(),
            found: weight_sum,
        });
    }
    Ok(())
}

/// Checks every holder's signed commitment and public-key share (as seen
/// by participant `me`) and computes the collective public key, refusing a
/// share that differs from its commitment. Returns the key and the holders.
fn rebuild_key(
    setup: &Setup,
    me: ParticipantId,
    commitments: &[Envelope],
    shares: &[Envelope],
) -> Result<(PublicKey, Vec<u32>)> {
    let mut inbox = setup.inbox(CEREMONY_ROUND, me);
    let mut committed: Vec<KeyCommitment> = Vec::new();
    for envelope in commitments {
        let accepted = inbox.accept(&setup.registry, envelope, MessageKind::KeyCommitment)?;
        let commitment = decode_commitment(envelope.payload())?;
        if setup.holder_of(accepted.sender) != Some(commitment.holder) {
            return Err(ProtocolError::Setup(format!(
                "commitment for holder {:?} signed by another participant",
                commitment.holder
            )));
        }
        committed.push(commitment);
    }
    let mut revealed: Vec<PublicKeyShare> = Vec::new();
    for envelope in shares {
        let accepted = inbox.accept(&setup.registry, envelope, MessageKind::PublicKeyShare)?;
        let share = decode_public_share(&setup.params, envelope.payload())?;
        if setup.holder_of(accepted.sender) != Some(share.holder) {
            return Err(ProtocolError::Setup(format!(
                "public-key share for holder {:?} signed by another participant",
                share.holder
            )));
        }
        revealed.push(share);
    }
    let key = collective_public_key(
        &setup.params,
        &setup.committee,
        &setup.crs,
        &committed,
        &revealed,
    )?;
    Ok((key, revealed.iter().map(|s| s.holder.0).collect()))
}

fn check_available(setup: &Setup, available: &[HolderId]) -> Result<()> {
    let distinct: BTreeSet<HolderId> = available
        .iter()
        .copied()
        .filter(|h| setup.committee.contains(*h))
        .collect();
    if distinct.len() < usize::try_from(setup.committee.threshold()).unwrap_or(usize::MAX) {
        return Err(ProtocolError::NotEnoughHolders {
            available: distinct.len(),
            threshold: setup.committee.threshold(),
        });
    }
    Ok(())
}

fn model_hash(model: &[f32]) -> String {
    let mut h = Sha3_256::new();
    for v in model {
        h.update(v.to_be_bytes());
    }
    ringsum_pq::codec::hex(&h.finalize())
}
