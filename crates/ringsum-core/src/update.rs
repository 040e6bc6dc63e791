//! Encrypted model updates, their aggregation by the server, and the
//! decoding of the aggregate into a weighted average (FedAvg).
//!
//! Slot 0 of the first ciphertext carries the client's quantized weight;
//! the model's parameters follow in model order from slot 1, filling one
//! ciphertext (N*K slots) after another. Within a ciphertext that carries
//! n values, the first ceil(n / K) = U coefficients are used: value t sits
//! in slot t / U of coefficient t mod U (so a full ciphertext, U = N, is
//! the slot-major layout of [`crate::scheme::Plaintext`]), and c0 is
//! truncated to those U coefficients ([`UpdateShape`]).

use rayon::prelude::*;
use ringsum_math::{Coeff, Csprng, RingContext, SecretPoly};
use std::cell::RefCell;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CoreError, Result};
use crate::model::{ModelLayout, check_values, quantize_into, quantize_weight};
use crate::params::{ParamSetId, ParameterSet};
use crate::scheme::{Ciphertext, Packing, PublicKey, SecretKey, decode_columns, encrypt_columns};
use sha3::{Digest, Sha3_256};

/// The identifier of a training round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoundId(pub u64);

/// One client's encrypted update: its ciphertexts and what they belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedUpdate {
    /// The parameter set the ciphertexts use.
    pub param_set: ParamSetId,
    /// SHA3-256 of the model layout.
    pub layout_hash: [u8; 32],
    /// The round the update is for.
    pub round: RoundId,
    /// The ciphertexts, in slot order.
    pub ciphertexts: Vec<Ciphertext>,
}

/// How many ciphertexts a model needs: one slot for the weight plus one per
/// parameter.
pub fn ciphertexts_for(packing: &Packing, layout: &ModelLayout) -> usize {
    UpdateShape::new(packing, layout).ciphertexts()
}

/// How the update of a model layout is laid out in ciphertexts: how many,
/// how many values each carries, and how many coefficients of its c0 each
/// carries. Every ciphertext but the last is full (N*K values, N
/// coefficients); the last carries n values in its first ceil(n / K)
/// coefficients and its c0 is truncated to them.
///
/// Senders and receivers derive the shape from the layout alone: the wire
/// format has no length field for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpdateShape {
    degree: usize,
    slots: usize,
    values: usize,
}

impl UpdateShape {
    /// The shape of an update of `layout` (its parameters plus the weight).
    pub fn new(packing: &Packing, layout: &ModelLayout) -> Self {
        Self::for_parameters(packing, layout.parameter_count())
    }

    /// The shape of an update of a model with `parameters` parameters.
    pub fn for_parameters(packing: &Packing, parameters: usize) -> Self {
        Self {
            degree: packing.degree(),
            slots: packing.slots(),
            values: parameters.saturating_add(1),
        }
    }

    fn capacity(&self) -> usize {
        self.degree.saturating_mul(self.slots).max(1)
    }

    /// The number of ciphertexts.
    pub fn ciphertexts(&self) -> usize {
        self.values.div_ceil(self.capacity())
    }

    /// The values (weight and parameters) ciphertext `index` carries, 0 past
    /// the last.
    pub fn values_in(&self, index: usize) -> usize {
        index
            .checked_mul(self.capacity())
            .map_or(0, |start| self.values.saturating_sub(start))
            .min(self.capacity())
    }

    /// The coefficients ciphertext `index` uses, which its c0 carries: N for
    /// a full ciphertext, ceil(n / K) for one of n values, 0 past the last.
    pub fn c0_coefficients(&self, index: usize) -> usize {
        self.values_in(index).div_ceil(self.slots.max(1))
    }
}

std::thread_local! {
    /// Per-thread buffer of the slot values of the ciphertext being
    /// encrypted (up to K * N words), kept between ciphertexts so that it
    /// is not allocated and page-faulted again for each, wiped after each.
    static SLOT_SCRATCH: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

/// One client's update on its way into ciphertexts: what fills the slots
/// of each (slot 0 of the first holds the quantized weight; the values
/// follow in order; zeros pad the end).
pub(crate) struct UpdateSlots<'a> {
    pub(crate) encoding: &'a crate::params::EncodingParams,
    pub(crate) packing: &'a Packing,
    pub(crate) shape: &'a UpdateShape,
    pub(crate) values: &'a [f32],
    pub(crate) samples: u64,
    pub(crate) weight: i64,
}

