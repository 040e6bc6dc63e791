//! Signed envelopes, the registry and sealed boxes under attack: every byte
//! of an envelope and of a sealed box flipped in turn, replays, second
//! submissions, wrong rounds, kinds and recipients, revoked and rotated
//! keys, downgrades from hybrid to post-quantum only, key files; and
//! round trips over random payloads.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;

use proptest::prelude::*;
use ringsum::pq::{
    AlgorithmPolicy, Envelope, FederationId, Inbox, KemAlgorithm, MessageKind, ParticipantId,
    PqError, Registry, RevocationReason, Role, Routing, SealContext, SealedBox, SealingKey,
    SignatureAlgorithm, SigningIdentity, open_round_share, revocation_payload, rotation_envelope,
    seal_round_share,
};

const FEDERATION: FederationId = FederationId([0x42; 32]);
const SET: &str = "rk128-n16384";
const MAX: usize = 1 << 20;

fn identity(algorithm: SignatureAlgorithm, seed: u8) -> SigningIdentity {
    let ed = [seed ^ 0x5a; 32];
    let ed = algorithm.is_hybrid().then_some(&ed);
    SigningIdentity::from_seeds(algorithm, &[seed; 32], ed).unwrap()
}

fn sealing(algorithm: KemAlgorithm, seed: u8) -> SealingKey {
    let x = [seed ^ 0xa5; 32];
    SealingKey::from_seeds(algorithm, &[seed; 64], algorithm.is_hybrid().then_some(&x)).unwrap()
}

fn routing(round: u64, kind: MessageKind) -> Routing {
    Routing {
        federation: FEDERATION,
        round,
        kind,
        recipient: ParticipantId::BROADCAST,
        parameter_set: SET.into(),
    }
}

/// A registry with a client, a key holder and a coordinator of `algorithm`.
struct Federation {
    registry: Registry,
    client: SigningIdentity,
    holder: SigningIdentity,
    holder_key: SealingKey,
    coordinator: SigningIdentity,
}

fn federation(algorithm: SignatureAlgorithm, kem: KemAlgorithm) -> Federation {
    let client = identity(algorithm, 1);
    let holder = identity(algorithm, 2);
    let holder_key = sealing(kem, 2);
    let coordinator = identity(algorithm, 3);
    let policy = AlgorithmPolicy {
        signature: algorithm,
        kem,
    };
    let mut registry = Registry::new(FEDERATION, policy);
    registry
        .register(Role::Client, client.public().clone(), None)
        .unwrap();
    registry
        .register(
            Role::KeyHolder,
            holder.public().clone(),
            Some(holder_key.public().clone()),
        )
        .unwrap();
    registry
        .register(Role::Coordinator, coordinator.public().clone(), None)
        .unwrap();
    Federation {
        registry,
        client,
        holder,
        holder_key,
        coordinator,
    }
}

fn update(f: &Federation, round: u64, payload: &[u8]) -> Envelope {
    Envelope::sign(
        &f.client,
        routing(round, MessageKind::UpdateSubmission),
        payload.to_vec(),
    )
    .unwrap()
}

/// Flips each bit position `bit` of every byte in turn and hands the
/// result to `check`, which must refuse it.
fn every_flip(bytes: &[u8], mut check: impl FnMut(usize, &[u8]) -> bool) {
    let mut copy = bytes.to_vec();
    for i in 0..bytes.len() {
        let bit = 1u8 << (i % 8);
        copy[i] ^= bit;
        assert!(
            check(i, &copy),
            "flipping bit {bit:#04x} of byte {i} was not detected"
        );
        copy[i] ^= bit;
    }
}

#[test]
fn every_flipped_envelope_byte_is_refused() {
    for algorithm in SignatureAlgorithm::ALL {
        let f = federation(algorithm, KemAlgorithm::MlKem1024);
        let envelope = update(&f, 7, &[0x11; 100]);
        let wire = envelope.to_bytes();
        assert_eq!(
            wire.len(),
            2 + 2 + 2 + 8 + 32 * 3 + 1 + SET.len() + 4 + 100 + algorithm.signature_len()
        );
        let mut inbox = Inbox::new(FEDERATION, 7, SET, None);
        every_flip(&wire, |_, bytes| match Envelope::from_bytes(bytes, MAX) {
            Err(_) => true,
            // Even a receiver of the tampered round, kind and set refuses
            // it: the signature covers every field.
            Ok(tampered) => {
                f.registry.authenticate(&tampered).is_err()
                    && inbox
                        .accept(&f.registry, &tampered, MessageKind::UpdateSubmission)
                        .is_err()
            }
        });
        assert!(inbox.is_empty(), "no tampered envelope was recorded");
        inbox
            .accept(&f.registry, &envelope, MessageKind::UpdateSubmission)
            .unwrap();
    }
}

