//! The byte formats of shares and holder answers (see the module docs and
//! docs/formats.md, "Shamir shares and holder answers").
//!
//! Decoders take untrusted bytes: the exact length is known from the field
//! and the degree and checked before anything is allocated; every element
//! must be below p, padding bits zero, and nothing may follow.

use zeroize::Zeroizing;

use crate::error::{Result, ThresholdError};
use crate::holder_id::HolderId;

use super::field::ShareField;
use super::holder::{HolderAnswer, check_holder_id};
use super::mask::{ANSWER_KEY_BYTES, AnswerKey};
use super::share::{SHARE_SEED_BYTES, ShareMessage, ShareSeed, ShareValues, check_degree};

/// The version byte of every format here.
pub const SHARE_FORMAT_VERSION: u8 = 1;

/// The tag of a seeded share.
const TAG_SEED: u8 = 0x01;
/// The tag of a share of packed values.
const TAG_VALUES: u8 = 0x02;
/// The tag of a holder answer.
const TAG_ANSWER: u8 = 0x03;

/// Tag, version, modulus (u32) and degree (u32).
const SHARE_HEADER_BYTES: usize = 10;
/// A share header and the holder id (u32).
const ANSWER_HEADER_BYTES: usize = 14;

const SHARE: &str = "a share";
const ANSWER: &str = "a holder answer";

/// The bytes of N packed elements: ceil(N bits / 8).
pub fn packed_len(field: &ShareField, degree: usize) -> Option<usize> {
    degree
        .checked_mul(field.bits() as usize)
        .map(|bits| bits.div_ceil(8))
}

/// The packed length of `degree` elements, for a degree a decoder accepts.
fn checked_packed_len(field: &ShareField, degree: usize) -> Result<usize> {
    check_degree(degree)?;
    packed_len(field, degree).ok_or(ThresholdError::InvalidShareDegree {
        degree,
        max: super::MAX_SHARE_DEGREE,
    })
}

impl ShareMessage {
    /// The share's bytes: for a seed, `0x01 || 0x01 || p || N || seed[32]`
    /// (42 bytes); for values, `0x02 || 0x01 || p || N || packed`, the N
    /// elements bit-packed little-endian at bits(p) bits each (p and N as
    /// u32 little-endian). Wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Seed(seed) => {
                let mut out =
                    Zeroizing::new(Vec::with_capacity(SHARE_HEADER_BYTES + SHARE_SEED_BYTES));
                write_header(&mut out, TAG_SEED, &seed.field(), seed.degree());
                out.extend_from_slice(seed.as_bytes());
                out
            }
            Self::Values(values) => {
                let field = values.field();
                let packed = packed_len(&field, values.degree()).unwrap_or(0);
                let mut out = Zeroizing::new(Vec::with_capacity(SHARE_HEADER_BYTES + packed));
                write_header(&mut out, TAG_VALUES, &field, values.degree());
                pack(&field, values.values(), &mut out);
                out
            }
        }
    }

    /// A share of `degree` elements of `field` from untrusted bytes.
    ///
    /// # Errors
    /// [`ThresholdError::InvalidShareDegree`] for a `degree` outside
    /// 1..=[`super::MAX_SHARE_DEGREE`]; for the bytes,
    /// [`ThresholdError::UnknownShareTag`],
    /// [`ThresholdError::UnsupportedShareVersion`],
    /// [`ThresholdError::ShareEncodingLength`] (short, long or trailing
    /// bytes), [`ThresholdError::ShareHeaderMismatch`] (modulus, degree),
    /// [`ThresholdError::ShareElementOutOfRange`] and
    /// [`ThresholdError::NonzeroSharePadding`].
    pub fn from_bytes(field: ShareField, degree: usize, bytes: &[u8]) -> Result<Self> {
        let packed = checked_packed_len(&field, degree)?;
        let expected = match bytes.first() {
            None => SHARE_HEADER_BYTES,
            Some(&TAG_SEED) => SHARE_HEADER_BYTES + SHARE_SEED_BYTES,
            Some(&TAG_VALUES) => SHARE_HEADER_BYTES + packed,
            Some(&tag) => {
                return Err(ThresholdError::UnknownShareTag {
                    what: SHARE,
                    tag,
                    expected: "0x01 (seed) or 0x02 (values)",
                });
            }
        };
        let body = read_header(SHARE, &field, degree, bytes, expected, SHARE_HEADER_BYTES)?;
        if bytes.first() == Some(&TAG_SEED) {
            let seed = ShareSeed::from_slice(field, degree, body).ok_or(
                ThresholdError::ShareEncodingLength {
                    what: SHARE,
                    expected,
                    found: bytes.len(),
                },
            )?;
            Ok(Self::Seed(seed))
        } else {
            let values = unpack(SHARE, &field, degree, body)?;
            Ok(Self::Values(ShareValues::from_reduced(field, values)))
        }
    }
}

