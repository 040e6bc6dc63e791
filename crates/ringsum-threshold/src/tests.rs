#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::{Packing, Plaintext, PublicKey, SecretKey, decode_phase, encrypt};
use ringsum_core::update::{Aggregate, EncryptedUpdate, RoundId};
use ringsum_core::{CoreError, ParameterSet};
use ringsum_math::sample::sample_uniform;
use ringsum_math::{Coeff, CrsSeed, Csprng, Poly, SecretPoly};

use crate::*;

pub(crate) struct Fixture {
    pub params: ParameterSet,
    pub packing: Packing,
    pub committee: Committee,
    pub public_key: PublicKey,
    pub key_shares: Vec<ThresholdKeyShare>,
    pub rng: Csprng,
}

pub(crate) fn fixture(id: &str, n: u32, t: u32, seed: u8) -> Fixture {
    let params = ParameterSet::builtin(id).unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([seed; 32]);
    let ids: Vec<HolderId> = (1..=n).map(HolderId).collect();
    let committee = Committee::new(&params, 3, &ids, t).unwrap();
    let crs = CrsSeed::new([seed ^ 0xa5; 32]);
    let out = run_ceremony(
        &params,
        &committee,
        &crs,
        &mut InMemoryTransport::new(),
        &mut rng,
    )
    .unwrap();
    Fixture {
        params,
        packing,
        committee,
        public_key: out.public_key,
        key_shares: out.key_shares,
        rng,
    }
}

impl Fixture {
    /// A layout that fills exactly one ciphertext.
    pub fn layout(&self) -> ModelLayout {
        ModelLayout::try_new([("w", vec![self.packing.capacity() as u64 - 1])]).unwrap()
    }

    pub fn holder(&self, id: HolderId) -> KeyHolder {
        let key = self
            .key_shares
            .iter()
            .find(|k| k.holder() == id)
            .unwrap()
            .clone();
        KeyHolder::new(
            &self.params,
            self.committee.clone(),
            key,
            ShareLedger::in_memory(),
        )
        .unwrap()
    }

    pub fn holders(&self) -> Vec<KeyHolder> {
        self.committee
            .holders()
            .iter()
            .map(|&h| self.holder(h))
            .collect()
    }

    /// An aggregate of one-ciphertext updates with the given slot values.
    pub fn aggregate(&mut self, clients: &[Vec<i64>]) -> Aggregate {
        let layout = self.layout();
        let mut aggregate = Aggregate::new(&self.params, &self.packing, &layout, RoundId(9));
        for slots in clients {
            let pt = Plaintext::try_new(&self.params, slots.clone()).unwrap();
            let ct = encrypt(
                &self.params,
                &self.packing,
                &self.public_key,
                &pt,
                &mut self.rng,
            )
            .unwrap();
            let update = EncryptedUpdate {
                param_set: self.params.id().clone(),
                layout_hash: *layout.hash(),
                round: RoundId(9),
                ciphertexts: vec![ct],
            };
            aggregate.try_add(&update).unwrap();
        }
        aggregate
    }

    /// Random slot values small enough for `clients` summands.
    pub fn random_slots(&mut self, clients: usize) -> Vec<Vec<i64>> {
        let bound = (1i64 << (self.params.encoding().slot_bits - 1)) / clients as i64 - 1;
        (0..clients)
            .map(|_| {
                (0..self.packing.capacity())
                    .map(|_| (self.rng.next_u64() % (2 * bound as u64 + 1)) as i64 - bound)
                    .collect()
            })
            .collect()
    }

    /// The full secret s = sum over all holders of l_i s'_i (tests only).
    pub fn secret_key(&self) -> SecretKey {
        let all = self.committee.active_set(self.committee.holders()).unwrap();
        let ring = self.params.ring();
        let mut s = SecretPoly::new(Poly::zero(ring));
        for k in &self.key_shares {
            let mut w = k.share().clone();
            w.expose_mut()
                .try_mul_scalar_assign(&all.lagrange(ring, k.holder()).unwrap())
                .unwrap();
            s.expose_mut().try_add_assign(w.expose()).unwrap();
        }
        SecretKey::from_secret_poly(&self.params, s).unwrap()
    }

    /// Threshold-decrypts `aggregate` with `set` into slot values.
    pub fn decrypt(
        &self,
        holders: &mut [KeyHolder],
        aggregate: &Aggregate,
        set: &[HolderId],
    ) -> Result<Vec<i64>> {
        let active = self.committee.active_set(set)?;
        let mut combiner = Combiner::new(
            &self.params,
            DecryptionRequest::new(&self.params, &self.committee, &active, aggregate)?,
        )?;
        for h in holders.iter_mut().filter(|h| active.contains(h.id())) {
            combiner.add(h.decryption_share(&self.params, aggregate, &active)?)?;
        }
        let phases = combiner.phases()?;
        Ok(decode_phase(&self.packing, phases[0].expose(), 0)?.into_slots())
    }
}

