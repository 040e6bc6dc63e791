//! Dealing: a client's per-round secret split into one message per holder,
//! the first t - 1 of them a 32-byte seed.

use std::fmt;

use ringsum_math::Csprng;
use sha3::{Digest, Sha3_256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Result, ThresholdError};
use crate::holder_id::HolderId;

use super::committee::{ShareCommittee, lagrange_weights_vartime, point};
use super::field::{ShareField, Weight};

/// The largest number of coefficients a share may have: far above the
/// ring degrees of the parameter sets (at most 32768), and a bound on what
/// a decoder of untrusted bytes will allocate.
pub const MAX_SHARE_DEGREE: usize = 1 << 20;

/// The bytes of a share seed.
pub const SHARE_SEED_BYTES: usize = 32;

/// The domain of the hash that turns a share seed into a ChaCha20 key.
pub(crate) const SEED_DOMAIN: &[u8] = b"ringsum/shamir-seed/v1";

/// `Ok` for a degree in 1..=[`MAX_SHARE_DEGREE`].
pub(crate) fn check_degree(degree: usize) -> Result<()> {
    if degree == 0 || degree > MAX_SHARE_DEGREE {
        return Err(ThresholdError::InvalidShareDegree {
            degree,
            max: MAX_SHARE_DEGREE,
        });
    }
    Ok(())
}

/// One holder's share of a secret as N field elements (or of a sum of
/// secrets, on the holder's side): wiped on drop, compared in constant
/// time, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ShareValues {
    #[zeroize(skip)]
    field: ShareField,
    values: Vec<u32>,
}

impl ShareValues {
    /// Values already reduced below p.
    pub(crate) fn from_reduced(field: ShareField, values: Vec<u32>) -> Self {
        Self { field, values }
    }

    /// The field of the values.
    pub fn field(&self) -> ShareField {
        self.field
    }

    /// The number of coefficients N.
    pub fn degree(&self) -> usize {
        self.values.len()
    }

    /// The elements, each below p.
    pub(crate) fn values(&self) -> &[u32] {
        &self.values
    }
}

impl ConstantTimeEq for ShareValues {
    fn ct_eq(&self, other: &Self) -> Choice {
        // The field and the length are public; the elements are not.
        if self.field != other.field || self.values.len() != other.values.len() {
            return Choice::from(0);
        }
        self.values.as_slice().ct_eq(other.values.as_slice())
    }
}

impl PartialEq for ShareValues {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for ShareValues {}

impl fmt::Debug for ShareValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareValues")
            .field("field", &self.field)
            .field("degree", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// A 32-byte seed standing for a share of N uniform field elements (see
/// [`ShareSeed::expand`]): wiped on drop, compared in constant time, never
/// printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ShareSeed {
    bytes: [u8; SHARE_SEED_BYTES],
    #[zeroize(skip)]
    field: ShareField,
    #[zeroize(skip)]
    degree: usize,
}

impl ShareSeed {
    /// A seed for a share of `degree` elements of `field`.
    pub(crate) fn from_array(
        field: ShareField,
        degree: usize,
        bytes: [u8; SHARE_SEED_BYTES],
    ) -> Self {
        Self {
            bytes,
            field,
            degree,
        }
    }

    /// A seed copied from a slice of [`SHARE_SEED_BYTES`] bytes (no copy
    /// left behind), `None` for another length.
    pub(crate) fn from_slice(field: ShareField, degree: usize, bytes: &[u8]) -> Option<Self> {
        let mut seed = Self::from_array(field, degree, [0; SHARE_SEED_BYTES]);
        if bytes.len() != SHARE_SEED_BYTES {
            return None;
        }
        seed.bytes.copy_from_slice(bytes);
        Some(seed)
    }

    /// A fresh random seed.
    fn random(field: ShareField, degree: usize, rng: &mut Csprng) -> Self {
        let mut seed = Self::from_array(field, degree, [0; SHARE_SEED_BYTES]);
        rng.fill_bytes(&mut seed.bytes);
        seed
    }

    /// The field of the share.
    pub fn field(&self) -> ShareField {
        self.field
    }

    /// The number of coefficients N the seed expands to.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The seed's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; SHARE_SEED_BYTES] {
        &self.bytes
    }