impl HolderAnswer {
    /// The answer's bytes: `0x03 || 0x01 || p || N || holder || packed`,
    /// p, N and the holder id as u32 little-endian, the N elements
    /// bit-packed as in a share.
    pub fn to_bytes(&self) -> Vec<u8> {
        let field = self.field();
        let packed = packed_len(&field, self.degree()).unwrap_or(0);
        let mut out = Vec::with_capacity(ANSWER_HEADER_BYTES + packed);
        write_header(&mut out, TAG_ANSWER, &field, self.degree());
        out.extend_from_slice(&self.holder().0.to_le_bytes());
        pack(&field, self.values(), &mut out);
        out
    }

    /// An answer of `degree` elements of `field` from untrusted bytes.
    ///
    /// # Errors
    /// As [`ShareMessage::from_bytes`], and
    /// [`ThresholdError::InvalidHolderId`] for a holder id 0 or >= p.
    pub fn from_bytes(field: ShareField, degree: usize, bytes: &[u8]) -> Result<Self> {
        let packed = checked_packed_len(&field, degree)?;
        let expected = ANSWER_HEADER_BYTES + packed;
        match bytes.first() {
            None | Some(&TAG_ANSWER) => {}
            Some(&tag) => {
                return Err(ThresholdError::UnknownShareTag {
                    what: ANSWER,
                    tag,
                    expected: "0x03 (answer)",
                });
            }
        }
        let rest = read_header(ANSWER, &field, degree, bytes, expected, SHARE_HEADER_BYTES)?;
        let (holder, body) =
            rest.split_first_chunk::<4>()
                .ok_or(ThresholdError::ShareEncodingLength {
                    what: ANSWER,
                    expected,
                    found: bytes.len(),
                })?;
        let holder = HolderId(u32::from_le_bytes(*holder));
        check_holder_id(&field, holder)?;
        let values = unpack(ANSWER, &field, degree, body)?;
        Ok(Self::from_checked(field, holder, values))
    }
}

/// Tag, version, p and N.
fn write_header(out: &mut Vec<u8>, tag: u8, field: &ShareField, degree: usize) {
    out.push(tag);
    out.push(SHARE_FORMAT_VERSION);
    out.extend_from_slice(&field.modulus_u32().to_le_bytes());
    // Degrees are at most MAX_SHARE_DEGREE < 2^32.
    out.extend_from_slice(&u32::try_from(degree).unwrap_or(u32::MAX).to_le_bytes());
}

/// Checks the version, the exact length, p and N (the tag is checked by
/// the caller, which knows the expected length); the bytes after the
/// `header` bytes.
fn read_header<'a>(
    what: &'static str,
    field: &ShareField,
    degree: usize,
    bytes: &'a [u8],
    expected: usize,
    header: usize,
) -> Result<&'a [u8]> {
    let length = ThresholdError::ShareEncodingLength {
        what,
        expected,
        found: bytes.len(),
    };
    let Some(&version) = bytes.get(1) else {
        return Err(length);
    };
    if version != SHARE_FORMAT_VERSION {
        return Err(ThresholdError::UnsupportedShareVersion {
            what,
            version,
            supported: SHARE_FORMAT_VERSION,
        });
    }
    if bytes.len() != expected {
        return Err(length);
    }
    let (head, body) = bytes.split_at_checked(header).ok_or(length)?;
    let word = |offset: usize| {
        head.get(offset..offset + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_le_bytes)
    };
    let (modulus, found_degree) = (word(2), word(6));
    if u64::from(modulus) != field.value() {
        return Err(ThresholdError::ShareHeaderMismatch {
            what,
            field: "modulus",
            expected: field.value(),
            found: u64::from(modulus),
        });
    }
    if u64::from(found_degree) != degree as u64 {
        return Err(ThresholdError::ShareHeaderMismatch {
            what,
            field: "degree",
            expected: degree as u64,
            found: u64::from(found_degree),
        });
    }
    Ok(body)
}

