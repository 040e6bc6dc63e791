//! Threshold decryption: each holder of an active set S returns the
//! flooded share d_i = l_i s'_i c1 + e_i (the Lagrange factor weights the
//! key, never the noise), and the combiner adds c0 and all d_i to obtain
//! c0 + s c1 + sum e_i, which decodes like a single-key decryption.

use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigUint;
use rayon::prelude::*;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::{Ciphertext, Packing};
use ringsum_core::update::{Aggregate, FedAvgResult, decode_aggregate};
use ringsum_core::{CoreError, ParamSetId, ParameterSet};
use ringsum_math::sample::sample_flooding_uniform;
use ringsum_math::{Coeff, Csprng, Ntt, Poly, SecretPoly};
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use crate::ceremony::ThresholdKeyShare;
use crate::committee::{ActiveSet, Committee, HolderId};
use crate::error::{Result, ThresholdError};
use crate::ledger::{ShareLedger, hex};

/// SHA3-256 over "ringsum/c1/v1" and the residues of c1 (u64
/// little-endian, prime by prime): what a holder's ledger keys on, since a
/// decryption share of a ciphertext is a function of its c1 alone.
pub fn c1_digest(ct: &Ciphertext) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/c1/v1");
    h.update(bytemuck::cast_slice::<u64, u8>(ct.c1().residues()));
    h.finalize().into()
}

/// The identity of a decryption request's ciphertexts: SHA3-256 over
/// "ringsum/decryption-input/v1", the parameter-set id (length-prefixed),
/// the key epoch, the ciphertext count and each [`c1_digest`] in order.
/// Shares carry it so that the combiner can refuse shares of another
/// aggregate; the holders' one-share rule is enforced per c1 (the ledger).
pub fn decryption_digest(
    param_set: &ParamSetId,
    epoch: u64,
    ciphertexts: &[Ciphertext],
) -> [u8; 32] {
    let per_ciphertext: Vec<[u8; 32]> = ciphertexts.par_iter().map(c1_digest).collect();
    list_digest(param_set, epoch, &per_ciphertext)
}

fn list_digest(param_set: &ParamSetId, epoch: u64, per_ciphertext: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/decryption-input/v1");
    h.update((param_set.as_str().len() as u64).to_le_bytes());
    h.update(param_set.as_str().as_bytes());
    h.update(epoch.to_le_bytes());
    h.update((per_ciphertext.len() as u64).to_le_bytes());
    for d in per_ciphertext {
        h.update(d);
    }
    h.finalize().into()
}

/// The flooding bound B = 2^lambda * B_agg of a parameter set: each share
/// carries noise uniform on [-B, B] per coefficient (docs/noise.md).
pub fn flooding_bound(params: &ParameterSet) -> BigUint {
    &params.noise_budget().aggregate << params.threshold().flooding_bits
}

/// One holder's decryption share of an aggregate, for one active set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptionShare {
    /// The parameter set.
    pub param_set: ParamSetId,
    /// The key epoch.
    pub epoch: u64,
    /// The holder.
    pub holder: HolderId,
    /// The aggregate's [`decryption_digest`].
    pub digest: [u8; 32],
    /// The active set the share was computed for (sorted).
    pub active_set: Vec<HolderId>,
    /// d_i = l_i s'_i c1 + e_i for each ciphertext, in coefficient form.
    pub parts: Vec<Poly<Coeff>>,
}

/// A key holder ready to decrypt: its threshold key share, the committee,
/// and the ledger of shares it issued.
pub struct KeyHolder {
    committee: Committee,
    key: ThresholdKeyShare,
    flood_key: Zeroizing<[u8; 32]>,
    ledger: ShareLedger,
}

impl fmt::Debug for KeyHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHolder")
            .field("holder", &self.key.holder())
            .field("epoch", &self.committee.epoch())
            .field("issued", &self.ledger.len())
            .finish_non_exhaustive()
    }
}

