//! What every participant of a federation agrees on before the first
//! message ([`Federation`]), and its id: SHA3-256 over all of it, so that a
//! participant that pins the id refuses a coordinator serving anything
//! else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::privacy::{PrivacyPlan, PrivacySettings};
use ringsum_core::round::RoundContext;
use ringsum_core::scheme::Packing;
use ringsum_core::update::{RoundId, UpdateShape};
use ringsum_pq::{
    AlgorithmPolicy, FederationId, Inbox, MessageKind, ParticipantId, PublicIdentity, Registry,
    Role, Routing, SealingPublicKey,
};
use ringsum_threshold::HolderId;
use ringsum_threshold::shamir::{ShareCommittee, ShareField};
use sha3::{Digest, Sha3_256};

use crate::error::{ProtocolError, Result, SetupError};

/// What the coordinator and the holders require of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Fewest clients whose keys the holders reveal the sum of (at least 2:
    /// the sum of one client's key is that client's key).
    pub min_clients: usize,
    /// Fewest samples a client may declare (small-cohort protection).
    pub min_samples: u64,
    /// Most samples a client may declare; at most the parameter set's
    /// `max_weight`, which the weights are quantized against.
    pub max_weight: u64,
    /// How many training rounds the federation runs (rounds 1..=rounds).
    pub rounds: u64,
}

/// One key holder: its Shamir point and its keys.
#[derive(Clone, Debug)]
pub struct HolderSpec {
    /// Its Shamir evaluation point.
    pub point: HolderId,
    /// Its signing key.
    pub signing: PublicIdentity,
    /// Its sealing key (shares are sealed to it).
    pub sealing: SealingPublicKey,
}

/// The description a federation is built from.
#[derive(Clone, Debug)]
pub struct FederationSpec {
    /// The parameter set (a per-round-key set, `[shares]` section).
    pub params: ParameterSet,
    /// The model's tensors.
    pub layout: ModelLayout,
    /// The round policy.
    pub policy: Policy,
    /// How many holders must answer to open a sum (2t > n).
    pub threshold: u32,
    /// The algorithms every key must use.
    pub algorithms: AlgorithmPolicy,
    /// The coordinator's signing key.
    pub coordinator: PublicIdentity,
    /// The key holders.
    pub holders: Vec<HolderSpec>,
    /// The clients' signing keys.
    pub clients: Vec<PublicIdentity>,
    /// Differential privacy: every client clips each record's gradient
    /// and adds its share of noise ([`ringsum_core::privacy`]). Part of
    /// the federation id, so that nobody can hand one client weaker
    /// settings than another.
    pub privacy: Option<PrivacySettings>,
}

/// Everything the participants agree on, checked, with the registry of
/// everyone's keys and the federation id. Values built from it carry it,
/// so no call needs the parameters threaded through.
#[derive(Clone, Debug)]
pub struct Federation {
    params: ParameterSet,
    packing: Packing,
    layout: ModelLayout,
    shape: UpdateShape,
    policy: Policy,
    committee: ShareCommittee,
    coordinator: ParticipantId,
    holders: BTreeMap<HolderId, ParticipantId>,
    clients: BTreeSet<ParticipantId>,
    registry: Registry,
    id: FederationId,
    privacy: Option<Arc<PrivacyPlan>>,
}

impl Federation {
    /// Checks `spec` and builds the federation.
    ///
    /// # Errors
    /// [`ProtocolError::Setup`] naming what is inconsistent: t with 2t <= n
    /// (naming both), a policy outside its bounds, a participant twice, keys
    /// of another algorithm than the policy's; the core layer's errors for
    /// the packing.
    pub fn new(spec: FederationSpec) -> Result<Self> {
        let FederationSpec {
            params,
            layout,
            policy,
            threshold,
            algorithms,
            coordinator,
            holders,
            clients,
            privacy,
        } = spec;
        let shares = params.shares();
        let n = holders.len();
        if n == 0 || threshold == 0 || 2 * u64::from(threshold) <= n as u64 {
            return Err(SetupError::ThresholdNotMajority {
                holders: n,
                threshold,
            }
            .into());
        }
        check_policy(&params, &policy, clients.len())?;
        let privacy = privacy
            .as_ref()
            .map(|settings| private_plan(settings, &params, &layout, &policy, clients.len()))
            .transpose()?;
        let packing = Packing::new(&params);
        let field = ShareField::new(shares.field_prime)?;
        let points: Vec<HolderId> = holders.iter().map(|h| h.point).collect();
        let committee = ShareCommittee::new(field, &points, threshold, shares.max_holders)?;
        let id = federation_id(
            &params,
            &layout,
            &policy,
            threshold,
            algorithms,
            &coordinator,
            &holders,
            &clients,
            privacy.as_ref(),
        );
        let mut registry = Registry::new(id, algorithms);
        let coordinator_id = registry
            .register(Role::Coordinator, coordinator, None)
            .map_err(|e| SetupError::Participant(format!("the coordinator: {e}")))?;
        let mut holder_ids = BTreeMap::new();
        for holder in holders {
            let point = holder.point;
            let id = registry
                .register(Role::KeyHolder, holder.signing, Some(holder.sealing))
                .map_err(|e| SetupError::Participant(format!("holder {}: {e}", point.0)))?;
            holder_ids.insert(point, id);
        }
        let mut client_ids = BTreeSet::new();
        for (index, client) in clients.into_iter().enumerate() {
            let id = registry
                .register(Role::Client, client, None)
                .map_err(|e| SetupError::Participant(format!("client {index}: {e}")))?;
            client_ids.insert(id);
        }
        let shape = UpdateShape::new(&packing, &layout);
        Ok(Self {
            params,
            packing,
            layout,
            shape,
            policy,
            committee,
            coordinator: coordinator_id,
            holders: holder_ids,
            clients: client_ids,
            registry,
            id,
            privacy: privacy.map(Arc::new),
        })
    }