impl<'a> UpdateSlots<'a> {
    /// Checks the values against the layout and quantizes the weight.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] or [`CoreError::NonFiniteValue`] for
    /// values that do not match the layout, [`CoreError::InvalidWeight`]
    /// for a sample count of 0 or above `max_weight`.
    pub(crate) fn prepare(
        encoding: &'a crate::params::EncodingParams,
        packing: &'a Packing,
        layout: &ModelLayout,
        shape: &'a UpdateShape,
        values: &'a [f32],
        samples: u64,
        rng: &mut Csprng,
    ) -> Result<Self> {
        check_values(layout, values)?;
        let weight = quantize_weight(encoding, samples, rng)?;
        Ok(Self {
            encoding,
            packing,
            shape,
            values,
            samples,
            weight,
        })
    }

    /// Runs `f(index, item, slots, used, rng)` for every ciphertext, in
    /// parallel: `items` holds one item per ciphertext (what the task
    /// consumes, `()` if nothing), each task gets a generator forked from
    /// `rng` and its slots as [`Self::with_slots`] gives them.
    pub(crate) fn map_ciphertexts<I: Send, T: Send>(
        &self,
        items: Vec<I>,
        rng: &mut Csprng,
        f: impl Fn(usize, I, &[i64], usize, &mut Csprng) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let mut rngs: Vec<Csprng> = (0..items.len()).map(|_| rng.fork()).collect();
        items
            .into_par_iter()
            .zip(rngs.par_iter_mut())
            .enumerate()
            .map(|(index, (item, rng))| {
                self.with_slots(index, rng, |slots, used, rng| {
                    f(index, item, slots, used, rng)
                })
            })
            .collect()
    }

    /// Quantizes the values of ciphertext `index` into a per-thread slot
    /// buffer (K columns of `used` values, the layout
    /// [`Packing::add_message`] takes) and runs `f(slots, used, rng)` on
    /// it; the buffer is wiped before the next ciphertext, whatever `f`
    /// returns.
    pub(crate) fn with_slots<T>(
        &self,
        index: usize,
        rng: &mut Csprng,
        f: impl FnOnce(&[i64], usize, &mut Csprng) -> Result<T>,
    ) -> Result<T> {
        let capacity = self.packing.capacity();
        let values = self.values;
        let first = (index * capacity).saturating_sub(1).min(values.len());
        let skip = usize::from(index == 0);
        let last = (first + capacity - skip).min(values.len());
        let chunk = values.get(first..last).unwrap_or_default();
        let used = self.shape.c0_coefficients(index);
        let encoding = self.encoding;
        let run = |slots: &mut Vec<i64>| {
            slots.clear();
            slots.resize(self.packing.slots() * used, 0);
            let mut fill = || {
                if let Some(out) = slots.get_mut(skip..skip + chunk.len()) {
                    quantize_into(encoding, chunk, self.samples, rng, out)?;
                }
                if index == 0
                    && let Some(slot) = slots.first_mut()
                {
                    *slot = self.weight;
                }
                Ok::<_, CoreError>(())
            };
            let result = fill().and_then(|()| f(slots, used, rng));
            slots.iter_mut().zeroize();
            result
        };
        SLOT_SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slots) => run(&mut slots),
            // Not reachable (nothing re-enters), but never panic for it.
            Err(_) => run(&mut Vec::new()),
        })
    }
}

/// Quantizes, packs and encrypts one client's update (ciphertexts in
/// parallel, each with its own generator forked from `rng`).
///
/// # Errors
/// [`CoreError::CountMismatch`] or [`CoreError::NonFiniteValue`] for values
/// that do not match the layout, [`CoreError::InvalidWeight`] for a sample
/// count of 0 or above the set's `max_weight`, and the errors of
/// [`encrypt`].
#[allow(clippy::too_many_arguments)]
pub fn encrypt_update(
    params: &ParameterSet,
    packing: &Packing,
    key: &PublicKey,
    layout: &ModelLayout,
    values: &[f32],
    samples: u64,
    round: RoundId,
    rng: &mut Csprng,
) -> Result<EncryptedUpdate> {
    let shape = UpdateShape::new(packing, layout);
    let slots = UpdateSlots::prepare(
        params.encoding(),
        packing,
        layout,
        &shape,
        values,
        samples,
        rng,
    )?;
    // Each ciphertext is quantized, packed and encrypted in one task.
    let ciphertexts = slots.map_ciphertexts(
        vec![(); shape.ciphertexts()],
        rng,
        |_, (), slots, used, rng| encrypt_columns(params, packing, key, slots, used, rng),
    )?;
    Ok(EncryptedUpdate {
        param_set: params.id().clone(),
        layout_hash: *layout.hash(),
        round,
        ciphertexts,
    })
}