impl KeyHolder {
    /// A holder with key share `key` in `committee`, recording issued
    /// shares in `ledger` (a file it owns, to survive restarts).
    ///
    /// The flooding noise of each ciphertext is drawn from a generator
    /// keyed by a hash of the key share, the ciphertext's c1 and the active
    /// set, so a repeated request (same c1, same set) gets the very same
    /// share, even after a restart, and never a second independent one.
    ///
    /// # Errors
    /// [`ThresholdError::WrongEpoch`] or [`ThresholdError::UnknownHolder`]
    /// when the key share does not belong to the committee, and parameter
    /// mismatches.
    pub fn new(
        params: &ParameterSet,
        committee: Committee,
        key: ThresholdKeyShare,
        ledger: ShareLedger,
    ) -> Result<Self> {
        check_set(params, key.param_set())?;
        check_set(params, committee.param_set())?;
        committee.check_epoch(key.epoch())?;
        committee.check_member(key.holder())?;
        let mut h = Sha3_256::new();
        h.update(b"ringsum/flood-key/v1");
        h.update(bytemuck::cast_slice::<u64, u8>(
            key.share().expose().residues(),
        ));
        let flood_key = Zeroizing::new(h.finalize().into());
        Ok(Self {
            committee,
            key,
            flood_key,
            ledger,
        })
    }

    /// The holder's id.
    pub fn id(&self) -> HolderId {
        self.key.holder()
    }

    /// The threshold key share (for encrypted storage).
    pub fn key_share(&self) -> &ThresholdKeyShare {
        &self.key
    }

    /// The ledger of issued shares.
    pub fn ledger(&self) -> &ShareLedger {
        &self.ledger
    }

    /// The decryption share of `aggregate` for `active`. Each c1 is
    /// recorded durably first; a request that contains a c1 already
    /// answered for another set is refused (re-randomise the aggregate
    /// instead), as is a request with the same c1 twice.
    ///
    /// # Errors
    /// [`ThresholdError::NotInActiveSet`], [`ThresholdError::WrongEpoch`],
    /// [`ThresholdError::UnknownHolder`] for a set with non-members,
    /// [`ThresholdError::RetryRefused`], [`ThresholdError::DuplicateCiphertext`],
    /// [`ThresholdError::Ledger`], a count mismatch for an empty aggregate and parameter mismatches.
    pub fn decryption_share(
        &mut self,
        params: &ParameterSet,
        aggregate: &Aggregate,
        active: &ActiveSet,
    ) -> Result<DecryptionShare> {
        let me = self.key.holder();
        let ciphertexts = aggregate.ciphertexts();
        check_ciphertexts(params, ciphertexts)?;
        self.committee.check_epoch(active.epoch())?;
        // The set may come from another committee of the same epoch:
        // re-validate it against this holder's committee and threshold.
        let active = &self.committee.active_set(active.holders())?;
        let ring = params.ring();
        let lagrange = active.lagrange(ring, me)?;
        let c1_digests: Vec<[u8; 32]> = ciphertexts.par_iter().map(c1_digest).collect();
        let digest = list_digest(params.id(), self.committee.epoch(), &c1_digests);
        self.ledger.permit(&c1_digests, active.holders())?;

        let mut weighted = self.key.share().clone();
        weighted.expose_mut().try_mul_scalar_assign(&lagrange)?;
        let set_digest = active.digest();
        let bound = flooding_bound(params);
        let parts = ciphertexts
            .par_iter()
            .zip(&c1_digests)
            .map(|(ct, c1)| {
                let mut rng = self.flooding_rng(c1, &set_digest);
                share_part(ct, &weighted, &bound, &mut rng)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecryptionShare {
            param_set: params.id().clone(),
            epoch: self.committee.epoch(),
            holder: me,
            digest,
            active_set: active.holders().to_vec(),
            parts,
        })
    }
}

impl KeyHolder {
    /// The generator of the flooding of one c1 for one active set.
    fn flooding_rng(&self, c1: &[u8; 32], active_set: &[u8; 32]) -> Csprng {
        let mut h = Sha3_256::new();
        h.update(b"ringsum/flood/v1");
        h.update(self.flood_key.as_slice());
        h.update(c1);
        h.update(active_set);
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&h.finalize());
        Csprng::from_seed(*seed)
    }
}

