//! # ringsum
//!
//! Post-quantum secure aggregation for federated learning. This facade
//! re-exports the layers of the workspace:
//!
//! - [`math`]: ring arithmetic (Z_q, RNS, NTT through tfhe-ntt, polynomials,
//!   samplers, CRS expansion);
//! - [`core`]: validated parameter sets, encryption, packing and
//!   aggregation (the per-round-key scheme in [`core::round`]);
//! - [`threshold`]: Shamir-shared key sums ([`threshold::shamir`]) and the
//!   collective-key threshold decryption being replaced;
//! - [`pq`], [`wire`], [`protocol`]: signatures and sealed boxes, the wire
//!   format, the round protocol.
//!
//! The README follows, and its example runs as a doctest.
#![doc = include_str!("../README.md")]

pub use ringsum_core as core;
pub use ringsum_math as math;
pub use ringsum_pq as pq;
pub use ringsum_protocol as protocol;
pub use ringsum_threshold as threshold;
pub use ringsum_wire as wire;
