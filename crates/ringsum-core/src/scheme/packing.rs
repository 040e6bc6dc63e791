//! Slot packing: K signed b-bit values per ring coefficient, scaled by
//! Δ = 2^d, and the exact decoding of a decrypted coefficient.

use std::sync::Arc;

use ringsum_math::crt::{Limbs, MAX_LIMBS};
use ringsum_math::{Coeff, Modulus, Poly, RingContext};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{CoreError, Result};
use crate::params::{ParamSetId, ParameterSet};

/// A plaintext: N*K signed slot values, slot j of coefficient i at
/// position j*N + i (slot-major, so that each slot is one contiguous
/// column), each within a signed b-bit slot. A client's quantized update is
/// private: the values are wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Plaintext {
    slots: Vec<i64>,
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plaintext")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Plaintext {
    /// A plaintext from its slot values.
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] unless there are N*K values;
    /// [`CoreError::SlotValueOutOfRange`] for a value outside
    /// [-2^(b-1), 2^(b-1)).
    pub fn try_new(params: &ParameterSet, slots: Vec<i64>) -> Result<Self> {
        let encoding = params.encoding();
        let expected = params.degree() * encoding.slots as usize;
        if slots.len() != expected {
            return Err(CoreError::CountMismatch {
                what: "plaintext slots",
                expected,
                found: slots.len(),
            });
        }
        let half = 1i64 << (encoding.slot_bits - 1);
        if let Some((index, &value)) = slots
            .iter()
            .enumerate()
            .find(|(_, v)| !(-half..half).contains(*v))
        {
            return Err(CoreError::SlotValueOutOfRange {
                index,
                value,
                slot_bits: encoding.slot_bits,
            });
        }
        Ok(Self { slots })
    }

    /// A plaintext the decoder built (values known to fit).
    pub(crate) fn from_slots_unchecked(slots: Vec<i64>) -> Self {
        Self { slots }
    }

    /// The slot values.
    pub fn slots(&self) -> &[i64] {
        &self.slots
    }

    /// Consumes the plaintext and returns its slot values (the caller
    /// takes over wiping them).
    pub fn into_slots(mut self) -> Vec<i64> {
        std::mem::take(&mut self.slots)
    }
}

/// The precomputed constants of packing for one parameter set.
#[derive(Clone, Debug)]
pub struct Packing {
    param_set: ParamSetId,
    ring: Arc<RingContext>,
    slots: usize,
    slot_bits: u32,
    scale_bits: u32,
    /// Per prime: Δ * 2^(b*j) mod q for every slot j.
    slot_factors: Vec<Vec<u64>>,
    /// Per prime: Δ * 2^(b-1) * sum_j 2^(b*j) mod q, the offset to remove.
    offset_correction: Vec<u64>,
    /// The split point S of the word-sized fast path (see `scaled_message`),
    /// or `None` when the slot width and primes do not allow it.
    split: Option<u32>,
}

impl Packing {
    /// The packing of a parameter set.
    pub fn new(params: &ParameterSet) -> Self {
        let ring = Arc::clone(params.ring());
        let encoding = params.encoding();
        let (slots, slot_bits) = (encoding.slots as usize, encoding.slot_bits);
        let scale_bits = params.noise_budget().scale_bits;
        let mut slot_factors = Vec::with_capacity(ring.num_primes());
        let mut offset_correction = Vec::with_capacity(ring.num_primes());
        for m in ring.moduli() {
            let two = m.reduce(2);
            let delta = m.pow(two, u64::from(scale_bits));
            let step = m.pow(two, u64::from(slot_bits));
            let mut factor = delta;
            let mut factors = Vec::with_capacity(slots);
            let mut sum = 0u64;
            for _ in 0..slots {
                factors.push(factor);
                sum = m.add(sum, factor);
                factor = m.mul(factor, step);
            }
            let half = m.pow(two, u64::from(slot_bits - 1));
            offset_correction.push(m.mul(sum, half));
            slot_factors.push(factors);
        }
        Self {
            param_set: params.id().clone(),
            split: fast_split(&ring, slots, slot_bits),
            ring,
            slots,
            slot_bits,
            scale_bits,
            slot_factors,
            offset_correction,
        }
    }

