//! The noise budget: proven worst-case bounds that the parameter validator
//! checks and the scheme relies on. docs/noise.md derives each formula.
//!
//! All bounds are on the infinity norm of one coefficient and hold with
//! certainty, not with high probability: every error polynomial comes from
//! the tail-cut Gaussian (|e| <= B_e) and every secret and encryption
//! randomness is ternary (|s|, |u| <= 1), so no decryption can fail.

use num_bigint::BigUint;

/// The bounds of one parameter set, in integers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseBudget {
    /// Noise of one fresh encryption under a key of up to `max_holders`
    /// shares: B_e * (2 * N * h + 1).
    pub fresh: BigUint,
    /// Noise of an aggregate: the sum of `max_clients` fresh encryptions
    /// plus up to `max_holders` fresh encryptions of zero added to
    /// re-randomise it before a retried threshold decryption,
    /// fresh * (max_clients + max_holders).
    pub aggregate: BigUint,
    /// Noise at decryption: the aggregate plus the flooding of every holder,
    /// aggregate * (1 + h * 2^flooding_bits).
    pub decryption: BigUint,
    /// d: the plaintext scale is Δ = 2^d, with decryption noise < Δ/2.
    pub scale_bits: u32,
}

impl NoiseBudget {
    /// The budget for ring degree `degree`, Gaussian bound `error_bound`,
    /// `max_holders` key shares (and as many re-randomisations of an
    /// aggregate), `max_clients` summed ciphertexts and
    /// `flooding_bits` of statistical security.
    pub fn new(
        degree: usize,
        error_bound: u64,
        max_holders: u32,
        max_clients: u64,
        flooding_bits: u32,
    ) -> Self {
        let n = BigUint::from(degree);
        let h = BigUint::from(max_holders);
        // e_pk * u + e1 * s + e0, with e_pk a sum of h errors and s a sum of
        // h ternary secrets: each product of two N-coefficient polynomials
        // has coefficients of at most N times the product of the norms.
        let fresh = BigUint::from(error_bound) * (BigUint::from(2u32) * &n * &h + 1u32);
        let aggregate = &fresh * (max_clients + u64::from(max_holders));
        let decryption = &aggregate * ((&h << flooding_bits) + 1u32);
        // Smallest d with decryption < 2^(d-1).
        let scale_bits = u32::try_from(decryption.bits() + 1).unwrap_or(u32::MAX);
        Self {
            fresh,
            aggregate,
            decryption,
            scale_bits,
        }
    }

    /// The budget of the per-round-key scheme: a ciphertext is
    /// c = a*s + e + Δ*M, and c - a*(sum of the secrets) leaves the sum of
    /// the errors alone, so the aggregate's noise is at most
    /// `max_clients` * B_e, with no key-dependent product and no flooding.
    /// `fresh` is B_e, `aggregate` and `decryption` the sum's bound.
    pub fn round_keys(error_bound: u64, max_clients: u64) -> Self {
        let fresh = BigUint::from(error_bound);
        let aggregate = &fresh * max_clients;
        let scale_bits = u32::try_from(aggregate.bits() + 1).unwrap_or(u32::MAX);
        Self {
            fresh,
            decryption: aggregate.clone(),
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
        let b = NoiseBudget::round_keys(27, 1000);
        assert_eq!(b.aggregate, BigUint::from(27_000u32));
        // 27000 < 2^15 = Δ/2 with Δ = 2^16.
        assert_eq!(b.scale_bits, 16);
        assert_eq!(b.required_modulus_bits(13 * 28), 383);
    }

    #[test]
    fn formulas() {
        let b = NoiseBudget::new(16384, 19, 16, 1000, 40);
        assert_eq!(b.fresh, BigUint::from(19u64 * (2 * 16384 * 16 + 1)));
        assert_eq!(
            b.aggregate,
            BigUint::from(19u64 * (2 * 16384 * 16 + 1) * (1000 + 16))
        );
        assert_eq!(
            b.decryption,
            &b.aggregate * (BigUint::from(16u64 << 40) + 1u32)
        );
        assert!(b.decryption < (BigUint::from(1u32) << (b.scale_bits - 1)));
        assert!(b.decryption >= (BigUint::from(1u32) << (b.scale_bits - 2)));
    }
}
