//! The round protocol in one process: the ceremony over sealed shares,
//! exact sums, policies, replays, clients and holders dropping mid-round,
//! below-threshold failure that keeps the submissions, and the audit log
//! under tampering.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::useless_vec
)]

use std::collections::BTreeMap;

use ringsum_core::ParameterSet;
use ringsum_core::model::ModelLayout;
use ringsum_core::scheme::{Packing, PublicKey};
use ringsum_math::{CrsSeed, Csprng};
use ringsum_pq::{AlgorithmPolicy, Envelope, PqError, Registry, Role, SealingKey, SigningIdentity};
use ringsum_protocol::{
    AuditLog, ClientNode, Coordinator, HolderNode, ProtocolError, RoundPolicy, Setup,
    federation_id, verify_log,
};
use ringsum_threshold::{Committee, HolderId, ShareLedger};

const PARAMS: &str = "pq128-n4096";

struct Federation {
    setup: Setup,
    coordinator: Coordinator,
    clients: Vec<ClientNode>,
    holders: Vec<HolderNode>,
    key: PublicKey,
    rng: Csprng,
}

fn identity(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seeds(ringsum_pq::SignatureAlgorithm::MlDsa65, &[seed; 32], None).unwrap()
}

/// n clients, h holders with threshold t, a 5-parameter model, and the
/// key ceremony done.
fn federation(n: usize, h: u32, t: u32, policy: RoundPolicy) -> Federation {
    let params = ParameterSet::builtin(PARAMS).unwrap();
    let layout = ModelLayout::try_new([("w", vec![4]), ("b", vec![1])]).unwrap();
    let points: Vec<HolderId> = (1..=h).map(HolderId).collect();
    let committee = Committee::new(&params, 0, &points, t).unwrap();
    let crs = CrsSeed::new([9; 32]);
    let coordinator_id = identity(200);
    let client_ids: Vec<_> = (0..n).map(|i| identity(i as u8 + 1)).collect();
    let holder_ids: Vec<_> = (0..h).map(|i| identity(100 + i as u8)).collect();
    let sealing: Vec<_> = (0..h)
        .map(|i| {
            SealingKey::from_seeds(ringsum_pq::KemAlgorithm::MlKem1024, &[i as u8; 64], None)
                .unwrap()
        })
        .collect();
    let mut members = vec![(Role::Coordinator, coordinator_id.id())];
    members.extend(client_ids.iter().map(|c| (Role::Client, c.id())));
    members.extend(holder_ids.iter().map(|c| (Role::KeyHolder, c.id())));
    let federation = federation_id(&params, &committee, &crs, &layout, &members);
    let mut registry = Registry::new(federation, AlgorithmPolicy::POST_QUANTUM);
    registry
        .register(Role::Coordinator, coordinator_id.public().clone(), None)
        .unwrap();
    for c in &client_ids {
        registry
            .register(Role::Client, c.public().clone(), None)
            .unwrap();
    }
    for (id, key) in holder_ids.iter().zip(&sealing) {
        registry
            .register(
                Role::KeyHolder,
                id.public().clone(),
                Some(key.public().clone()),
            )
            .unwrap();
    }
    let holders_map: BTreeMap<_, _> = points
        .iter()
        .copied()
        .zip(holder_ids.iter().map(SigningIdentity::id))
        .collect();
    let setup = Setup {
        packing: Packing::new(&params),
        params,
        layout,
        policy,
        committee,
        crs,
        registry,
        coordinator: coordinator_id.id(),
        holders: holders_map,
    };
    let audit = AuditLog::in_memory(federation, PARAMS);
    let mut coordinator = Coordinator::new(
        &setup,
        coordinator_id,
        vec![0.0; 5],
        audit,
        Csprng::from_seed([1; 32]),
    )
    .unwrap();
    let mut holders: Vec<HolderNode> = holder_ids
        .into_iter()
        .zip(sealing)
        .zip(&points)
        .map(|((id, key), p)| HolderNode::new(id, key, *p, ShareLedger::in_memory()))
        .collect();
    let mut rng = Csprng::from_seed([2; 32]);
    let commitments: Vec<Envelope> = holders
        .iter_mut()
        .map(|x| x.commit(&setup, &mut rng).unwrap())
        .collect();
    let reveals: Vec<Envelope> = holders.iter().map(|x| x.reveal(&setup).unwrap()).collect();
    let dealt: Vec<Envelope> = holders
        .iter()
        .flat_map(|x| x.deal(&setup, &mut rng).unwrap())
        .collect();
    for holder in &mut holders {
        let mine: Vec<Envelope> = dealt
            .iter()
            .filter(|e| e.routing().recipient == holder.id())
            .cloned()
            .collect();
        holder.receive_shares(&setup, &mine).unwrap();
    }
    let announcement = coordinator
        .collect_key(&setup, &commitments, &reveals)
        .unwrap();
    let clients: Vec<ClientNode> = client_ids.into_iter().map(ClientNode::new).collect();
    let key = clients[0]
        .accept_key(&setup, &announcement, &commitments, &reveals)
        .unwrap();
    Federation {
        setup,
        coordinator,
        clients,
        holders,
        key,
        rng,
    }
}

