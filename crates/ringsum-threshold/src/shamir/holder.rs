//! A holder's side: the sum of its shares of the secrets of the clients of
//! one request.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Result, ThresholdError};
use crate::holder_id::HolderId;

use super::committee::{ShareCommittee, point};
use super::field::ShareField;
use super::mask::{AnswerKey, answer_mask};
use super::share::{ShareValues, check_degree};

/// `Ok` for an id that can be an evaluation point of `field`.
pub(crate) fn check_holder_id(field: &ShareField, holder: HolderId) -> Result<()> {
    if holder.0 == 0 || u64::from(holder.0) >= field.value() {
        return Err(ThresholdError::InvalidHolderId {
            holder,
            limit: field.value(),
        });
    }
    Ok(())
}

/// `Ok` when `values` has `field`'s parameters and `degree` elements.
fn check_values(
    what: &'static str,
    field: &ShareField,
    degree: usize,
    values: &ShareValues,
) -> Result<()> {
    if values.field() != *field {
        return Err(ThresholdError::ShareFieldMismatch {
            what,
            expected: field.value(),
            found: values.field().value(),
        });
    }
    if values.degree() != degree {
        return Err(ThresholdError::ShareLengthMismatch {
            what,
            expected: degree,
            found: values.degree(),
        });
    }
    Ok(())
}

/// One holder's running sum of its shares for one request: add the share
/// and answer key of every client of the set, then
/// [`KeySumAccumulator::finish`], which masks the sum for this set (see
/// [`AnswerKey`]). Wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeySumAccumulator {
    #[zeroize(skip)]
    field: ShareField,
    #[zeroize(skip)]
    holder: HolderId,
    clients: usize,
    sum: Vec<u32>,
    /// The one-way images of the clients' answer keys.
    keys: Vec<[u8; 32]>,
}

impl KeySumAccumulator {
    /// An empty sum of shares of `degree` coefficients for `holder`.
    ///
    /// # Errors
    /// [`ThresholdError::InvalidShareDegree`] and
    /// [`ThresholdError::InvalidHolderId`].
    pub fn new(field: ShareField, degree: usize, holder: HolderId) -> Result<Self> {
        check_degree(degree)?;
        check_holder_id(&field, holder)?;
        Ok(Self {
            field,
            holder,
            clients: 0,
            sum: vec![0; degree],
            keys: Vec::new(),
        })
    }

    /// Adds one client's share, element by element mod p, in constant time,
    /// and records its answer key.
    ///
    /// # Errors
    /// [`ThresholdError::ShareFieldMismatch`] and
    /// [`ThresholdError::ShareLengthMismatch`]; the sum is then unchanged.
    pub fn add(&mut self, share: &ShareValues, key: &AnswerKey) -> Result<()> {
        check_values("a client's share", &self.field, self.sum.len(), share)?;
        add_assign(&self.field, &mut self.sum, share.values());
        self.keys.push(key.mask_input());
        self.clients += 1;
        Ok(())
    }

    /// How many shares were added.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// The holder's answer: the sum of the shares added plus this set's
    /// mask Z_S(x_h), which depends on every added client's answer key and
    /// on `context` (the request's identity: federation, round and set, in
    /// the caller's canonical encoding). Answers of one set combine as
    /// plain sums would; answers of different sets do not combine at all.
    ///
    /// # Errors
    /// [`ThresholdError::NotShareHolder`] when this holder is not in the
    /// committee, [`ThresholdError::ShareFieldMismatch`] for a committee of
    /// another field.
    pub fn finish(mut self, committee: &ShareCommittee, context: &[u8]) -> Result<HolderAnswer> {
        if committee.field() != self.field {
            return Err(ThresholdError::ShareFieldMismatch {
                what: "the committee",
                expected: self.field.value(),
                found: committee.field().value(),
            });
        }
        if !committee.contains(self.holder) {
            return Err(ThresholdError::NotShareHolder {
                holder: self.holder,
            });
        }
        let mask = answer_mask(
            &self.field,
            self.sum.len(),
            committee.threshold_usize(),
            point(&self.field, self.holder),
            context,
            &mut self.keys,
        );
        add_assign(&self.field, &mut self.sum, &mask);
        Ok(HolderAnswer {
            holder: self.holder,
            field: self.field,
            values: std::mem::take(&mut self.sum),
        })
    }
}

