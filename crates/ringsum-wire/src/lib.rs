//! # ringsum-wire
//!
//! The wire format of ringsum: a versioned protobuf schema
//! (`proto/ringsum.proto`, package `ringsum.v1`) compiled with prost, and
//! the encoder and decoder of a client's update in the per-round-key scheme
//! ([`RoundUpdate`]: the ciphertexts c_j = a_j*s + e_j + Δ*M_j alone, a_j
//! being expanded from the federation id, the round and j).
//!
//! Polynomial residues are bit-packed to ceil(log2 q_i) bits each, so a
//! ciphertext of the default set (`rk128-n16384`) costs 384 bits per
//! coefficient, about 3.7 bytes per model parameter with 13 slots per
//! coefficient. The last ciphertext of an update carries only the
//! coefficients that its values use ([`UpdateShape`]).
//!
//! The decoder treats its input as hostile: the message size is bounded
//! before parsing, and the repeated ciphertext field is counted and its
//! entries' lengths checked by a scan of the framing *before* prost builds
//! anything (an empty entry costs 2 bytes on the wire but a few dozen in
//! memory, so counting after decoding would let a message of valid size
//! force an allocation many times its size). Then the encoding must be the
//! canonical one, the version, parameter-set id and layout hash must match,
//! every entry must have exactly the packed length the receiver's
//! [`UpdateShape`] gives (derived from the model layout, never read from the
//! message), every residue must be below its prime, and no bits may be
//! left over. Each failure is a [`WireError`] that names the field; nothing
//! panics.
//!
//! The messages of the collective-key scheme (`PublicKey`, `Ciphertext`,
//! `EncryptedUpdate`), removed in December 2026, are gone from the schema
//! and from this crate.
//!
//! ```
//! use ringsum_core::ParameterSet;
//! use ringsum_core::model::ModelLayout;
//! use ringsum_core::round::{RoundContext, RoundSecret};
//! use ringsum_core::scheme::Packing;
//! use ringsum_core::update::RoundId;
//! use ringsum_math::Csprng;
//!
//! let params = ParameterSet::builtin("rk128-n4096")?;
//! let packing = Packing::new(&params);
//! let layout = ModelLayout::try_new([("w", vec![3])])?;
//! let context = RoundContext::new(&params, [2; 32], RoundId(7));
//! let mut rng = Csprng::from_seed([1; 32]);
//! let update = RoundSecret::generate(&params, &mut rng)
//!     .encrypt_update(&packing, &layout, &context, &[0.5, -0.25, 1.0], 10, &mut rng)?;
//! let bytes = ringsum_wire::encode_round_update(&update);
//! let decoded = ringsum_wire::decode_round_update(&params, &packing, &layout, &bytes)?;
//! assert_eq!(decoded, update);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use prost::Message;
use ringsum_core::model::ModelLayout;
use ringsum_core::round::RoundUpdate;
use ringsum_core::scheme::Packing;
use ringsum_core::update::{RoundId, UpdateShape};
use ringsum_core::{CoreError, ParameterSet};
use ringsum_math::{Poly, Representation, RingContext};

/// The generated protobuf types (`ringsum.v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/ringsum.v1.rs"));
}

/// The wire version this build writes and reads. Version 2 truncates an
/// update's last ciphertext to the coefficients it uses.
pub const WIRE_VERSION: u32 = 2;

/// Room for the fields around the polynomials of one message.
const ENVELOPE_BYTES: usize = 1024;