pub(crate) fn exact_sum(clients: &[Vec<i64>]) -> Vec<i64> {
    let mut sum = vec![0i64; clients[0].len()];
    for c in clients {
        for (s, v) in sum.iter_mut().zip(c) {
            *s += v;
        }
    }
    sum
}

fn ids(list: &[u32]) -> Vec<HolderId> {
    list.iter().copied().map(HolderId).collect()
}

#[test]
fn committees_are_validated() {
    let params = ParameterSet::builtin("pq128-n4096").unwrap();
    assert!(matches!(
        Committee::new(&params, 0, &[], 1),
        Err(ThresholdError::EmptyCommittee)
    ));
    assert!(matches!(
        Committee::new(&params, 0, &ids(&[1, 2]), 0),
        Err(ThresholdError::ThresholdOutOfRange { .. })
    ));
    assert!(matches!(
        Committee::new(&params, 0, &ids(&[1, 2]), 3),
        Err(ThresholdError::ThresholdOutOfRange { .. })
    ));
    assert!(matches!(
        Committee::new(&params, 0, &ids(&[0, 2]), 1),
        Err(ThresholdError::InvalidHolderId { .. })
    ));
    assert!(matches!(
        Committee::new(&params, 0, &ids(&[3, 2, 3]), 1),
        Err(ThresholdError::DuplicateHolder { .. })
    ));
    let nine: Vec<u32> = (1..=9).collect();
    assert!(matches!(
        Committee::new(&params, 0, &ids(&nine), 5),
        Err(ThresholdError::TooManyHolders { max_holders: 8, .. })
    ));
    let c = Committee::new(&params, 0, &ids(&[5, 1, 3]), 2).unwrap();
    assert_eq!(c.holders(), ids(&[1, 3, 5]).as_slice());
    assert!(matches!(
        c.active_set(&ids(&[1])),
        Err(ThresholdError::NotEnoughHolders {
            active: 1,
            threshold: 2
        })
    ));
    assert!(matches!(
        c.active_set(&ids(&[1, 4])),
        Err(ThresholdError::UnknownHolder { .. })
    ));
    assert!(matches!(
        c.active_set(&ids(&[1, 1])),
        Err(ThresholdError::DuplicateHolder { .. })
    ));
}

#[test]
fn lagrange_coefficients_interpolate_at_zero() {
    let params = ParameterSet::builtin("pq128-n4096").unwrap();
    let c = Committee::new(&params, 0, &ids(&[1, 2, 4, 7, 8]), 3).unwrap();
    let set = c.active_set(&ids(&[2, 4, 7, 8])).unwrap();
    let ring = params.ring();
    for (p, m) in ring.moduli().iter().enumerate() {
        // sum_i l_i x_i^k is 1 for k = 0 and 0 for 1 <= k < |S|.
        for k in 0..4u64 {
            let sum = set.holders().iter().fold(0u64, |acc, &h| {
                let l = set.lagrange(ring, h).unwrap().residues()[p];
                m.add(acc, m.mul(l, m.pow(u64::from(h.0), k)))
            });
            assert_eq!(sum, u64::from(k == 0), "prime {p}, power {k}");
        }
    }
}

#[test]
fn the_collective_key_decrypts_with_the_reconstructed_secret_and_with_all_holders() {
    let mut f = fixture("pq128-n4096", 5, 3, 1);
    let clients = f.random_slots(4);
    let aggregate = f.aggregate(&clients);
    let expected = exact_sum(&clients);
    // The secret no one holds: s = sum s_i, as the Lagrange sum of all shares.
    let sk = f.secret_key();
    let pt = ringsum_core::scheme::decrypt(&f.params, &f.packing, &sk, &aggregate.ciphertexts()[0])
        .unwrap();
    assert_eq!(pt.slots(), expected.as_slice());
    let mut holders = f.holders();
    let all = f.committee.holders().to_vec();
    assert_eq!(f.decrypt(&mut holders, &aggregate, &all).unwrap(), expected);
}

#[test]
fn any_threshold_subset_decrypts_after_rerandomisation() {
    let mut f = fixture("pq128-n4096", 6, 3, 2);
    let clients = f.random_slots(3);
    let mut aggregate = f.aggregate(&clients);
    let expected = exact_sum(&clients);
    let mut holders = f.holders();
    let sets = [
        ids(&[1, 2, 3]),
        ids(&[4, 5, 6]),
        ids(&[1, 3, 5, 6]),
        ids(&[2, 4, 6]),
    ];
    for set in &sets {
        assert_eq!(f.decrypt(&mut holders, &aggregate, set).unwrap(), expected);
        aggregate
            .rerandomize(&f.params, &f.packing, &f.public_key, &mut f.rng)
            .unwrap();
    }
    assert_eq!(aggregate.rerandomizations(), 4);
}

