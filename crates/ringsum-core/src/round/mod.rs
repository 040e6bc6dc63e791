//! The per-round-key scheme: every client encrypts under a fresh secret of
//! its own, and only the sum of the secrets of a set of clients is ever
//! reconstructed (by t of n key holders, from Shamir shares: the threshold
//! crate). There is no long-term decryption key.
//!
//! For ciphertext j of round r, the public polynomial a_j is expanded from
//! the federation id and (r, j) ([`RoundContext::a_rows`]); client i sends
//! only
//!
//! ```text
//! c_ij = a_j * s_i + e_ij + Δ*M_ij
//! ```
//!
//! with s_i and e_ij from the set's tail-cut discrete Gaussian. The
//! coordinator adds the c_ij of a set S; with the key sum s_S = sum s_i,
//! sum_i c_ij - a_j * s_S = sum_i e_ij + Δ * sum_i M_ij, which decodes
//! exactly as long as the summed errors stay below Δ/2 and the slots do not
//! overflow (the parameter loader proves both for up to `max_clients`
//! clients). The last ciphertext carries only the coefficients its values
//! use, as in [`crate::update::UpdateShape`].
//!
//! # One secret, one update
//!
//! A [`RoundSecret`] is consumed by the encryption it is used for
//! ([`RoundSecret::encrypt_update`], [`RoundSecret::precompute`]): the type
//! makes a second encryption under the same secret impossible, because two
//! ciphertexts c = a*s + e + Δ*M and c' = a*s + e' + Δ*M' under one secret
//! give c - c' = Δ*(M - M') + (e - e'), the difference of the two updates
//! in the clear up to small noise. A client that must send again (after a
//! crash) resends the bytes it recorded.
//!
//! ```
//! use ringsum_core::ParameterSet;
//! use ringsum_core::model::ModelLayout;
//! use ringsum_core::round::{RoundAggregate, RoundContext, RoundSecret};
//! use ringsum_core::scheme::Packing;
//! use ringsum_core::update::RoundId;
//! use ringsum_math::Csprng;
//!
//! let params = ParameterSet::builtin("rk128-n4096")?;
//! let packing = Packing::new(&params);
//! let layout = ModelLayout::try_new([("w", vec![3])])?;
//! let context = RoundContext::new(&params, [9; 32], RoundId(1));
//! let mut rng = Csprng::from_seed([1; 32]);
//! let mut aggregate = RoundAggregate::new(&params, &packing, &layout, &context)?;
//! let mut key_sum = vec![0i64; params.degree()];
//! for (values, samples) in [([0.5f32, -0.25, 1.0], 10), ([0.25, 0.25, -1.0], 30)] {
//!     let secret = RoundSecret::generate(&params, &mut rng);
//!     // In a federation the secret travels as Shamir shares; here we add it up.
//!     for (sum, s) in key_sum.iter_mut().zip(secret.coefficients()) {
//!         *sum += s;
//!     }
//!     let update = secret.encrypt_update(&packing, &layout, &context, &values, samples, &mut rng)?;
//!     aggregate.try_add(&update)?;
//! }
//! let average = aggregate.decode(&packing, &layout, &key_sum)?;
//! // (0.5 * 10 + 0.25 * 30) / 40 = 0.3125
//! assert!((average.average[0][0] - 0.3125).abs() <= average.error_bound as f32);
//! # Ok::<(), ringsum_core::CoreError>(())
//! ```

mod aggregate;
mod secret;

pub use aggregate::RoundAggregate;
pub use secret::{PrecomputedUpdate, RoundSecret, RoundUpdate};

use std::sync::Arc;

use ringsum_math::prg::UniformRows;
use ringsum_math::{CrsDomain, CrsSeed, RingContext};

use crate::error::Result;
use crate::params::{ParamSetId, ParameterSet};
use crate::update::RoundId;

/// The purpose label of the public polynomials a_j.
pub const ROUND_A_PURPOSE: &str = "ringsum/round-a";

/// What the public polynomials of a round are bound to: the federation id
/// (32 bytes, the hash of the federation description), the round, and the
/// parameter set's ring.
#[derive(Clone, Debug)]
pub struct RoundContext {
    param_set: ParamSetId,
    ring: Arc<RingContext>,
    federation: CrsSeed,
    round: RoundId,
}

impl PartialEq for RoundContext {
    fn eq(&self, other: &Self) -> bool {
        self.param_set == other.param_set
            && self.federation == other.federation
            && self.round == other.round
    }
}

impl Eq for RoundContext {}

impl RoundContext {
    /// The context of `round` in the federation `federation`.
    pub fn new(params: &ParameterSet, federation: [u8; 32], round: RoundId) -> Self {
        Self {
            param_set: params.id().clone(),
            ring: Arc::clone(params.ring()),
            federation: CrsSeed::new(federation),
            round,
        }
    }

    /// The round.
    pub fn round(&self) -> RoundId {
        self.round
    }

    /// The federation id.
    pub fn federation(&self) -> &[u8; 32] {
        self.federation.as_bytes()
    }

    /// The parameter set.
    pub fn param_set(&self) -> &ParamSetId {
        &self.param_set
    }

    /// The stream of a_j, ciphertext `index`'s public polynomial, one
    /// prime's row at a time.
    ///
    /// # Errors
    /// None in practice: the purpose label is a valid constant.
    pub fn a_rows(&self, index: usize) -> Result<UniformRows> {
        let domain = CrsDomain::new(ROUND_A_PURPOSE, self.round.0, index as u64)?;
        Ok(UniformRows::new(&self.ring, &self.federation, &domain))
    }

    /// `Ok` when `params` is the set this context was made for.
    fn check(&self, params: &ParameterSet) -> Result<()> {
        crate::scheme::check_set(params, &self.param_set)
    }
}

#[cfg(test)]
mod tests;