fn update(i: usize) -> Vec<f32> {
    (0..5)
        .map(|j| ((i * 5 + j) as f32 * 0.037).sin() * 0.5)
        .collect()
}

/// Submits the updates of `who` (each with 20 + i samples) and returns the
/// exact weighted average of the quantized-free values.
fn submit_all(f: &mut Federation, round: u64, who: &[usize]) -> Vec<f64> {
    let mut sum = vec![0f64; 5];
    let mut weight = 0f64;
    for &i in who {
        let samples = 20 + i as u64;
        let env = f.clients[i]
            .submit(&f.setup, &f.key, round, &update(i), samples, &mut f.rng)
            .unwrap();
        f.coordinator.accept_submission(&f.setup, &env).unwrap();
        for (s, v) in sum.iter_mut().zip(update(i)) {
            *s += f64::from(v) * samples as f64;
        }
        weight += samples as f64;
    }
    sum.iter().map(|s| s / weight).collect()
}

/// Every available holder of the active set answers; returns the outcome
/// once the set is complete.
fn answer(
    f: &mut Federation,
    request: &Envelope,
    gone: &[HolderId],
) -> Option<ringsum_protocol::RoundOutcome> {
    let aggregate = f.coordinator.aggregate().unwrap().clone();
    let mut done = None;
    for holder in &mut f.holders {
        if gone.contains(&holder.holder())
            || !f.coordinator.missing_holders().contains(&holder.holder())
        {
            continue;
        }
        let share = holder
            .decryption_share(&f.setup, request, &aggregate)
            .unwrap();
        done = f.coordinator.accept_share(&f.setup, &share).unwrap();
    }
    done
}

/// Client i's update encrypted for round 1 with `samples`, outside the
/// client's own signing path.
fn encrypt_raw(
    f: &mut Federation,
    i: usize,
    samples: u64,
) -> ringsum_core::update::EncryptedUpdate {
    ringsum_core::update::encrypt_update(
        &f.setup.params,
        &f.setup.packing,
        &f.key,
        &f.setup.layout,
        &update(i),
        samples,
        ringsum_core::update::RoundId(1),
        &mut f.rng,
    )
    .unwrap()
}

fn close_to(model: &[f32], exact: &[f64], bound: f64) {
    for (m, e) in model.iter().zip(exact) {
        assert!(
            (f64::from(*m) - e).abs() <= bound,
            "{m} vs {e} (bound {bound})"
        );
    }
}

#[test]
fn rounds_decrypt_to_the_weighted_average_within_the_bound() {
    let mut f = federation(4, 3, 2, RoundPolicy::default());
    let mut expected = vec![0f64; 5];
    for round in 1..=2 {
        f.coordinator.open_round(&f.setup, round).unwrap();
        let average = submit_all(&mut f, round, &[0, 1, 2, 3]);
        let all: Vec<HolderId> = (1..=3).map(HolderId).collect();
        let request = f.coordinator.request_decryption(&f.setup, &all).unwrap();
        let outcome = answer(&mut f, &request, &[]).unwrap();
        for (e, a) in expected.iter_mut().zip(&average) {
            *e += a;
        }
        assert_eq!(outcome.result.clients, 4);
        close_to(
            &outcome.result.model,
            &expected,
            2.0 * outcome.result.error_bound + 1e-6,
        );
    }
    let log = f.coordinator.audit().lines().join("\n");
    assert!(verify_log(&log, None, None).unwrap().lines > 10);
}