#[test]
fn each_header_field_is_bound_by_the_signature() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let envelope = update(&f, 7, b"payload");
    let wire = envelope.to_bytes();
    // Field offsets of docs/formats.md; each rewritten to another valid value.
    let (holder, coordinator) = (f.holder.id(), f.coordinator.id());
    let rewrites: [(&str, usize, &[u8]); 7] = [
        ("kind", 4, &MessageKind::DecryptionShare.id().to_be_bytes()),
        ("round", 6, &8u64.to_be_bytes()),
        ("federation", 14, &[0x43; 32]),
        ("sender", 46, holder.as_bytes()),
        ("recipient", 78, coordinator.as_bytes()),
        ("parameter set", 111, b"rk128-n16385"),
        ("payload", 111 + SET.len() + 4, b"PAYLOAD"),
    ];
    for (field, offset, value) in rewrites {
        let mut bytes = wire.clone();
        bytes[offset..offset + value.len()].copy_from_slice(value);
        let tampered = Envelope::from_bytes(&bytes, MAX).unwrap();
        assert_ne!(tampered, envelope, "{field}");
        let err = tampered.verify_signature(f.client.public()).unwrap_err();
        assert!(matches!(err, PqError::BadSignature), "{field}: {err}");
    }
    // The version and algorithm fields: unknown values do not even decode.
    let mut bytes = wire.clone();
    bytes[1] = 2;
    assert!(matches!(
        Envelope::from_bytes(&bytes, MAX),
        Err(PqError::UnsupportedVersion { found: 2, .. })
    ));
    let mut bytes = wire;
    bytes[3] = 9;
    assert!(matches!(
        Envelope::from_bytes(&bytes, MAX),
        Err(PqError::UnknownAlgorithm { id: 9, .. })
    ));
}

#[test]
fn stripping_the_classical_half_is_refused() {
    let f = federation(
        SignatureAlgorithm::MlDsa65Ed25519,
        KemAlgorithm::MlKem1024X25519,
    );
    let envelope = update(&f, 1, b"update");
    let mut wire = envelope.to_bytes();
    // Claim ML-DSA-65 only and drop the Ed25519 signature.
    wire[3] = 1;
    wire.truncate(wire.len() - 64);
    let downgraded = Envelope::from_bytes(&wire, MAX).unwrap();
    let err = f.registry.authenticate(&downgraded).unwrap_err();
    assert!(matches!(err, PqError::AlgorithmMismatch { .. }), "{err}");
    // A registry that knew only the ML-DSA half would still refuse it: the
    // algorithm id is part of the signed bytes.
    let pq_only = ringsum::pq::PublicIdentity::from_bytes(
        SignatureAlgorithm::MlDsa65,
        f.client.public().ml_dsa_public_key(),
    )
    .unwrap();
    assert!(downgraded.verify_signature(&pq_only).is_err());
}

#[test]
fn both_halves_of_a_hybrid_signature_must_verify() {
    let f = federation(
        SignatureAlgorithm::MlDsa65Ed25519,
        KemAlgorithm::MlKem1024X25519,
    );
    let a = update(&f, 1, b"a");
    let b = update(&f, 1, b"b");
    let wire_a = a.to_bytes();
    let wire_b = b.to_bytes();
    let sig_len = SignatureAlgorithm::MlDsa65Ed25519.signature_len();
    let (head, sig_a) = wire_a.split_at(wire_a.len() - sig_len);
    let sig_b = &wire_b[wire_b.len() - sig_len..];
    // a's ML-DSA half with b's Ed25519 half, and the other way round.
    for mixed in [
        [&sig_a[..3309], &sig_b[3309..]].concat(),
        [&sig_b[..3309], &sig_a[3309..]].concat(),
    ] {
        let bytes = [head, &mixed].concat();
        let tampered = Envelope::from_bytes(&bytes, MAX).unwrap();
        assert!(matches!(
            f.registry.authenticate(&tampered),
            Err(PqError::BadSignature)
        ));
    }
}

#[test]
fn replays_and_second_submissions_are_refused_without_changing_state() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let mut inbox = Inbox::new(FEDERATION, 3, SET, None);
    let first = update(&f, 3, b"first");
    inbox
        .accept(&f.registry, &first, MessageKind::UpdateSubmission)
        .unwrap();

    // The same bytes again.
    let again = Envelope::from_bytes(&first.to_bytes(), MAX).unwrap();
    let err = inbox
        .accept(&f.registry, &again, MessageKind::UpdateSubmission)
        .unwrap_err();
    assert!(
        matches!(err, PqError::Replay(id) if id == f.client.id()),
        "{err}"
    );
    // The same content signed again (ML-DSA is randomised) is still a replay.
    let resigned = update(&f, 3, b"first");
    assert_ne!(resigned.signature(), first.signature());
    assert!(matches!(
        inbox.accept(&f.registry, &resigned, MessageKind::UpdateSubmission),
        Err(PqError::Replay(_))
    ));
    // A different update from the same client in the same round.
    let second = update(&f, 3, b"second");
    let err = inbox
        .accept(&f.registry, &second, MessageKind::UpdateSubmission)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PqError::DuplicateSubmission {
                kind: MessageKind::UpdateSubmission,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(inbox.len(), 1);

    // Another client is still welcome, and the next round starts afresh.
    let other = identity(SignatureAlgorithm::MlDsa65, 9);
    let mut registry = f.registry.clone();
    registry
        .register(Role::Client, other.public().clone(), None)
        .unwrap();
    let theirs = Envelope::sign(
        &other,
        routing(3, MessageKind::UpdateSubmission),
        b"x".to_vec(),
    )
    .unwrap();
    inbox
        .accept(&registry, &theirs, MessageKind::UpdateSubmission)
        .unwrap();
    assert_eq!(inbox.len(), 2);
    let mut next = Inbox::new(FEDERATION, 4, SET, None);
    next.accept(
        &registry,
        &update(&f, 4, b"second"),
        MessageKind::UpdateSubmission,
    )
    .unwrap();
}

