//! The key ceremony: each holder samples a secret s_i, publishes
//! p_i = -a*s_i + e_i (the collective public key is (sum p_i, a)), and
//! Shamir-shares s_i with a degree t-1 polynomial over R_Q to every holder;
//! each holder adds what it received into its threshold key share s'_j.
//! Nobody ever holds s = sum s_i.

use std::collections::BTreeMap;
use std::fmt;

use rayon::prelude::*;
use ringsum_core::scheme::{PublicKey, SecretKey};
use ringsum_core::{CoreError, ParamSetId, ParameterSet};
use ringsum_math::sample::sample_uniform;
use ringsum_math::{CrsSeed, Csprng, Ntt, Poly, SecretPoly};
use sha3::{Digest, Sha3_256};

use crate::committee::{ActiveSet, Committee, HolderId};
use crate::decrypt::check_set;
use crate::error::{Result, ThresholdError};

/// SHA3-256 over "ringsum/crs-binding/v1", the CRS seed and the key epoch
/// (u64 little-endian): what a public-key share declares it was computed
/// from, so that a holder configured with another seed or epoch is caught
/// before its share spoils the collective key.
pub fn crs_binding(seed: &CrsSeed, epoch: u64) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/crs-binding/v1");
    h.update(seed.as_bytes());
    h.update(epoch.to_le_bytes());
    h.finalize().into()
}

/// A holder's contribution to the collective public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyShare {
    /// The parameter set.
    pub param_set: ParamSetId,
    /// The key epoch.
    pub epoch: u64,
    /// The holder.
    pub holder: HolderId,
    /// [`crs_binding`] of the seed and epoch the share was computed from.
    pub crs_binding: [u8; 32],
    /// p_i = -a*s_i + e_i, in NTT form.
    pub p: Poly<Ntt>,
}

impl PublicKeyShare {
    /// The holder's commitment to this share: SHA3-256 over
    /// "ringsum/public-key-share/v1", the parameter-set id
    /// (length-prefixed), the epoch, the holder id, the CRS binding and the
    /// residues of p (u64 little-endian).
    pub fn commitment(&self) -> KeyCommitment {
        let mut h = Sha3_256::new();
        h.update(b"ringsum/public-key-share/v1");
        h.update((self.param_set.as_str().len() as u64).to_le_bytes());
        h.update(self.param_set.as_str().as_bytes());
        h.update(self.epoch.to_le_bytes());
        h.update(self.holder.0.to_le_bytes());
        h.update(self.crs_binding);
        h.update(bytemuck::cast_slice::<u64, u8>(self.p.residues()));
        KeyCommitment {
            epoch: self.epoch,
            holder: self.holder,
            digest: h.finalize().into(),
        }
    }
}

/// A hash commitment to a [`PublicKeyShare`], published first: only once
/// every holder's commitment is in are the shares revealed, so no holder
/// can choose its p_i after seeing the others' (a rogue p_i = p - sum of
/// the others' would give it the whole key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCommitment {
    /// The key epoch.
    pub epoch: u64,
    /// The holder.
    pub holder: HolderId,
    /// The hash of the share.
    pub digest: [u8; 32],
}

/// One Shamir share f_i(x_j) of holder i's secret, for holder j. As
/// sensitive as a key: wiped on drop, never printed; it must travel sealed
/// to its recipient (the post-quantum layer's sealed boxes).
#[derive(Clone, Debug)]
pub struct SecretShareMessage {
    /// The parameter set.
    pub param_set: ParamSetId,
    /// The key epoch.
    pub epoch: u64,
    /// The dealer i.
    pub from: HolderId,
    /// The recipient j.
    pub to: HolderId,
    /// f_i(x_j), in NTT form.
    pub share: SecretPoly<Ntt>,
}

/// How the ceremony's secret shares travel between holders. A deployment
/// plugs in sealed, signed delivery; [`InMemoryTransport`] serves tests
/// and single-process runs.
pub trait ShareTransport {
    /// Hands `message` over for delivery to `message.to`.
    ///
    /// # Errors
    /// [`ThresholdError::Transport`] when it cannot be sent.
    fn send(&mut self, message: SecretShareMessage) -> Result<()>;

    /// Everything delivered to `recipient` so far, removed from the
    /// transport.
    ///
    /// # Errors
    /// [`ThresholdError::Transport`] when the messages cannot be fetched.
    fn receive(&mut self, recipient: HolderId) -> Result<Vec<SecretShareMessage>>;
}

/// A transport that keeps messages in memory, one queue per recipient.
#[derive(Debug, Default)]
pub struct InMemoryTransport {
    queues: BTreeMap<HolderId, Vec<SecretShareMessage>>,
}

impl InMemoryTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ShareTransport for InMemoryTransport {
    fn send(&mut self, message: SecretShareMessage) -> Result<()> {
        self.queues.entry(message.to).or_default().push(message);
        Ok(())
    }

