use super::*;
use proptest::prelude::*;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::{Packing, SecretKey};
use ringsum_core::update::{ciphertexts_for, encrypt_update};
use ringsum_math::{CrsSeed, Csprng};
use std::sync::OnceLock;

struct Fixture {
    params: ParameterSet,
    pk: PublicKey,
    update: EncryptedUpdate,
    bytes: Vec<u8>,
    count: usize,
}

/// One small update (N = 4096, two ciphertexts), built once.
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
        let count = ciphertexts_for(&packing, &layout);
        Fixture {
            params,
            pk,
            update,
            bytes,
            count,
        }
    })
}

#[test]
fn round_trips_are_the_identity() {
    let f = fixture();
    assert_eq!(f.count, 2);
    assert_eq!(
        decode_update(&f.params, &f.bytes, f.count).unwrap(),
        f.update
    );
    let pk_bytes = encode_public_key(&f.pk, 9);
    assert_eq!(
        decode_public_key(&f.params, &pk_bytes).unwrap(),
        (f.pk.clone(), 9)
    );
    let ct = &f.update.ciphertexts[1];
    assert_eq!(
        &decode_ciphertext(&f.params, &encode_ciphertext(ct)).unwrap(),
        ct
    );
}

#[test]
fn the_size_is_the_packed_size() {
    let f = fixture();
    let ring = f.params.ring();
    // Two 50-bit primes: 100 bits per coefficient, 4096 coefficients.
    assert_eq!(packed_poly_len(ring), 4096 * 100 / 8);
    let payload = 2 * 2 * packed_poly_len(ring);
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
    let decode = |m: &proto::EncryptedUpdate| decode_update(&f.params, &m.encode_to_vec(), f.count);

    let mut m = message.clone();
    m.version = 2;
    assert!(matches!(
        decode(&m),
        Err(WireError::Version {
            found: 2,
            supported: 1
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
        decode_update(&f.params, &big, f.count),
        Err(WireError::TooLarge { .. })
    ));
    // Garbage.
    assert!(matches!(
        decode_update(&f.params, &[0xFF; 64], f.count),
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
    let limit = max_update_len(&f.params, f.count);
    while bytes.len() + 2 <= limit {
        bytes.extend_from_slice(&[0x2A, 0x00]);
    }
    assert!(matches!(
        decode_update(&f.params, &bytes, f.count),
        Err(WireError::Length {
            field: "ciphertexts",
            found: 0,
            ..
        })
    ));
    // One entry too many is counted, not decoded.
    let mut message = proto::EncryptedUpdate::decode(f.bytes.as_slice()).unwrap();
    let extra = message.ciphertexts[0].clone();
    message.ciphertexts.push(extra);
    let bytes = message.encode_to_vec();
    assert!(matches!(
        decode_update(&f.params, &bytes, f.count),
        Err(WireError::TooLarge { .. } | WireError::CiphertextCount { .. })
    ));
    assert!(decode_update(&f.params, &bytes, f.count + 1).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any truncation is refused (never a panic).
    #[test]
    fn truncations_are_refused(cut in 0usize..205_000) {
        let f = fixture();
        let cut = cut % f.bytes.len();
        prop_assert!(decode_update(&f.params, &f.bytes[..cut], f.count).is_err());
    }

    /// A single flipped bit anywhere is refused or decodes to a valid update
    /// of the same shape; it never panics.
    #[test]
    fn bit_flips_never_panic(position in 0usize..(205_000 * 8)) {
        let f = fixture();
        let position = position % (f.bytes.len() * 8);
        let mut bytes = f.bytes.clone();
        bytes[position / 8] ^= 1 << (position % 8);
        if let Ok(update) = decode_update(&f.params, &bytes, f.count) {
            prop_assert_eq!(update.ciphertexts.len(), f.count);
            prop_assert_ne!(update, f.update.clone());
        }
    }

    /// Arbitrary bytes never panic any decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let f = fixture();
        let _ = decode_update(&f.params, &bytes, f.count);
        let _ = decode_public_key(&f.params, &bytes);
        let _ = decode_ciphertext(&f.params, &bytes);
    }
}