#[test]
fn wrong_round_kind_set_federation_and_recipient_are_refused() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let mut inbox = Inbox::new(FEDERATION, 5, SET, Some(f.coordinator.id()));
    let old = update(&f, 4, b"late");
    assert!(matches!(
        inbox.accept(&f.registry, &old, MessageKind::UpdateSubmission),
        Err(PqError::WrongRound {
            expected: 5,
            found: 4
        })
    ));
    let now = update(&f, 5, b"update");
    assert!(matches!(
        inbox.accept(&f.registry, &now, MessageKind::DecryptionShare),
        Err(PqError::WrongKind {
            expected: MessageKind::DecryptionShare,
            found: MessageKind::UpdateSubmission
        })
    ));
    let mut r = routing(5, MessageKind::UpdateSubmission);
    r.parameter_set = "rk128-n8192".into();
    let other_set = Envelope::sign(&f.client, r, b"u".to_vec()).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &other_set, MessageKind::UpdateSubmission),
        Err(PqError::WrongParameterSet { .. })
    ));
    let mut r = routing(5, MessageKind::UpdateSubmission);
    r.federation = FederationId([1; 32]);
    let other_fed = Envelope::sign(&f.client, r, b"u".to_vec()).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &other_fed, MessageKind::UpdateSubmission),
        Err(PqError::WrongFederation)
    ));
    let mut r = routing(5, MessageKind::UpdateSubmission);
    r.recipient = f.holder.id();
    let not_mine = Envelope::sign(&f.client, r, b"u".to_vec()).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &not_mine, MessageKind::UpdateSubmission),
        Err(PqError::WrongRecipient { .. })
    ));
    assert!(inbox.is_empty());
    // Addressed to the coordinator itself: accepted.
    let mut r = routing(5, MessageKind::UpdateSubmission);
    r.recipient = f.coordinator.id();
    let mine = Envelope::sign(&f.client, r, b"u".to_vec()).unwrap();
    inbox
        .accept(&f.registry, &mine, MessageKind::UpdateSubmission)
        .unwrap();
}

#[test]
fn unknown_senders_and_roles_out_of_place_are_refused() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let mut inbox = Inbox::new(FEDERATION, 1, SET, None);
    let stranger = identity(SignatureAlgorithm::MlDsa65, 77);
    let theirs =
        Envelope::sign(&stranger, routing(1, MessageKind::UpdateSubmission), vec![]).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &theirs, MessageKind::UpdateSubmission),
        Err(PqError::UnknownSender(id)) if id == stranger.id()
    ));
    // A client cannot publish a round result or send a decryption share.
    for kind in [MessageKind::RoundResult, MessageKind::DecryptionShare] {
        let env = Envelope::sign(&f.client, routing(1, kind), vec![]).unwrap();
        assert!(matches!(
            inbox.accept(&f.registry, &env, kind),
            Err(PqError::Unauthorized { role: "client", .. })
        ));
    }
    let share =
        Envelope::sign(&f.holder, routing(1, MessageKind::DecryptionShare), vec![1]).unwrap();
    inbox
        .accept(&f.registry, &share, MessageKind::DecryptionShare)
        .unwrap();
}

