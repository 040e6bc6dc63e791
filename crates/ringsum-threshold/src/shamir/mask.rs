//! Answers that cannot be combined across sets.
//!
//! Without a mask, a holder's answer for a set S is F_S(x_h), where
//! F_S = sum_{i in S} f_i is linear in S. A coordinator that asks
//! different holders about different sets (holders 1 and 2 about A,
//! holders 3 and 4 about B, holder 5 about A u B, with t = 3 of n = 5)
//! gets no quorum for any set, yet a linear combination of the five
//! answers equals a combination such as 36 s_A + s_B, and the aggregates
//! decode to 36 M_A + M_B: a second sum in one round, from the coordinator
//! alone (docs/security.md, "At most one sum per round").
//!
//! So every answer carries a mask: holder h answers F_S(x_h) + Z_S(x_h),
//! where Z_S(x) = sum_{k=1}^{t-1} z_k x^k is a polynomial with Z_S(0) = 0,
//! its coefficients z_k in Z_p^N expanded from a key K_S that only the
//! holders (and S's clients) can compute: every client draws a fresh
//! 32-byte [`AnswerKey`] per round and sends it, sealed, with each of its
//! shares, and
//!
//! ```text
//! d_i = SHA3-256("ringsum/answer-mask-key/v1" || answer key of client i)
//! K_S = SHA3-256("ringsum/answer-mask/v1" || len(context) (u64 LE) || context
//!                || |S| (u64 LE) || the d_i of S's clients, sorted)
//! z_k = expansion of the seed SHA3-256(K_S || k (u32 LE)), as a share seed
//! ```
//!
//! The holder keeps only the d_i (sorting them takes variable time, but
//! they are one-way images of the keys). A client's commitment to its key,
//! [`AnswerKey::commitment`], is another, domain-separated hash: it can be
//! published (in the client's signed submission) so that every holder
//! checks it received the same key, without telling anyone the mask.
//!
//! The answers of one set still lie on one polynomial of degree t - 1 with
//! value s_S at 0, so combining and error correction are unchanged. Answers
//! for different sets carry independent masks the coordinator cannot
//! compute (one honest client's key is enough), and a set answered by
//! fewer than t holders contributes nothing to any combination: its mask
//! has t - 1 unknown coefficients, and cancelling them needs weights
//! w_h with sum_h w_h x_h^k = 0 for k = 1..t-1 over at most t - 1 distinct
//! nonzero points, whose only solution is zero. Holders that collude with
//! the coordinator know the keys, so the mask protects against the
//! coordinator alone and not against corrupted holders (the bound is in
//! docs/security.md).

use sha3::{Digest, Sha3_256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use ringsum_math::Csprng;

use super::field::ShareField;
use super::share::{SHARE_SEED_BYTES, ShareSeed, linear_combination};

/// The domain of the mask key's hash.
const MASK_DOMAIN: &[u8] = b"ringsum/answer-mask/v1";
/// The domain of the per-key hash that enters the mask key.
const KEY_DOMAIN: &[u8] = b"ringsum/answer-mask-key/v1";
/// The domain of the public commitment to an answer key.
const COMMITMENT_DOMAIN: &[u8] = b"ringsum/answer-key-commitment/v1";

/// The length of an answer key in bytes.
pub const ANSWER_KEY_BYTES: usize = 32;

/// A client's key for the masks of the holders' answers of one round: 32
/// random bytes, sent sealed to every holder with its share. Wiped on drop,
/// never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AnswerKey([u8; ANSWER_KEY_BYTES]);

impl subtle::ConstantTimeEq for AnswerKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for AnswerKey {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(self, other).into()
    }
}

impl Eq for AnswerKey {}

impl AnswerKey {
    /// A fresh key.
    pub fn random(rng: &mut Csprng) -> Self {
        let mut bytes = [0u8; ANSWER_KEY_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// A key from its bytes (what a holder received).
    pub fn from_bytes(bytes: [u8; ANSWER_KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, to seal for the holders.
    pub fn to_bytes(&self) -> Zeroizing<[u8; ANSWER_KEY_BYTES]> {
        Zeroizing::new(self.0)
    }

    /// A public commitment to the key: SHA3-256 of a domain tag and the
    /// key. A client that publishes it in its signed submission lets each
    /// holder check that it received the same key as the others: a client
    /// that gives holders different keys makes their answers disagree, and
    /// without the check an honest holder would be named as a liar.
    pub fn commitment(&self) -> [u8; 32] {
        let mut hash = Sha3_256::new();
        hash.update(COMMITMENT_DOMAIN);
        hash.update(self.0);
        hash.finalize().into()
    }

    /// The one-way image of the key that enters the mask key.
    pub(crate) fn mask_input(&self) -> [u8; 32] {
        let mut hash = Sha3_256::new();
        hash.update(KEY_DOMAIN);
        hash.update(self.0);
        hash.finalize().into()
    }
}

impl std::fmt::Debug for AnswerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerKey { .. }")
    }
}

/// Z_S(x) = sum_{k=1}^{t-1} z_k x^k at the point x, N elements: the mask
/// holder x adds to its answer for the set whose clients' keys have the
/// images `keys` ([`AnswerKey::mask_input`]). As secret as a share: wiped
/// on drop.
pub(crate) fn answer_mask(
    field: &ShareField,
    degree: usize,
    threshold: usize,
    x: u32,
    context: &[u8],
    keys: &mut [[u8; 32]],
) -> Zeroizing<Vec<u32>> {
    keys.sort_unstable();
    let mut hash = Sha3_256::new();
    hash.update(MASK_DOMAIN);
    hash.update((context.len() as u64).to_le_bytes());
    hash.update(context);
    hash.update((keys.len() as u64).to_le_bytes());
    for key in keys.iter() {
        hash.update(key);
    }
    let mut set_key = Zeroizing::new([0u8; 32]);
    set_key.copy_from_slice(&hash.finalize());
    let mut rows = Vec::with_capacity(threshold.saturating_sub(1));
    let mut weights = Vec::with_capacity(threshold.saturating_sub(1));
    let mut power = 1u32;
    for k in 1..threshold {
        let mut seed = [0u8; SHARE_SEED_BYTES];
        let mut hash = Sha3_256::new();
        hash.update(*set_key);
        hash.update(u32::try_from(k).unwrap_or(u32::MAX).to_le_bytes());
        seed.copy_from_slice(&hash.finalize());
        rows.push(ShareSeed::from_array(*field, degree, seed).expand());
        seed.zeroize();
        power = field.mul(power, x);
        weights.push(field.weight(power));
    }
    let rows: Vec<&[u32]> = rows.iter().map(|r| r.values()).collect();
    Zeroizing::new(linear_combination(field, &weights, &rows, degree))
}
