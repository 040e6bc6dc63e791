use super::*;
use proptest::prelude::*;
use ringsum_core::model::ModelLayout;
use ringsum_core::round::{RoundContext, RoundSecret};
use ringsum_math::Csprng;
use std::sync::OnceLock;

struct Fixture {
    params: ParameterSet,
    packing: Packing,
    layout: ModelLayout,
    shape: UpdateShape,
    update: RoundUpdate,
    bytes: Vec<u8>,
}

/// A per-round-key update at N = 4096 with two slots per coefficient:
/// 9000 parameters and the weight fill one ciphertext (8192 values) and
/// 405 coefficients of a second. Built once.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let params = ParameterSet::builtin("rk128-n4096").unwrap();
        let packing = Packing::new(&params);
        let layout = ModelLayout::try_new([("w", vec![9000])]).unwrap();
        let context = RoundContext::new(&params, [1; 32], RoundId(3));
        let mut rng = Csprng::from_seed([6; 32]);
        let values: Vec<f32> = (0..9000).map(|i| (i as f32 / 9000.0) - 0.5).collect();
        let update = RoundSecret::generate(&params, &mut rng)
            .encrypt_update(&packing, &layout, &context, &values, 10, &mut rng)
            .unwrap();
        let bytes = encode_round_update(&update);
        Fixture {
            shape: UpdateShape::new(&packing, &layout),
            params,
            packing,
            layout,
            update,
            bytes,
        }
    })
}

fn decode(bytes: &[u8]) -> Result<RoundUpdate> {
    let f = fixture();
    decode_round_update(&f.params, &f.packing, &f.layout, bytes)
}

#[test]
fn round_updates_round_trip_at_the_packed_size() {
    let f = fixture();
    assert_eq!(f.shape.ciphertexts(), 2);
    assert_eq!(f.update.used_coefficients(1), 405);
    assert_eq!(decode(&f.bytes).unwrap(), f.update);
    // 76 bits per coefficient: 4096 + 405 coefficients.
    let ring = f.params.ring();
    assert_eq!(packed_poly_len(ring), 4096 * 76 / 8);
    let message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    assert_eq!(message.ciphertexts[0].len(), packed_poly_len(ring));
    assert_eq!(message.ciphertexts[1].len(), packed_prefix_len(ring, 405));
    let packed = (4096 + 405) * 76 / 8;
    assert!(f.bytes.len() >= packed && f.bytes.len() <= packed + 100);
    assert!(f.bytes.len() <= max_round_update_len(&f.params, &f.shape));
}

#[test]
fn the_default_set_costs_under_four_bytes_per_parameter() {
    let params = ParameterSet::builtin(ringsum_core::DEFAULT_PARAMETER_SET).unwrap();
    let packing = Packing::new(&params);
    // One full ciphertext: 384 bits per coefficient for 13 values.
    let per_ciphertext = packed_poly_len(params.ring()) as f64;
    let bytes_per_parameter = per_ciphertext / packing.capacity() as f64;
    assert!(bytes_per_parameter < 3.7, "{bytes_per_parameter}");
}