#[test]
fn revoked_keys_are_refused_on_every_verification() {
    let mut f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let before = update(&f, 1, b"before");
    f.registry.authenticate(&before).unwrap();

    // The coordinator revokes the client in a signed notice.
    let notice = Envelope::sign(
        &f.coordinator,
        routing(1, MessageKind::Revocation),
        revocation_payload(f.client.id(), RevocationReason::KeyCompromise),
    )
    .unwrap();
    assert_eq!(f.registry.apply_revocation(&notice).unwrap(), f.client.id());
    assert_eq!(
        f.registry.revocation(&f.client.id()),
        Some(RevocationReason::KeyCompromise)
    );
    // Messages signed before and after are refused alike.
    let mut inbox = Inbox::new(FEDERATION, 1, SET, None);
    for env in [before, update(&f, 1, b"after")] {
        assert!(matches!(
            inbox.accept(&f.registry, &env, MessageKind::UpdateSubmission),
            Err(PqError::RevokedSender(id)) if id == f.client.id()
        ));
    }
    // A revoked key cannot come back by registering again.
    assert!(matches!(
        f.registry
            .register(Role::Client, f.client.public().clone(), None),
        Err(PqError::AlreadyRegistered(_) | PqError::RevokedSender(_))
    ));

    // A key holder may revoke itself but not the coordinator.
    let not_yours = Envelope::sign(
        &f.holder,
        routing(1, MessageKind::Revocation),
        revocation_payload(f.coordinator.id(), RevocationReason::Removed),
    )
    .unwrap();
    assert!(matches!(
        f.registry.apply_revocation(&not_yours),
        Err(PqError::Unauthorized { .. })
    ));
    assert_eq!(f.registry.revocation(&f.coordinator.id()), None);
    let own = Envelope::sign(
        &f.holder,
        routing(1, MessageKind::Revocation),
        revocation_payload(f.holder.id(), RevocationReason::Retired),
    )
    .unwrap();
    f.registry.apply_revocation(&own).unwrap();
    assert_eq!(f.registry.revocation_list().count(), 2);
    // A malformed notice changes nothing.
    let bad = Envelope::sign(
        &f.coordinator,
        routing(1, MessageKind::Revocation),
        vec![0; 33],
    )
    .unwrap();
    assert!(matches!(
        f.registry.apply_revocation(&bad),
        Err(PqError::Malformed { .. })
    ));
    assert_eq!(f.registry.revocation_list().count(), 2);
}

#[test]
fn rotated_keys_hand_over_to_their_successor() {
    let mut f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let successor = identity(SignatureAlgorithm::MlDsa65, 12);

    // A rotation whose proof is signed by another key than the one announced.
    let impostor = identity(SignatureAlgorithm::MlDsa65, 13);
    let honest = rotation_envelope(&f.holder, &successor, None, FEDERATION, 1, SET).unwrap();
    let forged_proof = rotation_envelope(&f.holder, &impostor, None, FEDERATION, 1, SET).unwrap();
    let mut payload = honest.payload().to_vec();
    let proof_len = successor.algorithm().signature_len();
    let fake = &forged_proof.payload()[forged_proof.payload().len() - 3309..];
    let at = payload.len() - proof_len;
    payload[at..at + 3309].copy_from_slice(fake);
    let forged = Envelope::sign(&f.holder, honest.routing().clone(), payload).unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&forged),
        Err(PqError::BadRotationProof)
    ));
    assert!(f.registry.get(&successor.id()).is_none());

    // The honest rotation, which also brings a new sealing key.
    let new_key = sealing(KemAlgorithm::MlKem1024, 12);
    let rotation = rotation_envelope(
        &f.holder,
        &successor,
        Some(new_key.public()),
        FEDERATION,
        1,
        SET,
    )
    .unwrap();
    assert_eq!(
        f.registry.apply_rotation(&rotation).unwrap(),
        successor.id()
    );
    let entry = f.registry.get(&successor.id()).unwrap();
    assert_eq!(entry.role, Role::KeyHolder);
    assert_eq!(entry.sealing.as_ref(), Some(new_key.public()));

    let mut inbox = Inbox::new(FEDERATION, 1, SET, None);
    let from_old =
        Envelope::sign(&f.holder, routing(1, MessageKind::DecryptionShare), vec![1]).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &from_old, MessageKind::DecryptionShare),
        Err(PqError::RotatedSender { successor: s, .. }) if s == successor.id()
    ));
    let from_new = Envelope::sign(
        &successor,
        routing(1, MessageKind::DecryptionShare),
        vec![1],
    )
    .unwrap();
    inbox
        .accept(&f.registry, &from_new, MessageKind::DecryptionShare)
        .unwrap();
    // Replaying the rotation does nothing: the old key no longer speaks.
    assert!(matches!(
        f.registry.apply_rotation(&rotation),
        Err(PqError::RotatedSender { .. })
    ));
}

fn share_context(f: &Federation, epoch: u64, round: u64) -> SealContext {
    SealContext {
        federation: FEDERATION,
        sender: f.coordinator.id(),
        recipient: f.holder.id(),
        epoch,
        round,
    }
}

#[test]
fn every_flipped_sealed_box_byte_fails_to_open() {
    for kem in KemAlgorithm::ALL {
        let f = federation(SignatureAlgorithm::MlDsa65, kem);
        let context = share_context(&f, 2, 9);
        let sealed = SealedBox::seal(f.holder_key.public(), context, b"a Shamir share").unwrap();
        let wire = sealed.to_bytes();
        assert_eq!(wire.len(), 116 + kem.encapsulation_len() + 4 + 14 + 16);
        let opened = SealedBox::from_bytes(&wire, MAX)
            .unwrap()
            .open(&f.holder_key, &context)
            .unwrap();
        assert_eq!(opened.as_slice(), b"a Shamir share");
        every_flip(&wire, |_, bytes| match SealedBox::from_bytes(bytes, MAX) {
            Err(_) => true,
            Ok(tampered) => {
                tampered.open(&f.holder_key, &context).is_err()
                    && tampered.open(&f.holder_key, tampered.context()).is_err()
            }
        });
        // Sealed to someone else's key: does not open.
        let other = sealing(kem, 99);
        assert!(matches!(
            sealed.open(&other, &context),
            Err(PqError::SealOpenFailed)
        ));
    }
}