    fn receive(&mut self, recipient: HolderId) -> Result<Vec<SecretShareMessage>> {
        Ok(self.queues.remove(&recipient).unwrap_or_default())
    }
}

/// One holder's state during the ceremony: its secret s_i.
pub struct KeyGenerator {
    committee: Committee,
    me: HolderId,
    secret: SecretKey,
}

impl fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyGenerator")
            .field("epoch", &self.committee.epoch())
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl KeyGenerator {
    /// Samples the ternary secret s_i of holder `me`.
    ///
    /// # Errors
    /// [`ThresholdError::UnknownHolder`] when `me` is not a member, and a
    /// parameter mismatch when the committee belongs to another set.
    pub fn new(
        params: &ParameterSet,
        committee: &Committee,
        me: HolderId,
        rng: &mut Csprng,
    ) -> Result<Self> {
        check_set(params, committee.param_set())?;
        committee.check_member(me)?;
        Ok(Self {
            committee: committee.clone(),
            me,
            secret: SecretKey::generate(params, rng),
        })
    }

    /// p_i = -a*s_i + e_i with a from the CRS seed of the committee's epoch.
    ///
    /// # Errors
    /// A parameter mismatch for another set.
    pub fn public_key_share(
        &self,
        params: &ParameterSet,
        seed: &CrsSeed,
        rng: &mut Csprng,
    ) -> Result<PublicKeyShare> {
        let epoch = self.committee.epoch();
        let pk = PublicKey::generate(params, &self.secret, seed, epoch, rng)?;
        Ok(PublicKeyShare {
            param_set: params.id().clone(),
            epoch,
            holder: self.me,
            crs_binding: crs_binding(seed, epoch),
            p: pk.p0().clone(),
        })
    }

    /// Shamir-shares s_i: one message per holder (itself included), to be
    /// sent sealed.
    ///
    /// # Errors
    /// A parameter mismatch for another set.
    pub fn deal(&self, params: &ParameterSet, rng: &mut Csprng) -> Result<Vec<SecretShareMessage>> {
        deal(params, &self.committee, self.me, self.secret.secret(), rng)
    }
}