/// Everything a decoder can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message is larger than anything valid for this parameter set.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes for this parameter set")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The largest valid size.
        limit: usize,
    },

    /// The bytes are not a valid protobuf message of the expected type.
    #[error("malformed protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),

    /// Valid fields in an encoding other than the canonical one (unknown,
    /// repeated or reordered fields, padded varints, default values
    /// written out).
    #[error("{message} is not in its canonical encoding")]
    NonCanonical {
        /// The message type.
        message: &'static str,
    },

    /// The message is for another model layout.
    #[error("layout hash {found} where {expected} (the receiver's model) was expected")]
    LayoutMismatch {
        /// The receiver's layout hash, hex.
        expected: String,
        /// The message's (at most its first 64 bytes), hex.
        found: String,
    },

    /// A wire version this build does not read.
    #[error("wire version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version in the message.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// The message is for another parameter set.
    #[error("parameter set {found:?} where {expected:?} was expected")]
    ParameterSet {
        /// The receiver's parameter set.
        expected: String,
        /// The message's.
        found: String,
    },

    /// A field of the wrong length.
    #[error("field `{field}`: expected {expected} bytes, found {found}")]
    Length {
        /// The field.
        field: &'static str,
        /// The required length.
        expected: usize,
        /// The length found.
        found: usize,
    },

    /// A residue not below its prime.
    #[error(
        "field `{field}`: residue {value} at position {index} is not below its prime {modulus}"
    )]
    Residue {
        /// The field.
        field: &'static str,
        /// Position of the residue (prime-major).
        index: usize,
        /// The value.
        value: u64,
        /// The prime.
        modulus: u64,
    },

    /// Non-zero bits after the last residue.
    #[error("field `{field}`: the padding bits after the last residue are not zero")]
    Padding {
        /// The field.
        field: &'static str,
    },

    /// The wrong number of ciphertexts.
    #[error("expected {expected} ciphertexts, found {found}")]
    CiphertextCount {
        /// The number the receiver expects.
        expected: usize,
        /// The number in the message.
        found: usize,
    },

    /// The decoded parts were refused by the scheme layer.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Result type of `ringsum-wire`.
pub type Result<T> = core::result::Result<T, WireError>;

/// The exact byte length of one bit-packed polynomial of `ring`.
pub fn packed_poly_len(ring: &RingContext) -> usize {
    packed_prefix_len(ring, ring.degree())
}

/// The exact byte length of the first `coefficients` coefficients of a
/// polynomial of `ring`, bit-packed (a truncated ciphertext).
pub fn packed_prefix_len(ring: &RingContext, coefficients: usize) -> usize {
    let bits: usize = ring.moduli().iter().map(|m| m.bits() as usize).sum();
    coefficients
        .min(ring.degree())
        .saturating_mul(bits)
        .div_ceil(8)
}

/// Bit-packs a polynomial: per prime in order, each residue in exactly
/// bits(q_i) bits, least significant first (N >= 16 is a power of two, so
/// the stream fills whole bytes).
pub fn pack_poly<R: Representation>(poly: &Poly<R>) -> Vec<u8> {
    pack_poly_prefix(poly, poly.context().degree())
}

/// Bit-packs the first `coefficients` coefficients of a polynomial: per
/// prime in order, those residues, each in exactly bits(q_i) bits, least
/// significant first, zero bits padding the last byte.
pub fn pack_poly_prefix<R: Representation>(poly: &Poly<R>, coefficients: usize) -> Vec<u8> {
    let ring = poly.context();
    let mut out = Vec::with_capacity(packed_prefix_len(ring, coefficients));
    let mut acc = 0u128;
    let mut filled = 0u32;
    for (m, row) in ring
        .moduli()
        .iter()
        .zip(poly.residues().chunks_exact(ring.degree()))
    {
        let bits = m.bits();
        for &value in row.iter().take(coefficients) {
            // filled < 64 and bits <= 62 before this: the sum fits u128.
            acc |= u128::from(value) << filled;
            filled += bits;
            if filled >= 64 {
                #[allow(clippy::cast_possible_truncation)]
                let low = acc as u64; // the low 64 bits, on purpose
                out.extend_from_slice(&low.to_le_bytes());
                acc >>= 64;
                filled -= 64;
            }
        }
    }
    let tail = acc.to_le_bytes();
    out.extend_from_slice(tail.get(..filled.div_ceil(8) as usize).unwrap_or_default());
    out
}

