//! The round protocol on per-round keys: clients, coordinator and holders
//! exchanging signed envelopes in one process. Honest rounds decode to
//! plaintext FedAvg within the quantization bound; every attack of the
//! threat model fails and leaves honest state intact.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;

use ringsum::core::ParameterSet;
use ringsum::core::model::ModelLayout;
use ringsum::core::update::RoundId;
use ringsum::math::Csprng;
use ringsum::pq::{
    AlgorithmPolicy, Envelope, KemAlgorithm, ParticipantId, PqError, SealingKey,
    SignatureAlgorithm, SigningIdentity,
};
use ringsum::protocol::client::{Client, Submission};
use ringsum::protocol::coordinator::Coordinator;
use ringsum::protocol::holder::{Holder, MemoryJournal};
use ringsum::protocol::message::{AnswerPayload, ClientSet, SetEntry};
use ringsum::protocol::spec::{Federation, FederationSpec, HolderSpec, Policy};
use ringsum::protocol::{AuditLog, ProtocolError, SetupError};
use ringsum::threshold::HolderId;

const SET: &str = "rk128-n4096";

fn identity(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[seed; 32], None).unwrap()
}

fn sealing(seed: u8) -> SealingKey {
    SealingKey::from_seeds(KemAlgorithm::MlKem1024, &[seed; 64], None).unwrap()
}

struct World {
    federation: Arc<Federation>,
    coordinator: Coordinator,
    holders: Vec<Holder<MemoryJournal>>,
    clients: Vec<Client>,
    rng: Csprng,
}

fn policy(min_clients: usize) -> Policy {
    Policy {
        min_clients,
        min_samples: 10,
        max_weight: 10_000,
        rounds: 5,
    }
}

fn spec(holders: usize, threshold: u32, clients: usize, policy: Policy) -> FederationSpec {
    FederationSpec {
        params: ParameterSet::builtin(SET).unwrap(),
        layout: ModelLayout::try_new([("w", vec![40u64]), ("b", vec![3])]).unwrap(),
        policy,
        threshold,
        algorithms: AlgorithmPolicy::POST_QUANTUM,
        coordinator: identity(1).public().clone(),
        holders: (0..holders)
            .map(|i| HolderSpec {
                point: HolderId(i as u32 + 1),
                signing: identity(10 + i as u8).public().clone(),
                sealing: sealing(10 + i as u8).public().clone(),
            })
            .collect(),
        clients: (0..clients)
            .map(|i| identity(100 + i as u8).public().clone())
            .collect(),
    }
}

fn world(holders: usize, threshold: u32, clients: usize, policy: Policy) -> World {
    let federation = Arc::new(Federation::new(spec(holders, threshold, clients, policy)).unwrap());
    let audit = AuditLog::in_memory(federation.id(), federation.params().id().as_str());
    let params = federation.layout().parameter_count();
    let coordinator = Coordinator::new(
        Arc::clone(&federation),
        identity(1),
        vec![0.0; params],
        audit,
    )
    .unwrap();
    let holders = (0..holders)
        .map(|i| {
            Holder::new(
                Arc::clone(&federation),
                identity(10 + i as u8),
                sealing(10 + i as u8),
                MemoryJournal::default(),
            )
            .unwrap()
        })
        .collect();
    let clients = (0..clients)
        .map(|i| Client::new(Arc::clone(&federation), identity(100 + i as u8)).unwrap())
        .collect();
    World {
        federation,
        coordinator,
        holders,
        clients,
        rng: Csprng::from_seed([42; 32]),
    }
}

/// Client i's update: deterministic values in [-1, 1].
fn values(federation: &Federation, i: usize, round: u64) -> Vec<f32> {
    (0..federation.layout().parameter_count())
        .map(|j| (((i * 31 + j * 7 + round as usize * 13) % 41) as f32 / 20.0) - 1.0)
        .collect()
}

fn samples(i: usize) -> u64 {
    20 + 10 * i as u64
}

impl World {
    fn holder_id(&self, i: usize) -> ParticipantId {
        self.federation.holders()[&HolderId(i as u32 + 1)]
    }

    /// Opens the next round; every holder follows.
    fn open(&mut self) -> RoundId {
        let announcement = self.coordinator.open_round().unwrap();
        for holder in &mut self.holders {
            holder.follow(&announcement).unwrap();
        }
        RoundId(announcement.routing().round)
    }

