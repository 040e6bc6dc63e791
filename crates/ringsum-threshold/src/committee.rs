//! Key holders, committees and active sets, with the Lagrange coefficients
//! that turn Shamir shares of an active set into additive shares.

use std::fmt;
use std::sync::Arc;

use ringsum_core::{ParamSetId, ParameterSet};
use ringsum_math::{RingContext, RnsScalar};
use sha3::{Digest, Sha3_256};

use crate::error::{Result, ThresholdError};

/// A key holder's id, which is also its Shamir evaluation point x. Ids are
/// nonzero and below the smallest prime of the parameter set, so that the
/// points of distinct holders differ modulo every prime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HolderId(pub u32);

impl fmt::Display for HolderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "holder {}", self.0)
    }
}

/// The key holders of one key epoch and the threshold t: any t of them
/// decrypt, fewer learn nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    param_set: ParamSetId,
    epoch: u64,
    threshold: u32,
    holders: Vec<HolderId>,
}

impl Committee {
    /// A committee of `holders` (any order; kept sorted) with threshold
    /// `threshold` for key epoch `epoch`.
    ///
    /// # Errors
    /// [`ThresholdError::EmptyCommittee`], [`ThresholdError::TooManyHolders`]
    /// beyond the set's `max_holders` (the noise budget's limit),
    /// [`ThresholdError::ThresholdOutOfRange`] unless 1 <= t <= n,
    /// [`ThresholdError::InvalidHolderId`] and
    /// [`ThresholdError::DuplicateHolder`]; [`ThresholdError::Core`] with
    /// [`ringsum_core::CoreError::WrongScheme`] for a per-round-key set.
    pub fn new(
        params: &ParameterSet,
        epoch: u64,
        holders: &[HolderId],
        threshold: u32,
    ) -> Result<Self> {
        // A per-round-key set has no flooding budget: never run the
        // collective-key protocol on it.
        params.collective_key()?;
        if holders.is_empty() {
            return Err(ThresholdError::EmptyCommittee);
        }
        let max_holders = params.threshold().max_holders;
        if holders.len() > max_holders as usize {
            return Err(ThresholdError::TooManyHolders {
                holders: holders.len(),
                max_holders,
            });
        }
        if threshold == 0 || threshold as usize > holders.len() {
            return Err(ThresholdError::ThresholdOutOfRange {
                threshold,
                holders: holders.len(),
            });
        }
        let limit = params.primes().iter().copied().min().unwrap_or(0);
        if let Some(&holder) = holders.iter().find(|h| h.0 == 0 || u64::from(h.0) >= limit) {
            return Err(ThresholdError::InvalidHolderId { holder, limit });
        }
        let holders = sorted_unique(holders, "the committee")?;
        Ok(Self {
            param_set: params.id().clone(),
            epoch,
            threshold,
            holders,
        })
    }

    /// The parameter set.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// The epoch of the committee's share set. A key ceremony expands the
    /// public key's CRS polynomial at this epoch; a resharing
    /// ([`crate::ThresholdKeyShare::reshare`]) hands the same key to a new
    /// committee with a new epoch, so shares of different sets never mix.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The threshold t.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// The holders, sorted by id.
    pub fn holders(&self) -> &[HolderId] {
        &self.holders
    }

    /// Whether `holder` is a member.
    pub fn contains(&self, holder: HolderId) -> bool {
        self.holders.binary_search(&holder).is_ok()
    }

    /// `Ok` when `holder` is a member.
    pub(crate) fn check_member(&self, holder: HolderId) -> Result<()> {
        if self.contains(holder) {
            Ok(())
        } else {
            Err(ThresholdError::UnknownHolder {
                holder,
                epoch: self.epoch,
            })
        }
    }

    /// `Ok` when a message of `epoch` belongs to this committee.
    pub(crate) fn check_epoch(&self, epoch: u64) -> Result<()> {
        if epoch == self.epoch {
            Ok(())
        } else {
            Err(ThresholdError::WrongEpoch {
                expected: self.epoch,
                found: epoch,
            })
        }
    }

    /// An active set: at least t distinct members of this committee.
    ///
    /// # Errors
    /// [`ThresholdError::UnknownHolder`], [`ThresholdError::DuplicateHolder`]
    /// or [`ThresholdError::NotEnoughHolders`].
    pub fn active_set(&self, holders: &[HolderId]) -> Result<ActiveSet> {
        for &h in holders {
            self.check_member(h)?;
        }
        let holders = sorted_unique(holders, "the active set")?;
        if holders.len() < self.threshold as usize {
            return Err(ThresholdError::NotEnoughHolders {
                active: holders.len(),
                threshold: self.threshold,
            });
        }
        Ok(ActiveSet {
            epoch: self.epoch,
            holders,
        })
    }
}

fn sorted_unique(holders: &[HolderId], what: &'static str) -> Result<Vec<HolderId>> {
    let mut sorted = holders.to_vec();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|w| w.first() == w.get(1)) {
        let holder = pair.first().copied().unwrap_or(HolderId(0));
        return Err(ThresholdError::DuplicateHolder { holder, what });
    }
    Ok(sorted)
}

/// The holders asked to decrypt one aggregate: at least t members of a
/// committee, sorted by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSet {
    epoch: u64,
    holders: Vec<HolderId>,
}

impl ActiveSet {
    /// The holders, sorted by id.
    pub fn holders(&self) -> &[HolderId] {
        &self.holders
    }

    /// The key epoch of the committee the set was drawn from.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether `holder` is in the set.
    pub fn contains(&self, holder: HolderId) -> bool {
        self.holders.binary_search(&holder).is_ok()
    }

    /// SHA3-256 over "ringsum/active-set/v1", the epoch, the count and the
    /// sorted ids (u64 and u32 little-endian).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha3_256::new();
        h.update(b"ringsum/active-set/v1");
        h.update(self.epoch.to_le_bytes());
        h.update((self.holders.len() as u64).to_le_bytes());
        for id in &self.holders {
            h.update(id.0.to_le_bytes());
        }
        h.finalize().into()
    }

    /// The Lagrange coefficient of `holder` at 0 for this set,
    /// l_i = prod over j != i of x_j / (x_j - x_i), modulo every prime: the
    /// weights with which the Shamir shares of the set add up to the
    /// secret, sum_i l_i s'_i = s. Public, so computed in variable time.
    ///
    /// # Errors
    /// [`ThresholdError::NotInActiveSet`] for a holder outside the set, and
    /// [`ThresholdError::InvalidHolderId`] for ids not below every prime of
    /// `ring` (a committee of the same set never has them).
    pub fn lagrange(&self, ring: &Arc<RingContext>, holder: HolderId) -> Result<RnsScalar> {
        if !self.contains(holder) {
            return Err(ThresholdError::NotInActiveSet { holder });
        }
        let mut residues = Vec::with_capacity(ring.num_primes());
        for m in ring.moduli() {
            let xi = u64::from(holder.0);
            let (mut num, mut den) = (1u64, 1u64);
            for xj in self.holders.iter().filter(|&&j| j != holder) {
                let xj = u64::from(xj.0);
                num = m.mul(num, m.reduce(xj));
                den = m.mul(den, m.sub(m.reduce(xj), m.reduce(xi)));
            }
            let inv = m.inv_prime(den).ok_or(ThresholdError::InvalidHolderId {
                holder,
                limit: m.value(),
            })?;
            residues.push(m.mul(num, inv));
        }
        Ok(RnsScalar::try_from_residues(ring, residues)?)
    }
}
