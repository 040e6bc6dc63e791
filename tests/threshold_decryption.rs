//! Threshold decryption end to end: a key ceremony among n holders, many
//! clients, and decryption by random active sets of at least t holders.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use proptest::prelude::*;
use ringsum::core::ParameterSet;
use ringsum::core::model::ModelLayout;
use ringsum::core::scheme::Packing;
use ringsum::core::update::{Aggregate, RoundId, encrypt_update};
use ringsum::math::{CrsSeed, Csprng};
use ringsum::threshold::{
    Combiner, Committee, DecryptionRequest, HolderId, InMemoryTransport, KeyHolder, ShareLedger,
    flooding_bound, run_ceremony,
};

/// Picks `size` distinct holders out of 1..=n from `choice` bits.
fn pick(n: u32, size: usize, mut choice: u64) -> Vec<HolderId> {
    let mut pool: Vec<HolderId> = (1..=n).map(HolderId).collect();
    let mut out = Vec::with_capacity(size);
    for _ in 0..size {
        let i = (choice % pool.len() as u64) as usize;
        choice = (choice / pool.len() as u64) ^ choice.rotate_left(17);
        out.push(pool.swap_remove(i));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random n in 2..=20, t in 1..=n, three active sets of random sizes
    /// >= t: every set decrypts the aggregate exactly to the same result as
    /// the others (the aggregate is re-randomised between sets, as a real
    /// retry would).
    #[test]
    fn any_active_set_of_at_least_t_decrypts_exactly(
        n in 2u32..=20,
        t_frac in 0.0f64..1.0,
        clients in 1usize..6,
        choices in proptest::array::uniform3((0.0f64..1.0, any::<u64>())),
        seed in any::<u8>(),
    ) {
        let t = 1 + ((f64::from(n) * t_frac) as u32).min(n - 1);
        let params = ParameterSet::builtin("pq128-n8192").unwrap();
        let packing = Packing::new(&params);
        let mut rng = Csprng::from_seed([seed; 32]);
        let ids: Vec<HolderId> = (1..=n).map(HolderId).collect();
        let committee = Committee::new(&params, 1, &ids, t).unwrap();
        let ceremony = run_ceremony(
            &params, &committee, &CrsSeed::new([seed ^ 1; 32]),
            &mut InMemoryTransport::new(), &mut rng,
        ).unwrap();
        let mut holders: Vec<KeyHolder> = ceremony.key_shares.into_iter()
            .map(|k| KeyHolder::new(&params, committee.clone(), k, ShareLedger::in_memory()).unwrap())
            .collect();

        let layout = ModelLayout::try_new([("w", vec![300])]).unwrap();
        let round = RoundId(2);
        let mut aggregate = Aggregate::new(&params, &packing, &layout, round);
        let mut inputs = Vec::new();
        for c in 0..clients {
            let values: Vec<f32> = (0..300).map(|i| ((i * 7 + c * 13) % 41) as f32 / 20.0 - 1.0).collect();
            let update = encrypt_update(
                &params, &packing, &ceremony.public_key, &layout, &values, 50 + c as u64, round, &mut rng,
            ).unwrap();
            aggregate.try_add(&update).unwrap();
            inputs.push(values);
        }

        let mut results = Vec::new();
        for (frac, choice) in choices {
            let size = t as usize + ((f64::from(n - t + 1) * frac) as usize).min((n - t) as usize);
            let active = committee.active_set(&pick(n, size, choice)).unwrap();
            let mut combiner = Combiner::new(
                &params,
                DecryptionRequest::new(&params, &committee, &active, &aggregate).unwrap(),
            ).unwrap();
            for h in holders.iter_mut().filter(|h| active.contains(h.id())) {
                combiner.add(h.decryption_share(&params, &aggregate, &active).unwrap()).unwrap();
            }
            results.push(combiner.decode(&params, &packing, &layout).unwrap());
            aggregate.rerandomize(&params, &packing, &ceremony.public_key, &mut rng).unwrap();
        }
        // Every set gives the same exact integers, hence the same average.
        prop_assert_eq!(&results[0], &results[1]);
        prop_assert_eq!(&results[0], &results[2]);
        // And it is the weighted average of the inputs within the bound.
        let weights: Vec<f64> = (0..clients).map(|c| (50 + c) as f64).collect();
        let total: f64 = weights.iter().sum();
        for i in 0..300 {
            let exact: f64 = inputs.iter().zip(&weights).map(|(v, w)| f64::from(v[i]) * w).sum::<f64>() / total;
            prop_assert!((f64::from(results[0].average[0][i]) - exact).abs() <= results[0].error_bound);
        }
    }
}

/// Each share carries flooding that spans most of [-B, B]: d - l s' c1 is
/// measured for two shares of the same plaintext (the aggregate
/// re-randomised in between, so the c1 differ); the same c1 never gets a
/// second flooding (see the ledger tests of ringsum-threshold).
#[test]
fn shares_carry_fresh_flooding() {
    let params = ParameterSet::builtin("pq128-n4096").unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_os().unwrap();
    let ids: Vec<HolderId> = (1..=3).map(HolderId).collect();
    let committee = Committee::new(&params, 0, &ids, 2).unwrap();
    let ceremony = run_ceremony(
        &params,
        &committee,
        &CrsSeed::new([3; 32]),
        &mut InMemoryTransport::new(),
        &mut rng,
    )
    .unwrap();
    let layout = ModelLayout::try_new([("w", vec![10])]).unwrap();
    let mut aggregate = Aggregate::new(&params, &packing, &layout, RoundId(0));
    let update = encrypt_update(
        &params,
        &packing,
        &ceremony.public_key,
        &layout,
        &[0.25; 10],
        10,
        RoundId(0),
        &mut rng,
    )
    .unwrap();
    aggregate.try_add(&update).unwrap();
    let key = ceremony.key_shares[0].clone();
    let mut holder = KeyHolder::new(
        &params,
        committee.clone(),
        key.clone(),
        ShareLedger::in_memory(),
    )
    .unwrap();
    let active = committee.active_set(&ids[..2]).unwrap();
    let lagrange = active.lagrange(params.ring(), HolderId(1)).unwrap();
    let bound = flooding_bound(&params);
    let mut floods = Vec::new();
    for _ in 0..2 {
        let share = holder
            .decryption_share(&params, &aggregate, &active)
            .unwrap();
        let mut unflooded = aggregate.ciphertexts()[0].c1().to_ntt();
        unflooded.try_mul_assign(key.share().expose()).unwrap();
        unflooded.try_mul_scalar_assign(&lagrange).unwrap();
        let mut flood = share.parts[0].clone();
        flood.try_sub_assign(&unflooded.into_coeff()).unwrap();
        let largest = flood
            .to_centered_bigints_vartime()
            .into_iter()
            .map(|c| c.magnitude().clone())
            .max()
            .unwrap();
        assert!(largest <= bound && largest > &bound >> 1u32);
        floods.push(flood);
        aggregate
            .rerandomize(&params, &packing, &ceremony.public_key, &mut rng)
            .unwrap();
    }
    assert_ne!(floods[0], floods[1]);
}
