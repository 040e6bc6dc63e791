//! Models as the encoder sees them: named tensors with shapes, a layout hash
//! that keeps updates of different models apart, and the quantizer.

use sha3::{Digest, Sha3_256};

use ringsum_math::Csprng;

use crate::error::{CoreError, LayoutProblem, Result};
use crate::params::EncodingParams;

/// The most parameters one model may have (2^32).
pub const MAX_PARAMETERS: u64 = 1 << 32;
/// The longest tensor name in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The most dimensions of one tensor.
pub const MAX_RANK: usize = 8;

/// One named tensor's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    name: String,
    shape: Vec<u64>,
}

impl TensorSpec {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tensor's shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The number of values: the product of the dimensions.
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Always false: every dimension is at least 1.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The layout of a model: tensor names, shapes and order. Two updates can be
/// added only if their layout hashes agree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelLayout {
    tensors: Vec<TensorSpec>,
    parameter_count: usize,
    hash: [u8; 32],
}

impl ModelLayout {
    /// A layout from (name, shape) pairs in model order.
    ///
    /// # Errors
    /// [`CoreError::InvalidLayout`] for no tensor, an empty, long or repeated
    /// name, a shape with no dimension, a zero dimension or more than eight,
    /// or more than 2^32 parameters.
    pub fn try_new<N: Into<String>>(
        tensors: impl IntoIterator<Item = (N, Vec<u64>)>,
    ) -> Result<Self> {
        let invalid = |problem| CoreError::InvalidLayout { problem };
        let mut specs: Vec<TensorSpec> = Vec::new();
        let mut total: u64 = 0;
        for (name, shape) in tensors {
            let name = name.into();
            if name.is_empty() || name.len() > MAX_NAME_BYTES {
                return Err(invalid(LayoutProblem::BadName(name)));
            }
            if specs.iter().any(|s| s.name == name) {
                return Err(invalid(LayoutProblem::DuplicateName(name)));
            }
            if shape.is_empty() || shape.len() > MAX_RANK || shape.contains(&0) {
                return Err(invalid(LayoutProblem::BadShape { name, shape }));
            }
            let count = shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .unwrap_or(u64::MAX);
            total = total.saturating_add(count);
            if total > MAX_PARAMETERS {
                return Err(invalid(LayoutProblem::TooLarge {
                    count: total,
                    max: MAX_PARAMETERS,
                }));
            }
            specs.push(TensorSpec { name, shape });
        }
        if specs.is_empty() {
            return Err(invalid(LayoutProblem::Empty));
        }
        let hash = layout_hash(&specs);
        Ok(Self {
            parameter_count: usize::try_from(total).unwrap_or(usize::MAX),
            tensors: specs,
            hash,
        })
    }

    /// The tensors in model order.
    pub fn tensors(&self) -> &[TensorSpec] {
        &self.tensors
    }

    /// The total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.parameter_count
    }

    /// SHA3-256 of the canonical description (see [`layout_hash`]).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// Splits a flat vector in model order into one vector per tensor.
    pub fn split<T: Clone>(&self, flat: &[T]) -> Vec<Vec<T>> {
        let mut out = Vec::with_capacity(self.tensors.len());
        let mut rest = flat;
        for t in &self.tensors {
            let n = usize::try_from(t.len())
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let (head, tail) = rest.split_at(n);
            out.push(head.to_vec());
            rest = tail;
        }
        out
    }
}

/// SHA3-256 over "ringsum/layout/v1", the tensor count (u64 LE), then per
/// tensor its name length (u64 LE), name bytes, rank (u64 LE) and dimensions
/// (u64 LE each).
pub fn layout_hash(tensors: &[TensorSpec]) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/layout/v1");
    h.update((tensors.len() as u64).to_le_bytes());
    for t in tensors {
        h.update((t.name.len() as u64).to_le_bytes());
        h.update(t.name.as_bytes());
        h.update((t.shape.len() as u64).to_le_bytes());
        for d in &t.shape {
            h.update(d.to_le_bytes());
        }
    }
    h.finalize().into()
}

/// Checks a model's values against its layout: the right count, all finite.
///
/// # Errors
/// [`CoreError::CountMismatch`] or [`CoreError::NonFiniteValue`] (naming
/// the tensor and index).
pub fn check_values(layout: &ModelLayout, values: &[f32]) -> Result<()> {
    if values.len() != layout.parameter_count() {
        return Err(CoreError::CountMismatch {
            what: "model values",
            expected: layout.parameter_count(),
            found: values.len(),
        });
    }
    if let Some(position) = values.iter().position(|v| !v.is_finite()) {
        let mut offset = 0usize;
        for t in layout.tensors() {
            let len = usize::try_from(t.len()).unwrap_or(usize::MAX);
            if position < offset + len {
                return Err(CoreError::NonFiniteValue {
                    tensor: t.name().to_owned(),
                    index: position - offset,
                    value: values.get(position).copied().unwrap_or(f32::NAN),
                });
            }
            offset += len;
        }
    }
    Ok(())
}

