//! The packing on its own: a phase Δ*M + noise, with the noise at the
//! budget's bound, decodes to exactly M (the encryption around it is tested
//! in `crate::round`).

use super::*;
use crate::params::ParameterSet;
use ringsum_math::{Coeff, Csprng, Poly};

fn random_plaintext(params: &ParameterSet, rng: &mut Csprng, magnitude: i64) -> Plaintext {
    let n = params.degree() * params.encoding().slots as usize;
    let slots = (0..n)
        .map(|_| (rng.next_u64() % (2 * magnitude as u64 + 1)) as i64 - magnitude)
        .collect();
    Plaintext::try_new(params, slots).unwrap()
}

/// The largest noise the budget allows on an aggregate, with alternating
/// signs (and a random sign per coefficient past the first two).
fn worst_noise(params: &ParameterSet, rng: &mut Csprng, used: usize) -> Poly<Coeff> {
    let bound = i64::try_from(&params.noise_budget().aggregate).unwrap();
    let mut noise = vec![0i64; params.degree()];
    for (i, e) in noise.iter_mut().take(used).enumerate() {
        let sign = match i {
            0 => 1,
            1 => -1,
            _ if rng.next_u64().is_multiple_of(2) => 1,
            _ => -1,
        };
        *e = sign * bound;
    }
    Poly::try_from_i64(params.ring(), &noise).unwrap()
}

fn phase_of(
    params: &ParameterSet,
    packing: &Packing,
    pt: &Plaintext,
    rng: &mut Csprng,
) -> Poly<Coeff> {
    let mut phase = packing.scaled_message(pt).unwrap();
    phase
        .try_add_assign(&worst_noise(params, rng, params.degree()))
        .unwrap();
    phase
}

#[test]
fn packing_round_trips_at_every_shipped_set() {
    for id in ParameterSet::builtin_ids() {
        let params = ParameterSet::builtin(id).unwrap();
        let packing = Packing::new(&params);
        let mut rng = Csprng::from_seed([1; 32]);
        let half = 1i64 << (params.encoding().slot_bits - 1);
        // Extreme slot values included.
        let mut pt = random_plaintext(&params, &mut rng, half - 1).into_slots();
        pt[0] = -half;
        pt[1] = half - 1;
        let pt = Plaintext::try_new(&params, pt).unwrap();
        let phase = phase_of(&params, &packing, &pt, &mut rng);
        assert_eq!(decode_phase(&packing, &phase, 0).unwrap(), pt, "{id}");
    }
}

/// Every slot of every coefficient at the validator's worst case,
/// max_quantized + 1, summed max_clients times (and the same negated), with
/// the summed noise at its bound: exact, the top slot included. The set is
/// the N = 4096 one with one 28-bit slot and max_clients raised to the most
/// the slot allows (2047, with a share field wide enough for their key
/// sum), so the sums reach 99% of the slot.
#[test]
fn full_slots_at_the_validator_bound_decode_exactly() {
    let text = include_str!("../../../../params/rk128-n4096.toml")
        .replace("slots = 2", "slots = 1")
        .replace("max_clients = 1000", "max_clients = 2047")
        .replace("field_prime = 65521", "field_prime = 131071");
    let params = ParameterSet::from_toml_str(&text, "edge").unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([11; 32]);
    let encoding = params.encoding();
    let worst = encoding.max_quantized as i64 + 1;
    // One more client would not fit: the validator refuses 2048.
    let over = text.replace("max_clients = 2047", "max_clients = 2048");
    assert!(matches!(
        ParameterSet::from_toml_str(&over, "edge"),
        Err(CoreError::SlotOverflow { .. })
    ));
    for sign in [1i64, -1] {
        let one = Plaintext::try_new(&params, vec![sign * worst; packing.capacity()]).unwrap();
        let one = packing.scaled_message(&one).unwrap();
        let mut sum = one.clone();
        for _ in 1..encoding.max_clients {
            sum.try_add_assign(&one).unwrap();
        }
        sum.try_add_assign(&worst_noise(&params, &mut rng, params.degree()))
            .unwrap();
        let expected = sign * worst * encoding.max_clients as i64;
        let capacity = 1i64 << (encoding.slot_bits - 1);
        assert!(expected.abs() < capacity && expected.abs() > capacity * 99 / 100);
        let decoded = decode_phase(&packing, &sum, 0).unwrap();
        assert!(decoded.slots().iter().all(|&v| v == expected));
    }
}

