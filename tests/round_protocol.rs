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
        privacy: None,
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

// Malicious clients, and answers that do not belong to the open set.

use ringsum::core::round::RoundSecret;
use ringsum::pq::{SealContext, seal_round_share};
use ringsum::protocol::coordinator::RoundStatus;
use ringsum::protocol::holder::AnswerJournal;
use ringsum::protocol::message::{KeyCommitment, SubmissionDigest, UpdateHead, share_binding};
use ringsum::threshold::shamir::{AnswerKey, encode_client_share, share_secret};

/// How a malicious client departs from `Client::submit`.
#[derive(Clone, Copy, Debug, Default)]
struct Malice {
    /// The sample count encrypted in the weight slot, when it is not the
    /// declared one.
    encrypted_samples: Option<u64>,
    /// The holder (by index) whose share comes from another sharing (of
    /// another secret).
    inconsistent_share: Option<usize>,
    /// The holder (by index) sealed another answer key than the committed
    /// one.
    other_key: Option<usize>,
}

fn routing(
    w: &World,
    round: RoundId,
    kind: ringsum::pq::MessageKind,
    recipient: ParticipantId,
) -> ringsum::pq::Routing {
    ringsum::pq::Routing {
        federation: w.federation.id(),
        round: round.0,
        kind,
        recipient,
        parameter_set: SET.into(),
    }
}

/// Opens a round in which clients 0 and 1 submit honestly and client 2
/// submits with `malice`; every submission is accepted and its shares
/// forwarded. Returns the round.
fn round_with_malicious_client_2(w: &mut World, malice: Malice) -> RoundId {
    let round = w.open();
    w.collect(round, &[0, 1]);
    let (bad, _) = malicious_submission(w, 2, round, malice);
    w.coordinator.accept_submission(bad).unwrap();
    w.forward();
    round
}

/// Client i's message for `round` built by hand, as `Client::submit` does
/// but with `malice`: every envelope is signed by client i and every share
/// bound to its update and commitment, so only the holders (or the
/// decryption) can tell. Also returns, for each holder `malice` touched,
/// the share envelope an honest client would have sent it.
fn malicious_submission(
    w: &mut World,
    i: usize,
    round: RoundId,
    malice: Malice,
) -> (Submission, Vec<Envelope>) {
    let federation = Arc::clone(&w.federation);
    let me = identity(100 + i as u8);
    let context = federation.round_context(round);
    let secret = RoundSecret::generate(federation.params(), &mut w.rng);
    let honest = share_secret(federation.committee(), secret.coefficients(), &mut w.rng).unwrap();
    let mut sent = honest.clone();
    if let Some(h) = malice.inconsistent_share {
        let other = RoundSecret::generate(federation.params(), &mut w.rng);
        let other = share_secret(federation.committee(), other.coefficients(), &mut w.rng).unwrap();
        sent[h] = other[h].clone();
    }
    let key = AnswerKey::random(&mut w.rng);
    let declared = samples(i);
    let update = secret
        .encrypt_update(
            federation.packing(),
            federation.layout(),
            &context,
            &values(&federation, i, round.0),
            malice.encrypted_samples.unwrap_or(declared),
            &mut w.rng,
        )
        .unwrap();
    let head = UpdateHead {
        samples: declared,
        key_commitment: KeyCommitment(key.commitment()),
    };
    let update = Envelope::sign(
        &me,
        routing(
            w,
            round,
            ringsum::pq::MessageKind::UpdateSubmission,
            federation.coordinator(),
        ),
        head.encode(&ringsum::wire::encode_round_update(&update)),
    )
    .unwrap();
    let binding = share_binding(SubmissionDigest(update.digest()), head.key_commitment);
    let seal = |(point, share): &(HolderId, _), key: &AnswerKey| {
        seal_round_share(
            &me,
            federation.registry(),
            SealContext {
                federation: federation.id(),
                sender: me.id(),
                recipient: federation.holders()[point],
                epoch: 0,
                round: round.0,
            },
            SET,
            &binding,
            &encode_client_share(key, share),
        )
        .unwrap()
    };
    let mut shares = Vec::new();
    let mut honest_shares = Vec::new();
    for h in 0..sent.len() {
        let touched = malice.inconsistent_share == Some(h) || malice.other_key == Some(h);
        let sealed_key = if malice.other_key == Some(h) {
            AnswerKey::random(&mut w.rng)
        } else {
            key.clone()
        };
        shares.push(seal(&sent[h], &sealed_key));
        if touched {
            honest_shares.push(seal(&honest[h], &key));
        }
    }
    (Submission { update, shares }, honest_shares)
}

