use super::*;
use proptest::prelude::*;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::{Packing, SecretKey};
use ringsum_core::update::{UpdateShape, encrypt_update};
use ringsum_math::{CrsSeed, Csprng};
use std::sync::OnceLock;

struct Fixture {
    params: ParameterSet,
    pk: PublicKey,
    update: EncryptedUpdate,
    bytes: Vec<u8>,
    count: usize,
    shape: UpdateShape,
}

/// One small update (N = 4096, one slot per coefficient, 5000 parameters:
/// a full ciphertext and one whose c0 carries 905 coefficients), built once.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let params = ParameterSet::builtin("pq128-n4096").unwrap();
        let packing = Packing::new(&params);
        let mut rng = Csprng::from_seed([3; 32]);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::generate(&params, &sk, &CrsSeed::new([4; 32]), 1, &mut rng).unwrap();
        let layout = ModelLayout::try_new([("w", vec![5000])]).unwrap();
        let values: Vec<f32> = (0..5000).map(|i| (i as f32 / 5000.0) - 0.5).collect();
        let update = encrypt_update(
            &params,
            &packing,
            &pk,
            &layout,
            &values,
            10,
            RoundId(5),
            &mut rng,
        )
        .unwrap();
        let bytes = encode_update(&update);
        let shape = UpdateShape::new(&packing, &layout);
        Fixture {
            params,
            pk,
            update,
            bytes,
            count: shape.ciphertexts(),
            shape,
        }
    })
}

#[test]
fn round_trips_are_the_identity() {
    let f = fixture();
    assert_eq!(f.count, 2);
    assert_eq!(
        decode_update(&f.params, &f.bytes, &f.shape).unwrap(),
        f.update
    );
    let pk_bytes = encode_public_key(&f.pk, 9);
    assert_eq!(
        decode_public_key(&f.params, &pk_bytes).unwrap(),
        (f.pk.clone(), 9)
    );
    let ct = &f.update.ciphertexts[0];
    assert_eq!(
        &decode_ciphertext(&f.params, &encode_ciphertext(ct)).unwrap(),
        ct
    );
    // A lone ciphertext decodes as a full one: a truncated c0 is refused.
    assert!(matches!(
        decode_ciphertext(&f.params, &encode_ciphertext(&f.update.ciphertexts[1])),
        Err(WireError::Length { field: "c0", .. })
    ));
}

#[test]
fn the_last_c0_carries_only_the_coefficients_it_uses() {
    let f = fixture();
    let ring = f.params.ring();
    assert_eq!(f.shape.c0_coefficients(0), 4096);
    // 5000 parameters and the weight: 5001 - 4096 values, one per coefficient.
    assert_eq!(f.shape.c0_coefficients(1), 905);
    let last = &f.update.ciphertexts[1];
    assert_eq!(last.c0_coefficients(), 905);
    let message = proto::EncryptedUpdate::decode(f.bytes.as_slice()).unwrap();
    assert_eq!(message.ciphertexts[0].c0.len(), packed_poly_len(ring));
    assert_eq!(message.ciphertexts[1].c0.len(), 905 * 100 / 8 + 1);
    assert_eq!(message.ciphertexts[1].c1.len(), packed_poly_len(ring));
    // The receiver derives the truncation from the layout: any other shape
    // is refused before anything is decoded.
    let packing = Packing::new(&f.params);
    for parameters in [4999, 5001, 4095 + 4096, 4096] {
        let shape = UpdateShape::for_parameters(&packing, parameters);
        assert!(
            matches!(
                decode_update(&f.params, &f.bytes, &shape),
                Err(WireError::Length {
                    field: "ciphertexts",
                    ..
                } | WireError::CiphertextCount { .. }
                    | WireError::TooLarge { .. })
            ),
            "{parameters}"
        );
    }
    // A c0 that is not zero past its coefficients cannot be built, so it
    // cannot be sent.
    let mut c0 = last.c0().residues().to_vec();
    c0[905] = 1;
    let c0 = Poly::try_from_residues(ring, c0).unwrap();
    assert!(matches!(
        Ciphertext::from_parts_truncated(&f.params, c0, last.c1().clone(), 905),
        Err(CoreError::NonZeroTruncation {
            coefficients: 905,
            coefficient: 905
        })
    ));
    // Prefix packing round-trips for every length, padding bits included.
    for n in [0, 1, 7, 8, 905, 4095, 4096] {
        let packed = pack_poly_prefix(last.c1(), n);
        assert_eq!(packed.len(), packed_prefix_len(ring, n));
        let back: Poly<ringsum_math::Coeff> = unpack_poly_prefix(ring, &packed, n, "c1").unwrap();
        for (row, full) in back
            .residues()
            .chunks_exact(4096)
            .zip(last.c1().residues().chunks_exact(4096))
        {
            assert_eq!(&row[..n], &full[..n]);
            assert!(row[n..].iter().all(|&x| x == 0));
        }
    }
    // With 7 coefficients of 50 bits, the last byte has 6 padding bits.
    let mut packed = pack_poly_prefix(last.c1(), 7);
    *packed.last_mut().unwrap() |= 0x80;
    assert!(matches!(
        unpack_poly_prefix::<ringsum_math::Coeff>(ring, &packed, 7, "c1"),
        Err(WireError::Padding { field: "c1" })
    ));
}