/// l_i s'_i c1 + e for one ciphertext; the unflooded product is secret and
/// lives in a wiped buffer until the noise covers it.
fn share_part(
    ct: &Ciphertext,
    weighted_key: &SecretPoly<Ntt>,
    bound: &BigUint,
    rng: &mut Csprng,
) -> Result<Poly<Coeff>> {
    let mut product = SecretPoly::new(ct.c1().to_ntt());
    product.expose_mut().try_mul_assign(weighted_key.expose())?;
    let mut product = product.into_coeff();
    let flood = sample_flooding_uniform(ct.c1().context(), bound, rng)?;
    product.expose_mut().try_add_assign(flood.expose())?;
    Ok(product.declassify())
}

/// `Ok` when `found` names the parameter set `params`.
pub(crate) fn check_set(params: &ParameterSet, found: &ParamSetId) -> Result<()> {
    Ok(ringsum_core::scheme::check_set(params, found)?)
}

/// `Ok` for a non-empty list of ciphertexts of `params`.
fn check_ciphertexts(params: &ParameterSet, ciphertexts: &[Ciphertext]) -> Result<()> {
    if ciphertexts.is_empty() {
        return Err(CoreError::CountMismatch {
            what: "ciphertexts in the aggregate",
            expected: 1,
            found: 0,
        }
        .into());
    }
    let foreign = ciphertexts.iter().find(|ct| {
        ct.param_set() != params.id()
            || !params.ring().same_ring(ct.c0().context())
            || !params.ring().same_ring(ct.c1().context())
    });
    match foreign {
        Some(ct) => Err(CoreError::ParameterMismatch {
            expected: params.id().to_string(),
            found: ct.param_set().to_string(),
        }
        .into()),
        None => Ok(()),
    }
}

/// What the coordinator asks of the holders of an active set: decryption
/// shares of one aggregate. It computes the aggregate's
/// [`decryption_digest`] once; the holders recompute it from the
/// ciphertexts they are sent (they never take it on trust), and the
/// [`Combiner`] checks every share against it.
#[derive(Clone, Debug)]
pub struct DecryptionRequest<'a> {
    aggregate: &'a Aggregate,
    active: ActiveSet,
    digest: [u8; 32],
}

impl<'a> DecryptionRequest<'a> {
    /// A request for `aggregate` to the holders of `active`, a set drawn
    /// from `committee`.
    ///
    /// # Errors
    /// [`ThresholdError::WrongEpoch`], [`ThresholdError::UnknownHolder`],
    /// [`ThresholdError::NotEnoughHolders`], a count mismatch for an empty
    /// aggregate and parameter mismatches.
    pub fn new(
        params: &ParameterSet,
        committee: &Committee,
        active: &ActiveSet,
        aggregate: &'a Aggregate,
    ) -> Result<Self> {
        check_set(params, committee.param_set())?;
        check_ciphertexts(params, aggregate.ciphertexts())?;
        committee.check_epoch(active.epoch())?;
        // Re-validate the set against this committee and its threshold.
        let active = committee.active_set(active.holders())?;
        Ok(Self {
            digest: decryption_digest(params.id(), committee.epoch(), aggregate.ciphertexts()),
            active,
            aggregate,
        })
    }

    /// The aggregate to decrypt.
    pub fn aggregate(&self) -> &'a Aggregate {
        self.aggregate
    }

    /// The active set.
    pub fn active_set(&self) -> &ActiveSet {
        &self.active
    }

    /// The aggregate's decryption digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

/// Collects the decryption shares of one [`DecryptionRequest`] and decodes
/// the result. Each share is checked as it arrives; a refused share leaves
/// what was collected intact.
#[derive(Debug)]
pub struct Combiner<'a> {
    param_set: ParamSetId,
    request: DecryptionRequest<'a>,
    shares: BTreeMap<HolderId, Vec<Poly<Coeff>>>,
}

impl<'a> Combiner<'a> {
    /// A combiner for the answers to `request`.
    ///
    /// # Errors
    /// A parameter mismatch when the request was made for another set.
    pub fn new(params: &ParameterSet, request: DecryptionRequest<'a>) -> Result<Self> {
        check_ciphertexts(params, request.aggregate.ciphertexts())?;
        Ok(Self {
            param_set: params.id().clone(),
            request,
            shares: BTreeMap::new(),
        })
    }