/// Every holder answers the request; the coordinator takes each answer.
fn answer_all(w: &mut World, request: &Envelope) {
    for h in 0..w.holders.len() {
        let answer = w.holders[h].answer(request).unwrap();
        w.coordinator.accept_answer(answer).unwrap();
    }
}

/// The event of the audit log's last line.
fn last_event(w: &World) -> serde_json::Value {
    let lines = w.coordinator.audit().lines();
    let line: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    serde_json::from_str(line["event"].as_str().unwrap()).unwrap()
}

/// Ends the round, which must fail cleanly: `RoundFailed` for `round`,
/// recorded with its reason as the log's last event. Returns the reason.
fn assert_round_fails(w: &mut World, round: RoundId) -> String {
    let error = w.coordinator.finish().unwrap_err();
    assert!(
        matches!(error, ProtocolError::RoundFailed { .. }),
        "{error}"
    );
    let ProtocolError::RoundFailed {
        round: failed,
        reason,
    } = error
    else {
        unreachable!()
    };
    assert_eq!(failed, round.0);
    let event = last_event(w);
    assert_eq!(event["type"], "round_failed");
    assert_eq!(event["reason"], reason.as_str());
    assert_eq!(
        w.coordinator.status(),
        RoundStatus::Idle { last: round },
        "the next round can open"
    );
    reason
}

/// A whole honest round with clients `who`, decoded to plaintext FedAvg.
fn assert_honest_round(w: &mut World, who: &[usize]) {
    let round = w.open();
    w.collect(round, who);
    let request = w.coordinator.close().unwrap();
    answer_all(w, &request);
    let outcome = w.coordinator.finish().unwrap();
    assert!(outcome.liars.is_empty());
    assert_close(
        &outcome.average.average.concat(),
        &w.plaintext(round, who),
        outcome.average.error_bound,
    );
}

#[test]
fn inconsistent_shamir_shares_fail_the_round_cleanly_and_the_next_one_works() {
    // n = 3, t = 2, all answering: client 2 deals holder 3 a share of
    // another sharing. Three answers of a degree-1 polynomial, one off in
    // nearly every coefficient: detected (3 > t), not correctable (that
    // takes t + 2 = 4 answers). The reason speaks of a wrong answer: from
    // the answers alone, a client's bad share and a holder's lie look the
    // same.
    let mut w = world(3, 2, 4, policy(3));
    let round = round_with_malicious_client_2(
        &mut w,
        Malice {
            inconsistent_share: Some(2),
            ..Malice::default()
        },
    );
    // The bad share is signed, bound and opens: every holder keeps it.
    for h in 0..3 {
        assert_eq!(w.holders[h].shares_held(round), 3);
    }
    let request = w.coordinator.close().unwrap();
    answer_all(&mut w, &request);
    let reason = assert_round_fails(&mut w, round);
    assert!(
        reason.contains("the answers of 3 holders disagree") && reason.contains("t = 2"),
        "{reason}"
    );
    assert_honest_round(&mut w, &[0, 1, 2]);
}

#[test]
fn inconsistent_shamir_shares_among_five_holders_are_corrected_but_name_an_honest_holder() {
    // n = 5, t = 3, all answering: the attack above on holder 5 is one
    // wrong value per coefficient among 5 answers, which Reed-Solomon
    // decoding corrects (t + 2 = 5). The other four shares lie on the
    // client's real sharing of the secret it encrypted under, so the round
    // completes with the correct average, including the malicious
    // client's update. But holder 5, which is honest, is named in the audit
    // log: a client can make a holder look like a liar, since nothing lets
    // a holder prove its share was inconsistent (that needs verifiable
    // secret sharing). A named holder means "a wrong answer or a wrong
    // share", not proof of a lie.
    let mut w = world(5, 3, 3, policy(3));
    let round = round_with_malicious_client_2(
        &mut w,
        Malice {
            inconsistent_share: Some(4),
            ..Malice::default()
        },
    );
    let request = w.coordinator.close().unwrap();
    answer_all(&mut w, &request);
    let outcome = w.coordinator.finish().unwrap();
    assert_eq!(outcome.liars, vec![HolderId(5)]);
    assert_eq!(
        outcome.used,
        vec![HolderId(1), HolderId(2), HolderId(3), HolderId(4)]
    );
    assert_close(
        &outcome.average.average.concat(),
        &w.plaintext(round, &[0, 1, 2]),
        outcome.average.error_bound,
    );
    assert_eq!(last_event(&w)["holders_named"], serde_json::json!([5]));
    assert_honest_round(&mut w, &[0, 1, 2]);
}

