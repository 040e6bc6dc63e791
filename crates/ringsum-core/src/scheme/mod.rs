//! The slot packing that puts K signed values into each ring coefficient,
//! and its exact decoding.
//!
//! A plaintext is a vector of N*K signed slot values; coefficient i carries
//! the integer M_i = sum_j v_(i,K+j) * 2^(b*j), and a ciphertext of the
//! per-round-key scheme ([`crate::round`]) encrypts Δ*M_i with Δ = 2^d (d
//! from the noise budget). Sums of ciphertexts are encryptions of sums of
//! the M_i, which are sums slot by slot as long as no slot overflows: the
//! parameter validator guarantees that for up to `max_clients` summands.
//! See docs/noise.md.

mod decode;
mod packing;

pub(crate) use decode::decode_columns;
pub use decode::decode_phase;
pub use packing::{Packing, Plaintext};

use crate::error::{CoreError, Result};
use crate::params::{ParamSetId, ParameterSet};

/// `Ok` when `found` names the parameter set `params`.
///
/// # Errors
/// [`CoreError::ParameterMismatch`] naming both sets.
pub fn check_set(params: &ParameterSet, found: &ParamSetId) -> Result<()> {
    if params.id() == found {
        Ok(())
    } else {
        Err(CoreError::ParameterMismatch {
            expected: params.id().to_string(),
            found: found.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
