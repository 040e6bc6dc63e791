//! Byte formats: round trips, sizes and every refusal of the decoders.

use ringsum_math::Csprng;

use super::super::*;
use super::{answers, committee, deal, field};
use crate::error::ThresholdError;
use crate::holder_id::HolderId;

/// A seeded share, a share of values and an answer of `degree` elements.
fn samples(p: u64, degree: usize) -> (ShareMessage, ShareMessage, HolderAnswer) {
    let mut rng = Csprng::from_seed([40; 32]);
    let c = committee(p, 3, 2);
    let secret: Vec<i64> = (0..degree as i64).map(|j| j % 55 - 27).collect();
    let dealt = deal(&c, &[secret], &mut rng);
    let answer = answers(&c, &dealt, &[HolderId(3)], degree).remove(0);
    let mut messages = dealt
        .into_iter()
        .next()
        .unwrap()
        .into_iter()
        .map(|(_, m)| m);
    let seed = messages.next().unwrap();
    let values = messages.next().unwrap();
    assert!(matches!(seed, ShareMessage::Seed(_)) && matches!(values, ShareMessage::Values(_)));
    (seed, values, answer)
}

#[test]
fn shamir_codec_round_trips_and_sizes() {
    for (p, degree) in [
        (65521, 16384),
        (65521, 16),
        (257, 13),
        (65537, 7),
        (4_294_967_291, 5),
    ] {
        let f = field(p);
        let (seed, values, answer) = samples(p, degree);
        let packed = (degree * f.bits() as usize).div_ceil(8);
        assert_eq!(packed_len(&f, degree), Some(packed));

        let bytes = seed.to_bytes();
        assert_eq!(bytes.len(), 42);
        assert_eq!(&bytes[..2], &[0x01, SHARE_FORMAT_VERSION]);
        assert_eq!(&bytes[2..6], &(p as u32).to_le_bytes());
        assert_eq!(&bytes[6..10], &(degree as u32).to_le_bytes());
        assert_eq!(ShareMessage::from_bytes(f, degree, &bytes).unwrap(), seed);

        let bytes = values.to_bytes();
        assert_eq!(bytes.len(), 10 + packed);
        assert_eq!(bytes[0], 0x02);
        let decoded = ShareMessage::from_bytes(f, degree, &bytes).unwrap();
        assert_eq!(decoded, values);
        assert_eq!(decoded.to_bytes().as_slice(), bytes.as_slice());

        let bytes = answer.to_bytes();
        assert_eq!(bytes.len(), 14 + packed);
        assert_eq!(bytes[0], 0x03);
        assert_eq!(&bytes[10..14], &3u32.to_le_bytes());
        let decoded = HolderAnswer::from_bytes(f, degree, &bytes).unwrap();
        assert_eq!(decoded, answer);
        assert_eq!(decoded.to_bytes(), bytes);
    }
    // N = 16384 at 16 bits: 32 KiB and a 10-byte header.
    let (_, values, _) = samples(65521, 16384);
    assert_eq!(values.to_bytes().len(), 32 * 1024 + 10);
}

#[test]
fn shamir_packing_is_little_endian_bits() {
    // p = 257, 9 bits: elements 1, 256, 3 set bits 0, 17, 18 and 19 of
    // the stream; 27 bits fill four bytes.
    let f = field(257);
    let answer = HolderAnswer::try_new(f, HolderId(2), vec![1, 256, 3]).unwrap();
    let bytes = answer.to_bytes();
    assert_eq!(&bytes[14..], &[0x01, 0x00, 0x0e, 0x00]);
    assert_eq!(HolderAnswer::from_bytes(f, 3, &bytes).unwrap(), answer);
}

fn share_err(p: u64, degree: usize, bytes: &[u8]) -> ThresholdError {
    ShareMessage::from_bytes(field(p), degree, bytes).unwrap_err()
}

fn answer_err(p: u64, degree: usize, bytes: &[u8]) -> ThresholdError {
    HolderAnswer::from_bytes(field(p), degree, bytes).unwrap_err()
}

#[test]
fn shamir_decoders_refuse_bad_lengths() {
    let (seed, values, answer) = samples(257, 13);
    let cases: [(Vec<u8>, usize); 3] = [
        (seed.to_bytes().to_vec(), 42),
        (values.to_bytes().to_vec(), 25),
        (answer.to_bytes(), 29),
    ];
    for (index, (bytes, expected)) in cases.iter().enumerate() {
        assert_eq!(bytes.len(), *expected);
        let decode = |b: &[u8]| {
            if index == 2 {
                answer_err(257, 13, b)
            } else {
                share_err(257, 13, b)
            }
        };
        for len in [1, 2, 9, 10, expected - 1] {
            assert!(
                matches!(
                    decode(&bytes[..len]),
                    ThresholdError::ShareEncodingLength { expected: e, found, .. }
                        if e == *expected && found == len
                ),
                "{index} {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode(&long),
            ThresholdError::ShareEncodingLength { found, .. } if found == expected + 1
        ));
    }
    assert!(matches!(
        share_err(257, 13, &[]),
        ThresholdError::ShareEncodingLength {
            expected: 10,
            found: 0,
            ..
        }
    ));
    assert!(matches!(
        answer_err(257, 13, &[]),
        ThresholdError::ShareEncodingLength {
            expected: 29,
            found: 0,
            ..
        }
    ));
}