    /// The parameter set the packing was built for.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// Slots per coefficient, K.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Values one ciphertext carries: N*K.
    pub fn capacity(&self) -> usize {
        self.ring.degree() * self.slots
    }

    /// The ring degree N.
    pub fn degree(&self) -> usize {
        self.ring.degree()
    }

    /// Δ*M for every coefficient, in RNS form: the message part of an
    /// encryption (see [`Self::add_message`]).
    ///
    /// # Errors
    /// [`CoreError::CountMismatch`] for a plaintext of another parameter set.
    pub fn scaled_message(&self, plaintext: &Plaintext) -> Result<Poly<Coeff>> {
        if plaintext.slots.len() != self.capacity() {
            return Err(CoreError::CountMismatch {
                what: "plaintext slots",
                expected: self.capacity(),
                found: plaintext.slots.len(),
            });
        }
        let mut data = vec![0u64; self.ring.poly_len()];
        self.add_message(&plaintext.slots, self.ring.degree(), &mut data);
        Ok(Poly::try_from_residues(&self.ring, data)?)
    }

    /// Adds Δ*M modulo prime `prime` to the first `used` residues of `row`
    /// ([`Self::add_message`] for one prime).
    pub fn add_message_row(&self, prime: usize, columns: &[i64], used: usize, row: &mut [u64]) {
        let degree = self.ring.degree();
        if row.len() == degree && prime < self.ring.num_primes() {
            self.add_message_rows(prime, columns, used, row);
        }
    }

    /// Adds Δ*M to the first `used` coefficients of a polynomial given by
    /// its residues (prime-major, k*N words), for a message given as K
    /// columns of `used` signed slot values (slot j of coefficient i at
    /// `columns[j * used + i]`, each within a signed b-bit slot; callers
    /// pass all K*used values: missing ones would add nothing, as if they
    /// were -2^(b-1)). With `used` = N this is the slot-major layout of a
    /// [`Plaintext`].
    ///
    /// With x_j = v_j + 2^(b-1) in [0, 2^b) and factors F_j = Δ 2^(bj) mod q,
    /// Δ*M = sum_j x_j F_j - Δ 2^(b-1) sum_j 2^(bj) (mod q). The fast path
    /// splits each F_j at bit S into two halves below 2^32, so both partial
    /// sums fit a 64-bit word and the inner loop, running over coefficients,
    /// vectorises; one reduction per residue finishes. It runs over blocks
    /// of coefficients, every prime for one block before the next, so that
    /// the block's K columns are read from memory once and its partial sums
    /// stay in the L1 cache.
    pub fn add_message(&self, columns: &[i64], used: usize, residues: &mut [u64]) {
        self.add_message_rows(0, columns, used, residues);
    }

