//! The coordinator's sum of a round's updates, and its decoding once the
//! key sum of the same clients is known.

use rayon::prelude::*;
use ringsum_math::encrypt::seeded_decrypt;
use ringsum_math::sample::small_to_poly;
use ringsum_math::{Coeff, Poly};
use zeroize::Zeroizing;

use super::{RoundContext, RoundUpdate};
use crate::error::{CoreError, Result};
use crate::model::ModelLayout;
use crate::params::ParameterSet;
use crate::scheme::Packing;
use crate::update::{FedAvgResult, UpdateShape, decode_update_slots, fedavg_from_slots, hex};

/// The sum of the updates of a set of clients in one round. The
/// coordinator builds it from the submissions it accepted; with the sum of
/// the same clients' secrets (from the key holders) it decodes to the sum
/// of their updates and nothing else.
#[derive(Clone, Debug)]
pub struct RoundAggregate {
    params: ParameterSet,
    context: RoundContext,
    layout_hash: [u8; 32],
    shape: UpdateShape,
    clients: u64,
    sum: Vec<Poly<Coeff>>,
    /// The largest magnitude one honest update puts in a value slot.
    value_bound: u64,
}

impl RoundAggregate {
    /// An empty aggregate for updates of `layout` in the round of `context`.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`] for a packing or context of
    /// another set.
    pub fn new(
        params: &ParameterSet,
        packing: &Packing,
        layout: &ModelLayout,
        context: &RoundContext,
    ) -> Result<Self> {
        crate::scheme::check_set(params, packing.param_set())?;
        context.check(params)?;
        Ok(Self {
            params: params.clone(),
            context: context.clone(),
            layout_hash: *layout.hash(),
            shape: UpdateShape::new(packing, layout),
            clients: 0,
            sum: Vec::new(),
            value_bound: params.encoding().max_quantized + 1,
        })
    }

    /// Sets the largest magnitude one honest update puts in a value slot,
    /// for updates the clients quantized themselves (differential privacy:
    /// [`crate::privacy::PrivacyPlan::worst_contribution`]); by default
    /// it is the encoding's `max_quantized` + 1. The plausibility check of
    /// the decoded sum uses it.
    #[must_use]
    pub fn with_value_bound(mut self, value_bound: u64) -> Self {
        self.value_bound = value_bound;
        self
    }

    /// Checks that an update can join this aggregate.
    fn check(&self, update: &RoundUpdate) -> Result<()> {
        crate::scheme::check_set(&self.params, update.param_set())?;
        if *update.layout_hash() != self.layout_hash {
            return Err(CoreError::LayoutMismatch {
                expected: hex(&self.layout_hash),
                found: hex(update.layout_hash()),
            });
        }
        if update.round() != self.context.round() {
            return Err(CoreError::RoundMismatch {
                expected: self.context.round().0,
                found: update.round().0,
            });
        }
        let ciphertexts = update.ciphertexts();
        if ciphertexts.len() != self.shape.ciphertexts() {
            return Err(CoreError::CountMismatch {
                what: "ciphertexts in the update",
                expected: self.shape.ciphertexts(),
                found: ciphertexts.len(),
            });
        }
        // Of this very ring, so that the additions cannot fail half-way.
        if let Some(c) = ciphertexts
            .iter()
            .find(|c| !self.params.ring().same_ring(c.context()))
        {
            return Err(CoreError::ParameterMismatch {
                expected: self.params.id().to_string(),
                found: format!("a ring of degree {}", c.context().degree()),
            });
        }
        Ok(())
    }

    /// Adds one update. Every check runs before anything changes, so a
    /// refused update leaves the aggregate as it was.
    ///
    /// # Errors
    /// [`CoreError::ParameterMismatch`], [`CoreError::LayoutMismatch`],
    /// [`CoreError::RoundMismatch`], [`CoreError::CountMismatch`] naming what
    /// differs, or [`CoreError::TooManyClients`] past `max_clients`.
    pub fn try_add(&mut self, update: &RoundUpdate) -> Result<()> {
        self.try_add_all(std::slice::from_ref(update))
    }

    /// Adds many updates: all are checked first, so on error nothing is
    /// added. Ciphertexts are summed in parallel, each reading every
    /// update's residues once ([`Poly::try_add_all_assign`]).
    ///
    /// # Errors
    /// As [`Self::try_add`], for the first update that fails.
    pub fn try_add_all(&mut self, updates: &[RoundUpdate]) -> Result<()> {
        for update in updates {
            self.check(update)?;
        }
        let max_clients = self.params.encoding().max_clients;
        let total = self.clients.saturating_add(updates.len() as u64);
        if total > max_clients {
            return Err(CoreError::TooManyClients { max_clients });
        }
        let Some((first, rest)) = updates.split_first() else {
            return Ok(());
        };
        let rest = if self.sum.is_empty() {
            self.sum = first.ciphertexts().to_vec();
            rest
        } else {
            updates
        };
        if !rest.is_empty() {
            // Same ring and count were checked: these cannot fail.
            self.sum
                .par_iter_mut()
                .enumerate()
                .try_for_each(|(index, acc)| {
                    let column: Vec<&Poly<Coeff>> = rest
                        .iter()
                        .filter_map(|u| u.ciphertexts().get(index))
                        .collect();
                    acc.try_add_all_assign(&column)
                })?;
        }
        self.clients = total;
        Ok(())
    }

