//! Classical against post-quantum: key generation, signing and verifying a
//! 100-byte and a 1 MiB message with Ed25519, ECDSA P-384 and ML-DSA-65
//! (each through its crate, over the raw message), and ringsum's signed
//! envelopes around the same payloads (SHA3-256 of the payload, then
//! ML-DSA-65 or the hybrid ML-DSA-65 + Ed25519 over the 170-byte signed
//! bytes); key generation, encapsulation and decapsulation with X25519,
//! ML-KEM-1024 and the hybrid; and sealing and opening a 1 MiB key share.
//! Single-threaded.
//!
//! `cargo bench --bench pq`; BENCHMARKS.md records the numbers.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, Verifier as _};
use ringsum::pq::{
    Envelope, FederationId, KemAlgorithm, MessageKind, ParticipantId, Routing, SealContext,
    SealedBox, SealingKey, SignatureAlgorithm, SigningIdentity,
};

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

fn messages() -> [(&'static str, Vec<u8>); 2] {
    [("100B", vec![0x5a; 100]), ("1MiB", vec![0x5a; 1 << 20])]
}

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature");
    group.measurement_time(Duration::from_secs(3));

    group.bench_function("keygen/Ed25519", |b| {
        b.iter(|| ed25519_dalek::SigningKey::from_bytes(&random()).verifying_key());
    });
    group.bench_function("keygen/ECDSA-P384", |b| {
        b.iter(|| {
            *p384::ecdsa::SigningKey::from_slice(&random::<48>())
                .unwrap()
                .verifying_key()
        });
    });
    for alg in SignatureAlgorithm::ALL {
        group.bench_function(format!("keygen/{}", alg.name()), |b| {
            b.iter(|| SigningIdentity::generate(alg).unwrap());
        });
    }
    let ml_dsa = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&random().into());

    let ed = ed25519_dalek::SigningKey::from_bytes(&random());
    let ecdsa = p384::ecdsa::SigningKey::from_slice(&random::<48>()).unwrap();
    let identities = SignatureAlgorithm::ALL.map(|alg| SigningIdentity::generate(alg).unwrap());
    for (label, message) in messages() {
        group.bench_function(BenchmarkId::new("sign/Ed25519", label), |b| {
            b.iter(|| ed.sign(&message));
        });
        let ed_sig = ed.sign(&message);
        group.bench_function(BenchmarkId::new("verify/Ed25519", label), |b| {
            b.iter(|| ed.verifying_key().verify(&message, &ed_sig).unwrap());
        });

        group.bench_function(BenchmarkId::new("sign/ECDSA-P384", label), |b| {
            b.iter(|| -> p384::ecdsa::Signature { ecdsa.sign(&message) });
        });
        let ecdsa_sig: p384::ecdsa::Signature = ecdsa.sign(&message);
        group.bench_function(BenchmarkId::new("verify/ECDSA-P384", label), |b| {
            b.iter(|| ecdsa.verifying_key().verify(&message, &ecdsa_sig).unwrap());
        });

        group.bench_function(BenchmarkId::new("sign/ML-DSA-65", label), |b| {
            b.iter(|| {
                ml_dsa
                    .expanded_key()
                    .sign_deterministic(&message, b"ringsum/v1")
                    .unwrap()
            });
        });
        let ml_sig = ml_dsa
            .expanded_key()
            .sign_deterministic(&message, b"ringsum/v1")
            .unwrap();
        let ml_public: &ml_dsa::VerifyingKey<ml_dsa::MlDsa65> = ml_dsa.as_ref();
        group.bench_function(BenchmarkId::new("verify/ML-DSA-65", label), |b| {
            b.iter(|| assert!(ml_public.verify_with_context(&message, b"ringsum/v1", &ml_sig)));
        });

        for identity in &identities {
            let name = identity.algorithm().name();
            let routing = Routing {
                federation: FederationId([1; 32]),
                round: 1,
                kind: MessageKind::UpdateSubmission,
                recipient: ParticipantId::BROADCAST,
                parameter_set: "rk128-n16384".into(),
            };
            group.bench_function(
                BenchmarkId::new(format!("envelope-sign/{name}"), label),
                |b| {
                    b.iter_batched(
                        || (routing.clone(), message.clone()),
                        |(r, m)| Envelope::sign(identity, r, m).unwrap(),
                        BatchSize::LargeInput,
                    );
                },
            );
            let envelope = Envelope::sign(identity, routing.clone(), message.clone()).unwrap();
            let wire = envelope.to_bytes();
            group.bench_function(
                BenchmarkId::new(format!("envelope-verify/{name}"), label),
                |b| {
                    b.iter(|| {
                        Envelope::from_bytes(&wire, 2 << 20)
                            .unwrap()
                            .verify_signature(identity.public())
                            .unwrap();
                    });
                },
            );
        }
    }
    group.finish();
}

fn kems(c: &mut Criterion) {
    let mut group = c.benchmark_group("kem");
    group.measurement_time(Duration::from_secs(3));

    // X25519 as a KEM: the sender's ephemeral key and exchange encapsulate,
    // the recipient's exchange decapsulates.
    group.bench_function("keygen/X25519", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(random())));
    });
    let recipient = x25519_dalek::StaticSecret::from(random::<32>());
    let recipient_public = x25519_dalek::PublicKey::from(&recipient);
    group.bench_function("encapsulate/X25519", |b| {
        b.iter(|| {
            let ephemeral = x25519_dalek::StaticSecret::from(random::<32>());
            let public = x25519_dalek::PublicKey::from(&ephemeral);
            (public, ephemeral.diffie_hellman(&recipient_public))
        });
    });
    let ephemeral_public =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(random::<32>()));
    group.bench_function("decapsulate/X25519", |b| {
        b.iter(|| recipient.diffie_hellman(&ephemeral_public));
    });

    for alg in KemAlgorithm::ALL {
        let name = alg.name();
        group.bench_function(format!("keygen/{name}"), |b| {
            b.iter(|| SealingKey::generate(alg).unwrap());
        });
        let key = SealingKey::generate(alg).unwrap();
        group.bench_function(format!("encapsulate/{name}"), |b| {
            b.iter(|| key.public().encapsulate().unwrap());
        });
        let (encapsulation, _) = key.public().encapsulate().unwrap();
        group.bench_function(format!("decapsulate/{name}"), |b| {
            b.iter(|| key.decapsulate(&encapsulation).unwrap());
        });
    }

    // A whole sealed box of a 1 MiB key share.
    let share = vec![0x33; 1 << 20];
    let context = SealContext {
        federation: FederationId([1; 32]),
        sender: ParticipantId([2; 32]),
        recipient: ParticipantId([3; 32]),
        epoch: 0,
        round: 1,
    };
    for alg in KemAlgorithm::ALL {
        let key = SealingKey::generate(alg).unwrap();
        group.bench_function(
            BenchmarkId::new(format!("seal/{}", alg.name()), "1MiB"),
            |b| {
                b.iter(|| SealedBox::seal(key.public(), context, &share).unwrap());
            },
        );
        let sealed = SealedBox::seal(key.public(), context, &share).unwrap();
        group.bench_function(
            BenchmarkId::new(format!("open/{}", alg.name()), "1MiB"),
            |b| {
                b.iter(|| sealed.open(&key, &context).unwrap());
            },
        );
    }
    group.finish();
}

criterion_group!(benches, signatures, kems);
criterion_main!(benches);