/// The same at the default set with its 13 slots: every slot, the top one
/// included, holds max_clients times the largest value.
#[test]
fn all_thirteen_slots_fill_at_the_default_set() {
    let params = ParameterSet::builtin(crate::DEFAULT_PARAMETER_SET).unwrap();
    let packing = Packing::new(&params);
    assert_eq!(packing.slots(), 13);
    let mut rng = Csprng::from_seed([14; 32]);
    let encoding = params.encoding();
    let n = encoding.max_clients as i64;
    let worst = (encoding.max_quantized as i64 + 1) * n;
    let slots: Vec<i64> = (0..packing.capacity())
        .map(|i| if i % 2 == 0 { worst } else { -worst })
        .collect();
    let pt = Plaintext::try_new(&params, slots.clone()).unwrap();
    let phase = phase_of(&params, &packing, &pt, &mut rng);
    assert_eq!(decode_phase(&packing, &phase, 0).unwrap().slots(), slots);
}

/// An overflow of the top slot cannot be decoded: the decoder reports it
/// instead of wrapping. (An overflow of a lower slot carries into the next
/// and cannot be seen; the validator and the aggregate's client limit are
/// what prevent it.)
#[test]
fn a_top_slot_overflow_is_reported() {
    let params = ParameterSet::builtin("rk128-n8192").unwrap();
    let packing = Packing::new(&params);
    let top = (1i64 << (params.encoding().slot_bits - 1)) - 1;
    let pt = Plaintext::try_new(&params, vec![top; packing.capacity()]).unwrap();
    let mut sum = packing.scaled_message(&pt).unwrap();
    sum.try_add_assign(&packing.scaled_message(&pt).unwrap())
        .unwrap();
    assert!(matches!(
        decode_phase(&packing, &sum, 0),
        Err(CoreError::DecodeOverflow {
            ciphertext: 0,
            coefficient: 0
        })
    ));
}

#[test]
fn a_plaintext_of_another_set_is_refused_and_never_printed() {
    let params = ParameterSet::builtin("rk128-n4096").unwrap();
    let other = ParameterSet::builtin("rk128-n8192").unwrap();
    let mut rng = Csprng::from_seed([13; 32]);
    let pt = random_plaintext(&params, &mut rng, 1000);
    assert!(matches!(
        Packing::new(&other).scaled_message(&pt),
        Err(CoreError::CountMismatch { .. })
    ));
    assert!(matches!(
        Plaintext::try_new(&params, vec![0; 7]),
        Err(CoreError::CountMismatch { .. })
    ));
    let half = 1i64 << (params.encoding().slot_bits - 1);
    let mut slots = vec![0; Packing::new(&params).capacity()];
    slots[3] = half;
    assert!(matches!(
        Plaintext::try_new(&params, slots),
        Err(CoreError::SlotValueOutOfRange { index: 3, .. })
    ));
    assert!(!format!("{pt:?}").contains(&pt.slots()[0].to_string()) || pt.slots()[0].abs() < 10);
}

/// A set whose 34-bit slots rule out the word-sized fast path of the
/// packing, so that its general path is tested too.
fn wide_slot_set() -> ParameterSet {
    let text = include_str!("../../../../params/rk128-n16384.toml")
        .replace("slot_bits = 28", "slot_bits = 34")
        .replace("slots = 13", "slots = 9");
    ParameterSet::from_toml_str(&text, "wide").unwrap()
}

/// Messages that occupy only the first `used` coefficients (K columns of
/// `used` values, the layout of a truncated ciphertext) decode to their
/// columns, add exactly, and match the rows of the full slot-major
/// plaintext with the same values in place; on both paths of the packing.
#[test]
fn truncated_columns_decode_and_add_exactly() {
    let narrow = ParameterSet::builtin("rk128-n8192").unwrap();
    for params in [narrow, wide_slot_set()] {
        let packing = Packing::new(&params);
        let mut rng = Csprng::from_seed([21; 32]);
        let ring = params.ring();
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
            let message = |columns: &[i64]| {
                let mut residues = vec![0u64; ring.poly_len()];
                packing.add_message(columns, used, &mut residues);
                Poly::<Coeff>::try_from_residues(ring, residues).unwrap()
            };
            let (ma, mb) = (message(&a), message(&b));
            for row in ma.residues().chunks_exact(n) {
                assert!(row[used..].iter().all(|&x| x == 0), "used {used}");
            }
            let noisy = |m: &Poly<Coeff>, rng: &mut Csprng| {
                let mut phase = m.clone();
                phase
                    .try_add_assign(&worst_noise(&params, rng, used))
                    .unwrap();
                phase
            };
            let decode = |phase: &Poly<Coeff>| decode_columns(&packing, phase, 0, used).unwrap();
            assert_eq!(decode(&noisy(&ma, &mut rng)), a, "used {used}");
            let mut sum = ma.clone();
            sum.try_add_assign(&mb).unwrap();
            let expected: Vec<i64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            assert_eq!(decode(&noisy(&sum, &mut rng)), expected, "used {used}");
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
                assert_eq!(&ma.residues()[prime * n..(prime + 1) * n], row.as_slice());
            }
        }
    }
}
