//! # ringsum-core
//!
//! The scheme layer of ringsum. For now it holds the validated parameter
//! sets ([`ParameterSet`]); keys, encryption, slot packing and aggregation
//! build on them.
//!
//! ```
//! use ringsum_core::ParameterSet;
//!
//! let params = ParameterSet::builtin("pq128-n8192")?;
//! assert_eq!(params.degree(), 8192);
//! assert!(params.log2_q() <= 202); // the quantum bound at N = 8192
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
pub mod round;
pub mod scheme;
pub mod update;

pub use error::{CoreError, Result};
pub use noise::NoiseBudget;
pub use params::{
    DEFAULT_PARAMETER_SET, DEFAULT_ROUND_KEY_SET, EncodingParams, ParamSetId, ParameterSet,
    SchemeParams, SecretDistribution, SecurityModel, ShareParams, ThresholdParams,
};

#[cfg(test)]
mod tests;
