//! How a model update is laid out in ciphertexts, and the decoding of an
//! aggregate's slots into a weighted average (FedAvg). The encryption and
//! the aggregation themselves are in [`crate::round`].
//!
//! Slot 0 of the first ciphertext carries the client's quantized weight;
//! the model's parameters follow in model order from slot 1, filling one
//! ciphertext (N*K slots) after another. Within a ciphertext that carries
//! n values, the first ceil(n / K) = U coefficients are used: value t sits
//! in slot t / U of coefficient t mod U (so a full ciphertext, U = N, is
//! the slot-major layout of [`crate::scheme::Plaintext`]), and the
//! ciphertext is truncated to those U coefficients ([`UpdateShape`]).

use rayon::prelude::*;
use ringsum_math::{Coeff, Csprng, SecretPoly};
use std::cell::RefCell;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CoreError, Result};
use crate::model::{ModelLayout, check_values, quantize_into, quantize_weight};
use crate::params::ParameterSet;
use crate::scheme::{Packing, decode_columns};

/// The identifier of a training round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoundId(pub u64);

/// How the update of a model layout is laid out in ciphertexts: how many,
/// how many values each carries, and how many coefficients each carries.
/// Every ciphertext but the last is full (N*K values, N coefficients); the
/// last carries n values in its first ceil(n / K) coefficients and is
/// truncated to them.
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

    /// The coefficients ciphertext `index` uses, which it carries: N for a
    /// full ciphertext, ceil(n / K) for one of n values, 0 past the last.
    /// (The name is that of the first, two-part ciphertexts, whose c0 alone
    /// was truncated.)
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
    pub(crate) values: Values<'a>,
    pub(crate) weight: i64,
}

/// What fills the value slots: model values quantized on the way in, or
/// values the caller already quantized (differential privacy adds its
/// integer noise before encryption).
#[derive(Clone, Copy)]
pub(crate) enum Values<'a> {
    /// Clipped, weighted by `samples` and rounded stochastically here.
    Float {
        /// The values.
        values: &'a [f32],
        /// The declared sample count (the weight).
        samples: u64,
    },
    /// Slot values as they are.
    Quantized(&'a [i64]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Float { values, .. } => values.len(),
            Self::Quantized(values) => values.len(),
        }
    }
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
            values: Values::Float { values, samples },
            weight,
        })
    }

    /// Checks already quantized values and their weight: as many values as
    /// the layout has parameters, each (and the weight) within a signed
    /// slot, the weight positive.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] for the wrong number of values,
    /// [`CoreError::SlotValueOutOfRange`] for a value outside the slot
    /// (index 0 is the weight, index i + 1 value i),
    /// [`CoreError::NoWeight`] for a weight below 1.
    pub(crate) fn prepare_quantized(
        encoding: &'a crate::params::EncodingParams,
        packing: &'a Packing,
        layout: &ModelLayout,
        shape: &'a UpdateShape,
        weight: i64,
        values: &'a [i64],
    ) -> Result<Self> {
        if values.len() != layout.parameter_count() {
            return Err(CoreError::CountMismatch {
                what: "quantized model values",
                expected: layout.parameter_count(),
                found: values.len(),
            });
        }
        if weight < 1 {
            return Err(CoreError::NoWeight { weight_sum: weight });
        }
        let half = 1i64 << (encoding.slot_bits - 1);
        if let Some((index, &value)) = std::iter::once(&weight)
            .chain(values)
            .enumerate()
            .find(|(_, v)| !(-half..half).contains(*v))
        {
            return Err(CoreError::SlotValueOutOfRange {
                index,
                value,
                slot_bits: encoding.slot_bits,
            });
        }
        Ok(Self {
            encoding,
            packing,
            shape,
            values: Values::Quantized(values),
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
        let count = self.values.len();
        let first = (index * capacity).saturating_sub(1).min(count);
        let skip = usize::from(index == 0);
        let last = (first + capacity - skip).min(count);
        let used = self.shape.c0_coefficients(index);
        let encoding = self.encoding;
        let run = |slots: &mut Vec<i64>| {
            slots.clear();
            slots.resize(self.packing.slots() * used, 0);
            let mut fill = || {
                let out = slots
                    .get_mut(skip..skip + (last - first))
                    .unwrap_or_default();
                match self.values {
                    Values::Float { values, samples } => {
                        let chunk = values.get(first..last).unwrap_or_default();
                        quantize_into(encoding, chunk, samples, rng, out)?;
                    }
                    Values::Quantized(values) => {
                        let chunk = values.get(first..last).unwrap_or_default();
                        out.iter_mut().zip(chunk).for_each(|(o, v)| *o = *v);
                    }
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// Splits the phases of an update's (or an aggregate's) ciphertexts into
/// its slot values, in update order: the weight, then every parameter,
/// then the padding of the last ciphertext. Only the coefficients each
/// ciphertext uses are decoded: past a truncated ciphertext a phase holds
/// no message.
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
