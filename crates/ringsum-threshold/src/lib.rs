//! # ringsum-threshold
//!
//! No single party can open an update: every client of a round encrypts
//! under a fresh secret of its own and Shamir-shares that secret among the
//! n key holders ([`shamir`]); asked for a set of clients, each holder
//! answers with the sum of its shares of their secrets, and any t answers
//! reconstruct the sum of the set's secrets, which opens only the sum of
//! the set's updates. Fewer than t holders learn nothing; with more than t
//! answers a wrong one is detected, with t + 2e up to e are corrected and
//! their holders named. Holders are named by [`HolderId`], their Shamir
//! point.
//!
//! There is no long-term key: the collective-key scheme this crate first
//! held (key ceremony, threshold decryption with flooded shares, share
//! ledger, re-randomisation, resharing) was removed in December 2026.
//!
//! ```
//! use ringsum_math::Csprng;
//! use ringsum_threshold::HolderId;
//! use ringsum_threshold::shamir::{
//!     AnswerKey, ShareCommittee, ShareField, answer_for_set, combine_answers, share_secret,
//! };
//!
//! let field = ShareField::new(ShareField::DEFAULT_MODULUS)?;
//! let holders: Vec<HolderId> = (1..=3).map(HolderId).collect();
//! let committee = ShareCommittee::new(field, &holders, 2, 16)?;
//! let mut rng = Csprng::from_seed([7; 32]);
//! let secrets = [vec![5, -3], vec![-1, 2]];
//! let dealt: Vec<_> = secrets
//!     .iter()
//!     .map(|s| share_secret(&committee, s, &mut rng))
//!     .collect::<Result<_, _>>()?;
//! let keys: Vec<AnswerKey> = secrets.iter().map(|_| AnswerKey::random(&mut rng)).collect();
//! // Holders 1 and 3 answer for the set of both clients; holder 2 is away.
//! let mut answers = Vec::new();
//! for position in [0, 2] {
//!     let shares: Vec<_> = dealt.iter().map(|d| d[position].1.expand()).collect();
//!     let pairs: Vec<_> = shares.iter().zip(&keys).collect();
//!     let holder = holders[position];
//!     answers.push(answer_for_set(&committee, holder, 2, b"round 1, set {1, 2}", &pairs)?);
//! }
//! let sum = combine_answers(&committee, &answers, 2, 2 * 27)?;
//! assert_eq!(sum.coefficients(), &[4, -1]);
//! # Ok::<(), ringsum_threshold::ThresholdError>(())
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

pub mod error;
pub mod holder_id;
pub mod shamir;

pub use error::{Result, ThresholdError};
pub use holder_id::HolderId;
