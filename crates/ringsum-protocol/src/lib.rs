//! # ringsum-protocol
//!
//! The round protocol of a ringsum federation, independent of how messages
//! travel: participants ([`ClientNode`], [`HolderNode`], [`Coordinator`])
//! take and return signed envelopes (`ringsum-pq`) whose payloads are
//! defined in [`payload`] and docs/formats.md.
//!
//! - Setup: the parameter set, model layout, committee and threshold, CRS
//!   seed, [`RoundPolicy`] and the registry of everyone's keys ([`Setup`]).
//! - Key ceremony (round 0): signed commitments, then public-key shares,
//!   then Shamir shares sealed with ML-KEM to each holder; the coordinator
//!   publishes the collective key, signed.
//! - Each round: the signed global model; signed, encrypted submissions,
//!   checked (sender, round, replay, one per client, minimum samples) and
//!   added; a signed request to an active set of at least t holders;
//!   flooded decryption shares, checked and combined; the new global model,
//!   signed. A holder that does not answer is replaced after the aggregate
//!   is re-randomised; below t, the round waits with its submissions kept.
//! - Every step goes to the [`AuditLog`]: JSON lines chained with SHA3-256
//!   and signed by the coordinator; [`verify_log`] names the first bad line.

pub mod audit;
pub mod client;
pub mod coordinator;
pub mod error;
pub mod federation;
pub mod holder;
pub mod message;
pub mod payload;
pub mod spec;

pub use audit::{AuditLog, AuditSummary, verify_log};
pub use error::{ProtocolError, Result, SetupError};
pub use federation::{
    CEREMONY_ROUND, ClientNode, Coordinator, DecodedSubmission, HolderNode, RoundOutcome,
    RoundPolicy, Setup, federation_id,
};
pub use payload::RoundResult;
