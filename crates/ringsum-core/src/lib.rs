//! # ringsum-core
//!
//! The scheme layer of ringsum: the validated parameter sets
//! ([`ParameterSet`], [`params`]), the quantization of model updates
//! ([`model`]), the slot packing ([`scheme`]), the layout of an update in
//! ciphertexts and the decoding of a weighted average ([`update`]), and the
//! per-round-key scheme itself ([`round`]): every client encrypts under a
//! fresh secret of its own, and only the sum of a set's secrets is ever
//! reconstructed. There is no long-term decryption key.
//!
//! ```
//! use ringsum_core::ParameterSet;
//!
//! let params = ParameterSet::builtin("rk128-n8192")?;
//! assert_eq!(params.degree(), 8192);
//! assert!(params.log2_q() <= 202); // the quantum bound at N = 8192
//! assert_eq!(params.shares().field_prime, 65521);
//! # Ok::<(), ringsum_core::CoreError>(())
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
pub mod model;
pub mod noise;
pub mod params;
pub mod privacy;
pub mod round;
pub mod scheme;
pub mod update;

pub use error::{CoreError, Result};
pub use noise::NoiseBudget;
pub use params::{
    DEFAULT_PARAMETER_SET, DEFAULT_ROUND_KEY_SET, EncodingParams, ParamSetId, ParameterSet,
    SecretDistribution, SecurityModel, ShareParams,
};

#[cfg(test)]
mod tests;