    fn submit(&mut self, i: usize, round: RoundId) -> Submission {
        let values = values(&self.federation, i, round.0);
        self.clients[i]
            .submit(round, &values, samples(i), &mut self.rng)
            .unwrap()
    }

    /// Submits and forwards the shares of clients `who`.
    fn collect(&mut self, round: RoundId, who: &[usize]) {
        for &i in who {
            let submission = self.submit(i, round);
            self.coordinator.accept_submission(submission).unwrap();
        }
        self.forward();
    }

    /// Forwards to every holder the shares it does not hold yet.
    fn forward(&mut self) {
        for h in 0..self.holders.len() {
            let id = self.holder_id(h);
            let shares: Vec<Envelope> = self
                .coordinator
                .shares_for(id)
                .into_iter()
                .cloned()
                .collect();
            for share in shares {
                // A share already held is a replay: refused, harmless.
                let _ = self.holders[h].receive_share(&share);
            }
        }
    }

    /// The plaintext weighted average of clients `who` in `round`.
    fn plaintext(&self, round: RoundId, who: &[usize]) -> Vec<f32> {
        let n = self.federation.layout().parameter_count();
        let total: f64 = who.iter().map(|&i| samples(i) as f64).sum();
        (0..n)
            .map(|j| {
                who.iter()
                    .map(|&i| values(&self.federation, i, round.0)[j] as f64 * samples(i) as f64)
                    .sum::<f64>()
                    / total
            })
            .map(|v| v as f32)
            .collect()
    }
}

fn assert_close(decoded: &[f32], expected: &[f32], bound: f64) {
    assert_eq!(decoded.len(), expected.len());
    for (j, (d, e)) in decoded.iter().zip(expected).enumerate() {
        assert!(
            f64::from((d - e).abs()) <= bound,
            "parameter {j}: decoded {d}, plaintext {e}, bound {bound}"
        );
    }
}

#[test]
fn honest_rounds_decode_to_plaintext_fedavg() {
    let mut w = world(3, 2, 4, policy(3));
    let mut model = vec![0.0f32; w.federation.layout().parameter_count()];
    for who in [&[0usize, 1, 2, 3][..], &[0, 2, 3]] {
        let round = w.open();
        w.collect(round, who);
        let request = w.coordinator.close().unwrap();
        for h in 0..3 {
            let answer = w.holders[h].answer(&request).unwrap();
            w.coordinator.accept_answer(answer).unwrap();
        }
        assert!(w.coordinator.all_answered());
        let outcome = w.coordinator.finish().unwrap();
        assert!(outcome.liars.is_empty());
        assert_eq!(outcome.average.clients, who.len() as u64);
        let plain = w.plaintext(round, who);
        assert_close(
            &outcome.average.average.concat(),
            &plain,
            outcome.average.error_bound,
        );
        for (m, p) in model.iter_mut().zip(&plain) {
            *m += p;
        }
        assert_close(
            w.coordinator.model(),
            &model,
            2.0 * outcome.average.error_bound,
        );
    }
    // The log verifies on its own: its setup line names the coordinator's
    // key.
    let log = w.coordinator.audit().lines().join("\n");
    let summary = ringsum::protocol::verify_log(&log, None, Some(w.federation.id())).unwrap();
    assert_eq!(summary.coordinator, identity(1).id());
    assert_eq!(summary.last_round, 2);
}