#[test]
fn a_second_set_for_the_same_aggregate_is_refused_and_a_repeat_is_identical() {
    let mut f = fixture("pq128-n4096", 4, 2, 3);
    let clients = f.random_slots(2);
    let mut aggregate = f.aggregate(&clients);
    let mut h1 = f.holder(HolderId(1));
    let a = f.committee.active_set(&ids(&[1, 2])).unwrap();
    let b = f.committee.active_set(&ids(&[1, 3])).unwrap();
    let first = h1.decryption_share(&f.params, &aggregate, &a).unwrap();
    let again = h1.decryption_share(&f.params, &aggregate, &a).unwrap();
    assert_eq!(
        first, again,
        "a repeated request must not draw new flooding"
    );
    assert!(matches!(
        h1.decryption_share(&f.params, &aggregate, &b),
        Err(ThresholdError::RetryRefused { .. })
    ));
    // The documented path: re-randomise, then ask the new set.
    aggregate
        .rerandomize(&f.params, &f.packing, &f.public_key, &mut f.rng)
        .unwrap();
    let mut holders = f.holders();
    holders[0] = h1;
    assert_eq!(
        f.decrypt(&mut holders, &aggregate, &ids(&[1, 3])).unwrap(),
        exact_sum(&clients)
    );
    assert_eq!(holders[0].ledger().len(), 2);
}

#[test]
fn rerandomisation_is_bounded_by_the_budget() {
    let mut f = fixture("pq128-n4096", 2, 1, 4);
    let clients = f.random_slots(1);
    let mut aggregate = f.aggregate(&clients);
    let before = aggregate.digest();
    for _ in 0..f.params.threshold().max_holders {
        aggregate
            .rerandomize(&f.params, &f.packing, &f.public_key, &mut f.rng)
            .unwrap();
    }
    assert_ne!(aggregate.digest(), before);
    let snapshot = aggregate.clone();
    assert!(matches!(
        aggregate.rerandomize(&f.params, &f.packing, &f.public_key, &mut f.rng),
        Err(CoreError::TooManyRerandomizations { done: 8 })
    ));
    assert_eq!(aggregate, snapshot);
    // Still exact after the most re-randomisations the budget allows.
    let mut holders = f.holders();
    assert_eq!(
        f.decrypt(&mut holders, &aggregate, &ids(&[2])).unwrap(),
        exact_sum(&clients)
    );
}

#[test]
fn fewer_than_t_shares_do_not_decrypt() {
    let mut f = fixture("pq128-n4096", 5, 3, 5);
    let clients = f.random_slots(2);
    let aggregate = f.aggregate(&clients);
    let expected = exact_sum(&clients);
    assert!(matches!(
        f.committee.active_set(&ids(&[1, 2])),
        Err(ThresholdError::NotEnoughHolders { .. })
    ));
    let active = f.committee.active_set(&ids(&[1, 2, 3])).unwrap();
    let mut combiner = Combiner::new(
        &f.params,
        DecryptionRequest::new(&f.params, &f.committee, &active, &aggregate).unwrap(),
    )
    .unwrap();
    let mut holders = f.holders();
    for h in &mut holders[..2] {
        combiner
            .add(h.decryption_share(&f.params, &aggregate, &active).unwrap())
            .unwrap();
    }
    assert!(matches!(
        combiner.phases(),
        Err(ThresholdError::Missing { ref missing, .. }) if *missing == ids(&[3])
    ));
    // Any guess for the missing share: zero, a uniform polynomial, or the
    // missing holder's share of another active set.
    let other = f.committee.active_set(&ids(&[2, 3, 4])).unwrap();
    let mut fresh_h3 = f.holder(HolderId(3));
    let wrong_set_share = fresh_h3
        .decryption_share(&f.params, &aggregate, &other)
        .unwrap();
    let guesses: Vec<Poly<Coeff>> = vec![
        Poly::zero(f.params.ring()),
        sample_uniform(f.params.ring(), &mut f.rng),
        wrong_set_share.parts[0].clone(),
    ];
    for guess in guesses {
        let mut phase = combiner_partial(&f, &aggregate, &active, &mut holders[..2]);
        phase.try_add_assign(&guess).unwrap();
        match decode_phase(&f.packing, &phase, 0) {
            Ok(pt) => assert_ne!(pt.slots(), expected.as_slice()),
            Err(e) => assert!(matches!(e, CoreError::DecodeOverflow { .. })),
        }
    }
}