#[test]
fn decoders_bound_their_allocations() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let envelope = update(&f, 1, &vec![0; 4096]);
    assert!(matches!(
        Envelope::from_bytes(&envelope.to_bytes(), 4095),
        Err(PqError::TooLarge {
            what: "payload",
            len: 4096,
            limit: 4095
        })
    ));
    // A length field of 4 GiB in a short message.
    let mut bytes = envelope.to_bytes();
    let at = 111 + SET.len();
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Envelope::from_bytes(&bytes, usize::MAX),
        Err(PqError::Malformed { .. })
    ));
    let sealed =
        SealedBox::seal(f.holder_key.public(), share_context(&f, 0, 0), &[1; 100]).unwrap();
    assert!(matches!(
        SealedBox::from_bytes(&sealed.to_bytes(), 99),
        Err(PqError::TooLarge { .. })
    ));
    assert!(Envelope::from_bytes(&[], MAX).is_err());
    assert!(SealedBox::from_bytes(&[], MAX).is_err());
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringsum-pq-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn key_files_are_private_and_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("keys");
    for algorithm in SignatureAlgorithm::ALL {
        let me = SigningIdentity::generate(algorithm).unwrap();
        let path = dir.join(format!("{}.key", algorithm.id()));
        me.write_secret(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            matches!(me.write_secret(&path), Err(PqError::Io { .. })),
            "never overwritten"
        );
        let back = SigningIdentity::read_secret(&path).unwrap();
        assert_eq!(back.public(), me.public());
        let public = dir.join(format!("{}.pub", algorithm.id()));
        me.write_public(&public).unwrap();
        let raw = std::fs::read(&public).unwrap();
        assert_eq!(&raw[..1952], me.public().ml_dsa_public_key());
        assert_eq!(
            ringsum::pq::PublicIdentity::read(algorithm, &public).unwrap(),
            *me.public()
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SigningIdentity::read_secret(&path),
            Err(PqError::InsecurePermissions { mode: 0o644, .. })
        ));
    }
    for kem in KemAlgorithm::ALL {
        let key = SealingKey::generate(kem).unwrap();
        let path = dir.join(format!("sealing-{}.key", kem.id()));
        key.write_secret(&path).unwrap();
        assert_eq!(
            SealingKey::read_secret(&path).unwrap().public(),
            key.public()
        );
    }
    // Malformed files: a wrong header, a short seed, a stray line.
    let cases: [&[u8]; 3] = [
        b"ringsum signing key v2\nalgorithm ML-DSA-65\nml-dsa-65-seed 00\n",
        b"ringsum signing key v1\nalgorithm ML-DSA-65\nml-dsa-65-seed 0011\n",
        b"ringsum signing key v1\nalgorithm ML-DSA-65\nml-dsa-65-seed 0000000000000000000000000000000000000000000000000000000000000000\nextra\n",
    ];
    for (i, contents) in cases.into_iter().enumerate() {
        let path = dir.join(format!("bad-{i}.key"));
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            matches!(
                SigningIdentity::read_secret(&path),
                Err(PqError::Malformed { .. })
            ),
            "case {i}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sign_verify_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..2048), hybrid: bool, round: u64) {
        let algorithm = if hybrid { SignatureAlgorithm::MlDsa65Ed25519 } else { SignatureAlgorithm::MlDsa65 };
        let f = federation(algorithm, KemAlgorithm::MlKem1024);
        let envelope = Envelope::sign(&f.client, routing(round, MessageKind::UpdateSubmission), payload.clone()).unwrap();
        let back = Envelope::from_bytes(&envelope.to_bytes(), MAX).unwrap();
        prop_assert_eq!(&back, &envelope);
        prop_assert_eq!(back.payload(), payload.as_slice());
        let mut inbox = Inbox::new(FEDERATION, round, SET, None);
        prop_assert!(inbox.accept(&f.registry, &back, MessageKind::UpdateSubmission).is_ok());
        // The signature verifies under the signer's key only.
        prop_assert!(back.verify_signature(f.client.public()).is_ok());
        prop_assert!(back.verify_signature(f.holder.public()).is_err());
    }

    #[test]
    fn seal_open_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..4096), hybrid: bool, epoch: u64, round: u64) {
        let kem = if hybrid { KemAlgorithm::MlKem1024X25519 } else { KemAlgorithm::MlKem1024 };
        let f = federation(SignatureAlgorithm::MlDsa65, kem);
        let context = share_context(&f, epoch, round);
        let sealed = SealedBox::seal(f.holder_key.public(), context, &plaintext).unwrap();
        let back = SealedBox::from_bytes(&sealed.to_bytes(), plaintext.len()).unwrap();
        prop_assert_eq!(&back, &sealed);
        let opened = back.open(&f.holder_key, &context).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }
}