/// The server's running sum of the updates of one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    param_set: ParamSetId,
    ring: Arc<RingContext>,
    layout_hash: [u8; 32],
    round: RoundId,
    shape: UpdateShape,
    max_clients: u64,
    clients: u64,
    max_rerandomizations: u32,
    rerandomizations: u32,
    sum: Vec<Ciphertext>,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Aggregate {
    /// An empty aggregate for updates of `layout` in `round`.
    pub fn new(
        params: &ParameterSet,
        packing: &Packing,
        layout: &ModelLayout,
        round: RoundId,
    ) -> Self {
        Self {
            param_set: params.id().clone(),
            ring: Arc::clone(params.ring()),
            layout_hash: *layout.hash(),
            round,
            shape: UpdateShape::new(packing, layout),
            max_clients: params.encoding().max_clients,
            clients: 0,
            max_rerandomizations: params.threshold().max_holders,
            rerandomizations: 0,
            sum: Vec::new(),
        }
    }

    /// Checks that an update can join this aggregate.
    fn check(&self, update: &EncryptedUpdate) -> Result<()> {
        if update.param_set != self.param_set {
            return Err(CoreError::ParameterMismatch {
                expected: self.param_set.to_string(),
                found: update.param_set.to_string(),
            });
        }
        if update.layout_hash != self.layout_hash {
            return Err(CoreError::LayoutMismatch {
                expected: hex(&self.layout_hash),
                found: hex(&update.layout_hash),
            });
        }
        if update.round != self.round {
            return Err(CoreError::RoundMismatch {
                expected: self.round.0,
                found: update.round.0,
            });
        }
        if update.ciphertexts.len() != self.shape.ciphertexts() {
            return Err(CoreError::CountMismatch {
                what: "ciphertexts in the update",
                expected: self.shape.ciphertexts(),
                found: update.ciphertexts.len(),
            });
        }
        // Every ciphertext's c0 must be truncated as the layout says, so
        // that the sum is too (and travels in the same shape).
        let truncation = update
            .ciphertexts
            .iter()
            .enumerate()
            .find(|(i, ct)| ct.c0_coefficients() != self.shape.c0_coefficients(*i));
        if let Some((i, ct)) = truncation {
            return Err(CoreError::CountMismatch {
                what: "coefficients of c0 in a ciphertext of the update",
                expected: self.shape.c0_coefficients(i),
                found: ct.c0_coefficients(),
            });
        }
        // Every ciphertext must be of this set and this very ring, so that
        // the additions after the checks cannot fail half-way.
        let foreign = update.ciphertexts.iter().find(|ct| {
            ct.param_set() != &self.param_set
                || !self.ring.same_ring(ct.c0().context())
                || !self.ring.same_ring(ct.c1().context())
        });
        if let Some(ct) = foreign {
            return Err(CoreError::ParameterMismatch {
                expected: self.param_set.to_string(),
                found: format!("{} (or another ring)", ct.param_set()),
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
    /// differs, or [`CoreError::TooManyClients`] when the slots are full.
    pub fn try_add(&mut self, update: &EncryptedUpdate) -> Result<()> {
        self.try_add_all(std::slice::from_ref(update))
    }

    /// Adds many updates, in parallel over ciphertexts; all are checked
    /// first, so on error nothing is added.
    ///
    /// # Errors
    /// As [`Self::try_add`], for the first update that fails.
    pub fn try_add_all(&mut self, updates: &[EncryptedUpdate]) -> Result<()> {
        for update in updates {
            self.check(update)?;
        }
        let total = self.clients.saturating_add(updates.len() as u64);
        if total > self.max_clients {
            return Err(CoreError::TooManyClients {
                max_clients: self.max_clients,
            });
        }
        for update in updates {
            if self.sum.is_empty() {
                self.sum = update.ciphertexts.clone();
            } else {
                // Same set, ring and count were checked: these cannot fail.
                self.sum
                    .par_iter_mut()
                    .zip(&update.ciphertexts)
                    .try_for_each(|(acc, ct)| acc.try_add_assign(ct))?;
            }
        }
        self.clients = total;
        Ok(())
    }

    /// An aggregate received from the coordinator (a key holder's copy of
    /// what it is asked to decrypt): `sum` must be `packing`'s ciphertext
    /// count for `layout`, every ciphertext of `params`' ring, and the
    /// counts within the set's limits.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`], [`CoreError::ParameterMismatch`],
    /// [`CoreError::TooManyClients`] or [`CoreError::TooManyRerandomizations`].
    pub fn from_parts(
        params: &ParameterSet,
        packing: &Packing,
        layout: &ModelLayout,
        update: EncryptedUpdate,
        clients: u64,
        rerandomizations: u32,
    ) -> Result<Self> {
        let mut aggregate = Self::new(params, packing, layout, update.round);
        aggregate.check(&update)?;
        if clients == 0 {
            return Err(CoreError::CountMismatch {
                what: "updates in a received aggregate",
                expected: 1,
                found: 0,
            });
        }
        if clients > aggregate.max_clients {
            return Err(CoreError::TooManyClients {
                max_clients: aggregate.max_clients,
            });
        }
        if rerandomizations > aggregate.max_rerandomizations {
            return Err(CoreError::TooManyRerandomizations {
                done: rerandomizations,
            });
        }
        aggregate.clients = clients;
        aggregate.rerandomizations = rerandomizations;
        aggregate.sum = update.ciphertexts;
        Ok(aggregate)
    }

    /// The aggregate as an update message (its ciphertexts with the set,
    /// layout and round), to send to key holders with [`Self::clients`]
    /// and [`Self::rerandomizations`].
    pub fn to_update(&self) -> EncryptedUpdate {
        EncryptedUpdate {
            param_set: self.param_set.clone(),
            layout_hash: self.layout_hash,
            round: self.round,
            ciphertexts: self.sum.clone(),
        }
    }

    /// How many updates the aggregate holds.
    pub fn clients(&self) -> u64 {
        self.clients
    }

    /// Adds a fresh encryption of zero to every ciphertext. The plaintext
    /// is unchanged, but c1 and therefore [`Self::digest`] are new, so key
    /// holders who already issued a decryption share for the old aggregate
    /// can answer a request with another active set without leaking their
    /// key shares (the retry path of threshold decryption). The noise budget
    /// allows `max_holders` re-randomisations.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] for an empty aggregate,
    /// [`CoreError::TooManyRerandomizations`] past the budget, and
    /// [`CoreError::ParameterMismatch`] for a key or packing of another
    /// set; the aggregate is unchanged on error.
    pub fn rerandomize(
        &mut self,
        params: &ParameterSet,
        packing: &Packing,
        key: &PublicKey,
        rng: &mut Csprng,
    ) -> Result<()> {
        crate::scheme::check_set(params, &self.param_set)?;
        if self.sum.is_empty() {
            return Err(CoreError::CountMismatch {
                what: "updates in the aggregate to re-randomise",
                expected: 1,
                found: 0,
            });
        }
        if self.rerandomizations >= self.max_rerandomizations {
            return Err(CoreError::TooManyRerandomizations {
                done: self.rerandomizations,
            });
        }
        let mut rngs: Vec<Csprng> = (0..self.sum.len()).map(|_| rng.fork()).collect();
        // Encryptions of zero truncated like the aggregate's ciphertexts.
        let zeros = rngs
            .par_iter_mut()
            .zip(&self.sum)
            .map(|(rng, ct)| {
                let used = ct.c0_coefficients();
                let zero = vec![0; packing.slots() * used];
                encrypt_columns(params, packing, key, &zero, used, rng)
            })
            .collect::<Result<Vec<_>>>()?;
        for (acc, z) in self.sum.iter_mut().zip(&zeros) {
            acc.try_add_assign(z)?;
        }
        self.rerandomizations += 1;
        Ok(())
    }

    /// How many times the aggregate was re-randomised.
    pub fn rerandomizations(&self) -> u32 {
        self.rerandomizations
    }

    /// The aggregate's identity: SHA3-256 over "ringsum/aggregate/v1", the
    /// parameter-set id (length-prefixed), the layout hash, the round, the
    /// client count, the re-randomisation count and the SHA3-256 of each
    /// ciphertext ([`ciphertext_digest`]), all integers u64 little-endian:
    /// the aggregate's identity for logs and audit. (Key holders do not key
    /// their one-share rule on it but on each c1, which is all a decryption
    /// share depends on.)
    pub fn digest(&self) -> [u8; 32] {
        let per_ciphertext: Vec<[u8; 32]> = self.sum.par_iter().map(ciphertext_digest).collect();
        let mut h = Sha3_256::new();
        h.update(b"ringsum/aggregate/v1");
        h.update((self.param_set.as_str().len() as u64).to_le_bytes());
        h.update(self.param_set.as_str().as_bytes());
        h.update(self.layout_hash);
        h.update(self.round.0.to_le_bytes());
        h.update(self.clients.to_le_bytes());
        h.update(u64::from(self.rerandomizations).to_le_bytes());
        h.update((per_ciphertext.len() as u64).to_le_bytes());
        for d in &per_ciphertext {
            h.update(d);
        }
        h.finalize().into()
    }

    /// The summed ciphertexts (empty before the first update).
    pub fn ciphertexts(&self) -> &[Ciphertext] {
        &self.sum
    }

    /// The round.
    pub fn round(&self) -> RoundId {
        self.round
    }

    /// The layout hash.
    pub fn layout_hash(&self) -> &[u8; 32] {
        &self.layout_hash
    }
}

/// SHA3-256 over "ringsum/ciphertext/v1" and the residues of c0 then c1
/// (prime by prime, coefficient by coefficient, u64 little-endian).
pub fn ciphertext_digest(ct: &Ciphertext) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/ciphertext/v1");
    for poly in [ct.c0(), ct.c1()] {
        h.update(bytemuck::cast_slice::<u64, u8>(poly.residues()));
    }
    h.finalize().into()
}

/// The decoded result of a round.
#[derive(Clone, Debug, PartialEq)]
pub struct FedAvgResult {
    /// The weighted average, one vector per tensor in layout order.
    pub average: Vec<Vec<f32>>,
    /// The sum of the clients' quantized weights, in quanta of 2^-f.
    pub weight_sum: i64,
    /// How many updates were summed.
    pub clients: u64,
    /// A bound on |average - exact weighted average of the clipped inputs|
    /// from quantization alone (see [`fedavg_error_bound`]).
    pub error_bound: f64,
}

/// Bound on the error of the decoded weighted average: each of the n
/// numerator terms and n weights is off by less than one quantum from
/// stochastic rounding, so with W the decoded weight sum (in quanta) and c
/// the clip, |avg - exact| <= n (1 + c) / (W - 2n) for W > 2n; the f32
/// result adds at most half an ulp, c * 2^-24 (docs/noise.md).
pub fn fedavg_error_bound(clients: u64, weight_sum: i64, clip: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let (n, w) = (clients as f64, weight_sum as f64);
    if w > 2.0 * n {
        n * (1.0 + clip) / (w - 2.0 * n) + clip * f64::from(f32::EPSILON) / 2.0
    } else {
        f64::INFINITY
    }
}

/// Decodes the phases c0 + c1*s of an aggregate's ciphertexts (from a single
/// key or from combined threshold shares) into the weighted average. The
/// phases are secret-grade (with c0 and c1 they determine the key), hence
/// [`SecretPoly`].
///
/// # Errors
/// [`CoreError::CountMismatch`] for the wrong number of phases,
/// [`CoreError::DecodeOverflow`] for a coefficient that does not split into
/// slots, [`CoreError::NoWeight`] when the weight sum is not positive.
pub fn decode_aggregate(
    params: &ParameterSet,
    packing: &Packing,
    layout: &ModelLayout,
    clients: u64,
    phases: &[SecretPoly<Coeff>],
) -> Result<FedAvgResult> {
    crate::scheme::check_set(params, packing.param_set())?;
    let slots = decode_update_slots(packing, layout, phases)?;
    fedavg_from_slots(params, layout, clients, &slots)
}

/// Splits the phases of an update's (or an aggregate's) ciphertexts into
/// its slot values, in update order: the weight, then every parameter,
/// then the padding of the last ciphertext. Only the coefficients each
/// ciphertext uses are decoded: past a truncated c0 a phase holds no
/// message.
///
/// # Errors
/// [`CoreError::CountMismatch`] for the wrong number of phases,
/// [`CoreError::DecodeOverflow`] for a coefficient that does not split into
/// slots.
pub fn decode_update_slots(
    packing: &Packing,
    layout: &ModelLayout,
    phases: &[SecretPoly<Coeff>],
) -> Result<Zeroizing<Vec<i64>>> {
    let shape = UpdateShape::new(packing, layout);
    let expected = shape.ciphertexts();
    if phases.len() != expected {
        return Err(CoreError::CountMismatch {
            what: "decrypted ciphertexts",
            expected,
            found: phases.len(),
        });
    }
    let decoded = phases
        .par_iter()
        .enumerate()
        .map(|(i, phase)| {
            decode_columns(packing, phase.expose(), i, shape.c0_coefficients(i)).map(Zeroizing::new)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut slots = Zeroizing::new(Vec::with_capacity(
        decoded.iter().map(|d| d.len()).sum::<usize>(),
    ));
    // A ciphertext carries its values as K columns of `used` coefficients
    // (value t in slot t / used of coefficient t mod used), so the columns
    // in order are the values in order.
    for columns in &decoded {
        slots.extend_from_slice(columns);
    }
    Ok(slots)
}

/// The weighted average from an aggregate's decoded slots (weight sum
/// first, then the parameters, then padding that must be zero).
///
/// # Errors
/// [`CoreError::NoWeight`] when the weight sum is not positive,
/// [`CoreError::NonZeroPadding`] for a non-zero slot past the parameters,
/// [`CoreError::CountMismatch`] for too few slots.
pub fn fedavg_from_slots(
    params: &ParameterSet,
    layout: &ModelLayout,
    clients: u64,
    slots: &[i64],
) -> Result<FedAvgResult> {
    let count = layout.parameter_count();
    if slots.len() < count + 1 {
        return Err(CoreError::CountMismatch {
            what: "decoded slots",
            expected: count + 1,
            found: slots.len(),
        });
    }
    let mut slots = slots.iter().copied();
    let weight_sum = slots.next().unwrap_or(0);
    if weight_sum <= 0 {
        return Err(CoreError::NoWeight { weight_sum });
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let flat: Vec<f32> = slots
        .by_ref()
        .take(count)
        .map(|s| (s as f64 / weight_sum as f64) as f32)
        .collect();
    // Honest updates leave the padding at zero; anything else there is a
    // contribution the encryption did not make, and is refused. A sanity
    // check only: an ill-formed ciphertext can still move anything into
    // the model's own slots.
    if let Some((offset, value)) = slots.enumerate().find(|&(_, v)| v != 0) {
        return Err(CoreError::NonZeroPadding {
            slot: 1 + count + offset,
            value,
        });
    }
    Ok(FedAvgResult {
        average: layout.split(&flat),
        weight_sum,
        clients,
        error_bound: fedavg_error_bound(clients, weight_sum, params.encoding().clip),
    })
}

/// Decrypts an aggregate with a single secret key and decodes the weighted
/// average (single-party use and tests; threshold decryption combines
/// shares into the same phases).
///
/// # Errors
/// [`CoreError::CountMismatch`] for an empty aggregate or one of another
/// layout, the errors of [`decode_aggregate`], and parameter mismatches.
pub fn decrypt_aggregate(
    params: &ParameterSet,
    packing: &Packing,
    key: &SecretKey,
    layout: &ModelLayout,
    aggregate: &Aggregate,
) -> Result<FedAvgResult> {
    if aggregate.layout_hash != *layout.hash() {
        return Err(CoreError::LayoutMismatch {
            expected: hex(layout.hash()),
            found: hex(&aggregate.layout_hash),
        });
    }
    let phases = aggregate
        .sum
        .par_iter()
        .map(|ct| crate::scheme::phase(params, key, ct))
        .collect::<Result<Vec<_>>>()?;
    decode_aggregate(params, packing, layout, aggregate.clients, &phases)
}