#[test]
fn the_size_is_the_packed_size() {
    let f = fixture();
    let ring = f.params.ring();
    // Two 50-bit primes: 100 bits per coefficient, 4096 coefficients; the
    // last c0 carries 905.
    assert_eq!(packed_poly_len(ring), 4096 * 100 / 8);
    let payload = 3 * packed_poly_len(ring) + packed_prefix_len(ring, 905);
    assert!(
        f.bytes.len() > payload && f.bytes.len() < payload + 128,
        "{}",
        f.bytes.len()
    );
    // The default set: at most 10 bytes per parameter for a large model.
    let params = ParameterSet::builtin(ringsum_core::DEFAULT_PARAMETER_SET).unwrap();
    let packing = Packing::new(&params);
    let per_ciphertext = max_ciphertext_len(&params) as f64;
    let bytes_per_parameter = per_ciphertext / packing.capacity() as f64;
    assert!(bytes_per_parameter < 9.2, "{bytes_per_parameter}");
}

#[test]
fn hostile_fields_are_refused_with_their_name() {
    let f = fixture();
    let mut message = proto::EncryptedUpdate::decode(f.bytes.as_slice()).unwrap();
    let decode =
        |m: &proto::EncryptedUpdate| decode_update(&f.params, &m.encode_to_vec(), &f.shape);

    let mut m = message.clone();
    m.version = 1;
    assert!(matches!(
        decode(&m),
        Err(WireError::Version {
            found: 1,
            supported: 2
        })
    ));
    let mut m = message.clone();
    m.param_set = "pq128-n8192".into();
    assert!(matches!(decode(&m), Err(WireError::ParameterSet { .. })));
    let mut m = message.clone();
    m.layout_hash.pop();
    assert!(matches!(
        decode(&m),
        Err(WireError::Length {
            field: "layout_hash",
            expected: 32,
            found: 31
        })
    ));
    let mut m = message.clone();
    m.ciphertexts.pop();
    assert!(matches!(
        decode(&m),
        Err(WireError::CiphertextCount {
            expected: 2,
            found: 1
        })
    ));
    // A short polynomial: caught by the framing scan inside an update, by
    // the polynomial check in a lone ciphertext.
    let mut m = message.clone();
    m.ciphertexts[0].c1.truncate(100);
    assert!(matches!(
        decode(&m),
        Err(WireError::Length {
            field: "ciphertexts",
            ..
        })
    ));
    assert!(matches!(
        decode_ciphertext(&f.params, &m.ciphertexts[0].encode_to_vec()),
        Err(WireError::Length {
            field: "c1",
            found: 100,
            ..
        })
    ));
    // A residue equal to its prime (the smallest value refused), and one
    // below it (accepted).
    let q0 = f.params.ring().moduli()[0].value();
    for (value, refused) in [(q0, true), (q0 - 1, false)] {
        let mut m = message.clone();
        let c0 = &mut m.ciphertexts[1].c0;
        // The first residue occupies the low 50 bits of the first bytes.
        let mut head = u64::from_le_bytes(c0[..8].try_into().unwrap());
        head = (head & !((1u64 << 50) - 1)) | value;
        c0[..8].copy_from_slice(&head.to_le_bytes());
        let result = decode(&m);
        if refused {
            assert!(
                matches!(result, Err(WireError::Residue { field: "c0", index: 0, value, .. }) if value == q0)
            );
        } else {
            assert!(result.is_ok());
        }
    }
    // N >= 16 is a power of two, so N * bits(q) is always a whole number
    // of bytes and a valid ring never has padding bits; the decoder still
    // checks that none are left over.
    let ring = RingContext::new(
        16,
        &ringsum_math::prime::generate_ntt_primes(16, &[49]).unwrap(),
    )
    .unwrap();
    let zero = Poly::<ringsum_math::Coeff>::zero(&ring);
    assert_eq!(pack_poly(&zero).len(), 16 * 49 / 8);

    // Larger than any valid update: refused before parsing.
    let mut big = f.bytes.clone();
    big.resize(max_update_len(&f.params, f.count) + 1, 0);
    assert!(matches!(
        decode_update(&f.params, &big, &f.shape),
        Err(WireError::TooLarge { .. })
    ));
    // Garbage.
    assert!(matches!(
        decode_update(&f.params, &[0xFF; 64], &f.shape),
        Err(WireError::Protobuf(_))
    ));
    message.ciphertexts.clear();
    assert!(matches!(
        decode(&message),
        Err(WireError::CiphertextCount { found: 0, .. })
    ));
}

