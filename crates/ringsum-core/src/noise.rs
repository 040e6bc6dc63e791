//! The noise budget: proven worst-case bounds that the parameter validator
//! checks and the scheme relies on. docs/noise.md derives each formula.
//!
//! All bounds are on the infinity norm of one coefficient and hold with
//! certainty, not with high probability: every error polynomial comes from
//! the tail-cut Gaussian (|e| <= B_e), so no decryption can fail.

use num_bigint::BigUint;

/// The bounds of one parameter set, in integers.
///
/// A ciphertext of the per-round-key scheme is c = a*s + e + Δ*M, and
/// sum c - a*(sum of the secrets) leaves the sum of the errors alone: the
/// noise of an aggregate is at most `max_clients` * B_e, with no
/// key-dependent product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseBudget {
    /// Noise of one fresh encryption: B_e.
    pub fresh: BigUint,
    /// Noise of an aggregate of up to `max_clients` encryptions, once the
    /// key sum is removed: max_clients * B_e.
    pub aggregate: BigUint,
    /// d: the plaintext scale is Δ = 2^d, with the aggregate's noise < Δ/2.
    pub scale_bits: u32,
}

impl NoiseBudget {
    /// The budget for Gaussian bound `error_bound` (B_e) and `max_clients`
    /// summed ciphertexts.
    pub fn new(error_bound: u64, max_clients: u64) -> Self {
        let fresh = BigUint::from(error_bound);
        let aggregate = &fresh * max_clients;
        // Smallest d with aggregate < 2^(d-1).
        let scale_bits = u32::try_from(aggregate.bits() + 1).unwrap_or(u32::MAX);
        Self {
            fresh,
            aggregate,
            scale_bits,
        }
    }

    /// The bits of Q a plaintext of `message_bits` signed bits needs:
    /// |Δ*M + noise| <= 2^(d + message_bits) must stay below Q/4, which
    /// leaves the fixed-width decoder a wide margin from ±Q/2.
    pub fn required_modulus_bits(&self, message_bits: u32) -> u64 {
        u64::from(self.scale_bits) + u64::from(message_bits) + 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_key_budget() {
        let b = NoiseBudget::new(27, 1000);
        assert_eq!(b.fresh, BigUint::from(27u32));
        assert_eq!(b.aggregate, BigUint::from(27_000u32));
        // 27000 < 2^15 = Δ/2 with Δ = 2^16.
        assert_eq!(b.scale_bits, 16);
        assert_eq!(b.required_modulus_bits(13 * 28), 383);
        // The smallest such d: 2^14 <= 27000.
        assert!(b.aggregate >= (BigUint::from(1u32) << (b.scale_bits - 2)));
    }
}
