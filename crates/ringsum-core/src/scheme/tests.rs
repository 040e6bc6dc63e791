use super::*;
use crate::params::ParameterSet;
use proptest::prelude::*;
use ringsum_math::{CrsSeed, Csprng};

fn setup(id: &str, seed: u8) -> (ParameterSet, Packing, SecretKey, PublicKey, Csprng) {
    let params = ParameterSet::builtin(id).unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([seed; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::generate(&params, &sk, &CrsSeed::new([9; 32]), 0, &mut rng).unwrap();
    (params, packing, sk, pk, rng)
}

fn random_plaintext(params: &ParameterSet, rng: &mut Csprng, magnitude: i64) -> Plaintext {
    let n = params.degree() * params.encoding().slots as usize;
    let slots = (0..n)
        .map(|_| (rng.next_u64() % (2 * magnitude as u64 + 1)) as i64 - magnitude)
        .collect();
    Plaintext::try_new(params, slots).unwrap()
}

#[test]
fn encryption_round_trips_at_every_shipped_set() {
    for id in ParameterSet::builtin_ids() {
        let (params, packing, sk, pk, mut rng) = setup(id, 1);
        let half = 1i64 << (params.encoding().slot_bits - 1);
        // Extreme slot values included.
        let mut pt = random_plaintext(&params, &mut rng, half - 1).into_slots();
        pt[0] = -half;
        pt[1] = half - 1;
        let pt = Plaintext::try_new(&params, pt).unwrap();
        let ct = encrypt(&params, &packing, &pk, &pt, &mut rng).unwrap();
        assert_eq!(decrypt(&params, &packing, &sk, &ct).unwrap(), pt, "{id}");
    }
}

#[test]
fn sums_and_integer_multiples_decrypt_exactly() {
    let (params, packing, sk, pk, mut rng) = setup("pq128-n8192", 2);
    let pts: Vec<Plaintext> = (0..10)
        .map(|_| random_plaintext(&params, &mut rng, 1 << 16))
        .collect();
    let cts: Vec<Ciphertext> = pts
        .iter()
        .map(|p| encrypt(&params, &packing, &pk, p, &mut rng).unwrap())
        .collect();
    let sum = sum_ciphertexts(&cts).unwrap();
    let expected: Vec<i64> = (0..pts[0].slots().len())
        .map(|i| pts.iter().map(|p| p.slots()[i]).sum())
        .collect();
    assert_eq!(
        decrypt(&params, &packing, &sk, &sum).unwrap().slots(),
        expected.as_slice()
    );

    let mut diff = cts[0].clone();
    diff.try_sub_assign(&cts[1]).unwrap();
    let expected: Vec<i64> = pts[0]
        .slots()
        .iter()
        .zip(pts[1].slots())
        .map(|(a, b)| a - b)
        .collect();
    assert_eq!(
        decrypt(&params, &packing, &sk, &diff).unwrap().slots(),
        expected.as_slice()
    );

    let mut scaled = cts[2].clone();
    scaled.mul_integer_assign(-7);
    let expected: Vec<i64> = pts[2].slots().iter().map(|v| -7 * v).collect();
    assert_eq!(
        decrypt(&params, &packing, &sk, &scaled).unwrap().slots(),
        expected.as_slice()
    );
}

#[test]
fn bad_inputs_are_refused() {
    let (params, packing, sk, pk, mut rng) = setup("pq128-n4096", 3);
    let n = params.degree();
    assert!(matches!(
        Plaintext::try_new(&params, vec![0; n - 1]),
        Err(crate::CoreError::CountMismatch { .. })
    ));
    let mut slots = vec![0; n];
    slots[5] = 1 << 23;
    assert!(matches!(
        Plaintext::try_new(&params, slots),
        Err(crate::CoreError::SlotValueOutOfRange {
            index: 5,
            value: 8_388_608,
            slot_bits: 24
        })
    ));
    // A ciphertext of another set cannot be added or decrypted here.
    let (other, other_packing, _, other_pk, _) = setup("pq128-n8192", 4);
    let pt = random_plaintext(&other, &mut rng, 10);
    let foreign = encrypt(&other, &other_packing, &other_pk, &pt, &mut rng).unwrap();
    let mine = encrypt(
        &params,
        &packing,
        &pk,
        &random_plaintext(&params, &mut rng, 10),
        &mut rng,
    )
    .unwrap();
    let mut sum = mine.clone();
    assert!(matches!(
        sum.try_add_assign(&foreign),
        Err(crate::CoreError::ParameterMismatch { .. })
    ));
    assert_eq!(sum, mine, "a refused addition leaves the sum intact");
    assert!(decrypt(&params, &packing, &sk, &foreign).is_err());
    assert!(
        encrypt(
            &params,
            &packing,
            &other_pk,
            &random_plaintext(&params, &mut rng, 1),
            &mut rng
        )
        .is_err()
    );
    // Decrypting with the wrong key does not split into slots.
    let wrong = SecretKey::generate(&params, &mut rng);
    assert!(matches!(
        decrypt(&params, &packing, &wrong, &mine),
        Err(crate::CoreError::DecodeOverflow { .. })
    ));
    assert!(format!("{sk:?}").contains("SecretKey") && !format!("{sk:?}").contains('['));
}

/// The measured noise of a sum of many fresh ciphertexts stays far below
/// the proven bound the validator assumes (which is a worst case).
#[test]
fn measured_noise_stays_below_the_bound() {
    let (params, packing, sk, pk, mut rng) = setup("pq128-n8192", 5);
    let clients = 64;
    let zero = Plaintext::try_new(&params, vec![0; packing.capacity()]).unwrap();
    let cts: Vec<Ciphertext> = (0..clients)
        .map(|_| encrypt(&params, &packing, &pk, &zero, &mut rng).unwrap())
        .collect();
    let fresh = measure_noise_bits_vartime(&params, &packing, &sk, &cts[0], &zero).unwrap();
    let sum = sum_ciphertexts(&cts).unwrap();
    let summed = measure_noise_bits_vartime(&params, &packing, &sk, &sum, &zero).unwrap();
    // Single-key bound for 64 clients: B_e (2N + 1) * 64.
    let bound = (19.0 * (2.0 * 8192.0 + 1.0) * 64.0f64).log2();
    assert!(fresh < bound - 6.0, "fresh {fresh}");
    assert!(summed < bound - 2.0, "summed {summed} vs bound {bound}");
    // Noise grows with the sum: roughly sqrt(64) = 3 bits.
    assert!(
        summed > fresh + 1.5 && summed < fresh + 4.5,
        "fresh {fresh}, summed {summed}"
    );
    // Typical fresh noise: each coefficient of e*u has standard deviation
    // sigma * sqrt(2N/3), here about 236; the maximum over N coefficients is
    // a few standard deviations.
    assert!(fresh > 8.0 && fresh < 13.0, "fresh {fresh}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn any_number_of_clients_sums_exactly(clients in 1usize..=100, seed in any::<u8>()) {
        // 1 to max_clients (100 for this set) clients, values up to the
        // largest a client can send.
        let (params, packing, sk, pk, mut rng) = setup("pq128-n4096", seed);
        prop_assert!(clients as u64 <= params.encoding().max_clients);
        let max = params.encoding().max_quantized as i64;
        let pts: Vec<Plaintext> = (0..clients).map(|_| random_plaintext(&params, &mut rng, max)).collect();
        let cts: Vec<Ciphertext> = pts.iter().map(|p| encrypt(&params, &packing, &pk, p, &mut rng).unwrap()).collect();
        let sum = sum_ciphertexts(&cts).unwrap();
        let expected: Vec<i64> = (0..packing.capacity()).map(|i| pts.iter().map(|p| p.slots()[i]).sum()).collect();
        let decrypted = decrypt(&params, &packing, &sk, &sum).unwrap();
        prop_assert_eq!(decrypted.slots(), expected.as_slice());
    }
}

/// Every slot of every coefficient at the validator's worst case,
/// max_quantized + 1, summed max_clients times (and the same negated):
/// exact, the top slot included. The set is the N = 4096 one with
/// max_clients raised to the most its 24-bit slots allow (127), so the sums
/// reach 99% of the slot.
#[test]
fn full_slots_at_the_validator_bound_decode_exactly() {
    let text = include_str!("../../../../params/pq128-n4096.toml")
        .replace("max_clients = 100", "max_clients = 127");
    let params = ParameterSet::from_toml_str(&text, "edge").unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([11; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::generate(&params, &sk, &CrsSeed::new([9; 32]), 0, &mut rng).unwrap();
    let encoding = params.encoding();
    let worst = encoding.max_quantized as i64 + 1;
    // One more client would not fit: the validator refuses 128.
    let over = text.replace("max_clients = 127", "max_clients = 128");
    assert!(matches!(
        ParameterSet::from_toml_str(&over, "edge"),
        Err(crate::CoreError::SlotOverflow { .. })
    ));
    for sign in [1i64, -1] {
        let pt = Plaintext::try_new(&params, vec![sign * worst; packing.capacity()]).unwrap();
        let ct = encrypt(&params, &packing, &pk, &pt, &mut rng).unwrap();
        let mut sum = ct.clone();
        for _ in 1..encoding.max_clients {
            sum.try_add_assign(&ct).unwrap();
        }
        let expected = sign * worst * encoding.max_clients as i64;
        let capacity = 1i64 << (encoding.slot_bits - 1);
        assert!(expected.abs() < capacity && expected.abs() > capacity * 99 / 100);
        let decrypted = decrypt(&params, &packing, &sk, &sum).unwrap();
        assert!(decrypted.slots().iter().all(|&v| v == expected));
    }
}

/// The same at the default set with its 11 slots: every slot, the top one
/// included, holds max_clients times the largest value.
#[test]
fn all_eleven_slots_fill_at_the_default_set() {
    let (params, packing, sk, pk, mut rng) = setup(crate::DEFAULT_PARAMETER_SET, 14);
    let encoding = params.encoding();
    let worst = encoding.max_quantized as i64 + 1;
    let slots: Vec<i64> = (0..packing.capacity())
        .map(|i| if i % 2 == 0 { worst } else { -worst })
        .collect();
    let ct = encrypt(
        &params,
        &packing,
        &pk,
        &Plaintext::try_new(&params, slots.clone()).unwrap(),
        &mut rng,
    )
    .unwrap();
    let mut sum = ct.clone();
    for _ in 1..encoding.max_clients {
        sum.try_add_assign(&ct).unwrap();
    }
    let decrypted = decrypt(&params, &packing, &sk, &sum).unwrap();
    let n = encoding.max_clients as i64;
    assert!(
        decrypted
            .slots()
            .iter()
            .zip(&slots)
            .all(|(&got, &v)| got == v * n)
    );
}

/// An overflow of the top slot cannot be decoded: the decoder reports it
/// instead of wrapping. (An overflow of a lower slot carries into the next
/// and cannot be seen; the validator and the aggregate's client limit are
/// what prevent it.)
#[test]
fn a_top_slot_overflow_is_reported() {
    let (params, packing, sk, pk, mut rng) = setup("pq128-n8192", 12);
    let top = (1i64 << (params.encoding().slot_bits - 1)) - 1;
    let pt = Plaintext::try_new(&params, vec![top; packing.capacity()]).unwrap();
    let ct = encrypt(&params, &packing, &pk, &pt, &mut rng).unwrap();
    let mut sum = ct.clone();
    sum.try_add_assign(&ct).unwrap();
    assert!(matches!(
        decrypt(&params, &packing, &sk, &sum),
        Err(crate::CoreError::DecodeOverflow {
            ciphertext: 0,
            coefficient: 0
        })
    ));
}

#[test]
fn a_packing_of_another_set_is_refused() {
    let (params, _, sk, pk, mut rng) = setup("pq128-n4096", 13);
    let other = ParameterSet::builtin("pq128-n8192").unwrap();
    let foreign = Packing::new(&other);
    let pt = random_plaintext(&params, &mut rng, 3);
    assert!(matches!(
        encrypt(&params, &foreign, &pk, &pt, &mut rng),
        Err(crate::CoreError::ParameterMismatch { .. })
    ));
    let ct = encrypt(&params, &Packing::new(&params), &pk, &pt, &mut rng).unwrap();
    assert!(decrypt(&params, &foreign, &sk, &ct).is_err());
    assert!(!format!("{pt:?}").contains(&pt.slots()[0].to_string()) || pt.slots()[0].abs() < 10);
}

/// A set whose 34-bit slots rule out the word-sized fast path of the
/// packing, so that its general path is tested too.
fn wide_slot_set() -> ParameterSet {
    let text = include_str!("../../../../params/pq128-n16384.toml")
        .replace("slot_bits = 28", "slot_bits = 34")
        .replace("slots = 11", "slots = 9");
    ParameterSet::from_toml_str(&text, "wide").unwrap()
}

/// Encryptions whose c0 carries only the first `used` coefficients decrypt
/// to their columns, add exactly, and carry zeros past `used`; on both
/// paths of the packing.
#[test]
fn truncated_encryptions_decrypt_and_add_exactly() {
    let narrow = ParameterSet::builtin("pq128-n8192").unwrap();
    for params in [narrow, wide_slot_set()] {
        let packing = Packing::new(&params);
        let mut rng = Csprng::from_seed([21; 32]);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::generate(&params, &sk, &CrsSeed::new([9; 32]), 0, &mut rng).unwrap();
        let n = params.degree();
        let k = packing.slots();
        let half = 1i64 << (params.encoding().slot_bits - 2);
        for used in [1, 7, n / 3, n - 1, n] {
            let column = |rng: &mut Csprng| -> Vec<i64> {
                (0..k * used)
                    .map(|_| (rng.next_u64() % (2 * half as u64)) as i64 - half)
                    .collect()
            };
            let (a, b) = (column(&mut rng), column(&mut rng));
            let ca = encrypt_columns(&params, &packing, &pk, &a, used, &mut rng).unwrap();
            let cb = encrypt_columns(&params, &packing, &pk, &b, used, &mut rng).unwrap();
            assert_eq!(ca.c0_coefficients(), used);
            for row in ca.c0().residues().chunks_exact(n) {
                assert!(row[used..].iter().all(|&x| x == 0), "used {used}");
            }
            let decode = |ct: &Ciphertext| {
                let phase = phase(&params, &sk, ct).unwrap();
                decode_columns(&packing, phase.expose(), 0, used).unwrap()
            };
            assert_eq!(decode(&ca), a, "used {used}");
            // decrypt puts the columns back in place, zeros past `used`.
            let mut in_place = vec![0i64; packing.capacity()];
            for j in 0..k {
                in_place[j * n..j * n + used].copy_from_slice(&a[j * used..(j + 1) * used]);
            }
            let in_place = Plaintext::try_new(&params, in_place).unwrap();
            assert_eq!(decrypt(&params, &packing, &sk, &ca).unwrap(), in_place);
            let noise = measure_noise_bits_vartime(&params, &packing, &sk, &ca, &in_place).unwrap();
            assert!(noise < 25.0, "used {used}: {noise} bits");
            let mut sum = ca.clone();
            sum.try_add_assign(&cb).unwrap();
            assert_eq!(sum.c0_coefficients(), used);
            let expected: Vec<i64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            assert_eq!(decode(&sum), expected, "used {used}");
            // The message rows of the truncated layout are those of the
            // full slot-major plaintext with the same values in place.
            let mut slots = vec![0i64; packing.capacity()];
            for j in 0..k {
                slots[j * n..j * n + used].copy_from_slice(&a[j * used..(j + 1) * used]);
            }
            let full = packing
                .scaled_message(&Plaintext::try_new(&params, slots).unwrap())
                .unwrap();
            for (prime, full_row) in full.residues().chunks_exact(n).enumerate() {
                let mut row = vec![0u64; n];
                packing.add_message_row(prime, &a, used, &mut row);
                assert_eq!(&row[..used], &full_row[..used], "used {used}");
                assert!(row[used..].iter().all(|&x| x == 0));
            }
        }
        // A truncation must leave zeros behind it; lengths are checked.
        let ct = encrypt_columns(&params, &packing, &pk, &vec![0; k * 5], 5, &mut rng).unwrap();
        assert!(matches!(
            Ciphertext::from_parts_truncated(&params, ct.c0().clone(), ct.c1().clone(), 4),
            Err(crate::CoreError::NonZeroTruncation {
                coefficients: 4,
                coefficient: 4
            })
        ));
        assert!(
            Ciphertext::from_parts_truncated(&params, ct.c0().clone(), ct.c1().clone(), 6).is_ok()
        );
        assert!(matches!(
            Ciphertext::from_parts_truncated(&params, ct.c0().clone(), ct.c1().clone(), n + 1),
            Err(crate::CoreError::CountMismatch { .. })
        ));
        for (columns, used) in [(0, 0), (k * 3 - 1, 3), (k * (n + 1), n + 1)] {
            assert!(matches!(
                encrypt_columns(&params, &packing, &pk, &vec![0; columns], used, &mut rng),
                Err(crate::CoreError::CountMismatch { .. })
            ));
        }
    }
}