#[test]
fn one_submission_per_participant_whatever_the_addressing() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let mut inbox = Inbox::new(FEDERATION, 1, SET, Some(f.coordinator.id()));
    inbox
        .accept(
            &f.registry,
            &update(&f, 1, b"to everyone"),
            MessageKind::UpdateSubmission,
        )
        .unwrap();
    let mut direct = routing(1, MessageKind::UpdateSubmission);
    direct.recipient = f.coordinator.id();
    let second = Envelope::sign(&f.client, direct, b"to the coordinator".to_vec()).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &second, MessageKind::UpdateSubmission),
        Err(PqError::DuplicateSubmission { .. })
    ));
    // Round key shares are the one kind sent to each recipient, and must
    // be addressed.
    let share = Envelope::sign(&f.client, routing(1, MessageKind::RoundKeyShare), vec![1]).unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &share, MessageKind::RoundKeyShare),
        Err(PqError::UnaddressedShare)
    ));
    assert_eq!(inbox.len(), 1);
}

#[test]
fn a_rotation_does_not_buy_a_second_submission() {
    let mut f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let mut inbox = Inbox::new(FEDERATION, 1, SET, None);
    inbox
        .accept(
            &f.registry,
            &update(&f, 1, b"first"),
            MessageKind::UpdateSubmission,
        )
        .unwrap();
    let successor = identity(SignatureAlgorithm::MlDsa65, 30);
    let rotation = rotation_envelope(&f.client, &successor, None, FEDERATION, 1, SET).unwrap();
    f.registry.apply_rotation(&rotation).unwrap();
    assert_eq!(
        f.registry.get(&successor.id()).unwrap().origin,
        f.client.id()
    );
    let again = Envelope::sign(
        &successor,
        routing(1, MessageKind::UpdateSubmission),
        b"x".to_vec(),
    )
    .unwrap();
    assert!(matches!(
        inbox.accept(&f.registry, &again, MessageKind::UpdateSubmission),
        Err(PqError::DuplicateSubmission { .. })
    ));
    // In the next round the successor submits as usual.
    let mut next = Inbox::new(FEDERATION, 2, SET, None);
    let later = Envelope::sign(
        &successor,
        routing(2, MessageKind::UpdateSubmission),
        b"x".to_vec(),
    )
    .unwrap();
    next.accept(&f.registry, &later, MessageKind::UpdateSubmission)
        .unwrap();
}

#[test]
fn revoking_a_stolen_key_revokes_what_it_was_rotated_to() {
    let mut f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    // A thief rotates the client's key to one of their own, twice.
    let thief_a = identity(SignatureAlgorithm::MlDsa65, 40);
    let thief_b = identity(SignatureAlgorithm::MlDsa65, 41);
    f.registry
        .apply_rotation(&rotation_envelope(&f.client, &thief_a, None, FEDERATION, 1, SET).unwrap())
        .unwrap();
    f.registry
        .apply_rotation(&rotation_envelope(&thief_a, &thief_b, None, FEDERATION, 1, SET).unwrap())
        .unwrap();
    let notice = Envelope::sign(
        &f.coordinator,
        routing(1, MessageKind::Revocation),
        revocation_payload(f.client.id(), RevocationReason::KeyCompromise),
    )
    .unwrap();
    f.registry.apply_revocation(&notice).unwrap();
    for id in [f.client.id(), thief_a.id(), thief_b.id()] {
        assert_eq!(
            f.registry.revocation(&id),
            Some(RevocationReason::KeyCompromise)
        );
    }
    let theirs =
        Envelope::sign(&thief_b, routing(1, MessageKind::UpdateSubmission), vec![]).unwrap();
    assert!(matches!(
        f.registry.authenticate(&theirs),
        Err(PqError::RevokedSender(_))
    ));
}

#[test]
fn the_algorithm_policy_holds_through_registration_and_rotation() {
    let mut f = federation(
        SignatureAlgorithm::MlDsa65Ed25519,
        KemAlgorithm::MlKem1024X25519,
    );
    let pq_only = identity(SignatureAlgorithm::MlDsa65, 50);
    assert!(matches!(
        f.registry
            .register(Role::Client, pq_only.public().clone(), None),
        Err(PqError::PolicyViolation {
            required: "ML-DSA-65+Ed25519",
            found: "ML-DSA-65"
        })
    ));
    let hybrid = identity(SignatureAlgorithm::MlDsa65Ed25519, 51);
    let weak_sealing = sealing(KemAlgorithm::MlKem1024, 51);
    assert!(matches!(
        f.registry.register(
            Role::KeyHolder,
            hybrid.public().clone(),
            Some(weak_sealing.public().clone())
        ),
        Err(PqError::PolicyViolation { .. })
    ));
    // Rotating a hybrid key to a post-quantum-only one is a downgrade.
    let downgrade = rotation_envelope(&f.client, &pq_only, None, FEDERATION, 1, SET).unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&downgrade),
        Err(PqError::PolicyViolation { .. })
    ));
    let downgrade = rotation_envelope(
        &f.holder,
        &hybrid,
        Some(weak_sealing.public()),
        FEDERATION,
        1,
        SET,
    )
    .unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&downgrade),
        Err(PqError::PolicyViolation { .. })
    ));
    assert_eq!(
        f.registry.get(&f.client.id()).unwrap().status,
        ringsum::pq::KeyStatus::Active
    );
    assert_eq!(
        f.registry.get(&f.holder.id()).unwrap().status,
        ringsum::pq::KeyStatus::Active
    );
}

