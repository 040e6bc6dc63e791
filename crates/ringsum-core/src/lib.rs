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

pub mod error;
pub mod params;

pub use error::{CoreError, Result};
pub use params::{ParamSetId, ParameterSet, SecretDistribution, SecurityModel};

#[cfg(test)]
mod tests;