/// Reads a bit-packed polynomial, checking its exact length, every residue
/// and the padding.
///
/// # Errors
/// [`WireError::Length`], [`WireError::Residue`] or [`WireError::Padding`],
/// naming `field`.
pub fn unpack_poly<R: Representation>(
    ring: &Arc<RingContext>,
    bytes: &[u8],
    field: &'static str,
) -> Result<Poly<R>> {
    unpack_poly_prefix(ring, bytes, ring.degree(), field)
}

/// Reads the first `coefficients` coefficients of a bit-packed polynomial
/// (as [`pack_poly_prefix`] writes them), checking the exact length, every
/// residue and the padding; the other coefficients are zero.
///
/// # Errors
/// [`WireError::Length`] (also for more than N coefficients),
/// [`WireError::Residue`] or [`WireError::Padding`], naming `field`.
pub fn unpack_poly_prefix<R: Representation>(
    ring: &Arc<RingContext>,
    bytes: &[u8],
    coefficients: usize,
    field: &'static str,
) -> Result<Poly<R>> {
    if coefficients > ring.degree() {
        return Err(WireError::Length {
            field,
            expected: packed_poly_len(ring),
            found: packed_prefix_len(ring, coefficients).max(bytes.len()),
        });
    }
    let expected = packed_prefix_len(ring, coefficients);
    if bytes.len() != expected {
        return Err(WireError::Length {
            field,
            expected,
            found: bytes.len(),
        });
    }
    let mut data = vec![0u64; ring.poly_len()];
    let mut input = bytes;
    let mut acc = 0u128;
    let mut available = 0u32;
    for (r, (m, row)) in ring
        .moduli()
        .iter()
        .zip(data.chunks_exact_mut(ring.degree()))
        .enumerate()
    {
        let bits = m.bits();
        let mask = (1u128 << bits) - 1;
        for (i, slot) in row.iter_mut().take(coefficients).enumerate() {
            if available < bits {
                // Eight bytes at a time where there are eight (available
                // < 62 here, so the word fits beside it), else what is left.
                if let Some((word, rest)) = input.split_first_chunk::<8>() {
                    acc |= u128::from(u64::from_le_bytes(*word)) << available;
                    available += 64;
                    input = rest;
                } else {
                    for &byte in input {
                        acc |= u128::from(byte) << available;
                        available += 8;
                    }
                    input = &[];
                }
            }
            let value = u64::try_from(acc & mask).unwrap_or(u64::MAX);
            if value >= m.value() {
                return Err(WireError::Residue {
                    field,
                    index: r * ring.degree() + i,
                    value,
                    modulus: m.value(),
                });
            }
            *slot = value;
            acc >>= bits;
            available -= bits;
        }
    }
    if acc != 0 || !input.is_empty() {
        return Err(WireError::Padding { field });
    }
    Ok(Poly::try_from_residues(ring, data).map_err(CoreError::from)?)
}

fn check_version(version: u32) -> Result<()> {
    if version == WIRE_VERSION {
        Ok(())
    } else {
        Err(WireError::Version {
            found: version,
            supported: WIRE_VERSION,
        })
    }
}

fn check_param_set(params: &ParameterSet, found: &str) -> Result<()> {
    if params.id().as_str() == found {
        Ok(())
    } else {
        Err(WireError::ParameterSet {
            expected: params.id().to_string(),
            found: found.to_owned(),
        })
    }
}

