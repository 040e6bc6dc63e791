//! # ringsum
//!
//! Post-quantum secure aggregation for federated learning. This facade
//! re-exports the layers of the workspace.

pub use ringsum_core as core;
pub use ringsum_math as math;