    /// The differential-privacy plan, when the federation has one.
    #[must_use]
    pub fn privacy(&self) -> Option<&PrivacyPlan> {
        self.privacy.as_deref()
    }

    /// The federation id.
    #[must_use]
    pub const fn id(&self) -> FederationId {
        self.id
    }

    /// The parameter set.
    #[must_use]
    pub const fn params(&self) -> &ParameterSet {
        &self.params
    }

    /// Its packing constants.
    #[must_use]
    pub const fn packing(&self) -> &Packing {
        &self.packing
    }

    /// The model's tensors.
    #[must_use]
    pub const fn layout(&self) -> &ModelLayout {
        &self.layout
    }

    /// The shape of an update of the layout.
    #[must_use]
    pub const fn shape(&self) -> &UpdateShape {
        &self.shape
    }

    /// The round policy.
    #[must_use]
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The holders' Shamir committee.
    #[must_use]
    pub const fn committee(&self) -> &ShareCommittee {
        &self.committee
    }

    /// The registry of everyone's keys.
    #[must_use]
    pub const fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The coordinator's id.
    #[must_use]
    pub const fn coordinator(&self) -> ParticipantId {
        self.coordinator
    }

    /// The holders by Shamir point.
    #[must_use]
    pub const fn holders(&self) -> &BTreeMap<HolderId, ParticipantId> {
        &self.holders
    }

    /// The clients.
    #[must_use]
    pub const fn clients(&self) -> &BTreeSet<ParticipantId> {
        &self.clients
    }

    /// The Shamir point of participant `id`, if it is a holder.
    #[must_use]
    pub fn holder_point(&self, id: ParticipantId) -> Option<HolderId> {
        self.holders
            .iter()
            .find(|(_, p)| **p == id)
            .map(|(h, _)| *h)
    }

    /// The degree N of the ring (coefficients of a secret and a share).
    #[must_use]
    pub fn degree(&self) -> usize {
        self.params.degree()
    }

    /// Checks that `round` is one of the federation's training rounds.
    ///
    /// # Errors
    /// [`ProtocolError::RoundOutOfRange`].
    pub fn check_round(&self, round: RoundId) -> Result<()> {
        if round.0 == 0 || round.0 > self.policy.rounds {
            return Err(ProtocolError::RoundOutOfRange {
                round: round.0,
                rounds: self.policy.rounds,
            });
        }
        Ok(())
    }

    /// The public context of `round` (its a_j).
    pub fn round_context(&self, round: RoundId) -> RoundContext {
        RoundContext::new(&self.params, self.id.0, round)
    }

    pub(crate) fn routing(
        &self,
        round: RoundId,
        kind: MessageKind,
        recipient: ParticipantId,
    ) -> Routing {
        Routing {
            federation: self.id,
            round: round.0,
            kind,
            recipient,
            parameter_set: self.params.id().to_string(),
        }
    }

    pub(crate) fn inbox(&self, round: RoundId, me: ParticipantId) -> Inbox {
        Inbox::new(self.id, round.0, self.params.id().as_str(), Some(me))
    }
}

fn check_policy(params: &ParameterSet, policy: &Policy, clients: usize) -> Result<()> {
    let max_clients = params.encoding().max_clients;
    let bad = |what: &str| Err(SetupError::Policy(what.to_owned()).into());
    if policy.min_clients < 2 {
        return bad(
            "min_clients must be at least 2: the holders would reveal the sum of one client's key, which is that client's key",
        );
    }
    if clients < policy.min_clients {
        return bad(&format!(
            "{clients} clients cannot reach min_clients = {}",
            policy.min_clients
        ));
    }
    if clients as u64 > max_clients {
        return bad(&format!(
            "{clients} clients; the parameter set {} lifts the sum of at most {max_clients}",
            params.id()
        ));
    }
    if policy.min_samples == 0 || policy.min_samples > policy.max_weight {
        return bad("min_samples must be between 1 and max_weight");
    }
    let ceiling = params.encoding().max_weight;
    if policy.max_weight > ceiling {
        return bad(&format!(
            "max_weight = {} is above the parameter set's {ceiling}",
            policy.max_weight
        ));
    }
    if policy.rounds == 0 {
        return bad("rounds must be at least 1");
    }
    Ok(())
}