    /// Adds Δ*M to `rows`, consecutive rows of N residues starting with
    /// prime `first`.
    fn add_message_rows(&self, first: usize, columns: &[i64], used: usize, rows: &mut [u64]) {
        let degree = self.ring.degree();
        let offset = 1i64 << (self.slot_bits - 1);
        let stride = used;
        let column = |j: usize, start: usize, len: usize| {
            let from = j * stride + start;
            columns.get(from..from + len).unwrap_or_default()
        };
        let used = used.min(degree);
        let primes = self
            .ring
            .moduli()
            .iter()
            .zip(&self.slot_factors)
            .zip(&self.offset_correction)
            .skip(first);
        let Some(split) = self.split else {
            for (((m, factors), &correction), row) in primes.zip(rows.chunks_exact_mut(degree)) {
                for (i, out) in row.iter_mut().take(used).enumerate() {
                    let sum = factors.iter().enumerate().fold(0, |acc, (j, &f)| {
                        let x = column(j, i, 1)
                            .first()
                            .map_or(0, |&v| (v + offset).cast_unsigned());
                        m.add(acc, m.mul(m.reduce(x), f))
                    });
                    *out = m.add(*out, m.sub(sum, correction));
                }
            }
            return;
        };
        let mask = (1u64 << split) - 1;
        // Per prime: the modulus, its reducer, the offset correction, and
        // both halves of every factor (below 2^32 by fast_split).
        let constants: Vec<PrimeConstants> = primes
            .map(|((m, factors), &correction)| PrimeConstants {
                modulus: *m,
                reducer: SplitReducer::new(m, split),
                correction,
                halves: factors.iter().map(|&f| (f & mask, f >> split)).collect(),
            })
            .collect();
        // The block's K column segments, copied next to each other: in the
        // caller's layout they lie `used` words apart, 128 KiB for a full
        // ciphertext, so reading them all at once would thrash the L1 sets.
        let mut block_columns = vec![0i64; self.slots * COLUMN_STRIDE];
        vectorize(
            #[inline(always)]
            || {
                let mut low = [0u64; BLOCK];
                let mut high = [0u64; BLOCK];
                for start in (0..used).step_by(BLOCK) {
                    let len = BLOCK.min(used - start);
                    for (j, copy) in block_columns.chunks_exact_mut(COLUMN_STRIDE).enumerate() {
                        let source = column(j, start, len);
                        for (c, &v) in copy.iter_mut().zip(source) {
                            *c = v;
                        }
                    }
                    for (prime, row) in constants.iter().zip(rows.chunks_exact_mut(degree)) {
                        let PrimeConstants {
                            modulus: m,
                            reducer,
                            correction,
                            halves,
                        } = prime;
                        let out = row.get_mut(start..start + len).unwrap_or_default();
                        let low = low.get_mut(..len).unwrap_or_default();
                        let high = high.get_mut(..len).unwrap_or_default();
                        // LANES coefficients at a time, their partial sums
                        // in registers while the K columns are added (one
                        // store per sum, not one per column).
                        for (chunk, (low, high)) in low
                            .chunks_mut(LANES)
                            .zip(high.chunks_mut(LANES))
                            .enumerate()
                        {
                            let from = chunk * LANES;
                            let mut l = [0u64; LANES];
                            let mut h = [0u64; LANES];
                            for (copy, &(f_low, f_high)) in
                                block_columns.chunks_exact(COLUMN_STRIDE).zip(halves.iter())
                            {
                                let x = lanes(copy.get(from..from + low.len()).unwrap_or_default());
                                for ((l, h), &v) in l.iter_mut().zip(h.iter_mut()).zip(x.iter()) {
                                    // v + 2^(b-1) is in [0, 2^b), below 2^32;
                                    // the masks are no-ops that let the
                                    // compiler multiply 32 x 32 -> 64 bits.
                                    let x = (v + offset).cast_unsigned() & 0xFFFF_FFFF;
                                    *l += x * (f_low & 0xFFFF_FFFF);
                                    *h += x * (f_high & 0xFFFF_FFFF);
                                }
                            }
                            for ((out, &l), (out_high, &h)) in
                                low.iter_mut().zip(&l).zip(high.iter_mut().zip(&h))
                            {
                                *out = l;
                                *out_high = h;
                            }
                        }
                        for ((o, &l), &h) in out.iter_mut().zip(low.iter()).zip(high.iter()) {
                            *o = m.add(*o, m.sub(reducer.reduce(l, h), *correction));
                        }
                    }
                }
                low.zeroize();
                high.zeroize();
            },
        );
        block_columns.zeroize();
    }

    /// Splits a decrypted coefficient x = Δ*M + noise (centred, in limbs)
    /// into its K slot values: M = round(x / 2^d), then signed base-2^b
    /// digits. Returns `false` when M does not fit K slots (overflow, or a
    /// ciphertext that is not an encryption under this packing).
    pub fn decode_coefficient(&self, x: &Limbs, out: &mut [i64]) -> bool {
        // round(x / 2^d) = floor((x + 2^(d-1)) / 2^d), in two's complement.
        let mut value = *x;
        add_power_of_two(&mut value, self.scale_bits - 1);
        let b = self.slot_bits;
        let mut carry = 0i64;
        let half = 1i64 << (b - 1);
        for (j, slot) in out.iter_mut().enumerate().take(self.slots) {
            let start = u64::from(self.scale_bits) + j as u64 * u64::from(b);
            let raw = extract_bits(&value, start, b).cast_signed() + carry;
            // raw is in [0, 2^b]; map to [-2^(b-1), 2^(b-1)).
            if raw >= half {
                *slot = raw - (1i64 << b);
                carry = 1;
            } else {
                *slot = raw;
                carry = 0;
            }
        }
        // Above the K slots only the sign extension of the last digit may
        // remain: all ones if the top digit borrowed, all zeros otherwise.
        let top = u64::from(self.scale_bits) + self.slots as u64 * u64::from(b);
        let expected = if carry == 1 { u64::MAX } else { 0 };
        remaining_bits_equal(&value, top, expected)
    }
}