/// Appends the elements, `bits` bits each, little-endian: element i holds
/// bits i bits .. (i + 1) bits - 1 of the stream, bit j of the stream is
/// bit j mod 8 of byte j / 8; the last byte's unused high bits are zero.
fn pack(field: &ShareField, values: &[u32], out: &mut Vec<u8>) {
    let bits = field.bits();
    if bits == 16 {
        // The default field's layout is plain u16 little-endian.
        out.extend(
            values
                .iter()
                .flat_map(|&v| [low_byte(v.into()), low_byte((v >> 8).into())]),
        );
        return;
    }
    let (mut acc, mut acc_bits) = (0u64, 0u32);
    for &v in values {
        acc |= u64::from(v) << acc_bits;
        acc_bits += bits;
        while acc_bits >= 8 {
            out.push(low_byte(acc));
            acc >>= 8;
            acc_bits -= 8;
        }
    }
    if acc_bits > 0 {
        out.push(low_byte(acc));
    }
}

/// The inverse of [`pack`] for exactly `degree` elements, refusing an
/// element >= p (checked without a branch per element) and nonzero
/// padding bits. The caller has checked the length.
fn unpack(
    what: &'static str,
    field: &ShareField,
    degree: usize,
    packed: &[u8],
) -> Result<Vec<u32>> {
    let bits = field.bits();
    let mask = (1u64 << bits) - 1;
    let mut values = Zeroizing::new(Vec::with_capacity(degree));
    let (mut acc, mut acc_bits) = (0u64, 0u32);
    let mut out_of_range = 0u64;
    if bits == 16 {
        // The default field's layout: u16 little-endian, no padding.
        for pair in packed.chunks_exact(2).take(degree) {
            let v = pair
                .iter()
                .rev()
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            out_of_range |= field.out_of_range(v);
            values.push(v);
        }
    }
    let consumed = (values.len() * bits as usize).div_ceil(8);
    let mut bytes = packed.get(consumed..).unwrap_or_default().iter();
    for _ in values.len()..degree {
        while acc_bits < bits {
            acc |= u64::from(bytes.next().copied().unwrap_or(0)) << acc_bits;
            acc_bits += 8;
        }
        let v = low_u32(acc & mask);
        acc >>= bits;
        acc_bits -= bits;
        out_of_range |= field.out_of_range(v);
        values.push(v);
    }
    if out_of_range != 0 {
        let index = values
            .iter()
            .position(|&v| field.out_of_range(v) != 0)
            .unwrap_or(0);
        return Err(ThresholdError::ShareElementOutOfRange {
            what,
            index,
            modulus: field.value(),
        });
    }
    if acc != 0 || bytes.next().is_some() {
        return Err(ThresholdError::NonzeroSharePadding { what });
    }
    Ok(std::mem::take(&mut *values))
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "keeps the low byte on purpose"
)]
fn low_byte(x: u64) -> u8 {
    x as u8
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "masked to bits(p) <= 32 bits"
)]
fn low_u32(x: u64) -> u32 {
    x as u32
}

/// What a client seals to one holder: its answer key for the round, then
/// its share (`key[32] || share bytes`). Wiped on drop.
pub fn encode_client_share(key: &AnswerKey, share: &ShareMessage) -> Zeroizing<Vec<u8>> {
    let share = share.to_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(ANSWER_KEY_BYTES + share.len()));
    out.extend_from_slice(&*key.to_bytes());
    out.extend_from_slice(&share);
    out
}

/// A holder's reading of [`encode_client_share`]'s bytes (untrusted): the
/// answer key and a share of `degree` elements of `field`.
///
/// # Errors
/// [`ThresholdError::ShareEncodingLength`] for fewer bytes than a key,
/// then those of [`ShareMessage::from_bytes`].
pub fn decode_client_share(
    field: ShareField,
    degree: usize,
    bytes: &[u8],
) -> Result<(AnswerKey, ShareMessage)> {
    let (key, share) = bytes.split_first_chunk::<ANSWER_KEY_BYTES>().ok_or(
        ThresholdError::ShareEncodingLength {
            what: SHARE,
            expected: ANSWER_KEY_BYTES + SHARE_HEADER_BYTES,
            found: bytes.len(),
        },
    )?;
    let share = ShareMessage::from_bytes(field, degree, share)?;
    Ok((AnswerKey::from_bytes(*key), share))
}
