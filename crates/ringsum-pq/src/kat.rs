//! The FIPS 203/204 internal interfaces, for the NIST ACVP known-answer
//! tests only (feature `known-answer-tests`). Each function runs the same
//! code ringsum runs: key generation from seeds as [`SigningIdentity`] and
//! [`SealingKey`] do it, `ML-DSA.Sign_internal` and `Verify_internal` as
//! [`SigningIdentity::sign`] and [`crate::PublicIdentity::verify`] call
//! them, `ML-KEM.Encaps_internal` and `Decaps` as sealing calls them.

#![allow(missing_docs)]
// ACVP vectors carry the expanded key forms that the crates deprecate in
// favour of seeds; ringsum itself stores seeds only.
#![allow(deprecated)]

use ml_dsa::{ExpandedSigningKey, ExpandedSigningKeyBytes, MlDsa65};
use ml_kem::{DecapsulationKey, ExpandedKeyEncoding as _, MlKem1024};

use crate::PublicIdentity;
use crate::alg::{KemAlgorithm, SignatureAlgorithm};
use crate::error::{PqError, Result};
use crate::identity::{SigningIdentity, ml_dsa_sign_internal, ml_dsa_verify_internal};
use crate::kem::{SealingKey, SealingPublicKey, ml_kem_decapsulate, ml_kem_encapsulate};

/// ML-DSA-65 KeyGen_internal(xi): (pk, expanded sk).
pub fn ml_dsa_65_keygen(seed: &[u8; 32]) -> Result<(Vec<u8>, Vec<u8>)> {
    let identity = SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, seed, None)?;
    let sk = identity.ml_dsa_expanded().to_expanded().to_vec();
    Ok((identity.public().to_bytes().to_vec(), sk))
}

/// ML-DSA-65 Sign_internal(sk, M', rnd).
pub fn ml_dsa_65_sign_internal(sk: &[u8], message: &[u8], rnd: &[u8; 32]) -> Result<Vec<u8>> {
    let bytes = ExpandedSigningKeyBytes::<MlDsa65>::try_from(sk)
        .map_err(|_| PqError::malformed("ML-DSA-65 secret key", "wrong length"))?;
    let key = ExpandedSigningKey::<MlDsa65>::from_expanded(&bytes);
    Ok(ml_dsa_sign_internal(&key, &[message], rnd))
}

/// ML-DSA-65 Verify_internal(pk, M', sigma).
pub fn ml_dsa_65_verify_internal(pk: &[u8], message: &[u8], signature: &[u8]) -> Result<bool> {
    let public = PublicIdentity::from_bytes(SignatureAlgorithm::MlDsa65, pk)?;
    Ok(ml_dsa_verify_internal(
        public.ml_dsa_key(),
        message,
        signature,
    ))
}

/// ML-KEM-1024 KeyGen_internal(d, z): (ek, expanded dk).
pub fn ml_kem_1024_keygen(d: &[u8; 32], z: &[u8; 32]) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(d);
    seed[32..].copy_from_slice(z);
    let key = SealingKey::from_seeds(KemAlgorithm::MlKem1024, &seed, None)?;
    let dk = key.ml_kem_key().to_expanded_bytes().to_vec();
    Ok((key.public().to_bytes().to_vec(), dk))
}

/// ML-KEM-1024 Encaps_internal(ek, m): (c, K).
pub fn ml_kem_1024_encapsulate(ek: &[u8], m: &[u8; 32]) -> Result<(Vec<u8>, [u8; 32])> {
    let public = SealingPublicKey::from_bytes(KemAlgorithm::MlKem1024, ek)?;
    let (c, k) = ml_kem_encapsulate(public.ml_kem_key(), m);
    Ok((c, *k))
}

/// ML-KEM-1024 Decaps(dk, c) with an expanded decapsulation key.
pub fn ml_kem_1024_decapsulate(dk: &[u8], c: &[u8]) -> Result<[u8; 32]> {
    let bytes = ml_kem::ExpandedDecapsulationKey::<MlKem1024>::try_from(dk)
        .map_err(|_| PqError::malformed("ML-KEM-1024 decapsulation key", "wrong length"))?;
    let key = DecapsulationKey::<MlKem1024>::from_expanded_bytes(&bytes)
        .map_err(|_| PqError::InvalidPublicKey("ML-KEM-1024"))?;
    Ok(*ml_kem_decapsulate(&key, c)?)
}