#[test]
fn the_decoder_refuses_every_kind_of_damage() {
    let f = fixture();
    // Another layout: the framing no longer matches the expected shape.
    for parameters in [8999, 9002, 4095, 8191 + 4096] {
        let other = ModelLayout::try_new([("w", vec![parameters])]).unwrap();
        assert!(
            matches!(
                decode_round_update(&f.params, &f.packing, &other, &f.bytes),
                Err(WireError::Length {
                    field: "ciphertexts",
                    ..
                } | WireError::CiphertextCount { .. }
                    | WireError::TooLarge { .. })
            ),
            "{parameters}"
        );
    }
    // Same shape, another layout's hash (or a hash of the wrong length).
    let renamed = ModelLayout::try_new([("v", vec![9000])]).unwrap();
    assert!(matches!(
        decode_round_update(&f.params, &f.packing, &renamed, &f.bytes),
        Err(WireError::LayoutMismatch { .. })
    ));
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    message.layout_hash.pop();
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::LayoutMismatch { .. })
    ));
    // Truncated, extended, or oversized input; garbage.
    assert!(decode(&f.bytes[..f.bytes.len() - 1]).is_err());
    let mut longer = f.bytes.clone();
    longer.push(0);
    assert!(decode(&longer).is_err());
    let huge = vec![0u8; max_round_update_len(&f.params, &f.shape) + 1];
    assert!(matches!(decode(&huge), Err(WireError::TooLarge { .. })));
    assert!(matches!(decode(&[0xFF; 64]), Err(WireError::Protobuf(_))));
    // Wrong version or parameter set.
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    message.version = 1;
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::Version {
            found: 1,
            supported: 2
        })
    ));
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    message.param_set = "rk128-n8192".into();
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::ParameterSet { .. })
    ));
    // The same fields in a non-canonical encoding: an unknown field, a
    // padded varint, the round field moved to the end.
    let mut unknown = f.bytes.clone();
    unknown.extend_from_slice(&[0x38, 0x00]);
    assert!(matches!(
        decode(&unknown),
        Err(WireError::NonCanonical { .. } | WireError::Length { .. } | WireError::TooLarge { .. })
    ));
    let mut padded = vec![0x08, 0x82, 0x00];
    padded.extend_from_slice(&f.bytes[2..]);
    assert!(matches!(
        decode(&padded),
        Err(WireError::NonCanonical { .. })
    ));
    let message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    let round_field = proto::RoundUpdate {
        round: message.round,
        ..Default::default()
    }
    .encode_to_vec();
    let mut without_round = message.clone();
    without_round.round = 0;
    let mut reordered = without_round.encode_to_vec();
    reordered.extend_from_slice(&round_field);
    assert!(matches!(
        decode(&reordered),
        Err(WireError::NonCanonical { .. })
    ));
    // A ciphertext too few, or none.
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    message.ciphertexts.pop();
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::CiphertextCount {
            expected: 2,
            found: 1
        })
    ));
    message.ciphertexts.clear();
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::CiphertextCount { found: 0, .. })
    ));
    // A short entry: caught by the framing scan.
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    message.ciphertexts[0].truncate(100);
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::Length {
            field: "ciphertexts",
            found: 100,
            ..
        })
    ));
    // A residue equal to its prime (the smallest value refused), and one
    // below it (accepted).
    let q0 = f.params.ring().moduli()[0].value();
    let bits = f.params.ring().moduli()[0].bits();
    for (value, refused) in [(q0, true), (q0 - 1, false)] {
        let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
        let entry = &mut message.ciphertexts[1];
        // The first residue occupies the low bits of the first bytes.
        let mut head = u64::from_le_bytes(entry[..8].try_into().unwrap());
        head = (head & !((1u64 << bits) - 1)) | value;
        entry[..8].copy_from_slice(&head.to_le_bytes());
        let result = decode(&message.encode_to_vec());
        if refused {
            assert!(
                matches!(result, Err(WireError::Residue { field: "ciphertexts", index: 0, value, .. }) if value == q0)
            );
        } else {
            assert!(result.is_ok());
        }
    }
}

/// An update of valid size made of empty ciphertext entries (2 bytes each
/// on the wire, dozens in memory) is refused by the framing scan before
/// anything is allocated for it; one entry too many is counted, not
/// decoded.
#[test]
fn floods_of_empty_entries_are_refused_before_decoding() {
    let f = fixture();
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    message.ciphertexts.clear();
    let mut bytes = message.encode_to_vec();
    let limit = max_round_update_len(&f.params, &f.shape);
    while bytes.len() + 2 <= limit {
        bytes.extend_from_slice(&[0x2A, 0x00]);
    }
    assert!(matches!(
        decode(&bytes),
        Err(WireError::Length {
            field: "ciphertexts",
            found: 0,
            ..
        })
    ));
    let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
    let extra = message.ciphertexts[0].clone();
    message.ciphertexts.insert(0, extra);
    assert!(matches!(
        decode(&message.encode_to_vec()),
        Err(WireError::TooLarge { .. } | WireError::CiphertextCount { .. })
    ));
}