    /// How many updates the aggregate holds.
    pub fn clients(&self) -> u64 {
        self.clients
    }

    /// The summed ciphertexts (empty before the first update).
    pub fn ciphertexts(&self) -> &[Poly<Coeff>] {
        &self.sum
    }

    /// The round's context.
    pub fn context(&self) -> &RoundContext {
        &self.context
    }

    /// Decodes the summed slots with the key sum of the same clients
    /// (sum of their secrets, as centred integers): for every ciphertext,
    /// sum c_j - a_j * key_sum = sum e_j + Δ * sum M_j, split into slots.
    /// Returns the slots in update order (the weight sum, then every
    /// parameter's sum, then the padding), exact.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] for an empty aggregate or a key sum of
    /// the wrong length, [`CoreError::KeySumOutOfRange`] for a coefficient
    /// larger than the clients' secrets can add up to,
    /// [`CoreError::DecodeOverflow`] for a coefficient that does not split
    /// into slots, [`CoreError::ImplausibleSum`] for slots no honest set of
    /// updates gives (a wrong key sum, or a malformed update in the sum).
    /// The key sum must be that of exactly the aggregate's clients: the
    /// caller binds the two (the protocol asks the holders for the set it
    /// aggregated).
    pub fn decode_slots(
        &self,
        packing: &Packing,
        layout: &ModelLayout,
        key_sum: &[i64],
    ) -> Result<Zeroizing<Vec<i64>>> {
        crate::scheme::check_set(&self.params, packing.param_set())?;
        if *layout.hash() != self.layout_hash {
            return Err(CoreError::LayoutMismatch {
                expected: hex(&self.layout_hash),
                found: hex(layout.hash()),
            });
        }
        if self.sum.is_empty() {
            return Err(CoreError::CountMismatch {
                what: "updates in the aggregate to decode",
                expected: 1,
                found: 0,
            });
        }
        let degree = self.params.degree();
        if key_sum.len() != degree {
            return Err(CoreError::CountMismatch {
                what: "coefficients of the key sum",
                expected: degree,
                found: key_sum.len(),
            });
        }
        let bound = self
            .clients
            .saturating_mul(self.params.gaussian().bound().unsigned_abs());
        if let Some((coefficient, &value)) = key_sum
            .iter()
            .enumerate()
            .find(|(_, v)| v.unsigned_abs() > bound)
        {
            return Err(CoreError::KeySumOutOfRange {
                coefficient,
                value,
                bound,
            });
        }
        let key_sum = small_to_poly(self.params.ring(), key_sum, bound).into_ntt();
        let phases = self
            .sum
            .par_iter()
            .enumerate()
            .map(|(index, c)| {
                let mut a_rows = self.context.a_rows(index)?;
                let used = self.shape.c0_coefficients(index);
                Ok(seeded_decrypt(c, used, &key_sum, &mut a_rows)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let slots = decode_update_slots(packing, layout, &phases)?;
        self.check_plausible(&slots)?;
        Ok(slots)
    }

    /// Refuses slots that no honest set of this many updates gives: a
    /// weight sum outside [1, clients * 2^f] (each quantized weight is at
    /// most 2^f) or a value beyond clients * (max_quantized + 1). A key sum
    /// of another set of clients, or a lie among exactly t holders' answers
    /// that the decoder's overflow check let through, decodes to slots
    /// spread over the whole slot width and is caught here with
    /// overwhelming probability for any model of more than a few values.
    fn check_plausible(&self, slots: &[i64]) -> Result<()> {
        let encoding = self.params.encoding();
        let clients = i128::from(self.clients);
        let weight_bound = clients << encoding.fraction_bits;
        let value_bound = clients * i128::from(self.value_bound);
        let out_of_range = slots.iter().enumerate().find(|&(slot, &v)| {
            let v = i128::from(v);
            if slot == 0 {
                !(1..=weight_bound).contains(&v)
            } else {
                v.abs() > value_bound
            }
        });
        match out_of_range {
            Some((slot, &value)) => Err(CoreError::ImplausibleSum {
                slot,
                value,
                clients: self.clients,
            }),
            None => Ok(()),
        }
    }

    /// Decodes the weighted average (FedAvg) with the key sum of the same
    /// clients.
    ///
    /// # Errors
    /// Those of [`Self::decode_slots`], and [`CoreError::NoWeight`] or
    /// [`CoreError::NonZeroPadding`] for slots no honest set of updates
    /// gives.
    pub fn decode(
        &self,
        packing: &Packing,
        layout: &ModelLayout,
        key_sum: &[i64],
    ) -> Result<FedAvgResult> {
        let slots = self.decode_slots(packing, layout, key_sum)?;
        fedavg_from_slots(&self.params, layout, self.clients, &slots)
    }
}
