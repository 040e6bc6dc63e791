//! ringsum as a service: the coordinator serves the federation over gRPC
//! (tonic over rustls, preferring the hybrid post-quantum key exchange
//! X25519MLKEM768), key holders and clients join from their own machines,
//! and everything the coordinator accepted survives a crash.
//!
//! - [`server`]: the coordinator's service and the driver that opens
//!   rounds and asks for decryption, over an [`engine::Engine`] whose
//!   events are recorded in a redb [`store::CoordinatorStore`].
//! - [`participant`]: clients (train, encrypt, sign, submit) and key
//!   holders (ceremony, then decryption shares), with reconnects and
//!   backoff; holders keep their key share encrypted at rest
//!   ([`holder_store`]).
//! - [`description`]: the setup a participant rebuilds and checks.
//! - [`tls`]: certificates and the rustls configuration.

pub mod description;
pub mod engine;
pub mod error;
pub mod holder_store;
pub mod participant;
pub mod server;
pub mod store;
pub mod tls;

/// The generated gRPC types (proto/ringsum_service.proto).
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unused_qualifications,
    rust_2018_idioms
)]
pub mod proto {
    tonic::include_proto!("ringsum.service.v1");
}

pub use description::{HolderDescription, SetupDescription, TensorDescription, federation_hex};
pub use error::{NetError, Result};

use ringsum_math::Csprng;
use sha3::{Digest, Sha3_256};

/// `bytes` as a streamed message: chunks of at most `size` bytes (at least
/// one byte each), the first stating the whole length.
#[must_use]
pub fn chunks(bytes: &[u8], size: usize) -> Vec<proto::Chunk> {
    let total = bytes.len() as u64;
    bytes
        .chunks(size.max(1))
        .enumerate()
        .map(|(i, c)| proto::Chunk {
            total: if i == 0 { total } else { 0 },
            data: c.to_vec(),
        })
        .collect()
}

/// A deterministic generator for client `index` in `round`, from `seed`:
/// **for tests and reproducible demos only**. With it, the stochastic
/// rounding and the encryption randomness of a client are predictable, so
/// an in-process run and a networked run quantize identically and decrypt
/// to the same model, bit for bit. Real clients use the operating system's
/// generator.
#[must_use]
pub fn insecure_test_rng(seed: u64, index: usize, round: u64) -> Csprng {
    let mut h = Sha3_256::new();
    h.update(b"ringsum/insecure-test-rng/v1");
    h.update(seed.to_be_bytes());
    h.update((index as u64).to_be_bytes());
    h.update(round.to_be_bytes());
    Csprng::from_seed(h.finalize().into())
}