#[test]
fn an_encrypted_weight_that_disagrees_with_the_declared_samples_fails_the_round() {
    let mut w = world(3, 2, 4, policy(3));
    // Client 2 declares 40 samples (above min_samples, where the
    // coordinator checks) and weighs its update as 4000 (100 times more
    // influence on the average).
    let round = round_with_malicious_client_2(
        &mut w,
        Malice {
            encrypted_samples: Some(4_000),
            ..Malice::default()
        },
    );
    let request = w.coordinator.close().unwrap();
    answer_all(&mut w, &request);
    let reason = assert_round_fails(&mut w, round);
    // The reason is ProtocolError::WeightMismatch's: 20 + 30 + 40 declared.
    assert!(
        reason.contains("the declared 90 samples")
            && reason.contains("a client's encrypted weight disagrees with its declared count"),
        "{reason}"
    );
    assert_honest_round(&mut w, &[0, 1, 2]);
}

#[test]
fn a_share_sealed_with_another_answer_key_is_refused_by_its_holder() {
    let mut w = world(3, 2, 4, policy(3));
    let round = w.open();
    w.collect(round, &[0, 1]);
    let malice = Malice {
        other_key: Some(0),
        ..Malice::default()
    };
    let (bad, honest) = malicious_submission(&mut w, 2, round, malice);
    let to_first = bad.shares[0].clone();
    let client = w.coordinator.accept_submission(bad).unwrap();
    // The coordinator cannot see the key: it forwards the share, and
    // holder 1 refuses it, since the key it opens is not the committed one.
    assert!(
        w.coordinator
            .shares_for(w.holder_id(0))
            .contains(&&to_first)
    );
    let error = w.holders[0].receive_share(&to_first).unwrap_err();
    assert!(
        matches!(&error, ProtocolError::ShareBinding { holder, .. } if *holder == w.holder_id(0)),
        "{error}"
    );
    // It was received all the same: the client cannot replace it with a
    // good one now.
    assert!(matches!(
        w.holders[0].receive_share(&honest[0]),
        Err(ProtocolError::Pq(PqError::DuplicateSubmission { .. }))
    ));
    assert_eq!(w.holders[0].shares_held(round), 2);
    w.forward();
    assert_eq!(w.holders[1].shares_held(round), 3);
    assert_eq!(w.holders[2].shares_held(round), 3);
    // The set names the client: holder 1 refuses it and records nothing,
    // the others answer, and t = 2 answers finish the round.
    let request = w.coordinator.close().unwrap();
    let error = w.holders[0].answer(&request).unwrap_err();
    assert!(
        matches!(error, ProtocolError::MissingShare(c) if c == client),
        "{error}"
    );
    assert_eq!(w.holders[0].journal().answered(round).unwrap(), None);
    for h in 1..3 {
        let answer = w.holders[h].answer(&request).unwrap();
        w.coordinator.accept_answer(answer).unwrap();
    }
    let outcome = w.coordinator.finish().unwrap();
    assert_eq!(outcome.used, vec![HolderId(2), HolderId(3)]);
    assert_close(
        &outcome.average.average.concat(),
        &w.plaintext(round, &[0, 1, 2]),
        outcome.average.error_bound,
    );
}