    /// Accepts one share after checking that it is for this aggregate,
    /// epoch and active set, from a member of the set not seen before, with
    /// one polynomial of this ring per ciphertext.
    ///
    /// # Errors
    /// [`ThresholdError::WrongEpoch`], [`ThresholdError::WrongAggregate`],
    /// [`ThresholdError::NotInActiveSet`],
    /// [`ThresholdError::ActiveSetMismatch`],
    /// [`ThresholdError::DuplicateHolder`], count and parameter mismatches.
    pub fn add(&mut self, share: DecryptionShare) -> Result<()> {
        if share.param_set != self.param_set {
            return Err(CoreError::ParameterMismatch {
                expected: self.param_set.to_string(),
                found: share.param_set.to_string(),
            }
            .into());
        }
        let epoch = self.request.active.epoch();
        if share.epoch != epoch {
            return Err(ThresholdError::WrongEpoch {
                expected: epoch,
                found: share.epoch,
            });
        }
        let holder = share.holder;
        if !self.request.active.contains(holder) {
            return Err(ThresholdError::NotInActiveSet { holder });
        }
        if share.digest != self.request.digest {
            return Err(ThresholdError::WrongAggregate { holder });
        }
        if share.active_set != self.request.active.holders() {
            return Err(ThresholdError::ActiveSetMismatch { holder });
        }
        if self.shares.contains_key(&holder) {
            return Err(ThresholdError::DuplicateHolder {
                holder,
                what: "the decryption shares",
            });
        }
        let ciphertexts = self.request.aggregate.ciphertexts();
        if share.parts.len() != ciphertexts.len() {
            return Err(CoreError::CountMismatch {
                what: "polynomials in the decryption share",
                expected: ciphertexts.len(),
                found: share.parts.len(),
            }
            .into());
        }
        if let Some(ct) = ciphertexts.first()
            && share
                .parts
                .iter()
                .any(|p| !ct.c0().context().same_ring(p.context()))
        {
            return Err(CoreError::ParameterMismatch {
                expected: self.param_set.to_string(),
                found: format!("a decryption share of {holder} in another ring"),
            }
            .into());
        }
        self.shares.insert(holder, share.parts);
        Ok(())
    }

    /// The holders of the active set whose shares have not arrived.
    pub fn missing(&self) -> Vec<HolderId> {
        self.request
            .active
            .holders()
            .iter()
            .filter(|h| !self.shares.contains_key(h))
            .copied()
            .collect()
    }

    /// c0 + sum_i d_i for every ciphertext: Δ*M plus the aggregate's noise
    /// and the flooding.
    ///
    /// # Errors
    /// [`ThresholdError::Missing`] until every holder of the set has
    /// answered: a set's Lagrange factors only add up to the key with all
    /// of its members.
    pub fn phases(&self) -> Result<Vec<SecretPoly<Coeff>>> {
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(ThresholdError::Missing {
                what: "decryption shares",
                missing,
            });
        }
        self.request
            .aggregate
            .ciphertexts()
            .par_iter()
            .enumerate()
            .map(|(k, ct)| {
                let mut phase = SecretPoly::new(ct.c0().clone());
                for parts in self.shares.values() {
                    if let Some(part) = parts.get(k) {
                        phase.expose_mut().try_add_assign(part)?;
                    }
                }
                Ok(phase)
            })
            .collect()
    }

    /// Combines the shares and decodes the weighted average.
    ///
    /// # Errors
    /// Those of [`Self::phases`]; a layout mismatch; and the decoding
    /// errors of [`decode_aggregate`].
    pub fn decode(
        &self,
        params: &ParameterSet,
        packing: &Packing,
        layout: &ModelLayout,
    ) -> Result<FedAvgResult> {
        let aggregate = self.request.aggregate;
        if aggregate.layout_hash() != layout.hash() {
            return Err(CoreError::LayoutMismatch {
                expected: hex(layout.hash()),
                found: hex(aggregate.layout_hash()),
            }
            .into());
        }
        let phases = self.phases()?;
        Ok(decode_aggregate(
            params,
            packing,
            layout,
            aggregate.clients(),
            &phases,
        )?)
    }
}
