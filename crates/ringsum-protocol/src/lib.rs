//! # ringsum-protocol
//!
//! The round protocol of a ringsum federation on per-round client keys,
//! independent of how messages travel: participants take and return signed
//! envelopes (`ringsum-pq`) whose payloads are defined in [`message`],
//! [`result`] and docs/formats.md. There is no long-term decryption key
//! and no key ceremony.
//!
//! - **Setup** ([`spec`]): everyone agrees on a [`Federation`], built from a
//!   [`FederationSpec`]: the parameter set, the model layout, the [`Policy`]
//!   (min_clients, min_samples, max_weight, rounds), the clients, the key
//!   holders ([`HolderSpec`]: Shamir point, signing and sealing keys) and
//!   the threshold t with 2t > n ([`SetupError::ThresholdNotMajority`]
//!   otherwise). Its hash is the federation id, which participants pin.
//! - **Client** ([`client`]): one message per round, a [`Submission`]: its
//!   update encrypted under a fresh secret, signed, and for every holder a
//!   sealed Shamir share of that secret, signed and bound to the update
//!   ([`Client::submit`] consumes the secret).
//! - **Coordinator** ([`coordinator`]): checks each submission
//!   ([`Coordinator::check`], giving a [`CheckedSubmission`]) and adds it
//!   ([`Coordinator::accept`]), forwards each sealed share to its holder,
//!   closes collection with a signed set S of at least min_clients clients
//!   and asks every holder ([`Coordinator::close`]), combines the answers,
//!   correcting and naming lying holders, and publishes the new model
//!   ([`Coordinator::finish`], a [`RoundOutcome`] with its [`RoundResult`]);
//!   a round that cannot be decoded ends with a typed error and the next
//!   one opens. [`RoundStatus`] says where it is.
//! - **Holder** ([`holder`]): checks the request (coordinator's signature,
//!   round, |S| >= min_clients, only federation clients, a valid share from
//!   each), records (round, S) in its [`AnswerJournal`] before answering
//!   ([`AnsweredSet`]; [`MemoryJournal`] in memory), answers one S per
//!   round and the same S again with the same answer ([`Holder`]).
//! - Every step goes to the [`AuditLog`]: JSON lines chained with SHA3-256
//!   and signed by the coordinator; [`verify_log`] names the first bad line.
//!
//! tests/round_protocol.rs runs whole rounds, and attacks by clients,
//! holders and the coordinator.

pub mod audit;
pub mod client;
pub mod coordinator;
pub mod error;
pub mod holder;
pub mod message;
pub mod result;
pub mod spec;

pub use audit::{AuditLog, AuditSummary, verify_log};
pub use client::{Client, Submission};
pub use coordinator::{CheckedSubmission, Coordinator, RoundOutcome, RoundStatus};
pub use error::{ProtocolError, Result, SetupError};
pub use holder::{AnswerJournal, AnsweredSet, Holder, MemoryJournal};
pub use result::RoundResult;
pub use spec::{Federation, FederationSpec, HolderSpec, Policy};