impl fmt::Debug for KeySumAccumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySumAccumulator")
            .field("field", &self.field)
            .field("holder", &self.holder)
            .field("clients", &self.clients)
            .field("degree", &self.sum.len())
            .finish_non_exhaustive()
    }
}

/// sum[i] = (sum[i] + share[i]) mod p, branch-free; written so that it
/// vectorises (a holder adds N elements per client). Below 2^31 the sum of
/// two elements fits in 32 bits and the correction mask is the sign bit of
/// sum - p, in 32-bit lanes; above, in 64-bit ones.
fn add_assign(field: &ShareField, sum: &mut [u32], share: &[u32]) {
    let modulus = field.modulus_u32();
    if modulus < 1 << 31 {
        for (acc, &y) in sum.iter_mut().zip(share) {
            let reduced = acc.wrapping_add(y).wrapping_sub(modulus);
            let borrow = (reduced.cast_signed() >> 31).cast_unsigned();
            *acc = reduced.wrapping_add(modulus & borrow);
        }
    } else {
        for (acc, &y) in sum.iter_mut().zip(share) {
            *acc = field.add(*acc, y);
        }
    }
}

/// A holder's answer to a request for a set S of clients: the sum over S
/// of its shares, a Shamir share of sum_{i in S} s_i at the holder's point.
/// Wiped on drop; its `Debug` prints no element.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct HolderAnswer {
    #[zeroize(skip)]
    holder: HolderId,
    #[zeroize(skip)]
    field: ShareField,
    values: Vec<u32>,
}

impl HolderAnswer {
    /// An answer from its parts, e.g. in a test or a replay.
    ///
    /// # Errors
    /// [`ThresholdError::InvalidHolderId`], [`ThresholdError::InvalidShareDegree`]
    /// and [`ThresholdError::ShareElementOutOfRange`] for an element >= p.
    pub fn try_new(field: ShareField, holder: HolderId, values: Vec<u32>) -> Result<Self> {
        check_holder_id(&field, holder)?;
        check_degree(values.len())?;
        if let Some(index) = values.iter().position(|&v| field.out_of_range(v) != 0) {
            return Err(ThresholdError::ShareElementOutOfRange {
                what: "a holder answer",
                index,
                modulus: field.value(),
            });
        }
        Ok(Self {
            holder,
            field,
            values,
        })
    }

    /// An answer of elements already checked below p.
    pub(crate) fn from_checked(field: ShareField, holder: HolderId, values: Vec<u32>) -> Self {
        Self {
            holder,
            field,
            values,
        }
    }

    /// The answering holder.
    pub fn holder(&self) -> HolderId {
        self.holder
    }

    /// The field of the answer.
    pub fn field(&self) -> ShareField {
        self.field
    }

    /// The number of coefficients N.
    pub fn degree(&self) -> usize {
        self.values.len()
    }

    /// The N elements, each below p.
    pub fn values(&self) -> &[u32] {
        &self.values
    }

    /// The elements, for tests that forge a lying holder.
    #[cfg(test)]
    pub(crate) fn values_mut(&mut self) -> &mut Vec<u32> {
        &mut self.values
    }
}

impl fmt::Debug for HolderAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HolderAnswer")
            .field("holder", &self.holder)
            .field("field", &self.field)
            .field("degree", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// The answer of `holder` of `committee` for a set of clients whose shares
/// (already expanded) and answer keys are `shares`, for the request
/// `context`.
///
/// # Errors
/// As [`KeySumAccumulator::new`], [`KeySumAccumulator::add`] and
/// [`KeySumAccumulator::finish`].
pub fn answer_for_set(
    committee: &ShareCommittee,
    holder: HolderId,
    degree: usize,
    context: &[u8],
    shares: &[(&ShareValues, &AnswerKey)],
) -> Result<HolderAnswer> {
    let mut accumulator = KeySumAccumulator::new(committee.field(), degree, holder)?;
    for (share, key) in shares {
        accumulator.add(share, key)?;
    }
    accumulator.finish(committee, context)
}