/// c0 plus the shares of the given holders (test helper: the combiner does
/// not hand out partial sums).
fn combiner_partial(
    f: &Fixture,
    aggregate: &Aggregate,
    active: &ActiveSet,
    holders: &mut [KeyHolder],
) -> Poly<Coeff> {
    let mut phase = aggregate.ciphertexts()[0].c0().clone();
    for h in holders {
        let share = h.decryption_share(&f.params, aggregate, active).unwrap();
        phase.try_add_assign(&share.parts[0]).unwrap();
    }
    phase
}

#[test]
fn bad_shares_are_refused_and_good_ones_still_decrypt() {
    let mut f = fixture("pq128-n4096", 4, 2, 6);
    let clients = f.random_slots(2);
    let aggregate = f.aggregate(&clients);
    let other_aggregate = f.aggregate(&clients);
    let active = f.committee.active_set(&ids(&[1, 2])).unwrap();
    let mut holders = f.holders();
    let good1 = holders[0]
        .decryption_share(&f.params, &aggregate, &active)
        .unwrap();
    let good2 = holders[1]
        .decryption_share(&f.params, &aggregate, &active)
        .unwrap();
    let mut combiner = Combiner::new(
        &f.params,
        DecryptionRequest::new(&f.params, &f.committee, &active, &aggregate).unwrap(),
    )
    .unwrap();
    combiner.add(good1.clone()).unwrap();

    let foreign = holders[1]
        .decryption_share(&f.params, &other_aggregate, &active)
        .unwrap();
    assert!(matches!(
        combiner.add(foreign),
        Err(ThresholdError::WrongAggregate { .. })
    ));
    assert!(matches!(
        combiner.add(good1.clone()),
        Err(ThresholdError::DuplicateHolder { .. })
    ));
    let mut outsider = good2.clone();
    outsider.holder = HolderId(4);
    assert!(matches!(
        combiner.add(outsider),
        Err(ThresholdError::NotInActiveSet { .. })
    ));
    let mut epoch = good2.clone();
    epoch.epoch += 1;
    assert!(matches!(
        combiner.add(epoch),
        Err(ThresholdError::WrongEpoch { .. })
    ));
    let mut set = good2.clone();
    set.active_set = ids(&[2, 3]);
    assert!(matches!(
        combiner.add(set),
        Err(ThresholdError::ActiveSetMismatch { .. })
    ));
    let mut short = good2.clone();
    short.parts.clear();
    assert!(matches!(
        combiner.add(short),
        Err(ThresholdError::Core(CoreError::CountMismatch { .. }))
    ));
    let small = ParameterSet::builtin("pq128-n8192").unwrap();
    let mut ring = good2.clone();
    ring.parts = vec![Poly::zero(small.ring())];
    assert!(matches!(
        combiner.add(ring),
        Err(ThresholdError::Core(CoreError::ParameterMismatch { .. }))
    ));
    // Out-of-range coefficients cannot even form a share polynomial.
    let mut residues = good2.parts[0].residues().to_vec();
    residues[0] = f.params.primes()[0];
    assert!(Poly::<Coeff>::try_from_residues(f.params.ring(), residues).is_err());
    // Nothing refused was kept: the good share completes the decryption.
    assert_eq!(combiner.missing(), ids(&[2]));
    combiner.add(good2).unwrap();
    let phases = combiner.phases().unwrap();
    assert_eq!(
        decode_phase(&f.packing, phases[0].expose(), 0)
            .unwrap()
            .into_slots(),
        exact_sum(&clients)
    );
}

#[test]
fn holders_refuse_requests_outside_their_committee() {
    let mut f = fixture("pq128-n4096", 4, 2, 7);
    let clients = f.random_slots(1);
    let aggregate = f.aggregate(&clients);
    let mut h1 = f.holder(HolderId(1));
    let without_me = f.committee.active_set(&ids(&[2, 3])).unwrap();
    assert!(matches!(
        h1.decryption_share(&f.params, &aggregate, &without_me),
        Err(ThresholdError::NotInActiveSet { .. })
    ));
    let other = Committee::new(&f.params, 4, &ids(&[1, 2]), 2).unwrap();
    let other_set = other.active_set(&ids(&[1, 2])).unwrap();
    assert!(matches!(
        h1.decryption_share(&f.params, &aggregate, &other_set),
        Err(ThresholdError::WrongEpoch { .. })
    ));
    let bigger = Committee::new(&f.params, 3, &ids(&[1, 2, 9]), 2).unwrap();
    let stranger = bigger.active_set(&ids(&[1, 9])).unwrap();
    assert!(matches!(
        h1.decryption_share(&f.params, &aggregate, &stranger),
        Err(ThresholdError::UnknownHolder { .. })
    ));
    let empty = Aggregate::new(&f.params, &f.packing, &f.layout(), RoundId(1));
    let set = f.committee.active_set(&ids(&[1, 2])).unwrap();
    assert!(h1.decryption_share(&f.params, &empty, &set).is_err());
    assert!(h1.ledger().is_empty(), "refused requests leave no record");
}

