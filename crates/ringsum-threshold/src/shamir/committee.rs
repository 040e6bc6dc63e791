//! The holders of the per-round secrets' shares and the threshold t, with
//! the public Lagrange weights that sharing and combining need.

use crate::error::{Result, ThresholdError};
use crate::holder_id::HolderId;

use super::field::{ShareField, Weight};

/// The key holders among whom every client shares its per-round secret,
/// the threshold t and the field: any t holders' answers reconstruct a key
/// sum, any t - 1 shares are independent of the secret.
///
/// Invariants (checked by [`ShareCommittee::new`]): at least one holder, no
/// holder twice, ids nonzero and below p (an id is the holder's evaluation
/// point), 1 <= t <= n <= `max_holders` and 2t > n, so that two disjoint
/// quorums cannot exist: a holder answers one set of clients per round, and
/// two different sets can then never both collect t answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareCommittee {
    field: ShareField,
    threshold: u32,
    holders: Vec<HolderId>,
}

impl ShareCommittee {
    /// A committee of `holders` (any order; kept sorted by id) with
    /// threshold `threshold` over `field`, of at most `max_holders` holders
    /// (the federation's limit).
    ///
    /// # Errors
    /// [`ThresholdError::EmptyCommittee`], [`ThresholdError::TooManyHolders`],
    /// [`ThresholdError::ThresholdOutOfRange`] unless 1 <= t <= n,
    /// [`ThresholdError::InvalidHolderId`] for an id 0 or >= p,
    /// [`ThresholdError::DuplicateHolder`], and
    /// [`ThresholdError::ThresholdNotMajority`] unless 2t > n.
    pub fn new(
        field: ShareField,
        holders: &[HolderId],
        threshold: u32,
        max_holders: u32,
    ) -> Result<Self> {
        if holders.is_empty() {
            return Err(ThresholdError::EmptyCommittee);
        }
        let n = holders.len();
        if n > max_holders as usize {
            return Err(ThresholdError::TooManyHolders {
                holders: n,
                max_holders,
            });
        }
        if threshold == 0 || threshold as usize > n {
            return Err(ThresholdError::ThresholdOutOfRange {
                threshold,
                holders: n,
            });
        }
        let limit = field.value();
        if let Some(&holder) = holders.iter().find(|h| h.0 == 0 || u64::from(h.0) >= limit) {
            return Err(ThresholdError::InvalidHolderId { holder, limit });
        }
        let mut sorted = holders.to_vec();
        sorted.sort_unstable();
        if let Some(holder) = first_duplicate(&sorted) {
            return Err(ThresholdError::DuplicateHolder {
                holder,
                what: "the share committee",
            });
        }
        if 2 * threshold as usize <= n {
            return Err(ThresholdError::ThresholdNotMajority {
                threshold,
                holders: n,
            });
        }
        Ok(Self {
            field,
            threshold,
            holders: sorted,
        })
    }

    /// The field of the shares.
    pub fn field(&self) -> ShareField {
        self.field
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

    /// t as a `usize`.
    pub(crate) fn threshold_usize(&self) -> usize {
        self.threshold as usize
    }
}

/// The first id that appears twice in a sorted list.
pub(crate) fn first_duplicate(sorted: &[HolderId]) -> Option<HolderId> {
    sorted.windows(2).find_map(|w| match w {
        [a, b] if a == b => Some(*a),
        _ => None,
    })
}

/// The Lagrange basis of the nodes `nodes` (distinct, public) evaluated at
/// `at`: weights w_k with f(at) = sum_k w_k f(nodes_k) for every f of
/// degree below the number of nodes. Variable time (public points).
///
/// `None` when two nodes coincide modulo p (never for a validated
/// committee's ids and the point 0).
pub(crate) fn lagrange_weights_vartime(
    field: &ShareField,
    nodes: &[u32],
    at: u32,
) -> Option<Vec<Weight>> {
    let mut weights = Vec::with_capacity(nodes.len());
    for (k, &xk) in nodes.iter().enumerate() {
        let (mut num, mut den) = (1u32, 1u32);
        for (j, &xj) in nodes.iter().enumerate() {
            if j != k {
                num = field.mul(num, field.sub(at, xj));
                den = field.mul(den, field.sub(xk, xj));
            }
        }
        let inv = field.inv_vartime(den)?;
        weights.push(field.weight(field.mul(num, inv)));
    }
    Some(weights)
}

/// A holder's evaluation point as a field element (ids are below p).
pub(crate) fn point(field: &ShareField, holder: HolderId) -> u32 {
    field.element(u64::from(holder.0))
}