/// Prefix packing round-trips for every length, padding bits included, and
/// an update that is not zero past its coefficients cannot be built.
#[test]
fn truncated_ciphertexts_pack_their_prefix_only() {
    let f = fixture();
    let ring = f.params.ring();
    let full = &f.update.ciphertexts()[0];
    for n in [0, 1, 7, 8, 405, 4095, 4096] {
        let packed = pack_poly_prefix(full, n);
        assert_eq!(packed.len(), packed_prefix_len(ring, n));
        let back: Poly<ringsum_math::Coeff> =
            unpack_poly_prefix(ring, &packed, n, "ciphertexts").unwrap();
        for (row, whole) in back
            .residues()
            .chunks_exact(4096)
            .zip(full.residues().chunks_exact(4096))
        {
            assert_eq!(&row[..n], &whole[..n]);
            assert!(row[n..].iter().all(|&x| x == 0));
        }
    }
    // 7 coefficients of 2 x 38 bits: 532 bits, 4 padding bits in the last
    // byte.
    let mut packed = pack_poly_prefix(full, 7);
    *packed.last_mut().unwrap() |= 0x80;
    assert!(matches!(
        unpack_poly_prefix::<ringsum_math::Coeff>(ring, &packed, 7, "c"),
        Err(WireError::Padding { field: "c" })
    ));
    assert!(matches!(
        unpack_poly_prefix::<ringsum_math::Coeff>(ring, &packed, 4097, "c"),
        Err(WireError::Length { field: "c", .. })
    ));
    let last = &f.update.ciphertexts()[1];
    let mut residues = last.residues().to_vec();
    residues[405] = 1;
    let damaged = Poly::try_from_residues(ring, residues).unwrap();
    assert!(matches!(
        RoundUpdate::from_parts(
            &f.params,
            &f.packing,
            &f.layout,
            RoundId(3),
            vec![full.clone(), damaged]
        ),
        Err(CoreError::NonZeroTruncation {
            coefficients: 405,
            coefficient: 405
        })
    ));
    // N >= 16 is a power of two, so N * bits(q) is always a whole number
    // of bytes and a whole polynomial never has padding bits.
    let ring = RingContext::new(
        16,
        &ringsum_math::prime::generate_ntt_primes(16, &[49]).unwrap(),
    )
    .unwrap();
    let zero = Poly::<ringsum_math::Coeff>::zero(&ring);
    assert_eq!(pack_poly(&zero).len(), 16 * 49 / 8);
    assert_eq!(
        unpack_poly::<ringsum_math::Coeff>(&ring, &pack_poly(&zero), "z").unwrap(),
        zero
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any truncation is refused (never a panic).
    #[test]
    fn truncations_are_refused(cut in any::<prop::sample::Index>()) {
        let f = fixture();
        let cut = cut.index(f.bytes.len());
        prop_assert!(decode(&f.bytes[..cut]).is_err());
    }

    /// Any single flipped bit is refused or decodes to a valid update of
    /// the same shape; it never panics.
    #[test]
    fn flipped_bits_never_panic(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let f = fixture();
        let mut bytes = f.bytes.clone();
        let i = position.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(update) = decode(&bytes) {
            prop_assert_eq!(update.ciphertexts().len(), 2);
            prop_assert_ne!(update, f.update.clone());
        }
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(decode(&bytes).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The word-at-a-time packer writes the bit stream the format defines
    /// (residue after residue, each in bits(q) bits, least significant bit
    /// first), and the unpacker reads it back, for prime sizes that do and
    /// do not divide 64 and any prefix length.
    #[test]
    fn packing_matches_the_bit_stream_definition(
        bits in prop::collection::vec(20u32..=62, 1..=3),
        coefficients in 0usize..=64,
        seed in any::<u8>(),
    ) {
        let primes = ringsum_math::prime::generate_ntt_primes(64, &bits).unwrap();
        let ring = RingContext::new(64, &primes).unwrap();
        let poly: Poly<ringsum_math::Coeff> =
            ringsum_math::sample::sample_uniform(&ring, &mut Csprng::from_seed([seed; 32]));
        let packed = pack_poly_prefix(&poly, coefficients);
        let mut expected = Vec::new();
        let (mut byte, mut used) = (0u8, 0u32);
        for (m, row) in ring.moduli().iter().zip(poly.residues().chunks_exact(64)) {
            for &value in row.iter().take(coefficients) {
                for bit in 0..m.bits() {
                    byte |= u8::from((value >> bit) & 1 == 1) << used;
                    used += 1;
                    if used == 8 {
                        expected.push(byte);
                        (byte, used) = (0, 0);
                    }
                }
            }
        }
        if used > 0 {
            expected.push(byte);
        }
        prop_assert_eq!(&packed, &expected);
        prop_assert_eq!(packed.len(), packed_prefix_len(&ring, coefficients));
        let back: Poly<ringsum_math::Coeff> =
            unpack_poly_prefix(&ring, &packed, coefficients, "test").unwrap();
        for (row_back, row) in back.residues().chunks_exact(64).zip(poly.residues().chunks_exact(64)) {
            prop_assert_eq!(&row_back[..coefficients], &row[..coefficients]);
        }
    }
}