#[test]
fn ceremony_messages_are_checked() {
    let params = ParameterSet::builtin("pq128-n4096").unwrap();
    let mut rng = Csprng::from_seed([8; 32]);
    let committee = Committee::new(&params, 5, &ids(&[1, 2, 3]), 2).unwrap();
    let seed = CrsSeed::new([1; 32]);
    let gens: Vec<KeyGenerator> = committee
        .holders()
        .iter()
        .map(|&h| KeyGenerator::new(&params, &committee, h, &mut rng).unwrap())
        .collect();
    assert!(matches!(
        KeyGenerator::new(&params, &committee, HolderId(4), &mut rng),
        Err(ThresholdError::UnknownHolder { .. })
    ));
    let pk: Vec<PublicKeyShare> = gens
        .iter()
        .map(|g| g.public_key_share(&params, &seed, &mut rng).unwrap())
        .collect();
    let commitments: Vec<KeyCommitment> = pk.iter().map(PublicKeyShare::commitment).collect();
    let cpk = |shares: &[PublicKeyShare]| {
        collective_public_key(&params, &committee, &seed, &commitments, shares)
    };
    assert!(matches!(
        collective_public_key(&params, &committee, &seed, &commitments[..2], &pk),
        Err(ThresholdError::Missing { ref missing, .. }) if *missing == ids(&[3])
    ));
    assert!(matches!(
        cpk(&pk[..2]),
        Err(ThresholdError::Missing { ref missing, .. }) if *missing == ids(&[3])
    ));
    // A rogue share chosen after seeing the others (p_3 - p_1 - p_2 would
    // make the key holder 3's alone) no longer matches its commitment.
    let mut rogue = pk[2].clone();
    rogue.p.try_sub_assign(&pk[0].p).unwrap();
    rogue.p.try_sub_assign(&pk[1].p).unwrap();
    assert!(matches!(
        cpk(&[pk[0].clone(), pk[1].clone(), rogue]),
        Err(ThresholdError::CommitmentMismatch {
            holder: HolderId(3)
        })
    ));
    let twice = [pk[0].clone(), pk[0].clone(), pk[1].clone(), pk[2].clone()];
    assert!(matches!(
        cpk(&twice),
        Err(ThresholdError::DuplicateHolder { .. })
    ));
    // A holder configured with another CRS seed, or another epoch.
    let wrong_seed = gens[2]
        .public_key_share(&params, &CrsSeed::new([2; 32]), &mut rng)
        .unwrap();
    let bad = [pk[0].clone(), pk[1].clone(), wrong_seed];
    assert!(matches!(
        cpk(&bad),
        Err(ThresholdError::CrsMismatch {
            holder: HolderId(3)
        })
    ));
    let mut wrong_epoch = pk[2].clone();
    wrong_epoch.epoch = 6;
    let bad = [pk[0].clone(), pk[1].clone(), wrong_epoch];
    assert!(matches!(cpk(&bad), Err(ThresholdError::WrongEpoch { .. })));

    let dealt: Vec<Vec<SecretShareMessage>> = gens
        .iter()
        .map(|g| g.deal(&params, &mut rng).unwrap())
        .collect();
    let for_1: Vec<SecretShareMessage> = dealt.iter().map(|d| d[0].clone()).collect();
    ThresholdKeyShare::from_messages(&params, &committee, HolderId(1), &for_1).unwrap();
    assert!(matches!(
        ThresholdKeyShare::from_messages(&params, &committee, HolderId(2), &for_1),
        Err(ThresholdError::Misaddressed { .. })
    ));
    assert!(matches!(
        ThresholdKeyShare::from_messages(&params, &committee, HolderId(1), &for_1[..2]),
        Err(ThresholdError::Missing { .. })
    ));
    let dup = [for_1[0].clone(), for_1[0].clone(), for_1[1].clone()];
    assert!(matches!(
        ThresholdKeyShare::from_messages(&params, &committee, HolderId(1), &dup),
        Err(ThresholdError::DuplicateHolder { .. })
    ));
    // Secrets never reach Debug output.
    let text = format!("{:?} {:?}", for_1[0], gens[0]);
    assert!(!text.contains(&for_1[0].share.expose().residues()[0].to_string()));
}