fn check_size(size: usize, limit: usize) -> Result<()> {
    if size > limit {
        Err(WireError::TooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// Scans the top-level fields of a `RoundUpdate` without decoding them:
/// every `ciphertexts` entry (field 5) must be length-delimited with
/// exactly the length of a valid ciphertext at its position
/// (`entry_len(index)`), and there must be exactly `expected` of them.
/// Other fields are skipped (prost decodes them next).
fn check_update_framing(
    bytes: &[u8],
    expected: usize,
    entry_len: impl Fn(usize) -> usize,
) -> Result<()> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    let mut buf = bytes;
    let mut count = 0usize;
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        if tag == 5 {
            let len = if wire_type == WireType::LengthDelimited {
                usize::try_from(decode_varint(&mut buf)?).unwrap_or(usize::MAX)
            } else {
                0
            };
            let entry_len = entry_len(count);
            if wire_type != WireType::LengthDelimited || len != entry_len {
                return Err(WireError::Length {
                    field: "ciphertexts",
                    expected: entry_len,
                    found: len,
                });
            }
            count += 1;
            if count > expected || len > buf.len() {
                return Err(WireError::CiphertextCount {
                    expected,
                    found: count,
                });
            }
            buf = buf.get(len..).unwrap_or_default();
        } else {
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
        }
    }
    if count != expected {
        return Err(WireError::CiphertextCount {
            expected,
            found: count,
        });
    }
    Ok(())
}

/// Lower-case hex of at most the first 64 bytes (for error messages).
fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(64).map(|b| format!("{b:02x}")).collect()
}

/// The exact length of the `RoundUpdate` entry of ciphertext `index`.
fn round_entry_len(params: &ParameterSet, shape: &UpdateShape, index: usize) -> usize {
    packed_prefix_len(params.ring(), shape.c0_coefficients(index))
}

/// The largest valid encoding of a per-round-key update of `shape`.
pub fn max_round_update_len(params: &ParameterSet, shape: &UpdateShape) -> usize {
    (0..shape.ciphertexts())
        .map(|i| round_entry_len(params, shape, i) + 8)
        .fold(0usize, usize::saturating_add)
        .saturating_add(ENVELOPE_BYTES)
}

/// Encodes a per-round-key update: per ciphertext, the bit-packed residues
/// of the coefficients it uses.
pub fn encode_round_update(update: &RoundUpdate) -> Vec<u8> {
    proto::RoundUpdate {
        version: WIRE_VERSION,
        param_set: update.param_set().to_string(),
        layout_hash: update.layout_hash().to_vec(),
        round: update.round().0,
        ciphertexts: update
            .ciphertexts()
            .iter()
            .enumerate()
            .map(|(i, c)| pack_poly_prefix(c, update.used_coefficients(i)))
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes a per-round-key update of `params` for a model of `layout`: the
/// ciphertext count and every entry's length come from the layout, and are
/// checked by a scan of the framing before anything is decoded, so a
/// hostile message cannot make the decoder allocate more than a valid one.
///
/// # Errors
/// Any [`WireError`]: size, protobuf, a non-canonical encoding, version,
/// parameter set, layout hash (length, or another layout's), ciphertext
/// count, lengths, residues, padding.
pub fn decode_round_update(
    params: &ParameterSet,
    packing: &Packing,
    layout: &ModelLayout,
    bytes: &[u8],
) -> Result<RoundUpdate> {
    let shape = UpdateShape::new(packing, layout);
    check_size(bytes.len(), max_round_update_len(params, &shape))?;
    check_update_framing(bytes, shape.ciphertexts(), |i| {
        round_entry_len(params, &shape, i)
    })?;
    let message = proto::RoundUpdate::decode(bytes)?;
    // One update, one encoding: prost writes fields in tag order, with the
    // shortest varints and without default values, so anything else
    // (unknown fields, repeated or reordered fields, padded varints) would
    // give the same update several byte strings, and several digests.
    if message.encoded_len() != bytes.len() || message.encode_to_vec() != bytes {
        return Err(WireError::NonCanonical {
            message: "RoundUpdate",
        });
    }
    check_version(message.version)?;
    check_param_set(params, &message.param_set)?;
    if message.layout_hash.as_slice() != layout.hash() {
        return Err(WireError::LayoutMismatch {
            expected: short_hex(layout.hash()),
            found: short_hex(&message.layout_hash),
        });
    }
    let ciphertexts = message
        .ciphertexts
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            unpack_poly_prefix(
                params.ring(),
                entry,
                shape.c0_coefficients(i),
                "ciphertexts",
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RoundUpdate::from_parts(
        params,
        packing,
        layout,
        RoundId(message.round),
        ciphertexts,
    )?)
}

#[cfg(test)]
mod tests;