    /// The share the seed stands for: N elements uniform on Z_p.
    ///
    /// The ChaCha20 key is SHA3-256("ringsum/shamir-seed/v1" || seed);
    /// the keystream (nonce 0, from block 0; [`Csprng::from_seed`]) is read
    /// in consecutive little-endian chunks of ceil(bits/8) bytes, each
    /// masked to its low `bits` = bitlen(p - 1) bits and kept if below p,
    /// until N are kept. A candidate is kept with probability
    /// p / 2^bits, more than one half. Keeping is branch-free (every
    /// candidate is written, and the count advances by the comparison's
    /// bit); only the number of refills depends on how many were rejected,
    /// and those are thrown away.
    pub fn expand(&self) -> ShareValues {
        let field = self.field;
        let mut key = Zeroizing::new([0u8; SHARE_SEED_BYTES]);
        let mut hash = Sha3_256::new();
        hash.update(SEED_DOMAIN);
        hash.update(self.bytes);
        key.copy_from_slice(&hash.finalize());
        let mut rng = Csprng::from_seed(*key);

        let width = field.bits().div_ceil(8) as usize;
        // A multiple of 64 chunks: of the chunk width and of the generator's
        // 4-byte word, so that refills continue the keystream exactly (the
        // stream does not depend on the buffer's size). About 1.5 N
        // candidates, at most 1024, per refill.
        let chunks = (self.degree + self.degree / 2)
            .clamp(64, 1024)
            .next_multiple_of(64);
        let mut buffer = Zeroizing::new(vec![0u8; chunks * width]);
        let mut values = vec![0u32; self.degree];
        let (mut filled, mut position) = (0, buffer.len());
        while filled < self.degree {
            if position == buffer.len() {
                rng.fill_bytes(&mut buffer);
                position = 0;
            }
            // At most as many candidates as elements still missing, so that
            // no candidate past the last one kept is read.
            let take = ((buffer.len() - position) / width).min(self.degree - filled);
            let end = position + take * width;
            let candidates = buffer.get(position..end).unwrap_or_default();
            match width {
                2 => keep_candidates::<2>(&field, candidates, &mut values, &mut filled),
                3 => keep_candidates::<3>(&field, candidates, &mut values, &mut filled),
                _ => keep_candidates::<4>(&field, candidates, &mut values, &mut filled),
            }
            position = end;
        }
        ShareValues::from_reduced(field, values)
    }
}

/// Reads `W`-byte little-endian candidates, masks them to bits(p) bits and
/// keeps those below p at `values[*filled]`, without a branch on them: the
/// caller passes at most `values.len() - *filled` candidates.
fn keep_candidates<const W: usize>(
    field: &ShareField,
    candidates: &[u8],
    values: &mut [u32],
    filled: &mut usize,
) {
    let mask = u32::MAX >> (u32::BITS - field.bits());
    let modulus = field.value();
    for chunk in candidates.chunks_exact(W) {
        let mut word = [0u8; 4];
        for (dst, src) in word.iter_mut().zip(chunk) {
            *dst = *src;
        }
        let candidate = u32::from_le_bytes(word) & mask;
        if let Some(slot) = values.get_mut(*filled) {
            *slot = candidate;
        }
        *filled += usize::from(u64::from(candidate) < modulus);
    }
}

impl ConstantTimeEq for ShareSeed {
    fn ct_eq(&self, other: &Self) -> Choice {
        let public = self.field == other.field && self.degree == other.degree;
        Choice::from(u8::from(public)) & self.bytes.ct_eq(&other.bytes)
    }
}

impl PartialEq for ShareSeed {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for ShareSeed {}

impl fmt::Debug for ShareSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareSeed")
            .field("field", &self.field)
            .field("degree", &self.degree)
            .finish_non_exhaustive()
    }
}

/// What a client sends one holder: its share of the client's secret, as a
/// seed (the first t - 1 holders by id) or as N field elements (the
/// others). Wiped on drop, compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum ShareMessage {
    /// A seed that expands to the share ([`ShareSeed::expand`]).
    Seed(ShareSeed),
    /// The share's N elements.
    Values(ShareValues),
}

impl ShareMessage {
    /// The field of the share.
    pub fn field(&self) -> ShareField {
        match self {
            Self::Seed(seed) => seed.field(),
            Self::Values(values) => values.field(),
        }
    }

    /// The number of coefficients N.
    pub fn degree(&self) -> usize {
        match self {
            Self::Seed(seed) => seed.degree(),
            Self::Values(values) => values.degree(),
        }
    }