#[test]
fn dropped_clients_are_left_out_and_the_policy_holds() {
    let policy = RoundPolicy {
        min_clients: 3,
        min_samples: 22,
    };
    let mut f = federation(5, 3, 2, policy);
    f.coordinator.open_round(&f.setup, 1).unwrap();
    // Client 0 declares 20 samples: below the minimum, refused, nothing added.
    let small = f.clients[0]
        .submit(&f.setup, &f.key, 1, &update(0), 20, &mut f.rng)
        .unwrap();
    assert!(matches!(
        f.coordinator.accept_submission(&f.setup, &small),
        Err(ProtocolError::TooFewSamples {
            samples: 20,
            min: 22
        })
    ));
    let average = submit_all(&mut f, 1, &[2, 3]);
    // Two submissions: below min_clients; nothing is lost.
    let all: Vec<HolderId> = (1..=3).map(HolderId).collect();
    assert!(matches!(
        f.coordinator.request_decryption(&f.setup, &all),
        Err(ProtocolError::NotEnoughClients {
            accepted: 2,
            min: 3
        })
    ));
    assert_eq!(f.coordinator.aggregate().unwrap().clients(), 2);
    // A replayed submission and a second one from the same client are refused.
    let again = f.clients[2]
        .submit(&f.setup, &f.key, 1, &update(9), 30, &mut f.rng)
        .unwrap();
    assert!(matches!(
        f.coordinator.accept_submission(&f.setup, &again),
        Err(ProtocolError::Pq(PqError::DuplicateSubmission { .. }))
    ));
    // Client 4 submits; clients 0 and 1 dropped out.
    let mut sum: Vec<f64> = average.iter().map(|a| a * (22.0 + 23.0)).collect();
    let env = f.clients[4]
        .submit(&f.setup, &f.key, 1, &update(4), 24, &mut f.rng)
        .unwrap();
    f.coordinator.accept_submission(&f.setup, &env).unwrap();
    for (s, v) in sum.iter_mut().zip(update(4)) {
        *s += f64::from(v) * 24.0;
    }
    let exact: Vec<f64> = sum.iter().map(|s| s / (22.0 + 23.0 + 24.0)).collect();
    let request = f.coordinator.request_decryption(&f.setup, &all).unwrap();
    let outcome = answer(&mut f, &request, &[]).unwrap();
    assert_eq!(outcome.result.clients, 3);
    close_to(
        &outcome.result.model,
        &exact,
        2.0 * outcome.result.error_bound + 1e-6,
    );
}

#[test]
fn a_holder_vanishing_mid_round_is_replaced_and_below_threshold_keeps_the_round() {
    let mut f = federation(3, 4, 3, RoundPolicy::default());
    f.coordinator.open_round(&f.setup, 1).unwrap();
    let exact = submit_all(&mut f, 1, &[0, 1, 2]);
    let all: Vec<HolderId> = (1..=4).map(HolderId).collect();
    let request = f.coordinator.request_decryption(&f.setup, &all).unwrap();
    // Holder 1 vanishes after the request: holders 2 and 3 answer, 1 is missing.
    let mut gone = vec![HolderId(1)];
    assert!(answer(&mut f, &request, &gone).is_none());
    assert_eq!(f.coordinator.missing_holders(), vec![HolderId(1)]);
    // Holder 2 vanishes too: two left, below t = 3; the round and its
    // submissions stay.
    gone.push(HolderId(2));
    let left = [HolderId(3), HolderId(4)];
    assert!(matches!(
        f.coordinator.retry_decryption(&f.setup, &left),
        Err(ProtocolError::NotEnoughHolders {
            available: 2,
            threshold: 3
        })
    ));
    assert_eq!(f.coordinator.aggregate().unwrap().clients(), 3);
    // Holder 2 comes back: re-randomise, ask {2, 3, 4}, decrypt.
    gone.retain(|h| *h != HolderId(2));
    let back = [HolderId(2), HolderId(3), HolderId(4)];
    let retry = f.coordinator.retry_decryption(&f.setup, &back).unwrap();
    // The stale request's share from holder 3 (its first answer) is not
    // accepted again: every holder answers the new request.
    let outcome = answer(&mut f, &retry, &gone).unwrap();
    close_to(
        &outcome.result.model,
        &exact,
        2.0 * outcome.result.error_bound + 1e-6,
    );
    let log = f.coordinator.audit().lines().join("\n");
    assert!(log.contains("rerandomized"));
    verify_log(&log, None, None).unwrap();
}

#[test]
fn a_share_for_another_request_is_refused() {
    let mut f = federation(3, 3, 2, RoundPolicy::default());
    f.coordinator.open_round(&f.setup, 1).unwrap();
    submit_all(&mut f, 1, &[0, 1, 2]);
    let first = f
        .coordinator
        .request_decryption(&f.setup, &[HolderId(1), HolderId(2)])
        .unwrap();
    let aggregate = f.coordinator.aggregate().unwrap().clone();
    let stale = f.holders[0]
        .decryption_share(&f.setup, &first, &aggregate)
        .unwrap();
    let second = f
        .coordinator
        .retry_decryption(&f.setup, &[HolderId(1), HolderId(3)])
        .unwrap();
    assert!(matches!(
        f.coordinator.accept_share(&f.setup, &stale),
        Err(ProtocolError::StaleShare(HolderId(1)))
    ));
    // Holder 2 is not in the new set.
    let aggregate = f.coordinator.aggregate().unwrap().clone();
    assert!(matches!(
        f.holders[1].decryption_share(&f.setup, &second, &aggregate),
        Err(ProtocolError::NotInActiveSet(HolderId(2)))
    ));
    assert!(answer(&mut f, &second, &[]).is_some());
}