/// Shares `secret` among the holders of `committee` with a random
/// polynomial f of degree t-1 over R_Q with f(0) = secret; holder j gets
/// f(x_j), evaluated by Horner's rule, coefficient-wise in every prime.
fn deal(
    params: &ParameterSet,
    committee: &Committee,
    from: HolderId,
    secret: &SecretPoly<Ntt>,
    rng: &mut Csprng,
) -> Result<Vec<SecretShareMessage>> {
    check_set(params, committee.param_set())?;
    let ring = params.ring();
    if !ring.same_ring(secret.expose().context()) {
        return Err(CoreError::ParameterMismatch {
            expected: params.id().to_string(),
            found: "a secret of another ring".to_owned(),
        }
        .into());
    }
    // f(X) = secret + r_1 X + ... + r_{t-1} X^{t-1}, with uniform r_k.
    let higher: Vec<SecretPoly<Ntt>> = (1..committee.threshold())
        .map(|_| SecretPoly::new(sample_uniform(ring, rng)))
        .collect();
    let shares = committee
        .holders()
        .par_iter()
        .map(|&to| {
            let x = u64::from(to.0);
            let mut acc = SecretPoly::new(Poly::zero(ring));
            for r in higher.iter().rev() {
                acc.expose_mut().try_add_assign(r.expose())?;
                acc.expose_mut().mul_u64_assign(x);
            }
            acc.expose_mut().try_add_assign(secret.expose())?;
            Ok(SecretShareMessage {
                param_set: params.id().clone(),
                epoch: committee.epoch(),
                from,
                to,
                share: acc,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(shares)
}

/// The collective public key (sum p_i, a) from one share per holder, each
/// matching the commitment its holder published before any share was
/// revealed.
///
/// # Errors
/// [`ThresholdError::CommitmentMismatch`] for a share that differs from its
/// commitment, [`ThresholdError::Missing`] for absent commitments;
/// [`ThresholdError::WrongEpoch`], [`ThresholdError::UnknownHolder`],
/// [`ThresholdError::DuplicateHolder`], [`ThresholdError::CrsMismatch`]
/// for a share computed from another seed or epoch,
/// [`ThresholdError::Missing`] when a holder's share is absent, and
/// parameter mismatches.
pub fn collective_public_key(
    params: &ParameterSet,
    committee: &Committee,
    seed: &CrsSeed,
    commitments: &[KeyCommitment],
    shares: &[PublicKeyShare],
) -> Result<PublicKey> {
    check_set(params, committee.param_set())?;
    let mut committed = BTreeMap::new();
    for c in commitments {
        committee.check_epoch(c.epoch)?;
        committee.check_member(c.holder)?;
        if committed.insert(c.holder, c.digest).is_some() {
            return Err(ThresholdError::DuplicateHolder {
                holder: c.holder,
                what: "the key commitments",
            });
        }
    }
    check_complete(committee.holders(), &committed, "key commitments")?;
    let binding = crs_binding(seed, committee.epoch());
    let mut seen = BTreeMap::new();
    for share in shares {
        check_set(params, &share.param_set)?;
        committee.check_epoch(share.epoch)?;
        committee.check_member(share.holder)?;
        if share.crs_binding != binding {
            return Err(ThresholdError::CrsMismatch {
                holder: share.holder,
            });
        }
        if !params.ring().same_ring(share.p.context()) {
            return Err(CoreError::ParameterMismatch {
                expected: params.id().to_string(),
                found: format!("a public-key share of {} in another ring", share.holder),
            }
            .into());
        }
        if committed.get(&share.holder) != Some(&share.commitment().digest) {
            return Err(ThresholdError::CommitmentMismatch {
                holder: share.holder,
            });
        }
        if seen.insert(share.holder, &share.p).is_some() {
            return Err(ThresholdError::DuplicateHolder {
                holder: share.holder,
                what: "the public-key shares",
            });
        }
    }
    check_complete(committee.holders(), &seen, "public-key shares")?;
    let mut p0 = Poly::zero(params.ring());
    for p in seen.values() {
        p0.try_add_assign(p)?;
    }
    let a = PublicKey::crs_polynomial(params.ring(), seed, committee.epoch())?;
    Ok(PublicKey::from_parts(params, p0, a)?)
}

/// `Ok` when every holder of `expected` has an entry in `seen`.
fn check_complete<V>(
    expected: &[HolderId],
    seen: &BTreeMap<HolderId, V>,
    what: &'static str,
) -> Result<()> {
    let missing: Vec<HolderId> = expected
        .iter()
        .filter(|h| !seen.contains_key(h))
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ThresholdError::Missing { what, missing })
    }
}

/// A holder's threshold key share s'_j = sum_i f_i(x_j) for one key epoch.
/// Wiped on drop, never printed.
#[derive(Clone)]
pub struct ThresholdKeyShare {
    param_set: ParamSetId,
    epoch: u64,
    holder: HolderId,
    share: SecretPoly<Ntt>,
}

impl fmt::Debug for ThresholdKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThresholdKeyShare")
            .field("param_set", &self.param_set)
            .field("epoch", &self.epoch)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl ThresholdKeyShare {
    /// Adds up the shares dealt to `me`, one from every committee member.
    /// Every message is checked before anything is added.
    ///
    /// # Errors
    /// [`ThresholdError::Misaddressed`], [`ThresholdError::WrongEpoch`],
    /// [`ThresholdError::UnknownHolder`], [`ThresholdError::DuplicateHolder`]
    /// for a second share from the same dealer, [`ThresholdError::Missing`]
    /// for absent dealers, and parameter mismatches.
    pub fn from_messages(
        params: &ParameterSet,
        committee: &Committee,
        me: HolderId,
        messages: &[SecretShareMessage],
    ) -> Result<Self> {
        collect_shares(params, committee, committee.holders(), me, messages)
    }

    /// Re-shares this holder's part of the key to a new committee, without
    /// anyone reconstructing the key: as a member of `dealers` (an active
    /// set of at least t holders of `old`), the holder deals l_i s'_i, its
    /// Lagrange-weighted share, with a fresh polynomial of the new
    /// committee's threshold. The new holders add what they receive with
    /// [`Self::from_reshare`]; the sum over the dealers of l_i s'_i is s,
    /// so the public key, and the noise budget, stay as they are. The old
    /// shares must be deleted once the new ones are in place.
    ///
    /// # Errors
    /// [`ThresholdError::WrongEpoch`] when this share is not of `old`,
    /// [`ThresholdError::NotInActiveSet`] when the holder is not a dealer,
    /// and parameter mismatches.
    pub fn reshare(
        &self,
        params: &ParameterSet,
        old: &Committee,
        dealers: &ActiveSet,
        new: &Committee,
        rng: &mut Csprng,
    ) -> Result<Vec<SecretShareMessage>> {
        check_set(params, &self.param_set)?;
        check_set(params, old.param_set())?;
        old.check_epoch(self.epoch)?;
        old.check_epoch(dealers.epoch())?;
        let dealers = old.active_set(dealers.holders())?;
        let lagrange = dealers.lagrange(params.ring(), self.holder)?;
        let mut weighted = self.share.clone();
        weighted.expose_mut().try_mul_scalar_assign(&lagrange)?;
        deal(params, new, self.holder, &weighted, rng)
    }

    /// The new share of holder `me` of committee `new`: the sum of the
    /// re-shared parts from every member of `dealers` (see
    /// [`Self::reshare`]). Every message is checked before anything is
    /// added.
    ///
    /// # Errors
    /// As [`Self::from_messages`], with the dealers in place of the
    /// committee's members.
    pub fn from_reshare(
        params: &ParameterSet,
        new: &Committee,
        dealers: &ActiveSet,
        me: HolderId,
        messages: &[SecretShareMessage],
    ) -> Result<Self> {
        collect_shares(params, new, dealers.holders(), me, messages)
    }

    /// A key share restored from storage.
    ///
    /// # Errors
    /// A parameter mismatch when the polynomial is of another ring.
    pub fn from_parts(
        params: &ParameterSet,
        epoch: u64,
        holder: HolderId,
        share: SecretPoly<Ntt>,
    ) -> Result<Self> {
        if !params.ring().same_ring(share.expose().context()) {
            return Err(CoreError::ParameterMismatch {
                expected: params.id().to_string(),
                found: "a key share of another ring".to_owned(),
            }
            .into());
        }
        Ok(Self {
            param_set: params.id().clone(),
            epoch,
            holder,
            share,
        })
    }

    /// The parameter set.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// The key epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The holder.
    pub fn holder(&self) -> HolderId {
        self.holder
    }

    /// The share s'_j, in NTT form (for storage and tests).
    pub fn share(&self) -> &SecretPoly<Ntt> {
        &self.share
    }
}

/// Adds up the shares dealt to `me` of `committee`, exactly one from each
/// of `dealers`, after checking every message.
fn collect_shares(
    params: &ParameterSet,
    committee: &Committee,
    dealers: &[HolderId],
    me: HolderId,
    messages: &[SecretShareMessage],
) -> Result<ThresholdKeyShare> {
    check_set(params, committee.param_set())?;
    committee.check_member(me)?;
    let mut seen = BTreeMap::new();
    for m in messages {
        check_set(params, &m.param_set)?;
        committee.check_epoch(m.epoch)?;
        if !dealers.contains(&m.from) {
            return Err(ThresholdError::UnknownHolder {
                holder: m.from,
                epoch: committee.epoch(),
            });
        }
        if m.to != me {
            return Err(ThresholdError::Misaddressed {
                from: m.from,
                to: m.to,
                recipient: me,
            });
        }
        if !params.ring().same_ring(m.share.expose().context()) {
            return Err(CoreError::ParameterMismatch {
                expected: params.id().to_string(),
                found: format!("a key share from {} in another ring", m.from),
            }
            .into());
        }
        if seen.insert(m.from, &m.share).is_some() {
            return Err(ThresholdError::DuplicateHolder {
                holder: m.from,
                what: "the key shares received",
            });
        }
    }
    check_complete(dealers, &seen, "key shares")?;
    let mut share = SecretPoly::new(Poly::zero(params.ring()));
    for s in seen.values() {
        share.expose_mut().try_add_assign(s.expose())?;
    }
    Ok(ThresholdKeyShare {
        param_set: params.id().clone(),
        epoch: committee.epoch(),
        holder: me,
        share,
    })
}

/// The result of a key ceremony run in one process.
#[derive(Debug)]
pub struct CeremonyOutput {
    /// The collective public key.
    pub public_key: PublicKey,
    /// One threshold key share per holder, in committee order.
    pub key_shares: Vec<ThresholdKeyShare>,
}

/// Runs the whole ceremony for every holder of `committee` in this process,
/// with the secret shares passing through `transport` (tests, demos and
/// benchmarks; a deployment runs each holder's half in its own process).
///
/// # Errors
/// Those of [`collective_public_key`], [`ThresholdKeyShare::from_messages`]
/// and the transport.
pub fn run_ceremony(
    params: &ParameterSet,
    committee: &Committee,
    seed: &CrsSeed,
    transport: &mut impl ShareTransport,
    rng: &mut Csprng,
) -> Result<CeremonyOutput> {
    let mut pk_shares = Vec::with_capacity(committee.holders().len());
    for &me in committee.holders() {
        let generator = KeyGenerator::new(params, committee, me, rng)?;
        pk_shares.push(generator.public_key_share(params, seed, rng)?);
        for message in generator.deal(params, rng)? {
            transport.send(message)?;
        }
    }
    // In one process the commit-then-reveal order is trivially kept.
    let commitments: Vec<KeyCommitment> =
        pk_shares.iter().map(PublicKeyShare::commitment).collect();
    let public_key = collective_public_key(params, committee, seed, &commitments, &pk_shares)?;
    let key_shares = committee
        .holders()
        .iter()
        .map(|&me| {
            let received = transport.receive(me)?;
            ThresholdKeyShare::from_messages(params, committee, me, &received)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CeremonyOutput {
        public_key,
        key_shares,
    })
}
