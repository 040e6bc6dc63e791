//! Algorithm identifiers: every envelope, public key and sealed box names
//! the algorithm that made it, so a later algorithm can be added without
//! breaking the logs of earlier rounds (docs/formats.md lists the values).

use crate::error::{PqError, Result};

/// ML-DSA-65 public key size (FIPS 204, Table 2).
pub const ML_DSA_65_PUBLIC_KEY_LEN: usize = 1952;
/// ML-DSA-65 signature size (FIPS 204, Table 2).
pub const ML_DSA_65_SIGNATURE_LEN: usize = 3309;
/// Ed25519 public key size (RFC 8032).
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Ed25519 signature size (RFC 8032).
pub const ED25519_SIGNATURE_LEN: usize = 64;
/// ML-KEM-1024 encapsulation key size (FIPS 203, Table 3).
pub const ML_KEM_1024_PUBLIC_KEY_LEN: usize = 1568;
/// ML-KEM-1024 ciphertext size (FIPS 203, Table 3).
pub const ML_KEM_1024_CIPHERTEXT_LEN: usize = 1568;
/// X25519 public key size (RFC 7748).
pub const X25519_PUBLIC_KEY_LEN: usize = 32;

/// A signature scheme, as named on the wire (big-endian u16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ML-DSA-65 alone (FIPS 204), context "ringsum/v1".
    MlDsa65,
    /// ML-DSA-65 and Ed25519 over the same bytes; both must verify.
    MlDsa65Ed25519,
}

impl SignatureAlgorithm {
    /// Every algorithm this build knows.
    pub const ALL: [Self; 2] = [Self::MlDsa65, Self::MlDsa65Ed25519];

    /// The identifier on the wire.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::MlDsa65 => 0x0001,
            Self::MlDsa65Ed25519 => 0x0002,
        }
    }

    /// The algorithm with this identifier.
    ///
    /// # Errors
    /// [`PqError::UnknownAlgorithm`] for an identifier this build does not know.
    pub fn from_id(id: u16) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.id() == id)
            .ok_or(PqError::UnknownAlgorithm {
                what: "signature",
                id,
            })
    }

    /// A readable name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::MlDsa65 => "ML-DSA-65",
            Self::MlDsa65Ed25519 => "ML-DSA-65+Ed25519",
        }
    }

    /// Bytes of the public key encoding.
    #[must_use]
    pub const fn public_key_len(self) -> usize {
        match self {
            Self::MlDsa65 => ML_DSA_65_PUBLIC_KEY_LEN,
            Self::MlDsa65Ed25519 => ML_DSA_65_PUBLIC_KEY_LEN + ED25519_PUBLIC_KEY_LEN,
        }
    }

    /// Bytes of a signature.
    #[must_use]
    pub const fn signature_len(self) -> usize {
        match self {
            Self::MlDsa65 => ML_DSA_65_SIGNATURE_LEN,
            Self::MlDsa65Ed25519 => ML_DSA_65_SIGNATURE_LEN + ED25519_SIGNATURE_LEN,
        }
    }

    /// Whether a classical half is present.
    #[must_use]
    pub const fn is_hybrid(self) -> bool {
        matches!(self, Self::MlDsa65Ed25519)
    }
}

/// A key-encapsulation mechanism, as named on the wire (big-endian u16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KemAlgorithm {
    /// ML-KEM-1024 alone (FIPS 203).
    MlKem1024,
    /// ML-KEM-1024 and X25519, both shared secrets fed to the KDF.
    MlKem1024X25519,
}

impl KemAlgorithm {
    /// Every algorithm this build knows.
    pub const ALL: [Self; 2] = [Self::MlKem1024, Self::MlKem1024X25519];

    /// The identifier on the wire.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::MlKem1024 => 0x0001,
            Self::MlKem1024X25519 => 0x0002,
        }
    }

    /// The algorithm with this identifier.
    ///
    /// # Errors
    /// [`PqError::UnknownAlgorithm`] for an identifier this build does not know.
    pub fn from_id(id: u16) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.id() == id)
            .ok_or(PqError::UnknownAlgorithm {
                what: "key encapsulation",
                id,
            })
    }

    /// A readable name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::MlKem1024 => "ML-KEM-1024",
            Self::MlKem1024X25519 => "ML-KEM-1024+X25519",
        }
    }

    /// Bytes of the public key encoding.
    #[must_use]
    pub const fn public_key_len(self) -> usize {
        match self {
            Self::MlKem1024 => ML_KEM_1024_PUBLIC_KEY_LEN,
            Self::MlKem1024X25519 => ML_KEM_1024_PUBLIC_KEY_LEN + X25519_PUBLIC_KEY_LEN,
        }
    }

    /// Bytes of the encapsulation carried in a sealed box.
    #[must_use]
    pub const fn encapsulation_len(self) -> usize {
        match self {
            Self::MlKem1024 => ML_KEM_1024_CIPHERTEXT_LEN,
            Self::MlKem1024X25519 => ML_KEM_1024_CIPHERTEXT_LEN + X25519_PUBLIC_KEY_LEN,
        }
    }

    /// Whether a classical half is present.
    #[must_use]
    pub const fn is_hybrid(self) -> bool {
        matches!(self, Self::MlKem1024X25519)
    }
}