/// The plan of a DP federation: every sum holds at least `min_clients`
/// submissions (the holders refuse smaller sets), so the noise of
/// `noise_clients` is there only if `noise_clients <= min_clients`.
fn private_plan(
    settings: &PrivacySettings,
    params: &ParameterSet,
    layout: &ModelLayout,
    policy: &Policy,
    clients: usize,
) -> Result<PrivacyPlan> {
    if settings.noise_clients > policy.min_clients as u64 {
        return Err(SetupError::Policy(format!(
            "privacy: noise_clients ({}) exceeds min_clients ({}): a sum of min_clients \
             submissions would hold less noise than planned",
            settings.noise_clients, policy.min_clients
        ))
        .into());
    }
    let plan = PrivacyPlan::new(
        settings.clone(),
        params,
        layout.parameter_count(),
        policy.rounds,
        clients as u64,
    )
    .map_err(SetupError::from)?;
    if plan.declared_samples() < policy.min_samples {
        return Err(SetupError::Policy(format!(
            "privacy: the declared sample count that gives the learning rate ({}) is below \
             min_samples ({}); lower the learning rate or min_samples",
            plan.declared_samples(),
            policy.min_samples
        ))
        .into());
    }
    if plan.declared_samples() > policy.max_weight {
        return Err(SetupError::Policy(format!(
            "privacy: the declared sample count that gives the learning rate ({}) is above \
             max_weight ({}); raise the learning rate or max_weight",
            plan.declared_samples(),
            policy.max_weight
        ))
        .into());
    }
    Ok(plan)
}

/// The federation id: SHA3-256 over everything a participant relies on:
/// parameter set, model layout, policy, threshold, algorithms, and every
/// participant's role, keys and (for holders) Shamir point, in a fixed
/// order.
#[expect(
    clippy::too_many_arguments,
    reason = "private: the fields of a FederationSpec, taken apart by Federation::new"
)]
fn federation_id(
    params: &ParameterSet,
    layout: &ModelLayout,
    policy: &Policy,
    threshold: u32,
    algorithms: AlgorithmPolicy,
    coordinator: &PublicIdentity,
    holders: &[HolderSpec],
    clients: &[PublicIdentity],
    privacy: Option<&PrivacyPlan>,
) -> FederationId {
    let mut h = Sha3_256::new();
    let mut field = |label: &str, bytes: &[u8]| {
        h.update((label.len() as u64).to_be_bytes());
        h.update(label.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field("ringsum/v2 federation", &[]);
    field("parameter set", params.id().as_str().as_bytes());
    field("layout", layout.hash());
    field("min_clients", &(policy.min_clients as u64).to_be_bytes());
    field("min_samples", &policy.min_samples.to_be_bytes());
    field("max_weight", &policy.max_weight.to_be_bytes());
    field("rounds", &policy.rounds.to_be_bytes());
    field("threshold", &threshold.to_be_bytes());
    field("signature", algorithms.signature.name().as_bytes());
    field("kem", algorithms.kem.name().as_bytes());
    field("coordinator", coordinator.to_bytes());
    let mut sorted: Vec<&HolderSpec> = holders.iter().collect();
    sorted.sort_by_key(|h| h.point);
    for holder in sorted {
        field("holder", &holder.point.0.to_be_bytes());
        field("holder signing", holder.signing.to_bytes());
        field("holder sealing", holder.sealing.to_bytes());
    }
    let mut sorted: Vec<&[u8]> = clients.iter().map(PublicIdentity::to_bytes).collect();
    sorted.sort_unstable();
    for client in sorted {
        field("client", client);
    }
    // Absent for a federation without differential privacy, whose id is
    // then what it always was.
    if let Some(plan) = privacy {
        let p = plan.settings();
        field("privacy epsilon", &p.epsilon.to_bits().to_be_bytes());
        field("privacy delta", &p.delta.to_bits().to_be_bytes());
        field("privacy clip", &p.clip.to_bits().to_be_bytes());
        field(
            "privacy learning rate",
            &p.learning_rate.to_bits().to_be_bytes(),
        );
        field(
            "privacy records per client",
            &p.records_per_client.to_be_bytes(),
        );
        field("privacy max records", &p.max_records.to_be_bytes());
        field("privacy noise clients", &p.noise_clients.to_be_bytes());
        // What the plan derives from them (in floating point): participants
        // whose arithmetic derived another plan compute another id and
        // refuse to join, rather than submitting what the others refuse.
        field("privacy scale bits", &plan.scale_bits().to_be_bytes());
        field("privacy variance", &plan.sampler().variance().to_be_bytes());
        field("privacy weight", &plan.weight().to_be_bytes());
        field(
            "privacy declared samples",
            &plan.declared_samples().to_be_bytes(),
        );
    }
    FederationId(h.finalize().into())
}