/// Rounds y to floor(y) or floor(y) + 1 with the probabilities that make the
/// result's expectation y (stochastic rounding), from 32 random bits: the
/// bias is below 2^-32 of a quantum. |y| must be below 2^51 (the validator
/// bounds clip * 2^fraction_bits so).
///
/// Written in operations that vectorise on AVX2, which has no conversion
/// between f64 and 64-bit integers: the floor is a rounding instruction,
/// the random word becomes a float and the result an integer through the
/// exact 2^52 bit tricks.
#[inline(always)]
pub fn stochastic_round(y: f64, random: u32) -> i64 {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    const ONE_AND_HALF_TWO_52: f64 = 6_755_399_441_055_744.0;
    let floor = y.floor();
    let fraction = y - floor;
    let random = f64::from_bits(0x4330_0000_0000_0000 | u64::from(random)) - TWO_52;
    let uniform = random * (1.0 / 4_294_967_296.0);
    let rounded = floor + if uniform < fraction { 1.0 } else { 0.0 };
    // An integer-valued float of magnitude below 2^51, plus 1.5 * 2^52,
    // holds the integer plus 2^51 in its low mantissa bits.
    (rounded + ONE_AND_HALF_TWO_52)
        .to_bits()
        .wrapping_sub(ONE_AND_HALF_TWO_52.to_bits())
        .cast_signed()
}

/// Quantizes one client's values: clip to [-c, c], multiply by the weight
/// w = samples / max_weight and by 2^f, round stochastically. Returns the
/// quantized values and the quantized weight round(w * 2^f).
///
/// # Errors
/// [`CoreError::InvalidWeight`] for a weight of 0 or above `max_weight`.
pub fn quantize(
    encoding: &EncodingParams,
    values: &[f32],
    samples: u64,
    rng: &mut Csprng,
) -> Result<(Vec<i64>, i64)> {
    let mut quantized = vec![0i64; values.len()];
    quantize_into(encoding, values, samples, rng, &mut quantized)?;
    Ok((quantized, quantize_weight(encoding, samples, rng)?))
}

/// As [`quantize`] for the values only, written into `out` (as many as
/// `values`).
///
/// # Errors
/// [`CoreError::InvalidWeight`] for a weight of 0 or above `max_weight`.
pub fn quantize_into(
    encoding: &EncodingParams,
    values: &[f32],
    samples: u64,
    rng: &mut Csprng,
    out: &mut [i64],
) -> Result<()> {
    let weight = client_weight(encoding, samples)?;
    let scale = f64::from(encoding.fraction_bits).exp2();
    let factor = weight * scale;
    let clip = encoding.clip;
    let mut random = zeroize::Zeroizing::new(vec![0u32; 4096]);
    let mut dither = rng.fork_dither();
    for (values, out) in values.chunks(4096).zip(out.chunks_mut(4096)) {
        let random = random.get_mut(..values.len()).unwrap_or_default();
        dither.fill_bytes(bytemuck_u32(random));
        let random = &*random;
        // Compiled for the widest SIMD level of the CPU (AVX-512 converts
        // between f64 and i64 in vector registers).
        pulp::Arch::new().dispatch(
            #[inline(always)]
            || {
                for ((o, &v), &r) in out.iter_mut().zip(values).zip(random) {
                    *o = stochastic_round(f64::from(v).max(-clip).min(clip) * factor, r);
                }
            },
        );
    }
    Ok(())
}

/// A client's weight w = samples / max_weight, in (0, 1].
///
/// # Errors
/// [`CoreError::InvalidWeight`] for a weight of 0 or above `max_weight`.
fn client_weight(encoding: &EncodingParams, samples: u64) -> Result<f64> {
    if samples == 0 || samples > encoding.max_weight {
        return Err(CoreError::InvalidWeight {
            samples,
            max_weight: encoding.max_weight,
        });
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(samples as f64 / encoding.max_weight as f64)
}

/// The quantized weight round(samples / max_weight * 2^f), rounded
/// stochastically.
///
/// # Errors
/// [`CoreError::InvalidWeight`] for a weight of 0 or above `max_weight`.
pub fn quantize_weight(encoding: &EncodingParams, samples: u64, rng: &mut Csprng) -> Result<i64> {
    let weight = client_weight(encoding, samples)?;
    let random = u32::try_from(rng.next_u64() >> 32).unwrap_or(0);
    Ok(stochastic_round(
        weight * f64::from(encoding.fraction_bits).exp2(),
        random,
    ))
}

/// A word buffer seen as bytes, for filling from the generator.
fn bytemuck_u32(words: &mut [u32]) -> &mut [u8] {
    bytemuck::cast_slice_mut(words)
}