#[test]
fn a_holder_lying_about_its_crs_spoils_decryption() {
    // Holder 3 computes p_3 from another seed but declares the right one:
    // the binding cannot catch a lie, and decryption then fails.
    let params = ParameterSet::builtin("pq128-n4096").unwrap();
    let packing = Packing::new(&params);
    let mut rng = Csprng::from_seed([9; 32]);
    let committee = Committee::new(&params, 0, &ids(&[1, 2, 3]), 3).unwrap();
    let seed = CrsSeed::new([1; 32]);
    let gens: Vec<KeyGenerator> = committee
        .holders()
        .iter()
        .map(|&h| KeyGenerator::new(&params, &committee, h, &mut rng).unwrap())
        .collect();
    let mut pk: Vec<PublicKeyShare> = gens
        .iter()
        .map(|g| g.public_key_share(&params, &seed, &mut rng).unwrap())
        .collect();
    let liar = gens[2]
        .public_key_share(&params, &CrsSeed::new([2; 32]), &mut rng)
        .unwrap();
    pk[2] = PublicKeyShare {
        crs_binding: pk[2].crs_binding,
        ..liar
    };
    let commitments: Vec<KeyCommitment> = pk.iter().map(PublicKeyShare::commitment).collect();
    let public_key = collective_public_key(&params, &committee, &seed, &commitments, &pk).unwrap();
    let mut transport = InMemoryTransport::new();
    for g in &gens {
        for m in g.deal(&params, &mut rng).unwrap() {
            transport.send(m).unwrap();
        }
    }
    let shares: Vec<ThresholdKeyShare> = committee
        .holders()
        .iter()
        .map(|&h| {
            ThresholdKeyShare::from_messages(&params, &committee, h, &transport.receive(h).unwrap())
                .unwrap()
        })
        .collect();
    let mut f = Fixture {
        params,
        packing,
        committee,
        public_key,
        key_shares: shares,
        rng,
    };
    let clients = f.random_slots(1);
    let aggregate = f.aggregate(&clients);
    let mut holders = f.holders();
    let all = f.committee.holders().to_vec();
    match f.decrypt(&mut holders, &aggregate, &all) {
        Ok(slots) => assert_ne!(slots, clients[0]),
        Err(e) => assert!(matches!(
            e,
            ThresholdError::Core(CoreError::DecodeOverflow { .. })
        )),
    }
}

#[test]
fn the_c1_digest_and_the_request_digest_depend_on_c1_only() {
    let mut f = fixture("pq128-n4096", 2, 1, 10);
    let clients = f.random_slots(1);
    let aggregate = f.aggregate(&clients);
    let ct = &aggregate.ciphertexts()[0];
    let other_c0 = sample_uniform(f.params.ring(), &mut f.rng);
    let same_c1 =
        ringsum_core::scheme::Ciphertext::from_parts(&f.params, other_c0, ct.c1().clone()).unwrap();
    let other_c1 = ringsum_core::scheme::Ciphertext::from_parts(
        &f.params,
        ct.c0().clone(),
        sample_uniform(f.params.ring(), &mut f.rng),
    )
    .unwrap();
    let d = |cts: &[ringsum_core::scheme::Ciphertext], epoch| {
        decryption_digest(f.params.id(), epoch, cts)
    };
    let base = d(std::slice::from_ref(ct), 3);
    assert_eq!(
        base,
        d(&[same_c1], 3),
        "a new c0 must not unlock a second share"
    );
    assert_ne!(base, d(&[other_c1], 3));
    assert_ne!(base, d(std::slice::from_ref(ct), 4));
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ringsum-ledger-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("issued.ledger")
}