/// Coefficients whose partial sums the fast path of
/// [`Packing::add_message`] keeps in registers: one AVX-512 register.
const LANES: usize = 8;

/// `values` (at most [`LANES`]) as a full array, zero past the end, so
/// that the compiler sees a fixed-width vector.
#[inline(always)]
fn lanes(values: &[i64]) -> [i64; LANES] {
    if let Ok(full) = <[i64; LANES]>::try_from(values) {
        return full;
    }
    let mut padded = [0i64; LANES];
    for (p, &v) in padded.iter_mut().zip(values) {
        *p = v;
    }
    padded
}

/// Words between two column segments of a block in the fast path of
/// [`Packing::add_message`]: a block and one register more, so that the
/// segments do not all fall in the same L1 sets.
const COLUMN_STRIDE: usize = BLOCK + LANES;

/// What the fast path of [`Packing::add_message`] needs of one prime.
struct PrimeConstants {
    modulus: Modulus,
    reducer: SplitReducer,
    /// Δ 2^(b-1) sum_j 2^(bj) mod q.
    correction: u64,
    /// Both halves (below 2^32) of every slot factor.
    halves: Vec<(u64, u64)>,
}

/// Coefficients per block of the fast path: the partial sums of a block
/// (2 * 8 * BLOCK bytes) stay in the L1 cache until they are reduced.
const BLOCK: usize = 256;

/// x += 2^k in two's complement limbs.
fn add_power_of_two(x: &mut Limbs, k: u32) {
    let limb = (k / 64) as usize;
    let mut carry = 1u64 << (k % 64);
    for word in x.iter_mut().skip(limb) {
        let (sum, overflow) = word.overflowing_add(carry);
        *word = sum;
        if !overflow {
            break;
        }
        carry = 1;
    }
}

/// The `width` bits of x starting at bit `start` (width <= 62).
fn extract_bits(x: &Limbs, start: u64, width: u32) -> u64 {
    let limb = usize::try_from(start / 64).unwrap_or(MAX_LIMBS);
    let shift = start % 64;
    let low = x.get(limb).copied().unwrap_or(0) >> shift;
    let high = if shift == 0 {
        0
    } else {
        x.get(limb + 1).copied().unwrap_or(0) << (64 - shift)
    };
    (low | high) & ((1u64 << width) - 1)
}

/// Whether every bit of x from `start` up equals the bits of `pattern`.
fn remaining_bits_equal(x: &Limbs, start: u64, pattern: u64) -> bool {
    let first = usize::try_from(start / 64).unwrap_or(MAX_LIMBS);
    let shift = start % 64;
    x.iter().enumerate().skip(first).all(|(i, &word)| {
        if i == first {
            (word >> shift) == (pattern >> shift)
        } else {
            word == pattern
        }
    })
}

/// The split point S for the word-sized fast path of `scaled_message`, if
/// one works for every prime: with x < 2^b and K slots, both
/// K * x * (F mod 2^S) and K * x * (F >> S) must fit 64 bits, every operand
/// must fit 32 bits (so the multiply vectorises), and the quotient
/// (low + high 2^S) / q must stay below 2^47 so that [`SplitReducer`]'s
/// floating-point estimate is off by at most one.
fn fast_split(ring: &RingContext, slots: usize, slot_bits: u32) -> Option<u32> {
    let count_bits = u32::try_from(slots)
        .ok()?
        .next_power_of_two()
        .trailing_zeros();
    let max_bits = ring.moduli().iter().map(Modulus::bits).max()?;
    let min_bits = ring.moduli().iter().map(Modulus::bits).min()?;
    let split = max_bits.div_ceil(2);
    let fits = slot_bits <= 32
        && split <= 32
        && max_bits - split <= 32
        && slot_bits + split + count_bits <= 64
        && slot_bits + (max_bits - split) + count_bits <= 64
        // low + high 2^S < 2^(b + bits(q) + log2 K + 1), over q >= 2^(min - 1).
        && slot_bits + max_bits + count_bits + 2 <= min_bits + 47;
    fits.then_some(split)
}

