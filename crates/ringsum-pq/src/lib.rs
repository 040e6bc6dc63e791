//! # ringsum-pq
//!
//! Every message in a ringsum federation says who sent it, for which
//! federation, round, parameter set and purpose, under a signature a
//! quantum computer cannot forge; key shares travel so that only their
//! recipient reads them. The formats are plain standards, defined to the
//! byte in docs/formats.md, so auditors can check them with their own tools:
//!
//! - [`SigningIdentity`] / [`PublicIdentity`]: ML-DSA-65 (FIPS 204), or
//!   ML-DSA-65 + Ed25519 in hybrid mode; the participant id is the SHA3-256
//!   of the public key.
//! - [`Envelope`]: a payload signed over canonical bytes that bind version,
//!   algorithm, kind, round, federation, sender, recipient, parameter set
//!   and the payload's SHA3-256, with FIPS 204 context "ringsum/v1".
//! - [`Registry`] (keys, roles, rotation, revocation list) and [`Inbox`]
//!   (one receiver's round: wrong round, wrong kind, replay and second
//!   submission are refused without changing state).
//! - [`SealingKey`] / [`SealedBox`]: ML-KEM-1024 (FIPS 203), alone or with
//!   X25519, then HKDF-SHA3-256 and ChaCha20-Poly1305;
//!   [`seal_round_share`] and [`open_round_share`] sign and check a
//!   client's round key share, bound to its update, as an envelope.
//!
//! ```
//! use ringsum_pq::{
//!     AlgorithmPolicy, Envelope, FederationId, Inbox, MessageKind, ParticipantId, PqError,
//!     Registry, Role, Routing, SignatureAlgorithm, SigningIdentity,
//! };
//!
//! let federation = FederationId([7; 32]);
//! let client = SigningIdentity::generate(SignatureAlgorithm::MlDsa65)?;
//! let mut registry = Registry::new(federation, AlgorithmPolicy::POST_QUANTUM);
//! registry.register(Role::Client, client.public().clone(), None)?;
//!
//! let routing = Routing {
//!     federation,
//!     round: 1,
//!     kind: MessageKind::UpdateSubmission,
//!     recipient: ParticipantId::BROADCAST,
//!     parameter_set: "rk128-n16384".into(),
//! };
//! let envelope = Envelope::sign(&client, routing, b"encrypted update".to_vec())?;
//! let wire = envelope.to_bytes();
//!
//! let mut inbox = Inbox::new(federation, 1, "rk128-n16384", None);
//! let received = Envelope::from_bytes(&wire, 1 << 20)?;
//! inbox.accept(&registry, &received, MessageKind::UpdateSubmission)?;
//! // The same message again is a replay.
//! assert!(matches!(
//!     inbox.accept(&registry, &received, MessageKind::UpdateSubmission),
//!     Err(PqError::Replay(_))
//! ));
//! # Ok::<(), PqError>(())
//! ```

pub mod alg;
pub mod codec;
pub mod envelope;
pub mod error;
mod file;
pub mod identity;
#[cfg(feature = "known-answer-tests")]
pub mod kat;
pub mod kem;
pub mod registry;
pub mod seal;

pub use alg::{KemAlgorithm, SignatureAlgorithm};
pub use envelope::{Envelope, FederationId, Header, MessageKind, PROTOCOL_VERSION, Routing};
pub use error::{PqError, Result};
pub use identity::{CONTEXT, ParticipantId, PublicIdentity, ROTATION_CONTEXT, SigningIdentity};
pub use kem::{SealingKey, SealingPublicKey, SharedSecret};
pub use registry::{
    Accepted, AlgorithmPolicy, Inbox, KeyStatus, Participant, Pending, Registry, RevocationReason,
    Role, revocation_payload, rotation_envelope,
};
pub use seal::{
    ROUND_SHARE_BINDING_BYTES, SealContext, SealedBox, open_round_share, seal_round_share,
};