#[test]
fn answers_of_an_earlier_round_or_another_set_are_refused() {
    let mut w = world(3, 2, 4, policy(3));
    let round = w.open();
    w.collect(round, &[0, 1, 2]);
    let request = w.coordinator.close().unwrap();
    let earlier: Vec<Envelope> = (0..3)
        .map(|h| w.holders[h].answer(&request).unwrap())
        .collect();
    for answer in &earlier {
        w.coordinator.accept_answer(answer.clone()).unwrap();
    }
    w.coordinator.finish().unwrap();

    let round = w.open();
    w.collect(round, &[0, 1, 2, 3]);
    let request = w.coordinator.close().unwrap();
    // Round 1's answers, replayed into round 2's collection.
    for answer in &earlier {
        let error = w.coordinator.accept_answer(answer.clone()).unwrap_err();
        assert!(
            matches!(
                error,
                ProtocolError::Pq(PqError::WrongRound {
                    expected: 2,
                    found: 1
                })
            ),
            "{error}"
        );
    }
    // A malicious coordinator asks holder 1 for S1 (three of the four
    // clients); the open set is S2 (all four). Holder 1's genuine, signed
    // answer to S1 is refused.
    let s1 = crafted_request(&w, round, entries_of(&request, &w)[..3].to_vec());
    let answer = w.holders[0].answer(&s1).unwrap();
    let error = w.coordinator.accept_answer(answer).unwrap_err();
    assert!(matches!(error, ProtocolError::WrongSet), "{error}");
    assert_eq!(
        w.coordinator.status(),
        RoundStatus::Answering {
            round,
            clients: 4,
            answers: 0
        }
    );
    // Holder 1 answered S1 in this round, so it refuses S2; the others
    // answer S2 (a second copy of one answer is refused) and t = 2 finish.
    assert!(matches!(
        w.holders[0].answer(&request),
        Err(ProtocolError::AlreadyAnswered { round: 2 })
    ));
    for h in 1..3 {
        let answer = w.holders[h].answer(&request).unwrap();
        w.coordinator.accept_answer(answer.clone()).unwrap();
        assert!(matches!(
            w.coordinator.accept_answer(answer),
            Err(ProtocolError::Pq(PqError::DuplicateSubmission { .. }))
        ));
    }
    let outcome = w.coordinator.finish().unwrap();
    assert_eq!(outcome.used, vec![HolderId(2), HolderId(3)]);
    assert_close(
        &outcome.average.average.concat(),
        &w.plaintext(round, &[0, 1, 2, 3]),
        outcome.average.error_bound,
    );
}

/// Writes fuzz/seeds/decode_round_messages from real messages of this
/// file's `world(3, 2, 4, policy(3))`, the federation the fuzz target
/// builds: each seed is the target's selector byte, then the bytes.
/// `cargo test --test round_protocol -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files: run by hand to refresh the fuzz seeds"]
fn write_fuzz_seeds() {
    let mut w = world(3, 2, 4, policy(3));
    let round = w.open();
    let submission = w.submit(0, round);
    w.coordinator.accept_submission(submission.clone()).unwrap();
    w.collect(round, &[1, 2]);
    let request = w.coordinator.close().unwrap();
    let answer = w.holders[0].answer(&request).unwrap();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode_round_messages");
    std::fs::create_dir_all(&dir).unwrap();
    let seeds: [(&str, u8, Vec<u8>); 5] = [
        ("submission", 0, submission.to_bytes()),
        ("update_payload", 1, submission.update.payload().to_vec()),
        ("share_envelope", 2, submission.shares[0].to_bytes()),
        ("client_set", 3, request.payload().to_vec()),
        ("answer", 4, answer.payload().to_vec()),
    ];
    for (name, selector, bytes) in seeds {
        let mut seed = vec![selector];
        seed.extend_from_slice(&bytes);
        std::fs::write(dir.join(name), seed).unwrap();
    }
    // What the target decodes, decodes.
    Submission::from_bytes(&w.federation, &submission.to_bytes()).unwrap();
    UpdateHead::decode(submission.update.payload()).unwrap();
    ClientSet::decode(request.payload(), 4).unwrap();
    AnswerPayload::decode(&w.federation, answer.payload()).unwrap();
}