/// An update of valid size made of empty ciphertext submessages (2 bytes
/// each on the wire, dozens in memory) is refused by the framing scan before
/// anything is allocated for it.
#[test]
fn floods_of_empty_submessages_are_refused_before_decoding() {
    let f = fixture();
    let mut message = proto::EncryptedUpdate::decode(f.bytes.as_slice()).unwrap();
    message.ciphertexts.clear();
    let mut bytes = message.encode_to_vec();
    let limit = max_update_len_for(&f.params, &f.shape);
    while bytes.len() + 2 <= limit {
        bytes.extend_from_slice(&[0x2A, 0x00]);
    }
    assert!(matches!(
        decode_update(&f.params, &bytes, &f.shape),
        Err(WireError::Length {
            field: "ciphertexts",
            found: 0,
            ..
        })
    ));
    // One entry too many is counted, not decoded.
    let mut message = proto::EncryptedUpdate::decode(f.bytes.as_slice()).unwrap();
    let extra = message.ciphertexts[0].clone();
    message.ciphertexts.insert(0, extra);
    let bytes = message.encode_to_vec();
    assert!(matches!(
        decode_update(&f.params, &bytes, &f.shape),
        Err(WireError::TooLarge { .. } | WireError::CiphertextCount { .. })
    ));
    let packing = Packing::new(&f.params);
    let larger = UpdateShape::for_parameters(&packing, 5000 + 4096);
    assert_eq!(larger.ciphertexts(), f.count + 1);
    assert!(decode_update(&f.params, &bytes, &larger).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any truncation is refused (never a panic).
    #[test]
    fn truncations_are_refused(cut in 0usize..205_000) {
        let f = fixture();
        let cut = cut % f.bytes.len();
        prop_assert!(decode_update(&f.params, &f.bytes[..cut], &f.shape).is_err());
    }

    /// A single flipped bit anywhere is refused or decodes to a valid update
    /// of the same shape; it never panics.
    #[test]
    fn bit_flips_never_panic(position in 0usize..(205_000 * 8)) {
        let f = fixture();
        let position = position % (f.bytes.len() * 8);
        let mut bytes = f.bytes.clone();
        bytes[position / 8] ^= 1 << (position % 8);
        if let Ok(update) = decode_update(&f.params, &bytes, &f.shape) {
            prop_assert_eq!(update.ciphertexts.len(), f.count);
            prop_assert_ne!(update, f.update.clone());
        }
    }

    /// Arbitrary bytes never panic any decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let f = fixture();
        let _ = decode_update(&f.params, &bytes, &f.shape);
        let _ = decode_public_key(&f.params, &bytes);
        let _ = decode_ciphertext(&f.params, &bytes);
    }
}

mod round_updates {
    use super::*;
    use ringsum_core::round::{RoundContext, RoundSecret};

