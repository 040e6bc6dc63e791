//! Shamir sharing of per-round RLWE secrets, holders' key-sum answers and
//! their robust combination (the design of issue 14).
//!
//! Each client encrypts under a fresh secret s (N small signed
//! coefficients, |s_j| <= B_s) and Shamir-shares it among the n key holders
//! over a prime field Z_p ([`ShareField`], [`ShareCommittee`],
//! [`share_secret`]). Asked for a set S of clients, a holder answers with
//! the sum of its shares of their secrets, masked for that set so that
//! answers for different sets never combine ([`KeySumAccumulator`],
//! [`answer_for_set`], [`AnswerKey`]); from t answers the coordinator interpolates
//! sum_{i in S} s_i and lifts it to centred integers ([`combine_answers`]),
//! checking every coefficient when more than t answered and correcting up
//! to floor((m - t) / 2) lying holders among m answers, whom it names.
//!
//! ```
//! use ringsum_math::Csprng;
//! use ringsum_threshold::HolderId;
//! use ringsum_threshold::shamir::{
//!     AnswerKey, ShareCommittee, ShareField, answer_for_set, combine_answers, share_secret,
//! };
//!
//! let field = ShareField::new(ShareField::DEFAULT_MODULUS)?;
//! let holders: Vec<HolderId> = (1..=5).map(HolderId).collect();
//! let committee = ShareCommittee::new(field, &holders, 3, 16)?;
//! let mut rng = Csprng::from_seed([7; 32]);
//! let secrets = [vec![27, -27, 0, 5], vec![-3, -27, 1, 0]];
//! let dealt: Vec<_> = secrets
//!     .iter()
//!     .map(|s| share_secret(&committee, s, &mut rng))
//!     .collect::<Result<_, _>>()?;
//! // Each client's key for the masks of this round's answers.
//! let keys: Vec<AnswerKey> = secrets.iter().map(|_| AnswerKey::random(&mut rng)).collect();
//!
//! // Holders 1, 2, 4 and 5 answer (4 > t = 3: every coefficient is checked).
//! let mut answers = Vec::new();
//! for (position, &holder) in holders.iter().enumerate().filter(|(_, h)| h.0 != 3) {
//!     let shares: Vec<_> = dealt.iter().map(|d| d[position].1.expand()).collect();
//!     let pairs: Vec<_> = shares.iter().zip(&keys).collect();
//!     answers.push(answer_for_set(&committee, holder, 4, b"round 1, set {1, 2}", &pairs)?);
//! }
//! let sum = combine_answers(&committee, &answers, 4, 2 * 27)?;
//! assert_eq!(sum.coefficients(), &[24, -54, 1, 5]);
//! assert!(sum.liars().is_empty());
//! # Ok::<(), ringsum_threshold::ThresholdError>(())
//! ```
//!
//! # Sharing with seeds
//!
//! For every coefficient, Shamir's scheme picks a polynomial f of degree
//! t - 1, uniform among those with f(0) = s, and gives holder h the value
//! f(x_h) at its id x_h. Fixing s, the map from f's t - 1 other
//! coefficients to its values at t - 1 distinct nonzero points is a
//! bijection (a Vandermonde system), so choosing those t - 1 values
//! uniformly and interpolating the rest through (0, s) gives exactly the
//! same distribution. [`share_secret`] does that, and sends the first
//! t - 1 holders by id not their N values but a fresh 32-byte seed whose
//! expansion *defines* them ([`ShareSeed::expand`]: ChaCha20 keyed with
//! SHA3-256("ringsum/shamir-seed/v1" || seed), rejection-sampled); the
//! other n - t + 1 holders get N elements each. At n = 5, t = 3 and
//! N = 16384 a client sends 3 x 32 KiB and 2 x 42 bytes instead of
//! 5 x 32 KiB.
//!
//! Security: any t - 1 shares are independent of s *computationally*
//! rather than information-theoretically. A coalition of t - 1 holders
//! learns the seeds it holds (uniform bytes, independent of s) and the
//! values it holds; with truly uniform expansions for the seeds it does
//! not hold, its view is exactly Shamir's and independent of s, so any
//! way to tell two secrets apart from it distinguishes the expansion of an
//! unseen seed from uniform, i.e. breaks SHA3-256 + ChaCha20 as a PRG
//! (256-bit key: 128 bits against Grover). With t = 1 there is nothing to
//! hide and every holder gets s mod p.
//!
//! # Constant time
//!
//! Reducing secret coefficients ([`ShareField`]: Barrett and Shoup, masked
//! corrections), the Lagrange combination, a holder's additions and the
//! range check of decoded elements have no branch or table look-up on an
//! element. The seed expansion branches only on rejected candidates, which
//! are thrown away. Lagrange weights, inverses and Reed-Solomon decoding
//! work on public points or on the coordinator's own data and take
//! variable time (`_vartime`).
//!
//! # Byte formats
//!
//! Integers are little-endian; p and N are u32; elements are bit-packed at
//! bits = bitlen(p - 1) bits each: element i fills bits i bits to
//! (i + 1) bits - 1 of the stream, bit j of the stream is bit j mod 8 of
//! byte j / 8, and the unused high bits of the last byte are zero. The
//! version is 1.
//!
//! | message | bytes | length |
//! |---|---|---|
//! | seeded share | `0x01 \|\| 0x01 \|\| p \|\| N \|\| seed[32]` | 42 |
//! | share of values | `0x02 \|\| 0x01 \|\| p \|\| N \|\| packed` | 10 + ceil(N bits / 8) |
//! | holder answer | `0x03 \|\| 0x01 \|\| p \|\| N \|\| holder \|\| packed` | 14 + ceil(N bits / 8) |
//!
//! At p = 65521 (16 bits) and N = 16384 a share of values is 32778 bytes.
//! Decoders ([`ShareMessage::from_bytes`], [`HolderAnswer::from_bytes`])
//! are given p and N, check the exact length before allocating, and refuse
//! another tag, version, modulus or degree, an element >= p, nonzero
//! padding bits and trailing bytes, each with a typed error.

mod codec;
mod combine;
mod committee;
mod field;
mod holder;
mod mask;
mod share;

#[cfg(test)]
mod tests;

pub use codec::{SHARE_FORMAT_VERSION, decode_client_share, encode_client_share, packed_len};
pub use combine::{KeySum, combine_answers};
pub use committee::ShareCommittee;
pub use field::ShareField;
pub use holder::{HolderAnswer, KeySumAccumulator, answer_for_set};
pub use mask::{ANSWER_KEY_BYTES, AnswerKey};
pub use share::{
    MAX_SHARE_DEGREE, SHARE_SEED_BYTES, ShareMessage, ShareSeed, ShareValues, share_secret,
};