#[test]
fn refused_rotations_change_nothing() {
    let mut f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    // Onto a key that is already registered (the coordinator's).
    let onto_existing =
        rotation_envelope(&f.client, &f.coordinator, None, FEDERATION, 1, SET).unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&onto_existing),
        Err(PqError::AlreadyRegistered(_))
    ));
    // Onto a revoked key.
    let burnt = identity(SignatureAlgorithm::MlDsa65, 60);
    f.registry
        .revoke(burnt.id(), RevocationReason::KeyCompromise);
    let onto_revoked = rotation_envelope(&f.client, &burnt, None, FEDERATION, 1, SET).unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&onto_revoked),
        Err(PqError::RevokedSender(_))
    ));
    // A truncated payload, and a rotation sent as another kind.
    let honest = rotation_envelope(
        &f.client,
        &identity(SignatureAlgorithm::MlDsa65, 61),
        None,
        FEDERATION,
        1,
        SET,
    )
    .unwrap();
    let mut short = honest.payload().to_vec();
    short.truncate(short.len() - 1);
    let truncated = Envelope::sign(&f.client, honest.routing().clone(), short).unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&truncated),
        Err(PqError::Malformed { .. })
    ));
    let as_update = Envelope::sign(
        &f.client,
        routing(1, MessageKind::UpdateSubmission),
        honest.payload().to_vec(),
    )
    .unwrap();
    assert!(matches!(
        f.registry.apply_rotation(&as_update),
        Err(PqError::WrongKind { .. })
    ));
    assert_eq!(
        f.registry.get(&f.client.id()).unwrap().status,
        ringsum::pq::KeyStatus::Active
    );
    f.registry
        .authenticate(&update(&f, 1, b"still mine"))
        .unwrap();
}

#[test]
fn a_pending_message_goes_back_to_its_own_inbox() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let round1 = Inbox::new(FEDERATION, 1, SET, None);
    let mut round2 = Inbox::new(FEDERATION, 2, SET, None);
    let pending = round1
        .check(
            &f.registry,
            &update(&f, 1, b"u"),
            MessageKind::UpdateSubmission,
        )
        .unwrap();
    assert!(matches!(
        round2.commit(pending),
        Err(PqError::ForeignPending)
    ));
    assert!(round2.is_empty());
    round2
        .accept(
            &f.registry,
            &update(&f, 2, b"u"),
            MessageKind::UpdateSubmission,
        )
        .unwrap();
}

#[test]
fn shares_are_sealed_to_registered_key_holders_only() {
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let to = |recipient: ParticipantId| SealContext {
        federation: FEDERATION,
        sender: f.client.id(),
        recipient,
        epoch: 0,
        round: 1,
    };
    let binding = [7; 64];
    let seal = |registry: &Registry, context| {
        seal_round_share(&f.client, registry, context, SET, &binding, b"share")
    };
    for recipient in [
        f.client.id(),
        f.coordinator.id(),
        ParticipantId([9; 32]),
        ParticipantId::BROADCAST,
    ] {
        assert!(matches!(
            seal(&f.registry, to(recipient)),
            Err(PqError::NotASealingRecipient(id)) if id == recipient
        ));
    }
    let mut revoked = f.registry.clone();
    revoked.revoke(f.holder.id(), RevocationReason::Removed);
    assert!(seal(&revoked, to(f.holder.id())).is_err());
    // Another federation than the registry's.
    assert!(matches!(
        seal(
            &f.registry,
            SealContext {
                federation: FederationId([1; 32]),
                ..to(f.holder.id())
            }
        ),
        Err(PqError::WrongFederation)
    ));
    seal(&f.registry, to(f.holder.id())).unwrap();
}

