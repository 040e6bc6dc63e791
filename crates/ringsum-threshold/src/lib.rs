//! # ringsum-threshold
//!
//! No single party can decrypt: the key holders of a committee generate
//! the public key together ([`run_ceremony`], or [`KeyGenerator`] per
//! holder), each ends with a Shamir share of the secret, and any t of the n
//! holders decrypt an aggregate: the coordinator makes a
//! [`DecryptionRequest`], each holder of its active set answers with a
//! flooded decryption share ([`KeyHolder::decryption_share`]), and a
//! [`Combiner`] adds them up and decodes. Fewer than t learn nothing.
//!
//! The flooding noise is 2^lambda times the proven bound on the aggregate's
//! noise (docs/noise.md); each holder answers once per aggregate and
//! remembers it ([`ShareLedger`]); a lost holder is handled by
//! re-randomising the aggregate ([`ringsum_core::update::Aggregate::rerandomize`])
//! and asking a new set.
//!
//! ```
//! use ringsum_core::ParameterSet;
//! use ringsum_core::model::ModelLayout;
//! use ringsum_core::scheme::Packing;
//! use ringsum_core::update::{Aggregate, RoundId, encrypt_update};
//! use ringsum_math::{CrsSeed, Csprng};
//! use ringsum_threshold::{
//!     Combiner, Committee, DecryptionRequest, HolderId, InMemoryTransport, KeyHolder,
//!     ShareLedger, run_ceremony,
//! };
//!
//! let params = ParameterSet::builtin("pq128-n4096")?;
//! let packing = Packing::new(&params);
//! let mut rng = Csprng::from_seed([7; 32]);
//! let ids: Vec<HolderId> = (1..=3).map(HolderId).collect();
//! let committee = Committee::new(&params, 0, &ids, 2)?;
//! let seed = CrsSeed::new([1; 32]);
//! let mut transport = InMemoryTransport::new();
//! let ceremony = run_ceremony(&params, &committee, &seed, &mut transport, &mut rng)?;
//!
//! let layout = ModelLayout::try_new([("w", vec![4])])?;
//! let round = RoundId(1);
//! let mut aggregate = Aggregate::new(&params, &packing, &layout, round);
//! for values in [[0.5f32, -0.25, 0.0, 1.0], [0.5, 0.25, -1.0, 0.0]] {
//!     let pk = &ceremony.public_key;
//!     let update = encrypt_update(&params, &packing, pk, &layout, &values, 100, round, &mut rng)?;
//!     aggregate.try_add(&update)?;
//! }
//!
//! // Holders 1 and 3 decrypt; holder 2 is offline.
//! let active = committee.active_set(&[HolderId(1), HolderId(3)])?;
//! let request = DecryptionRequest::new(&params, &committee, &active, &aggregate)?;
//! let mut combiner = Combiner::new(&params, request)?;
//! for key in ceremony.key_shares.into_iter().filter(|k| active.contains(k.holder())) {
//!     let ledger = ShareLedger::in_memory();
//!     let mut holder = KeyHolder::new(&params, committee.clone(), key, ledger)?;
//!     combiner.add(holder.decryption_share(&params, &aggregate, &active)?)?;
//! }
//! let result = combiner.decode(&params, &packing, &layout)?;
//! assert!((result.average[0][0] - 0.5).abs() <= result.error_bound as f32);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Tests convert between integer widths freely to build expectations.
#![cfg_attr(
    test,
    allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap,
        clippy::cast_precision_loss
    )
)]

pub mod ceremony;
pub mod committee;
pub mod decrypt;
pub mod error;
pub mod ledger;
pub mod shamir;

pub use ceremony::{
    CeremonyOutput, InMemoryTransport, KeyCommitment, KeyGenerator, PublicKeyShare,
    SecretShareMessage, ShareTransport, ThresholdKeyShare, collective_public_key, crs_binding,
    run_ceremony,
};
pub use committee::{ActiveSet, Committee, HolderId};
pub use decrypt::{
    Combiner, DecryptionRequest, DecryptionShare, KeyHolder, c1_digest, decryption_digest,
    flooding_bound,
};
pub use error::{Result, ThresholdError};
pub use ledger::ShareLedger;

#[cfg(test)]
mod tests;