/// The worked example of docs/formats.md ("Client set"): a set of two
/// clients of `spec(3, 2, 2, policy(2))` in round 1, its bytes and digest.
#[test]
fn the_documented_client_set_example() {
    let federation = Federation::new(spec(3, 2, 2, policy(2))).unwrap();
    let clients: Vec<ParticipantId> = federation.clients().iter().copied().collect();
    let set = ClientSet {
        round: RoundId(1),
        entries: vec![
            SetEntry {
                client: clients[0],
                submission: SubmissionDigest([0x11; 32]),
                key_commitment: KeyCommitment([0x22; 32]),
            },
            SetEntry {
                client: clients[1],
                submission: SubmissionDigest([0x33; 32]),
                key_commitment: KeyCommitment([0x44; 32]),
            },
        ],
    };
    set.check(&federation).unwrap();
    // If these change, so must the example in docs/formats.md.
    let hex = ringsum::pq::codec::hex;
    assert_eq!(
        hex(&federation.id().0),
        "d270d7fd9fa61e7e897c619da670f886b68ee8b6ee774a0b4f33a8986efd76c0"
    );
    let encoding = set.encode();
    assert_eq!(encoding.len(), 13 + 2 * 96);
    assert_eq!(
        hex(&encoding),
        concat!(
            "01",
            "0000000000000001",
            "00000002",
            "a3e5b598de61383a869b4c01cc2e46c46951e73dd8f5838f5b1941d51e0ff473",
            "1111111111111111111111111111111111111111111111111111111111111111",
            "2222222222222222222222222222222222222222222222222222222222222222",
            "ef7cde00cc6b5ffb9c612637db8e8e114d2350552ce7a33aaa46772d80a54b41",
            "3333333333333333333333333333333333333333333333333333333333333333",
            "4444444444444444444444444444444444444444444444444444444444444444",
        )
    );
    assert_eq!(
        set.digest(&federation).to_string(),
        "f8924037049c7da8bc233442502996c040fb7edc6ef07750b43c66cd2dba6192"
    );
    let mut mask = b"ringsum/v2 answer mask".to_vec();
    mask.extend_from_slice(&set.digest(&federation).0);
    assert_eq!(set.mask_context(&federation), mask);
    assert_eq!(ClientSet::decode(&encoding, 2).unwrap(), set);
}

// Differential privacy: clients clip, quantize and noise their records'
// gradients before encrypting; the opened sum is exactly theirs.

impl World {
    /// Forwards the shares, closes the round, has every holder answer and
    /// opens the sum.
    fn open_sum(&mut self) -> ringsum::protocol::coordinator::RoundOutcome {
        self.forward();
        let request = self.coordinator.close().unwrap();
        for holder in &mut self.holders {
            let answer = holder.answer(&request).unwrap();
            self.coordinator.accept_answer(answer).unwrap();
        }
        self.coordinator.finish().unwrap()
    }
}

fn private_settings(noise_clients: u64) -> ringsum::core::privacy::PrivacySettings {
    ringsum::core::privacy::PrivacySettings {
        epsilon: 2.0,
        delta: 1e-5,
        clip: 1.0,
        learning_rate: 0.5,
        records_per_client: 20,
        max_records: 30,
        noise_clients,
    }
}

fn private_world(settings: ringsum::core::privacy::PrivacySettings) -> World {
    let mut w = world(3, 2, 4, policy(3));
    let federation = Arc::new(
        Federation::new(FederationSpec {
            privacy: Some(settings),
            ..spec(3, 2, 4, policy(3))
        })
        .unwrap(),
    );
    assert_ne!(federation.id(), w.federation.id());
    let params = federation.layout().parameter_count();
    let audit = AuditLog::in_memory(federation.id(), federation.params().id().as_str());
    w.coordinator = Coordinator::new(
        Arc::clone(&federation),
        identity(1),
        vec![0.0; params],
        audit,
    )
    .unwrap();
    w.holders = (0..3u8)
        .map(|i| {
            Holder::new(
                Arc::clone(&federation),
                identity(10 + i),
                sealing(10 + i),
                MemoryJournal::default(),
            )
            .unwrap()
        })
        .collect();
    w.clients = (0..4u8)
        .map(|i| Client::new(Arc::clone(&federation), identity(100 + i)).unwrap())
        .collect();
    w.federation = federation;
    w
}

#[test]
fn private_rounds_open_exactly_the_noised_sum() {
    let mut w = private_world(private_settings(3));
    let plan = w.federation.privacy().unwrap().clone();
    let round = w.open();
    let n = w.federation.layout().parameter_count();
    let mut exact = vec![0f64; n];
    let mut weights = 0f64;
    for i in 0..4 {
        let mut contribution = plan.contribution();
        for r in 0..(15 + i) {
            let gradient: Vec<f32> = (0..n)
                .map(|j| ((i * 17 + r * 5 + j * 3) % 23) as f32 / 11.0 - 1.0)
                .collect();
            contribution.add_record(&gradient, &mut w.rng).unwrap();
        }
        let noisy = contribution.finish(&mut w.rng);
        for (e, v) in exact.iter_mut().zip(noisy.values()) {
            *e += *v as f64;
        }
        weights += noisy.weight() as f64;
        // A DP federation refuses plain values.
        assert!(matches!(
            w.clients[i].submit(round, &vec![0.1; n], 20, &mut w.rng),
            Err(ProtocolError::PrivacyRequired)
        ));
        let submission = w.clients[i]
            .submit_private(round, noisy, &mut w.rng)
            .unwrap();
        w.coordinator.accept_submission(submission).unwrap();
    }
    let outcome = w.open_sum();
    assert_eq!(outcome.average.clients, 4);
    assert_eq!(outcome.average.weight_sum as f64, weights);
    // The decrypted average is the clients' integers over their weights,
    // to f32 precision: no quantization after the clients'.
    for (d, e) in outcome.average.average.concat().iter().zip(&exact) {
        let expected = e / weights;
        assert!(
            (f64::from(*d) - expected).abs() <= expected.abs() * 1e-6 + 1e-9,
            "{d} vs {expected}"
        );
    }
    assert!(plan.round_rho(4).unwrap() <= plan.round_rho(3).unwrap());
}