/// Reduces l + h * 2^S modulo p with a floating-point quotient estimate, so
/// that the loop vectorises (AVX-512 converts between u64 and f64 and
/// multiplies 64-bit lanes; there is no vector 64x64 -> 128-bit multiply for
/// a Barrett reduction).
///
/// `fast_split` guarantees the quotient is below 2^47; the f64 arithmetic
/// (three roundings of relative error 2^-53 each) is then off by less than
/// 2^-4, so q = round(estimate) is floor((l + h 2^S) / p) or one above.
/// r = (l + h 2^S) - q p, computed modulo 2^64, lies in [-p, p), and two
/// masked corrections finish, without a branch.
#[derive(Clone, Copy, Debug)]
struct SplitReducer {
    modulus: Modulus,
    split: u32,
    high_factor: f64,
    low_factor: f64,
}

impl SplitReducer {
    fn new(modulus: &Modulus, split: u32) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let p = modulus.value() as f64;
        Self {
            modulus: *modulus,
            split,
            high_factor: f64::from(split).exp2() / p,
            low_factor: 1.0 / p,
        }
    }

    #[inline(always)]
    fn reduce(&self, low: u64, high: u64) -> u64 {
        let p = self.modulus.value();
        let estimate = exact_f64(high) * self.high_factor + exact_f64(low) * self.low_factor;
        // Non-negative and below 2^47: adding 2^52 puts the nearest integer
        // in the low mantissa bits (floor or one above: r = value - q p is
        // then in [-p, p), which the corrections below handle). AVX2 has no
        // f64 -> u64 conversion; this bit trick vectorises everywhere.
        let quotient = (estimate + TWO_52).to_bits() & ((1u64 << 52) - 1);
        let value = low.wrapping_add(high << self.split);
        let r = value.wrapping_sub(quotient.wrapping_mul(p));
        // r in [-p, p) as a signed word: add p if negative (the final
        // reduction is then a no-op kept for safety).
        let negative = (r.cast_signed() >> 63).cast_unsigned();
        self.modulus.reduce_once(r.wrapping_add(p & negative))
    }
}

/// 2^52: a float whose unit in the last place is 1.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// x as the nearest f64 (exact below 2^53), in operations that vectorise
/// without AVX-512's u64 -> f64 conversion: each 32-bit half becomes a
/// float exactly through the 2^52 bit trick.
#[inline(always)]
fn exact_f64(x: u64) -> f64 {
    let exponent = 0x4330_0000_0000_0000u64;
    let low = f64::from_bits(exponent | (x & 0xFFFF_FFFF)) - TWO_52;
    let high = f64::from_bits(exponent | (x >> 32)) - TWO_52;
    high * 4_294_967_296.0 + low
}

/// Runs `op` compiled for the best SIMD level of this CPU (see
/// `ringsum_math`'s notes on run-time dispatch).
#[inline(always)]
fn vectorize<R>(op: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ringsum_math::prime::generate_ntt_primes;

    proptest! {
        /// The vectorisable reduction agrees with the exact one over the
        /// whole range fast_split allows at the shipped prime size.
        #[test]
        fn split_reduction_is_exact(low in any::<u64>(), high in any::<u64>(), bits in 40u32..=50) {
            let p = generate_ntt_primes(16384, &[bits]).unwrap()[0];
            let m = Modulus::new(p).unwrap();
            let split = bits.div_ceil(2);
            // The bound fast_split enforces: (low + high 2^S) / p < 2^47.
            let limit = 47 + (bits - 1) - split - 1;
            let (low, high) = (low >> (64 - limit.min(63)), high >> (64 - limit.min(63)));
            let exact = ((u128::from(high) << split) + u128::from(low)) % u128::from(p);
            prop_assert_eq!(u128::from(SplitReducer::new(&m, split).reduce(low, high)), exact);
        }
    }
}
