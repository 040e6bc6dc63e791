//! # ringsum
//!
//! Post-quantum secure aggregation for federated learning. This facade
//! re-exports the layers of the workspace:
//!
//! - [`math`]: ring arithmetic (Z_q, RNS, NTT through tfhe-ntt, polynomials,
//!   samplers, CRS expansion);
//! - [`core`]: validated parameter sets, quantization, packing, and the
//!   per-round-key scheme ([`core::round`]): encryption under a fresh
//!   secret per client and round, aggregation, decoding with a key sum;
//! - [`threshold`]: Shamir sharing of the round secrets among the key
//!   holders and the robust reconstruction of key sums
//!   ([`threshold::shamir`]);
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