#[test]
fn the_audit_log_names_the_first_tampered_line() {
    let mut f = federation(3, 3, 2, RoundPolicy::default());
    f.coordinator.open_round(&f.setup, 1).unwrap();
    submit_all(&mut f, 1, &[0, 1, 2]);
    let request = f
        .coordinator
        .request_decryption(&f.setup, &[HolderId(1), HolderId(2)])
        .unwrap();
    answer(&mut f, &request, &[]).unwrap();
    let lines: Vec<String> = f.coordinator.audit().lines().to_vec();
    let n = lines.len();
    assert!(n >= 8);
    let failing_line = |text: &str| match verify_log(text, None, None) {
        Err(ProtocolError::Audit { line, .. }) => line,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(verify_log(&lines.join("\n"), None, None).unwrap().lines, n);

    // One byte changed inside the event of line 4.
    let mut changed = lines.clone();
    changed[3] = changed[3].replacen("submission_accepted", "submission_acceptef", 1);
    assert_ne!(changed[3], lines[3]);
    assert_eq!(failing_line(&changed.join("\n")), 4);
    // A byte of the signature of line 6.
    let mut forged = lines.clone();
    let at = forged[5].len() - 10;
    let flipped = if &forged[5][at..=at] == "0" { "1" } else { "0" };
    forged[5].replace_range(at..=at, flipped);
    assert_eq!(failing_line(&forged.join("\n")), 6);
    // Line 3 removed: line 3 (formerly 4) no longer follows.
    let mut removed = lines.clone();
    removed.remove(2);
    assert_eq!(failing_line(&removed.join("\n")), 3);
    // Lines 5 and 6 swapped.
    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    assert_eq!(failing_line(&swapped.join("\n")), 5);
    // A log cut short verifies on its own, but its head differs from the
    // full log's: compare heads to detect truncation. The last line alone
    // does not verify (no setup line).
    let full = verify_log(&lines.join("\n"), None, None).unwrap();
    let cut = verify_log(&lines[..n - 1].join("\n"), None, None).unwrap();
    assert_eq!(cut.lines, n - 1);
    assert_ne!(cut.head, full.head);
    assert_eq!(failing_line(&lines[n - 1]), 1);
    // Upper-case hex is not the logged text: refused.
    let mut upper = lines.clone();
    let at = upper[2].find("\"hash\":\"").unwrap() + 8;
    let letter = upper[2][at..]
        .find(|c: char| c.is_ascii_lowercase())
        .unwrap()
        + at;
    let capital = upper[2][letter..=letter].to_ascii_uppercase();
    upper[2].replace_range(letter..=letter, &capital);
    assert_eq!(failing_line(&upper.join("\n")), 3);
    // Another coordinator's key, or another federation: the first line fails.
    let other = identity(201);
    assert!(matches!(
        verify_log(&lines.join("\n"), Some(other.public()), None),
        Err(ProtocolError::Audit { line: 1, .. })
    ));
    assert!(matches!(
        verify_log(
            &lines.join("\n"),
            None,
            Some(ringsum_pq::FederationId([3; 32]))
        ),
        Err(ProtocolError::Audit { line: 1, .. })
    ));
    assert_eq!(
        verify_log(&lines.join("\n"), None, Some(f.setup.federation()))
            .unwrap()
            .federation,
        f.setup.federation()
    );
}

#[test]
fn refused_requests_and_shares_leave_holders_and_the_round_intact() {
    let mut f = federation(3, 3, 2, RoundPolicy::default());
    f.coordinator.open_round(&f.setup, 1).unwrap();
    submit_all(&mut f, 1, &[0, 1, 2]);
    // A second request while one is outstanding is refused.
    let first = f
        .coordinator
        .request_decryption(&f.setup, &[HolderId(1), HolderId(2)])
        .unwrap();
    assert!(matches!(
        f.coordinator
            .request_decryption(&f.setup, &[HolderId(1), HolderId(2)]),
        Err(ProtocolError::WrongPhase(_))
    ));
    // A retry that lists a non-member: it is ignored, the state stays whole.
    let second = f
        .coordinator
        .retry_decryption(&f.setup, &[HolderId(9), HolderId(1), HolderId(3)])
        .unwrap();
    // The old request replayed to holder 1 with the current aggregate is
    // refused without touching its ledger; the current request then works.
    let aggregate = f.coordinator.aggregate().unwrap().clone();
    assert!(matches!(
        f.holders[0].decryption_share(&f.setup, &first, &aggregate),
        Err(ProtocolError::StaleShare(HolderId(1)))
    ));
    let share = f.holders[0]
        .decryption_share(&f.setup, &second, &aggregate)
        .unwrap();
    // A share with a wrong epoch, signed by holder 3 itself, is refused and
    // does not block holder 3's real share.
    let real = f.holders[2]
        .decryption_share(&f.setup, &second, &aggregate)
        .unwrap();
    let mut bogus =
        ringsum_protocol::payload::decode_decryption_share(&f.setup.params, real.payload(), 1)
            .unwrap();
    bogus.epoch = 5;
    let forged = Envelope::sign(
        &identity(102),
        real.routing().clone(),
        ringsum_protocol::payload::encode_decryption_share(&bogus),
    )
    .unwrap();
    assert!(matches!(
        f.coordinator.accept_share(&f.setup, &forged),
        Err(ProtocolError::StaleShare(HolderId(3)))
    ));
    assert!(
        f.coordinator
            .accept_share(&f.setup, &share)
            .unwrap()
            .is_none()
    );
    assert!(
        f.coordinator
            .accept_share(&f.setup, &real)
            .unwrap()
            .is_some()
    );
}

#[test]
fn holders_refuse_an_aggregate_that_does_not_match_the_request() {
    let mut f = federation(4, 3, 2, RoundPolicy::default());
    f.coordinator.open_round(&f.setup, 1).unwrap();
    submit_all(&mut f, 1, &[0, 1, 2]);
    let request = f
        .coordinator
        .request_decryption(&f.setup, &[HolderId(1), HolderId(2)])
        .unwrap();
    // An aggregate of one submission, passed off with the real request.
    let mut single = ringsum_core::update::Aggregate::new(
        &f.setup.params,
        &f.setup.packing,
        &f.setup.layout,
        ringsum_core::update::RoundId(1),
    );
    let one = encrypt_raw(&mut f, 3, 30);
    single.try_add(&one).unwrap();
    assert!(
        f.holders[0]
            .decryption_share(&f.setup, &request, &single)
            .is_err()
    );
    // The real aggregate still gets its share.
    assert!(answer(&mut f, &request, &[]).is_some());
}

#[test]
fn a_weight_that_disagrees_with_the_declared_samples_is_caught() {
    let mut f = federation(3, 3, 2, RoundPolicy::default());
    f.coordinator.open_round(&f.setup, 1).unwrap();
    submit_all(&mut f, 1, &[0, 1]);
    // Client 2 declares 500 samples but encrypts a weight of 20.
    let encrypted = encrypt_raw(&mut f, 2, 20);
    let lying = Envelope::sign(
        &identity(3),
        ringsum_pq::Routing {
            federation: f.setup.federation(),
            round: 1,
            kind: ringsum_pq::MessageKind::UpdateSubmission,
            recipient: ringsum_pq::ParticipantId::BROADCAST,
            parameter_set: PARAMS.into(),
        },
        ringsum_protocol::payload::encode_submission(500, &encrypted),
    )
    .unwrap();
    f.coordinator.accept_submission(&f.setup, &lying).unwrap();
    let request = f
        .coordinator
        .request_decryption(&f.setup, &[HolderId(1), HolderId(2)])
        .unwrap();
    let aggregate = f.coordinator.aggregate().unwrap().clone();
    let a = f.holders[0]
        .decryption_share(&f.setup, &request, &aggregate)
        .unwrap();
    let b = f.holders[1]
        .decryption_share(&f.setup, &request, &aggregate)
        .unwrap();
    assert!(f.coordinator.accept_share(&f.setup, &a).unwrap().is_none());
    assert!(matches!(
        f.coordinator.accept_share(&f.setup, &b),
        Err(ProtocolError::WeightMismatch { declared, .. }) if declared == 20 + 21 + 500
    ));
    // Nothing is published; the round and its shares stay for inspection.
    assert_eq!(f.coordinator.aggregate().unwrap().clients(), 3);
    assert!(
        f.coordinator
            .audit()
            .lines()
            .last()
            .unwrap()
            .contains("decryption_failed")
    );
}