/// The kinds of the removed collective-key scheme (key commitment 2,
/// public-key share 3, sealed secret share 4, collective key 11) keep their
/// numbers reserved: no kind takes them, and an envelope that names one
/// does not decode.
#[test]
fn the_ids_of_removed_kinds_stay_reserved_and_are_refused() {
    let ids: Vec<u16> = MessageKind::ALL.iter().map(|k| k.id()).collect();
    assert_eq!(ids, [1, 5, 6, 7, 8, 9, 10, 12, 13]);
    for kind in MessageKind::ALL {
        assert_eq!(MessageKind::from_id(kind.id()).unwrap(), kind);
    }
    assert_eq!(MessageKind::RESERVED_IDS, [2, 3, 4, 11]);
    let f = federation(SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024);
    let wire = update(&f, 1, b"payload").to_bytes();
    for id in MessageKind::RESERVED_IDS
        .into_iter()
        .chain([0, 14, u16::MAX])
    {
        assert!(!ids.contains(&id));
        assert!(
            matches!(MessageKind::from_id(id), Err(PqError::UnknownKind(found)) if found == id)
        );
        let mut bytes = wire.clone();
        bytes[4..6].copy_from_slice(&id.to_be_bytes());
        assert!(
            matches!(Envelope::from_bytes(&bytes, MAX), Err(PqError::UnknownKind(found)) if found == id),
            "{id}"
        );
    }
}

#[test]
fn key_files_that_are_not_small_regular_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("odd-files");
    assert!(matches!(
        SigningIdentity::read_secret(&dir),
        Err(PqError::Malformed { .. })
    ));
    let big = dir.join("big.key");
    std::fs::write(&big, vec![b'a'; 5000]).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        SigningIdentity::read_secret(&big),
        Err(PqError::TooLarge { .. })
    ));
    assert!(matches!(
        SealingKey::read_secret(&dir.join("missing")),
        Err(PqError::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client's round key share: opened once by its holder with the update
/// digest it is bound to; a flipped byte (digest, box or signature), a
/// replay, a share from a key holder's identity or to another recipient
/// is refused, and the inbox stays as it was.
#[test]
fn round_key_shares_are_bound_signed_and_opened_once() {
    for (sig, kem) in [
        (SignatureAlgorithm::MlDsa65, KemAlgorithm::MlKem1024),
        (
            SignatureAlgorithm::MlDsa65Ed25519,
            KemAlgorithm::MlKem1024X25519,
        ),
    ] {
        round_key_shares_under(sig, kem);
    }
}

fn round_key_shares_under(sig: SignatureAlgorithm, kem: KemAlgorithm) {
    let f = federation(sig, kem);
    let me = f.holder.id();
    let context = SealContext {
        sender: f.client.id(),
        ..share_context(&f, 0, 3)
    };
    let digest = [0x5c; 64];
    let share = vec![0x17; 2000];
    let envelope = seal_round_share(&f.client, &f.registry, context, SET, &digest, &share).unwrap();
    let wire = envelope.to_bytes();
    let mut inbox = Inbox::new(FEDERATION, 3, SET, Some(me));
    for i in (0..wire.len()).step_by(61) {
        let mut bytes = wire.clone();
        bytes[i] ^= 1;
        let refused = Envelope::from_bytes(&bytes, MAX).map_or(true, |t| {
            open_round_share(&mut inbox, &f.registry, &f.holder_key, me, &t, MAX).is_err()
        });
        assert!(refused, "byte {i}");
    }
    assert!(inbox.is_empty());
    // Another recipient id than the holder's own.
    assert!(
        open_round_share(
            &mut inbox,
            &f.registry,
            &f.holder_key,
            f.client.id(),
            &envelope,
            MAX
        )
        .is_err()
    );
    assert!(inbox.is_empty());
    let (accepted, bound_to, opened) =
        open_round_share(&mut inbox, &f.registry, &f.holder_key, me, &envelope, MAX).unwrap();
    assert_eq!(accepted.sender, f.client.id());
    assert_eq!(bound_to, digest);
    assert_eq!(opened.as_slice(), share.as_slice());
    assert!(matches!(
        open_round_share(&mut inbox, &f.registry, &f.holder_key, me, &envelope, MAX),
        Err(PqError::Replay(_))
    ));
    // Only clients send round key shares.
    let from_holder = seal_round_share(
        &f.holder,
        &f.registry,
        SealContext {
            sender: f.holder.id(),
            ..context
        },
        SET,
        &digest,
        &share,
    )
    .unwrap();
    let mut fresh = Inbox::new(FEDERATION, 3, SET, Some(me));
    assert!(matches!(
        open_round_share(
            &mut fresh,
            &f.registry,
            &f.holder_key,
            me,
            &from_holder,
            MAX
        ),
        Err(PqError::Unauthorized { .. })
    ));
    assert!(fresh.is_empty());
    // A box sealed for another key epoch than 0: refused, nothing recorded.
    let other_epoch = seal_round_share(
        &f.client,
        &f.registry,
        SealContext {
            epoch: 4,
            ..context
        },
        SET,
        &digest,
        &share,
    )
    .unwrap();
    assert!(matches!(
        open_round_share(
            &mut fresh,
            &f.registry,
            &f.holder_key,
            me,
            &other_epoch,
            MAX
        ),
        Err(PqError::WrongEpoch {
            expected: 0,
            found: 4
        })
    ));
    assert!(fresh.is_empty());
    // A box claiming another sender than the signer is not sealed.
    assert!(matches!(
        seal_round_share(&f.holder, &f.registry, context, SET, &digest, &share),
        Err(PqError::SealMismatch("sender"))
    ));
}
