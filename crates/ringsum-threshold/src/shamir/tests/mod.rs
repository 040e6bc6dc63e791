#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod codec;
mod combine;
mod stats;

use ringsum_math::Csprng;
use sha3::{Digest, Sha3_256};

use super::*;
use crate::error::ThresholdError;
use crate::holder_id::HolderId;

/// B_s of the default parameter sets.
pub(super) const SECRET_BOUND: i64 = 27;

pub(super) fn field(p: u64) -> ShareField {
    ShareField::new(p).unwrap()
}

pub(super) fn ids(n: u32) -> Vec<HolderId> {
    (1..=n).map(HolderId).collect()
}

pub(super) fn committee(p: u64, n: u32, t: u32) -> ShareCommittee {
    ShareCommittee::new(field(p), &ids(n), t, 64).unwrap()
}

/// Every client's messages, one list per client, in holder order.
pub(super) type Dealt = Vec<Vec<(HolderId, ShareMessage)>>;

/// Shares every secret.
pub(super) fn deal(committee: &ShareCommittee, secrets: &[Vec<i64>], rng: &mut Csprng) -> Dealt {
    secrets
        .iter()
        .map(|s| share_secret(committee, s, rng).unwrap())
        .collect()
}

/// The answers of `holders` for all the dealt clients.
pub(super) fn answers(
    committee: &ShareCommittee,
    dealt: &[Vec<(HolderId, ShareMessage)>],
    holders: &[HolderId],
    degree: usize,
) -> Vec<HolderAnswer> {
    holders
        .iter()
        .map(|&holder| {
            let shares: Vec<ShareValues> = dealt
                .iter()
                .map(|messages| {
                    let (_, message) = messages.iter().find(|(h, _)| *h == holder).unwrap();
                    message.expand()
                })
                .collect();
            let keys: Vec<AnswerKey> = (0..shares.len()).map(client_key).collect();
            let refs: Vec<(&ShareValues, &AnswerKey)> = shares.iter().zip(&keys).collect();
            answer_for_set(committee, holder, degree, TEST_CONTEXT, &refs).unwrap()
        })
        .collect()
}

/// The request context the tests' answers are for.
pub(super) const TEST_CONTEXT: &[u8] = b"test round";

/// Client `i`'s answer key in the tests.
pub(super) fn client_key(i: usize) -> AnswerKey {
    AnswerKey::from_bytes([u8::try_from(i % 256).unwrap(); 32])
}

pub(super) fn exact_sum(secrets: &[Vec<i64>]) -> Vec<i64> {
    let degree = secrets.first().map_or(0, Vec::len);
    (0..degree)
        .map(|j| secrets.iter().map(|s| s[j]).sum())
        .collect()
}