    /// The share as N field elements: a seed expanded, values copied.
    pub fn expand(&self) -> ShareValues {
        match self {
            Self::Seed(seed) => seed.expand(),
            Self::Values(values) => values.clone(),
        }
    }
}

impl Zeroize for ShareMessage {
    fn zeroize(&mut self) {
        match self {
            Self::Seed(seed) => seed.zeroize(),
            Self::Values(values) => values.zeroize(),
        }
    }
}

/// Both variants wipe themselves on drop.
impl ZeroizeOnDrop for ShareMessage {}

impl ConstantTimeEq for ShareMessage {
    fn ct_eq(&self, other: &Self) -> Choice {
        // Which variant a holder gets is public (its rank among the ids).
        match (self, other) {
            (Self::Seed(a), Self::Seed(b)) => a.ct_eq(b),
            (Self::Values(a), Self::Values(b)) => a.ct_eq(b),
            _ => Choice::from(0),
        }
    }
}

impl fmt::Debug for ShareMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seed(seed) => f.debug_tuple("Seed").field(seed).finish(),
            Self::Values(values) => f.debug_tuple("Values").field(values).finish(),
        }
    }
}

/// Shamir-shares `secret` (N signed coefficients, each reduced mod p in
/// constant time) among the committee: one message per holder, sorted by
/// holder id.
///
/// Every coefficient gets its own polynomial f of degree t - 1 with
/// f(0) = s. The first t - 1 holders by id get a fresh 32-byte seed each,
/// and their share f(x_k) is defined as its expansion; the other holders
/// get f(x_h), interpolated through (0, s) and the t - 1 seeded points.
/// With uniform seeded shares, f is uniform among the polynomials with
/// f(0) = s, exactly as with random coefficients (see the module docs for
/// the computational step). With t = 1 every holder gets s mod p.
///
/// # Errors
/// [`ThresholdError::InvalidShareDegree`] for an empty secret or one of
/// more than [`MAX_SHARE_DEGREE`] coefficients.
pub fn share_secret(
    committee: &ShareCommittee,
    secret: &[i64],
    rng: &mut Csprng,
) -> Result<Vec<(HolderId, ShareMessage)>> {
    let field = committee.field();
    let degree = secret.len();
    check_degree(degree)?;
    let seeded_count = committee.threshold_usize().saturating_sub(1);
    let (seeded, computed) = committee.holders().split_at_checked(seeded_count).ok_or(
        ThresholdError::ThresholdOutOfRange {
            threshold: committee.threshold(),
            holders: committee.holders().len(),
        },
    )?;

    let reduced = ShareValues::from_reduced(
        field,
        secret.iter().map(|&v| field.reduce_signed(v)).collect(),
    );
    let mut messages = Vec::with_capacity(committee.holders().len());
    let mut rows = Vec::with_capacity(seeded.len() + 1);
    rows.push(reduced);
    let mut nodes = Vec::with_capacity(seeded.len() + 1);
    nodes.push(0);
    for &holder in seeded {
        let seed = ShareSeed::random(field, degree, rng);
        rows.push(seed.expand());
        nodes.push(point(&field, holder));
        messages.push((holder, ShareMessage::Seed(seed)));
    }
    let rows: Vec<&[u32]> = rows.iter().map(ShareValues::values).collect();
    for &holder in computed {
        let x = point(&field, holder);
        let weights =
            lagrange_weights_vartime(&field, &nodes, x).ok_or(ThresholdError::InvalidHolderId {
                holder,
                limit: field.value(),
            })?;
        let values = linear_combination(&field, &weights, &rows, degree);
        messages.push((
            holder,
            ShareMessage::Values(ShareValues::from_reduced(field, values)),
        ));
    }
    Ok(messages)
}

/// sum_k w_k rows_k, element by element, reduced below p; rows shorter
/// than `degree` count as zero-padded. Each Shoup product (below 2p) is
/// added to the running sum (below p) and brought back below p with two
/// masked subtractions: no branch on the rows' elements.
pub(crate) fn linear_combination(
    field: &ShareField,
    weights: &[Weight],
    rows: &[&[u32]],
    degree: usize,
) -> Vec<u32> {
    let mut sum = vec![0u32; degree];
    for (&weight, row) in weights.iter().zip(rows) {
        for (acc, &y) in sum.iter_mut().zip(row.iter()) {
            *acc = field.reduce_small(u64::from(*acc) + field.mul_weight_lazy(y, weight));
        }
    }
    sum
}