#[test]
fn the_ledger_survives_a_restart() {
    let mut f = fixture("pq128-n4096", 3, 2, 11);
    let clients = f.random_slots(1);
    let aggregate = f.aggregate(&clients);
    let path = temp_path("restart");
    let a = f.committee.active_set(&ids(&[1, 2])).unwrap();
    let b = f.committee.active_set(&ids(&[1, 3])).unwrap();
    let key = f.key_shares[0].clone();
    let first = {
        let ledger = ShareLedger::open(&path).unwrap();
        let mut h = KeyHolder::new(&f.params, f.committee.clone(), key.clone(), ledger).unwrap();
        h.decryption_share(&f.params, &aggregate, &a).unwrap()
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // "Restart": a new holder from the same key share and ledger file.
    let ledger = ShareLedger::open(&path).unwrap();
    assert_eq!(ledger.len(), 1);
    let mut h = KeyHolder::new(&f.params, f.committee.clone(), key, ledger).unwrap();
    assert!(matches!(
        h.decryption_share(&f.params, &aggregate, &b),
        Err(ThresholdError::RetryRefused { .. })
    ));
    assert_eq!(
        h.decryption_share(&f.params, &aggregate, &a).unwrap(),
        first
    );
}

#[test]
fn the_ledger_drops_a_torn_record_and_refuses_a_corrupt_one() {
    let path = temp_path("torn");
    let digest = [0xab; 32];
    {
        let mut ledger = ShareLedger::open(&path).unwrap();
        ledger.permit(&[digest], &ids(&[1, 2])).unwrap();
    }
    let complete = std::fs::read_to_string(&path).unwrap();
    // A crash in the middle of the next append.
    std::fs::write(&path, format!("{complete}cdcdcd")).unwrap();
    let mut ledger = ShareLedger::open(&path).unwrap();
    assert_eq!(ledger.issued(&digest), Some(ids(&[1, 2]).as_slice()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), complete);
    ledger.permit(&[[0xcd; 32]], &ids(&[2, 3])).unwrap();
    drop(ledger);
    assert_eq!(ShareLedger::open(&path).unwrap().len(), 2);

    for bad in [
        "not a ledger\n".to_owned(),
        format!("{complete}zz 1,2\n"),
        format!("{complete}{} 2,1\n", "ef".repeat(32)),
        format!("{complete}{} +1,2\n", "ef".repeat(32)),
        format!("{complete}{}\n", "ef".repeat(32)),
        format!("{complete}{} 3,4\n", "ab".repeat(32)),
    ] {
        std::fs::write(&path, bad).unwrap();
        assert!(matches!(
            ShareLedger::open(&path),
            Err(ThresholdError::Ledger { .. })
        ));
    }
}

#[test]
fn measured_noise_stays_within_the_documented_bounds() {
    let mut f = fixture("pq128-n4096", 5, 3, 12);
    let clients = f.random_slots(20);
    let aggregate = f.aggregate(&clients);
    let expected = Plaintext::try_new(&f.params, exact_sum(&clients)).unwrap();
    let budget = f.params.noise_budget().clone();
    let bound = flooding_bound(&f.params);
    let ring = f.params.ring();
    let ct = &aggregate.ciphertexts()[0];
    let max_abs = |p: &Poly<Coeff>| {
        p.to_centered_bigints_vartime()
            .into_iter()
            .map(|c| c.magnitude().clone())
            .max()
            .unwrap()
    };

    // Aggregate noise, through the reconstructed secret (tests only).
    let sk = f.secret_key();
    let mut c1s = ct.c1().to_ntt();
    c1s.try_mul_assign(sk.secret().expose()).unwrap();
    let mut noise = c1s.into_coeff();
    noise.try_add_assign(ct.c0()).unwrap();
    noise
        .try_sub_assign(&f.packing.scaled_message(&expected).unwrap())
        .unwrap();
    let aggregate_noise = max_abs(&noise);
    assert!(aggregate_noise <= budget.aggregate);

    // Flooding of each share: d_i - l_i s'_i c1, within [-B, B] and spread
    // over it (the largest of 4096 uniform draws is above B/2 except with
    // probability 2^-4096).
    let active = f.committee.active_set(&ids(&[1, 3, 5])).unwrap();
    let mut combiner = Combiner::new(
        &f.params,
        DecryptionRequest::new(&f.params, &f.committee, &active, &aggregate).unwrap(),
    )
    .unwrap();
    for mut h in f.holders().into_iter().filter(|h| active.contains(h.id())) {
        let share = h.decryption_share(&f.params, &aggregate, &active).unwrap();
        let key = f.key_shares.iter().find(|k| k.holder() == h.id()).unwrap();
        let mut w = ct.c1().to_ntt();
        w.try_mul_assign(key.share().expose()).unwrap();
        w.try_mul_scalar_assign(&active.lagrange(ring, h.id()).unwrap())
            .unwrap();
        let mut flood = share.parts[0].clone();
        flood.try_sub_assign(&w.into_coeff()).unwrap();
        let largest = max_abs(&flood);
        assert!(largest <= bound);
        assert!(largest > &bound >> 1u32);
        combiner.add(share).unwrap();
    }
    // The combined noise: within the validator's B_dec and below Δ/2.
    let mut total = combiner.phases().unwrap().remove(0).expose().clone();
    total
        .try_sub_assign(&f.packing.scaled_message(&expected).unwrap())
        .unwrap();
    let total_noise = max_abs(&total);
    assert!(total_noise <= budget.decryption);
    assert!(total_noise < num_bigint::BigUint::from(1u32) << (budget.scale_bits - 1));
    // The aggregate's own noise is hidden: the flooding dominates by far.
    assert!(
        total_noise.bits()
            > aggregate_noise.bits() + u64::from(f.params.threshold().flooding_bits) - 2
    );
}

#[test]
fn resharing_moves_the_key_to_a_new_committee_without_changing_it() {
    let mut f = fixture("pq128-n4096", 4, 3, 13);
    let clients = f.random_slots(2);
    let mut aggregate = f.aggregate(&clients);
    let old = f.committee.clone();
    let dealers = old.active_set(&ids(&[1, 2, 4])).unwrap();
    let new = Committee::new(&f.params, 4, &ids(&[2, 5, 6, 7, 8]), 2).unwrap();
    let mut transport = InMemoryTransport::new();
    for key in f.key_shares.iter().filter(|k| dealers.contains(k.holder())) {
        for m in key
            .reshare(&f.params, &old, &dealers, &new, &mut f.rng)
            .unwrap()
        {
            transport.send(m).unwrap();
        }
    }
    // Holder 3 is not a dealer and cannot take part.
    assert!(matches!(
        f.key_shares[2].reshare(&f.params, &old, &dealers, &new, &mut f.rng),
        Err(ThresholdError::NotInActiveSet { .. })
    ));
    let mut new_shares = Vec::new();
    for &me in new.holders() {
        let received = transport.receive(me).unwrap();
        assert!(matches!(
            ThresholdKeyShare::from_reshare(&f.params, &new, &dealers, me, &received[..2]),
            Err(ThresholdError::Missing { .. })
        ));
        assert!(matches!(
            ThresholdKeyShare::from_messages(&f.params, &new, me, &received),
            Err(ThresholdError::UnknownHolder { .. } | ThresholdError::Missing { .. })
        ));
        new_shares.push(
            ThresholdKeyShare::from_reshare(&f.params, &new, &dealers, me, &received).unwrap(),
        );
    }
    // The same public key; the new committee decrypts with any 2 members.
    f.committee = new;
    f.key_shares = new_shares;
    let mut holders = f.holders();
    let expected = exact_sum(&clients);
    assert_eq!(
        f.decrypt(&mut holders, &aggregate, &ids(&[5, 8])).unwrap(),
        expected
    );
    aggregate
        .rerandomize(&f.params, &f.packing, &f.public_key, &mut f.rng)
        .unwrap();
    assert_eq!(
        f.decrypt(&mut holders, &aggregate, &ids(&[2, 6, 7]))
            .unwrap(),
        expected
    );
}

#[test]
fn regrouping_ciphertexts_does_not_unlock_a_second_share() {
    let mut f = fixture("pq128-n4096", 3, 2, 14);
    let clients = f.random_slots(1);
    let first = f.aggregate(&clients);
    let second = f.aggregate(&clients);
    let ct = first.ciphertexts()[0].clone();
    let other = second.ciphertexts()[0].clone();
    let layout = ModelLayout::try_new([("w", vec![2 * f.packing.capacity() as u64 - 1])]).unwrap();
    let list = |cts: Vec<ringsum_core::scheme::Ciphertext>| {
        let mut agg = Aggregate::new(&f.params, &f.packing, &layout, RoundId(9));
        agg.try_add(&EncryptedUpdate {
            param_set: f.params.id().clone(),
            layout_hash: *layout.hash(),
            round: RoundId(9),
            ciphertexts: cts,
        })
        .unwrap();
        agg
    };
    let mut h1 = f.holder(HolderId(1));
    let a = f.committee.active_set(&ids(&[1, 2])).unwrap();
    let b = f.committee.active_set(&ids(&[1, 3])).unwrap();
    h1.decryption_share(&f.params, &first, &a).unwrap();
    // The same c1 twice in one request: two floods of one product.
    assert!(matches!(
        h1.decryption_share(&f.params, &list(vec![other.clone(), other.clone()]), &b),
        Err(ThresholdError::DuplicateCiphertext {
            first: 0,
            second: 1
        })
    ));
    // The answered c1 inside a larger or reordered list, for another set.
    for cts in [
        vec![ct.clone(), other.clone()],
        vec![other.clone(), ct.clone()],
    ] {
        assert!(matches!(
            h1.decryption_share(&f.params, &list(cts), &b),
            Err(ThresholdError::RetryRefused { .. })
        ));
    }
    assert_eq!(h1.ledger().len(), 1, "refused requests record nothing");
    // For the same set, the c1 gets the same flooding wherever it appears.
    let alone = h1.decryption_share(&f.params, &first, &a).unwrap();
    let grouped = h1
        .decryption_share(&f.params, &list(vec![other, ct]), &a)
        .unwrap();
    assert_eq!(alone.parts[0], grouped.parts[1]);
}

#[test]
fn a_ledger_file_serves_one_process_at_a_time() {
    let path = temp_path("lock");
    let mut first = ShareLedger::open(&path).unwrap();
    assert!(matches!(
        ShareLedger::open(&path),
        Err(ThresholdError::Ledger { .. })
    ));
    first.permit(&[[1; 32]], &ids(&[1, 2])).unwrap();
    drop(first);
    let second = ShareLedger::open(&path).unwrap();
    assert_eq!(second.issued(&[1; 32]), Some(ids(&[1, 2]).as_slice()));
}