#[test]
fn shamir_field_validation() {
    for bad in [0, 1, 2, 251, 256, 1 << 32, (1 << 32) + 15, u64::MAX] {
        assert!(
            matches!(
                ShareField::new(bad),
                Err(ThresholdError::ShareFieldOutOfRange { modulus }) if modulus == bad
            ) || matches!(
                ShareField::new(bad),
                Err(ThresholdError::ShareFieldNotPrime { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        ShareField::new(256),
        Err(ThresholdError::ShareFieldOutOfRange { modulus: 256 })
    ));
    assert!(matches!(
        ShareField::new(65535),
        Err(ThresholdError::ShareFieldNotPrime { modulus: 65535 })
    ));
    for (p, bits) in [
        (257, 9),
        (65521, 16),
        (65537, 17),
        (131_071, 17),
        (4_294_967_291, 32),
    ] {
        let f = field(p);
        assert_eq!((f.value(), f.bits()), (p, bits));
    }
    assert_eq!(ShareField::DEFAULT, field(65521));
    assert_eq!(format!("{}", ShareField::DEFAULT), "Z_65521");
}

#[test]
fn shamir_field_arithmetic_matches_integers() {
    let mut rng = Csprng::from_seed([1; 32]);
    for p in [257u64, 65521, 65537, 2_147_483_647, 4_294_967_291] {
        let f = field(p);
        let specials = [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            i64::MAX,
            -(p as i64),
            p as i64,
        ];
        let randoms: Vec<i64> = (0..2000).map(|_| rng.next_u64() as i64).collect();
        for &v in specials.iter().chain(&randoms) {
            assert_eq!(u64::from(f.reduce_signed(v)), v.rem_euclid(p as i64) as u64);
            let small = v % 100_000;
            assert_eq!(
                u64::from(f.reduce_signed(small)),
                small.rem_euclid(p as i64) as u64
            );
        }
        for _ in 0..2000 {
            let a = (rng.next_u64() % p) as u32;
            let b = (rng.next_u64() % p) as u32;
            let (a64, b64) = (u64::from(a), u64::from(b));
            assert_eq!(u64::from(f.add(a, b)), (a64 + b64) % p);
            assert_eq!(u64::from(f.sub(a, b)), (a64 + p - b64) % p);
            assert_eq!(u64::from(f.mul(a, b)), a64 * b64 % p);
            let word = rng.next_u64();
            assert_eq!(u64::from(f.reduce(word)), word % p);
            let lazy = f.mul_weight_lazy(b, f.weight(a));
            assert!(lazy < 2 * p);
            assert_eq!(lazy % p, a64 * b64 % p);
            let centred = f.centre(a);
            assert!(centred.unsigned_abs() <= (p - 1) / 2);
            assert_eq!(centred.rem_euclid(p as i64) as u64, a64);
            if a != 0 {
                assert_eq!(f.mul(a, f.inv_vartime(a).unwrap()), 1);
            }
        }
        assert_eq!(f.inv_vartime(0), None);
        assert_eq!(f.out_of_range((p - 1) as u32), 0);
        assert_eq!(f.out_of_range(p as u32), 1);
        assert_eq!(
            f.out_of_range(u32::MAX),
            u64::from(u64::from(u32::MAX) >= p)
        );
    }
}

#[test]
fn shamir_committee_validation() {
    let f = field(65521);
    let new = |holders: &[u32], t: u32, max: u32| {
        let holders: Vec<HolderId> = holders.iter().copied().map(HolderId).collect();
        ShareCommittee::new(f, &holders, t, max)
    };
    assert!(matches!(
        new(&[], 1, 9),
        Err(ThresholdError::EmptyCommittee)
    ));
    assert!(matches!(
        new(&[1, 2, 3], 2, 2),
        Err(ThresholdError::TooManyHolders {
            holders: 3,
            max_holders: 2
        })
    ));
    assert!(matches!(
        new(&[1, 2, 3], 0, 9),
        Err(ThresholdError::ThresholdOutOfRange {
            threshold: 0,
            holders: 3
        })
    ));
    assert!(matches!(
        new(&[1, 2, 3], 4, 9),
        Err(ThresholdError::ThresholdOutOfRange {
            threshold: 4,
            holders: 3
        })
    ));
    assert!(matches!(
        new(&[1, 0, 3], 2, 9),
        Err(ThresholdError::InvalidHolderId {
            holder: HolderId(0),
            limit: 65521
        })
    ));
    assert!(matches!(
        new(&[1, 65521, 3], 2, 9),
        Err(ThresholdError::InvalidHolderId {
            holder: HolderId(65521),
            ..
        })
    ));
    assert!(matches!(
        new(&[3, 1, 3], 2, 9),
        Err(ThresholdError::DuplicateHolder {
            holder: HolderId(3),
            ..
        })
    ));
    let err = new(&[1, 2, 3, 4], 2, 9).unwrap_err();
    assert!(matches!(
        err,
        ThresholdError::ThresholdNotMajority {
            threshold: 2,
            holders: 4
        }
    ));
    assert_eq!(
        err.to_string(),
        "threshold t = 2 with n = 4 holders: two disjoint quorums could answer two different sets; need 2t > n"
    );
    assert!(matches!(
        new(&[1, 2], 1, 9),
        Err(ThresholdError::ThresholdNotMajority {
            threshold: 1,
            holders: 2
        })
    ));
    let c = new(&[9, 65520, 2], 2, 3).unwrap();
    assert_eq!(c.holders(), &[HolderId(2), HolderId(9), HolderId(65520)]);
    assert_eq!((c.threshold(), c.field()), (2, f));
    assert!(c.contains(HolderId(9)) && !c.contains(HolderId(3)));
    assert!(new(&[1], 1, 1).is_ok());
}

#[test]
fn shamir_seeded_holders_are_the_first_t_minus_1() {
    let mut rng = Csprng::from_seed([2; 32]);
    let c = ShareCommittee::new(field(65521), &[7, 3, 5, 11, 2].map(HolderId), 3, 9).unwrap();
    let dealt = share_secret(&c, &[1, -2, 3], &mut rng).unwrap();
    let order: Vec<u32> = dealt.iter().map(|(h, _)| h.0).collect();
    assert_eq!(order, [2, 3, 5, 7, 11]);
    let seeded: Vec<bool> = dealt
        .iter()
        .map(|(_, m)| matches!(m, ShareMessage::Seed(_)))
        .collect();
    assert_eq!(seeded, [true, true, false, false, false]);
    for (_, message) in &dealt {
        assert_eq!((message.degree(), message.field()), (3, field(65521)));
        assert_eq!(message.expand().degree(), 3);
    }
}

#[test]
fn shamir_threshold_one_gives_everyone_the_secret() {
    let mut rng = Csprng::from_seed([3; 32]);
    let c = committee(257, 1, 1);
    let dealt = share_secret(&c, &[-1, 0, 27, 300], &mut rng).unwrap();
    let [(holder, ShareMessage::Values(values))] = dealt.as_slice() else {
        panic!("one share of values expected");
    };
    assert_eq!(*holder, HolderId(1));
    assert_eq!(values.values(), &[256, 0, 27, 43]);
}

#[test]
fn shamir_every_t_subset_reconstructs() {
    let mut rng = Csprng::from_seed([4; 32]);
    let c = committee(65521, 5, 3);
    let secret = vec![27, -27, 0, 13, -1, 2, 26, -26];
    let dealt = deal(&c, std::slice::from_ref(&secret), &mut rng);
    for mask in 0u32..32 {
        let subset: Vec<HolderId> = ids(5)
            .into_iter()
            .filter(|h| mask & (1 << (h.0 - 1)) != 0)
            .collect();
        let answers = answers(&c, &dealt, &subset, 8);
        let result = combine_answers(&c, &answers, 8, 27);
        if subset.len() < 3 {
            assert!(matches!(
                result,
                Err(ThresholdError::TooFewAnswers { needed: 3, found }) if found == subset.len()
            ));
        } else {
            let sum = result.unwrap();
            assert_eq!(sum.coefficients(), secret.as_slice());
            assert_eq!(sum.used(), subset.as_slice());
            assert!(sum.liars().is_empty());
        }
    }
}

#[test]
fn shamir_sharing_refuses_bad_degrees() {
    let mut rng = Csprng::from_seed([5; 32]);
    let c = committee(257, 3, 2);
    assert!(matches!(
        share_secret(&c, &[], &mut rng),
        Err(ThresholdError::InvalidShareDegree { degree: 0, .. })
    ));
    assert!(matches!(
        KeySumAccumulator::new(c.field(), MAX_SHARE_DEGREE + 1, HolderId(1)),
        Err(ThresholdError::InvalidShareDegree { .. })
    ));
}

#[test]
fn shamir_accumulator_checks_its_inputs() {
    let mut rng = Csprng::from_seed([6; 32]);
    let c = committee(257, 3, 2);
    let other = committee(65521, 3, 2);
    let share = |c: &ShareCommittee, degree: usize, rng: &mut Csprng| {
        share_secret(c, &vec![1; degree], rng).unwrap()[2]
            .1
            .expand()
    };
    let mut acc = KeySumAccumulator::new(c.field(), 4, HolderId(3)).unwrap();
    assert!(matches!(
        acc.add(&share(&other, 4, &mut rng), &client_key(0)),
        Err(ThresholdError::ShareFieldMismatch {
            expected: 257,
            found: 65521,
            ..
        })
    ));
    assert!(matches!(
        acc.add(&share(&c, 5, &mut rng), &client_key(0)),
        Err(ThresholdError::ShareLengthMismatch {
            expected: 4,
            found: 5,
            ..
        })
    ));
    assert_eq!(acc.clients(), 0);
    acc.add(&share(&c, 4, &mut rng), &client_key(0)).unwrap();
    acc.add(&share(&c, 4, &mut rng), &client_key(1)).unwrap();
    assert_eq!(acc.clients(), 2);
    assert!(format!("{acc:?}").contains("clients: 2"));
    let answer = acc.finish(&c, TEST_CONTEXT).unwrap();
    assert_eq!((answer.holder(), answer.degree()), (HolderId(3), 4));
    // A holder outside the committee, or a committee of another field.
    let outsider = KeySumAccumulator::new(c.field(), 4, HolderId(4)).unwrap();
    assert!(matches!(
        outsider.finish(&c, TEST_CONTEXT),
        Err(ThresholdError::NotShareHolder {
            holder: HolderId(4)
        })
    ));
    let foreign = KeySumAccumulator::new(c.field(), 4, HolderId(1)).unwrap();
    assert!(matches!(
        foreign.finish(&other, TEST_CONTEXT),
        Err(ThresholdError::ShareFieldMismatch { .. })
    ));
    assert!(matches!(
        KeySumAccumulator::new(c.field(), 4, HolderId(257)),
        Err(ThresholdError::InvalidHolderId { .. })
    ));
}

#[test]
fn shamir_secrets_are_never_printed() {
    let mut rng = Csprng::from_seed([8; 32]);
    let c = committee(65521, 3, 2);
    let dealt = share_secret(&c, &[12345, -12345], &mut rng).unwrap();
    assert_eq!(
        format!("{:?}", dealt[0].1),
        "Seed(ShareSeed { field: ShareField { modulus: 65521, bits: 16 }, degree: 2, .. })"
    );
    assert_eq!(
        format!("{:?}", dealt[1].1),
        "Values(ShareValues { field: ShareField { modulus: 65521, bits: 16 }, degree: 2, .. })"
    );
    let answers = answers(&c, &[dealt], &ids(3), 2);
    assert!(!format!("{:?}", answers[0]).contains('['));
    let sum = combine_answers(&c, &answers, 2, 12345).unwrap();
    assert_eq!(sum.coefficients(), &[12345, -12345]);
    let printed = format!("{sum:?}");
    assert!(!printed.contains("12345"), "{printed}");
}

#[test]
fn shamir_share_equality_is_by_content() {
    let mut rng = Csprng::from_seed([9; 32]);
    let c = committee(65521, 3, 2);
    let a = share_secret(&c, &[1, 2], &mut rng).unwrap();
    let b = share_secret(&c, &[1, 2], &mut rng).unwrap();
    assert_eq!(a[0].1, a[0].1.clone());
    assert_eq!(a[1].1, a[1].1.clone());
    assert_ne!(a[0].1, b[0].1);
    assert_ne!(a[1].1, b[1].1);
    assert_ne!(a[0].1, a[1].1);
    assert_eq!(a[1].1.expand(), a[1].1.expand());
}

/// Known answers for the seed expansion, computed independently with
/// Python (hashlib.sha3_256 for the key, the `cryptography` package's
/// ChaCha20 with a zero 16-byte counter-and-nonce for the keystream) from
/// the seed 00 01 .. 1f: the first eight elements, and the SHA3-256 of all
/// 16384 elements as u32 little-endian.
#[test]
fn shamir_seed_expansion_known_answers() {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let vectors: [(u64, [u32; 8], &str); 4] = [
        (
            65521,
            [39481, 44227, 14216, 31181, 21725, 36192, 15539, 45079],
            "2dee2fd416ded56b287829d4265d7db14024a950c49bab1f8e7461a32c468fcb",
        ),
        (
            257,
            [57, 195, 221, 179, 23, 109, 165, 62],
            "22a96aa4bb20ff5917d1531fd7285acd3845625abcc62b63a64dc5b29209010b",
        ),
        (
            65537,
            [28080, 15953, 63745, 29012, 33951, 7694, 16789, 64387],
            "cd1e5b67dc5e596cff35a0644414dc9a6e4d3cbd8a409f5f2c0543250a51db05",
        ),
        (
            4_294_967_291,
            [
                2_898_500_153,
                2_043_492_232,
                2_371_900_637,
                2_954_312_883,
                2_191_863_917,
                3_997_061_487,
                1_423_898_881,
                1_267_527_793,
            ],
            "5aacb4e391bee481358960029a4357de36278a4919765187d96bce77d8966497",
        ),
    ];
    for (p, first, digest) in vectors {
        let long = ShareSeed::from_array(field(p), 16384, seed).expand();
        assert_eq!(&long.values()[..8], &first, "p = {p}");
        let mut h = Sha3_256::new();
        for v in long.values() {
            h.update(v.to_le_bytes());
        }
        assert_eq!(hex(&h.finalize()), digest, "p = {p}");
        // The stream does not depend on the refill size: shorter
        // expansions are prefixes.
        for degree in [1, 5, 8, 100, 1500] {
            let short = ShareSeed::from_array(field(p), degree, seed).expand();
            assert_eq!(
                short.values(),
                &long.values()[..degree],
                "p = {p}, N = {degree}"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cross-set combination attack (docs/security.md): with t = 3 of
/// n = 5, holders 1 and 2 asked about A, holders 3 and 4 about B and
/// holder 5 about A u B, no set has a quorum, yet
/// 90 y1 - 60 y2 + 10 y3 - 15 y4 + 6 y5 = 36 s_A + s_B for unmasked
/// answers. With the per-set masks the same combination is unrelated to
/// the secrets.
#[test]
fn shamir_answers_for_different_sets_do_not_combine() {
    let c = committee(65521, 5, 3);
    let field = c.field();
    let degree = 64;
    let mut rng = Csprng::from_seed([21; 32]);
    let secret_a = vec![5i64; degree];
    let secret_b = vec![-7i64; degree];
    let dealt_a = share_secret(&c, &secret_a, &mut rng).unwrap();
    let dealt_b = share_secret(&c, &secret_b, &mut rng).unwrap();
    let (key_a, key_b) = (client_key(1), client_key(2));
    let share_of = |dealt: &[(HolderId, ShareMessage)], holder: u32| {
        dealt
            .iter()
            .find(|(h, _)| h.0 == holder)
            .unwrap()
            .1
            .expand()
    };
    let weights: [(u32, i64); 5] = [(1, 90), (2, -60), (3, 10), (4, -15), (5, 6)];
    let p = i64::try_from(field.value()).unwrap();
    let combine = |answers: &[Vec<u32>]| -> Vec<i64> {
        (0..degree)
            .map(|j| {
                let sum: i64 = answers
                    .iter()
                    .zip(&weights)
                    .map(|(a, (_, w))| i64::from(a[j]) * w)
                    .sum();
                sum.rem_euclid(p)
            })
            .collect()
    };
    let expected = (36 * 5 - 7i64).rem_euclid(p);

    // Unmasked sums of shares: the attack works.
    let raw: Vec<Vec<u32>> = weights
        .iter()
        .map(|&(holder, _)| {
            let a = share_of(&dealt_a, holder);
            let b = share_of(&dealt_b, holder);
            match holder {
                1 | 2 => a.values().to_vec(),
                3 | 4 => b.values().to_vec(),
                _ => a
                    .values()
                    .iter()
                    .zip(b.values())
                    .map(|(&x, &y)| {
                        u32::try_from((u64::from(x) + u64::from(y)) % field.value()).unwrap()
                    })
                    .collect(),
            }
        })
        .collect();
    assert!(combine(&raw).iter().all(|&v| v == expected));

    // Masked answers, each for its own set: the combination is noise.
    let masked: Vec<Vec<u32>> = weights
        .iter()
        .map(|&(holder, _)| {
            let a = share_of(&dealt_a, holder);
            let b = share_of(&dealt_b, holder);
            let id = HolderId(holder);
            let answer = match holder {
                1 | 2 => answer_for_set(&c, id, degree, b"round 1", &[(&a, &key_a)]),
                3 | 4 => answer_for_set(&c, id, degree, b"round 1", &[(&b, &key_b)]),
                _ => answer_for_set(&c, id, degree, b"round 1", &[(&a, &key_a), (&b, &key_b)]),
            };
            answer.unwrap().values().to_vec()
        })
        .collect();
    let hits = combine(&masked).iter().filter(|&&v| v == expected).count();
    assert!(hits <= 2, "{hits} of {degree} coefficients leak");

    // The answers of one set still open it: every holder answering A.
    let answers: Vec<HolderAnswer> = (1..=5)
        .map(|h| {
            let a = share_of(&dealt_a, h);
            answer_for_set(&c, HolderId(h), degree, b"round 1", &[(&a, &key_a)]).unwrap()
        })
        .collect();
    let sum = combine_answers(&c, &answers, degree, 27).unwrap();
    assert_eq!(sum.coefficients(), secret_a.as_slice());
    assert!(sum.liars().is_empty());
    // Another context gives other masks (a replayed request is another set).
    let again = answer_for_set(
        &c,
        HolderId(1),
        degree,
        b"round 2",
        &[(&share_of(&dealt_a, 1), &key_a)],
    )
    .unwrap();
    assert_ne!(again.values(), answers[0].values());
}

#[test]
fn shamir_client_shares_round_trip_with_their_answer_key() {
    let c = committee(65521, 3, 2);
    let mut rng = Csprng::from_seed([22; 32]);
    let dealt = share_secret(&c, &[1, -2, 3, -4], &mut rng).unwrap();
    let key = AnswerKey::random(&mut rng);
    for (_, share) in &dealt {
        let bytes = encode_client_share(&key, share);
        let (decoded_key, decoded) = decode_client_share(c.field(), 4, &bytes).unwrap();
        assert!(decoded_key == key);
        assert!(decoded == *share);
        assert!(decode_client_share(c.field(), 4, &bytes[..31]).is_err());
        assert!(decode_client_share(c.field(), 4, &bytes[..bytes.len() - 1]).is_err());
    }
    assert_eq!(format!("{key:?}"), "AnswerKey { .. }");
}

#[test]
fn shamir_answer_key_commitments_are_deterministic_and_separate() {
    let mut rng = Csprng::from_seed([23; 32]);
    let key = AnswerKey::random(&mut rng);
    let other = AnswerKey::random(&mut rng);
    assert_eq!(key.commitment(), key.clone().commitment());
    assert_ne!(key.commitment(), other.commitment());
    // The public commitment is not the image that keys the masks.
    assert_ne!(key.commitment(), key.mask_input());
    assert!(key == key.clone() && key != other);
}