    struct RoundFixture {
        params: ParameterSet,
        packing: Packing,
        layout: ModelLayout,
        update: RoundUpdate,
        bytes: Vec<u8>,
    }

    /// A per-round-key update at N = 4096 with two slots per coefficient:
    /// 9000 parameters fill one ciphertext (8192 values) and 405
    /// coefficients of a second.
    fn round_fixture() -> &'static RoundFixture {
        static FIXTURE: OnceLock<RoundFixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let params = ParameterSet::builtin("rk128-n4096").unwrap();
            let packing = Packing::new(&params);
            let layout = ModelLayout::try_new([("w", vec![9000])]).unwrap();
            let context = RoundContext::new(&params, [1; 32], RoundId(3)).unwrap();
            let mut rng = Csprng::from_seed([6; 32]);
            let values: Vec<f32> = (0..9000).map(|i| (i as f32 / 9000.0) - 0.5).collect();
            let update = RoundSecret::generate(&params, &mut rng)
                .unwrap()
                .encrypt_update(&packing, &layout, &context, &values, 10, &mut rng)
                .unwrap();
            let bytes = encode_round_update(&update);
            RoundFixture {
                params,
                packing,
                layout,
                update,
                bytes,
            }
        })
    }

    #[test]
    fn round_updates_round_trip_at_the_packed_size() {
        let f = round_fixture();
        assert_eq!(f.update.used_coefficients(1), 405);
        let decoded = decode_round_update(&f.params, &f.packing, &f.layout, &f.bytes).unwrap();
        assert_eq!(decoded, f.update);
        // 76 bits per coefficient of a and c0: 4096 + 405 coefficients.
        let packed = (4096 + 405) * 76 / 8;
        assert!(f.bytes.len() >= packed && f.bytes.len() <= packed + 100);
        assert!(
            f.bytes.len()
                <= max_round_update_len(&f.params, &UpdateShape::new(&f.packing, &f.layout))
        );
    }

    #[test]
    fn round_update_decoder_refuses_every_kind_of_damage() {
        let f = round_fixture();
        let decode = |bytes: &[u8]| decode_round_update(&f.params, &f.packing, &f.layout, bytes);
        // Another layout: the framing no longer matches the expected shape.
        let other = ModelLayout::try_new([("w", vec![8999])]).unwrap();
        assert!(decode_round_update(&f.params, &f.packing, &other, &f.bytes).is_err());
        // Same shape, another layout's hash.
        let renamed = ModelLayout::try_new([("v", vec![9000])]).unwrap();
        assert!(matches!(
            decode_round_update(&f.params, &f.packing, &renamed, &f.bytes),
            Err(WireError::LayoutMismatch { .. })
        ));
        // Truncated, extended, or oversized input.
        assert!(decode(&f.bytes[..f.bytes.len() - 1]).is_err());
        let mut longer = f.bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let huge = vec![0u8; f.bytes.len() * 2];
        assert!(matches!(decode(&huge), Err(WireError::TooLarge { .. })));
        // A residue at or above its prime.
        let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
        message.ciphertexts[0][..10].fill(0xff);
        assert!(matches!(
            decode(&message.encode_to_vec()),
            Err(WireError::Residue { .. })
        ));
        // Wrong version or parameter set.
        let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
        message.version = 1;
        assert!(matches!(
            decode(&message.encode_to_vec()),
            Err(WireError::Version { .. })
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
            Err(WireError::NonCanonical { .. }
                | WireError::Length { .. }
                | WireError::TooLarge { .. })
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
        // A ciphertext too few.
        let mut message = proto::RoundUpdate::decode(f.bytes.as_slice()).unwrap();
        message.ciphertexts.pop();
        assert!(matches!(
            decode(&message.encode_to_vec()),
            Err(WireError::CiphertextCount { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any single flipped byte is refused or decodes to a valid update
        /// of the same shape; it never panics.
        #[test]
        fn flipped_bytes_never_panic(position in any::<prop::sample::Index>(), bit in 0u8..8) {
            let f = round_fixture();
            let mut bytes = f.bytes.clone();
            let i = position.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(update) = decode_round_update(&f.params, &f.packing, &f.layout, &bytes) {
                prop_assert_eq!(update.ciphertexts().len(), 2);
            }
        }
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