#[test]
fn private_settings_that_cannot_hold_are_refused_at_setup() {
    // More clients' noise planned than the smallest set holds.
    let error = Federation::new(FederationSpec {
        privacy: Some(private_settings(4)),
        ..spec(3, 2, 4, policy(3))
    })
    .unwrap_err();
    assert!(error.to_string().contains("noise_clients"), "{error}");
    for (settings, word) in [
        (
            ringsum::core::privacy::PrivacySettings {
                epsilon: 0.0,
                ..private_settings(3)
            },
            "epsilon",
        ),
        (
            ringsum::core::privacy::PrivacySettings {
                delta: 1.0,
                ..private_settings(3)
            },
            "delta",
        ),
        (
            ringsum::core::privacy::PrivacySettings {
                max_records: 50_000_000,
                records_per_client: 20,
                ..private_settings(3)
            },
            "overflow",
        ),
    ] {
        let error = Federation::new(FederationSpec {
            privacy: Some(settings),
            ..spec(3, 2, 4, policy(3))
        })
        .unwrap_err();
        assert!(error.to_string().contains(word), "{word}: {error}");
    }
    // A declared count the policy's max_weight would refuse.
    let error = Federation::new(FederationSpec {
        privacy: Some(private_settings(3)),
        ..spec(
            3,
            2,
            4,
            Policy {
                max_weight: 1000,
                ..policy(3)
            },
        )
    })
    .unwrap_err();
    assert!(error.to_string().contains("above max_weight"), "{error}");
    // A learning rate the parameter set's weights cannot express.
    let error = Federation::new(FederationSpec {
        privacy: Some(ringsum::core::privacy::PrivacySettings {
            learning_rate: 0.001,
            ..private_settings(3)
        }),
        ..spec(3, 2, 4, policy(3))
    })
    .unwrap_err();
    assert!(
        error.to_string().contains("raise the learning rate"),
        "{error}"
    );
    // A plain federation refuses private submissions.
    let mut w = world(3, 2, 4, policy(3));
    let other = private_world(private_settings(3));
    let plan = other.federation.privacy().unwrap();
    let noisy = plan.contribution().finish(&mut w.rng);
    let round = w.open();
    assert!(matches!(
        w.clients[0].submit_private(round, noisy, &mut w.rng),
        Err(ProtocolError::NoPrivacyPlan)
    ));
}

/// The worst case the plan allows (every record of every client clipped
/// onto one coordinate) opens: the coordinator's plausibility check of a
/// DP sum uses the plan's bound, not the plain encoding's.
#[test]
fn private_sums_at_the_plans_worst_case_open() {
    let mut w = private_world(ringsum::core::privacy::PrivacySettings {
        records_per_client: 200,
        max_records: 200,
        learning_rate: 4.0,
        ..private_settings(3)
    });
    let federation = Arc::clone(&w.federation);
    let n = federation.layout().parameter_count();
    let plan = federation.privacy().unwrap().clone();
    let round = w.open();
    let mut one_hot = vec![0f32; n];
    one_hot[3] = 50.0;
    for i in 0..4 {
        let mut contribution = plan.contribution();
        for _ in 0..200 {
            contribution.add_record(&one_hot, &mut w.rng).unwrap();
        }
        let noisy = contribution.finish(&mut w.rng);
        let submission = w.clients[i]
            .submit_private(round, noisy, &mut w.rng)
            .unwrap();
        w.coordinator.accept_submission(submission).unwrap();
    }
    let outcome = w.open_sum();
    // Coordinate 3 moved by about -lr * 4 * 200 * C / (4 * 200).
    let step = outcome.average.average.concat()[3];
    let rate = plan.effective_learning_rate();
    assert!(
        (f64::from(step) + rate).abs() < 0.05 * rate,
        "{step} vs {}",
        -rate
    );
}