#[test]
fn setup_refuses_a_threshold_that_is_not_a_majority() {
    let error = Federation::new(spec(4, 2, 3, policy(3))).unwrap_err();
    assert!(
        matches!(
            error,
            ProtocolError::Federation(SetupError::ThresholdNotMajority {
                holders: 4,
                threshold: 2
            })
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("2 of 4"), "{message}");
    // A set of one client would reveal that client's key.
    assert!(matches!(
        Federation::new(spec(3, 2, 3, policy(1))),
        Err(ProtocolError::Federation(SetupError::Policy(_)))
    ));
}

/// A signed request for an arbitrary set, as a malicious coordinator (who
/// holds the coordinator's key) would make it.
fn crafted_request(w: &World, round: RoundId, entries: Vec<SetEntry>) -> Envelope {
    let set = ClientSet { round, entries };
    Envelope::sign(
        &identity(1),
        ringsum::pq::Routing {
            federation: w.federation.id(),
            round: round.0,
            kind: ringsum::pq::MessageKind::DecryptionRequest,
            recipient: ParticipantId::BROADCAST,
            parameter_set: SET.into(),
        },
        set.encode(),
    )
    .unwrap()
}

fn entries_of(request: &Envelope, w: &World) -> Vec<SetEntry> {
    ClientSet::decode(request.payload(), w.federation.clients().len())
        .unwrap()
        .entries
}

#[test]
fn holders_refuse_the_sets_a_malicious_coordinator_asks_for() {
    let mut w = world(3, 2, 5, policy(3));
    let round = w.open();
    w.collect(round, &[0, 1, 2, 3]);
    let honest = w.coordinator.close().unwrap();
    let all = entries_of(&honest, &w);

    let refuse = |w: &mut World, entries: Vec<SetEntry>| {
        let request = crafted_request(w, round, entries);
        w.holders[0].answer(&request).unwrap_err()
    };
    // One client, or fewer than min_clients.
    let error = refuse(&mut w, all[..1].to_vec());
    assert!(
        matches!(error, ProtocolError::SetTooSmall { size: 1, min: 3 }),
        "{error}"
    );
    let error = refuse(&mut w, all[..2].to_vec());
    assert!(
        matches!(error, ProtocolError::SetTooSmall { size: 2, .. }),
        "{error}"
    );
    // A client twice.
    let mut twice = all[..3].to_vec();
    twice[2] = twice[1];
    let error = refuse(&mut w, twice);
    assert!(
        matches!(error, ProtocolError::SetNotCanonical(_)),
        "{error}"
    );
    // A non-member (a holder's id in a client's place).
    let mut stranger = all[..3].to_vec();
    stranger[2].client = w.holder_id(1);
    let error = refuse(&mut w, stranger);
    assert!(matches!(error, ProtocolError::NotAClient(_)), "{error}");
    // A client that sent this holder no share (client 4 did not submit).
    let absent = w.clients[4]
        .federation()
        .clients()
        .iter()
        .copied()
        .find(|c| !all.iter().any(|e| e.client == *c));
    let mut missing = all[..3].to_vec();
    missing.push(SetEntry {
        client: absent.unwrap(),
        ..all[0]
    });
    missing.sort_by_key(|e| e.client.0);
    let error = refuse(&mut w, missing);
    assert!(matches!(error, ProtocolError::MissingShare(_)), "{error}");
    // A client's entry naming another submission than its share's.
    let mut mismatched = all.clone();
    mismatched[0].submission.0[0] ^= 1;
    let error = refuse(&mut w, mismatched);
    assert!(matches!(error, ProtocolError::SetMismatch(_)), "{error}");
    // A request signed by someone else than the coordinator.
    let mut forged = crafted_request(&w, round, all.clone());
    forged = Envelope::sign(
        &identity(10),
        forged.routing().clone(),
        forged.payload().to_vec(),
    )
    .unwrap();
    assert!(w.holders[0].answer(&forged).is_err());

    // None of it was recorded: the honest set is still answered, by all.
    for h in 0..3 {
        let answer = w.holders[h].answer(&honest).unwrap();
        w.coordinator.accept_answer(answer).unwrap();
    }
    // A subset of the honest set, after the honest set was answered.
    let error = refuse(&mut w, all[..3].to_vec());
    assert!(
        matches!(error, ProtocolError::AlreadyAnswered { .. }),
        "{error}"
    );
    w.coordinator.finish().unwrap();
}

#[test]
fn two_quorums_cannot_answer_two_sets_in_one_round() {
    // n = 5, t = 3: holders {1,2,3} answer S1, then {3,4,5} are asked S2.
    let mut w = world(5, 3, 5, policy(3));
    let round = w.open();
    w.collect(round, &[0, 1, 2, 3, 4]);
    let request = w.coordinator.close().unwrap();
    let all = entries_of(&request, &w);
    let s1 = crafted_request(&w, round, all[..3].to_vec());
    let s2 = crafted_request(&w, round, all[2..].to_vec());
    for h in 0..3 {
        w.holders[h].answer(&s1).unwrap();
    }
    let error = w.holders[2].answer(&s2).unwrap_err();
    assert!(
        matches!(error, ProtocolError::AlreadyAnswered { .. }),
        "{error}"
    );
    // Holders 4 and 5 answer S2, but two answers are below t.
    for h in 3..5 {
        w.holders[h].answer(&s2).unwrap();
    }
    // The same holders asked S1 again give the same answer.
    let first = w.holders[0].answer(&s1).unwrap();
    let again = w.holders[0].answer(&s1).unwrap();
    assert_eq!(first.payload(), again.payload());
}

#[test]
fn a_restarted_holder_gives_the_same_answer_and_refuses_another_set() {
    let mut w = world(3, 2, 4, policy(3));
    let round = w.open();
    w.collect(round, &[0, 1, 2, 3]);
    let request = w.coordinator.close().unwrap();
    let all = entries_of(&request, &w);
    let answer = w.holders[0].answer(&request).unwrap();
    // The holder restarts with its journal and nothing else.
    let journal = w.holders[0].journal().clone();
    let mut restarted = Holder::new(
        Arc::clone(&w.federation),
        identity(10),
        sealing(10),
        journal,
    )
    .unwrap();
    assert_eq!(
        restarted.answer(&request).unwrap().payload(),
        answer.payload()
    );
    let other = crafted_request(&w, round, all[..3].to_vec());
    assert!(matches!(
        restarted.answer(&other),
        Err(ProtocolError::AlreadyAnswered { .. })
    ));
}

/// Re-signs holder `h`'s answer with `change` applied to its values: a
/// lying holder signs its lie.
fn lie(w: &World, h: usize, answer: &Envelope, change: impl Fn(&mut [u32], u32)) -> Envelope {
    let mut payload = AnswerPayload::decode(&w.federation, answer.payload()).unwrap();
    let p = w.federation.committee().field().value() as u32;
    let mut values = payload.answer.values().to_vec();
    change(&mut values, p);
    payload.answer = ringsum::threshold::shamir::HolderAnswer::try_new(
        w.federation.committee().field(),
        payload.answer.holder(),
        values,
    )
    .unwrap();
    Envelope::sign(
        &identity(10 + h as u8),
        answer.routing().clone(),
        payload.encode(),
    )
    .unwrap()
}

#[test]
fn a_lying_holder_is_named_and_the_round_completes_from_the_others() {
    let mut w = world(5, 3, 3, policy(3));
    for every_coefficient in [true, false] {
        let round = w.open();
        w.collect(round, &[0, 1, 2]);
        let request = w.coordinator.close().unwrap();
        for h in 0..5 {
            let mut answer = w.holders[h].answer(&request).unwrap();
            if h == 1 {
                answer = lie(&w, h, &answer, |values, p| {
                    if every_coefficient {
                        values.iter_mut().for_each(|v| *v = (*v + 1) % p);
                    } else {
                        values[7] = (values[7] + 12_345) % p;
                    }
                });
            }
            w.coordinator.accept_answer(answer).unwrap();
        }
        let outcome = w.coordinator.finish().unwrap();
        assert_eq!(outcome.liars, vec![HolderId(2)]);
        let plain = w.plaintext(round, &[0, 1, 2]);
        assert_close(
            &outcome.average.average.concat(),
            &plain,
            outcome.average.error_bound,
        );
        let last = w.coordinator.audit().lines().last().unwrap();
        assert!(last.contains(r#"holders_named\":[2]"#), "{last}");
    }
}

#[test]
fn a_lie_among_t_plus_one_answers_fails_the_round_and_the_next_one_works() {
    let mut w = world(5, 3, 3, policy(3));
    let round = w.open();
    w.collect(round, &[0, 1, 2]);
    let request = w.coordinator.close().unwrap();
    for h in 0..4 {
        let mut answer = w.holders[h].answer(&request).unwrap();
        if h == 0 {
            answer = lie(&w, h, &answer, |values, p| values[0] = (values[0] + 1) % p);
        }
        w.coordinator.accept_answer(answer).unwrap();
    }
    let error = w.coordinator.finish().unwrap_err();
    assert!(
        matches!(error, ProtocolError::RoundFailed { .. }),
        "{error}"
    );
    assert!(
        w.coordinator
            .audit()
            .lines()
            .join("\n")
            .contains("round_failed")
    );
    // The next round works.
    let round = w.open();
    w.collect(round, &[0, 1, 2]);
    let request = w.coordinator.close().unwrap();
    for h in 0..5 {
        let answer = w.holders[h].answer(&request).unwrap();
        w.coordinator.accept_answer(answer).unwrap();
    }
    w.coordinator.finish().unwrap();
}

#[test]
fn forged_replayed_and_misdirected_shares_are_refused() {
    let mut w = world(3, 2, 4, policy(3));
    let round = w.open();
    let submission = w.submit(0, round);
    let to_first = submission
        .shares
        .iter()
        .find(|s| s.routing().recipient == w.holder_id(0))
        .unwrap()
        .clone();
    let to_second = submission
        .shares
        .iter()
        .find(|s| s.routing().recipient == w.holder_id(1))
        .unwrap()
        .clone();
    // Another holder's share.
    assert!(w.holders[0].receive_share(&to_second).is_err());
    // A forged share: a byte of the payload flipped.
    let mut forged_payload = to_first.payload().to_vec();
    forged_payload[100] ^= 1;
    let forged = Envelope::from_bytes(
        &{
            let mut bytes = to_first.to_bytes();
            let at = bytes.len() - to_first.signature().len() - 10;
            bytes[at] ^= 1;
            bytes
        },
        1 << 24,
    )
    .unwrap();
    assert!(w.holders[0].receive_share(&forged).is_err());
    // Re-signed by another client: it is not that client's share.
    let stolen = Envelope::sign(
        &identity(101),
        to_first.routing().clone(),
        to_first.payload().to_vec(),
    )
    .unwrap();
    assert!(w.holders[0].receive_share(&stolen).is_err());
    assert_eq!(w.holders[0].shares_held(round), 0);
    // The genuine one is kept; its replay is refused.
    w.holders[0].receive_share(&to_first).unwrap();
    assert!(matches!(
        w.holders[0].receive_share(&to_first),
        Err(ProtocolError::Pq(PqError::Replay(_)))
    ));
    assert_eq!(w.holders[0].shares_held(round), 1);
    // A share of a round far ahead is not collected.
    let late = w.clients[1]
        .submit(RoundId(4), &values(&w.federation, 1, 4), 20, &mut w.rng)
        .unwrap();
    let late_share = late
        .shares
        .iter()
        .find(|s| s.routing().recipient == w.holder_id(0))
        .unwrap();
    assert!(matches!(
        w.holders[0].receive_share(late_share),
        Err(ProtocolError::RoundNotCollected {
            round: 4,
            current: 1
        })
    ));
    assert_eq!(w.holders[0].shares_held(round), 1);
    let _ = forged_payload;
}

#[test]
fn the_coordinator_refuses_bad_submissions_and_keeps_the_good_ones() {
    let mut w = world(3, 2, 4, policy(3));
    let round = w.open();
    let good = w.submit(0, round);
    w.coordinator.accept_submission(good.clone()).unwrap();
    // The same bytes again: a replay; a second submission: a duplicate.
    assert!(matches!(
        w.coordinator.accept_submission(good.clone()),
        Err(ProtocolError::Pq(PqError::Replay(_)))
    ));
    let second = w.submit(0, round);
    assert!(matches!(
        w.coordinator.accept_submission(second),
        Err(ProtocolError::Pq(PqError::DuplicateSubmission { .. }))
    ));
    // A share missing, or one of another submission.
    let mut short = w.submit(1, round);
    short.shares.pop();
    assert!(matches!(
        w.coordinator.accept_submission(short),
        Err(ProtocolError::ShareCount { .. })
    ));
    let mut swapped = w.submit(1, round);
    swapped.shares[0] = good.shares[0].clone();
    assert!(matches!(
        w.coordinator.accept_submission(swapped),
        Err(ProtocolError::ShareBinding { .. })
    ));
    // Too few samples.
    let values = values(&w.federation, 2, round.0);
    assert!(matches!(
        w.clients[2].submit(round, &values, 3, &mut w.rng),
        Err(ProtocolError::TooFewSamples {
            samples: 3,
            min: 10
        })
    ));
    // A ciphertext of the wrong shape: the update of a shorter model.
    let other = Arc::new(
        Federation::new(FederationSpec {
            layout: ModelLayout::try_new([("w", vec![5u64])]).unwrap(),
            ..spec(3, 2, 4, policy(3))
        })
        .unwrap(),
    );
    let foreign = Client::new(other, identity(101))
        .unwrap()
        .submit(round, &[0.5; 5], 20, &mut w.rng)
        .unwrap();
    assert!(w.coordinator.accept_submission(foreign).is_err());
    // Bytes that do not decode.
    let bytes = good.to_bytes();
    for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
        assert!(Submission::from_bytes(&w.federation, &bytes[..cut]).is_err());
    }
    let decoded = Submission::from_bytes(&w.federation, &bytes).unwrap();
    assert_eq!(decoded.digest(), good.digest());
    assert_eq!(w.coordinator.accepted().len(), 1);
}