#[test]
fn shamir_decoders_refuse_bad_tags_versions_and_headers() {
    let (seed, values, answer) = samples(257, 13);
    let (seed, values, answer) = (
        seed.to_bytes().to_vec(),
        values.to_bytes().to_vec(),
        answer.to_bytes(),
    );
    for tag in [0x00, 0x03, 0x04, 0xff] {
        let mut bytes = values.clone();
        bytes[0] = tag;
        assert!(matches!(
            share_err(257, 13, &bytes),
            ThresholdError::UnknownShareTag { tag: t, .. } if t == tag
        ));
    }
    for tag in [0x01, 0x02, 0x04] {
        let mut bytes = answer.clone();
        bytes[0] = tag;
        assert!(matches!(
            answer_err(257, 13, &bytes),
            ThresholdError::UnknownShareTag { tag: t, .. } if t == tag
        ));
    }
    for version in [0, 2, 0xff] {
        for (bytes, is_answer) in [(&seed, false), (&values, false), (&answer, true)] {
            let mut bytes = bytes.clone();
            bytes[1] = version;
            let err = if is_answer {
                answer_err(257, 13, &bytes)
            } else {
                share_err(257, 13, &bytes)
            };
            assert!(matches!(
                err,
                ThresholdError::UnsupportedShareVersion { version: v, supported: 1, .. } if v == version
            ));
        }
    }
    // The same bytes read with another field or degree.
    for (bytes, is_answer) in [(&seed, false), (&values, false), (&answer, true)] {
        let err = if is_answer {
            answer_err(263, 13, bytes)
        } else {
            share_err(263, 13, bytes)
        };
        assert!(matches!(
            err,
            ThresholdError::ShareHeaderMismatch {
                field: "modulus",
                expected: 263,
                found: 257,
                ..
            }
        ));
        let mut other_degree = bytes.clone();
        other_degree[6] = 12;
        let err = if is_answer {
            answer_err(257, 13, &other_degree)
        } else {
            share_err(257, 13, &other_degree)
        };
        assert!(matches!(
            err,
            ThresholdError::ShareHeaderMismatch {
                field: "degree",
                expected: 13,
                found: 12,
                ..
            }
        ));
    }
    // A seed share read with a degree of another packed length.
    assert!(matches!(
        share_err(257, 12, &seed),
        ThresholdError::ShareHeaderMismatch { .. }
    ));
    for holder in [0u32, 257, u32::MAX] {
        let mut bytes = answer.clone();
        bytes[10..14].copy_from_slice(&holder.to_le_bytes());
        assert!(matches!(
            answer_err(257, 13, &bytes),
            ThresholdError::InvalidHolderId { holder: h, limit: 257 } if h.0 == holder
        ));
    }
    for degree in [0, MAX_SHARE_DEGREE + 1, usize::MAX] {
        assert!(matches!(
            share_err(257, degree, &values),
            ThresholdError::InvalidShareDegree { .. }
        ));
        assert!(matches!(
            answer_err(257, degree, &answer),
            ThresholdError::InvalidShareDegree { .. }
        ));
    }
}

#[test]
fn shamir_decoders_refuse_elements_and_padding() {
    let f = field(257);
    let answer = HolderAnswer::try_new(f, HolderId(2), vec![1, 256, 3]).unwrap();
    let good = answer.to_bytes();
    // Element 1 = 257: bits 9..17 = 1 0000 0001.
    let mut too_big = good.clone();
    too_big[15] |= 0x02;
    assert!(matches!(
        answer_err(257, 3, &too_big),
        ThresholdError::ShareElementOutOfRange {
            index: 1,
            modulus: 257,
            ..
        }
    ));
    // Element 2 = 511 (all nine bits set).
    let mut all_ones = good.clone();
    all_ones[16] |= 0xfc;
    all_ones[17] |= 0x07;
    assert!(matches!(
        answer_err(257, 3, &all_ones),
        ThresholdError::ShareElementOutOfRange { index: 2, .. }
    ));
    // 27 bits in 4 bytes: bits 27..31 of the last byte are padding.
    for bit in 3..8 {
        let mut padded = good.clone();
        padded[17] |= 1 << bit;
        assert!(matches!(
            answer_err(257, 3, &padded),
            ThresholdError::NonzeroSharePadding { .. }
        ));
    }

    // The same for a share of values at p = 65521: 0xffff is >= p.
    let (_, values, _) = samples(65521, 16);
    let mut bytes = values.to_bytes().to_vec();
    bytes[10 + 2 * 5..10 + 2 * 5 + 2].copy_from_slice(&65521u16.to_le_bytes());
    assert!(matches!(
        share_err(65521, 16, &bytes),
        ThresholdError::ShareElementOutOfRange {
            index: 5,
            modulus: 65521,
            ..
        }
    ));
    // p = 257 and 13 elements: 117 bits, three padding bits.
    let (_, values, _) = samples(257, 13);
    let mut bytes = values.to_bytes().to_vec();
    *bytes.last_mut().unwrap() |= 0x80;
    assert!(matches!(
        share_err(257, 13, &bytes),
        ThresholdError::NonzeroSharePadding { .. }
    ));
}
