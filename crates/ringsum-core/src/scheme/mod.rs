//! The BFV-style additive scheme: keys, public-key encryption, decryption
//! with one secret key, ciphertext arithmetic, and the slot packing that puts
//! K signed values into each ring coefficient.
//!
//! A plaintext is a vector of N*K signed slot values; coefficient i carries
//! the integer M_i = sum_j v_(i,K+j) * 2^(b*j), and the ciphertext encrypts
//! Δ*M_i with Δ = 2^d (d from the noise budget). Sums of ciphertexts are
//! encryptions of sums of the M_i, which are sums slot by slot as long as no
//! slot overflows: the parameter validator guarantees that for up to
//! `max_clients` summands. See docs/noise.md.

mod ciphertext;
mod keys;
mod packing;

pub use ciphertext::{
    Ciphertext, decode_phase, decrypt, encrypt, measure_noise_bits_vartime, sum_ciphertexts,
};
pub(crate) use ciphertext::{decode_columns, encrypt_columns, phase};
pub use keys::{PublicKey, SecretKey, check_set};
pub use packing::{Packing, Plaintext};

#[cfg(test)]
mod tests;
