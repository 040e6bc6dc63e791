//! Signing identities: an ML-DSA-65 key pair per participant, optionally
//! joined by an Ed25519 key pair (hybrid mode). The participant's id is the
//! SHA3-256 of its public key encoding.

use std::fmt;
use std::path::Path;

use ed25519_dalek::Signer as _;
use ml_dsa::{B32, EncodedVerifyingKey, ExpandedSigningKey, MlDsa65};
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use crate::alg::{
    ED25519_PUBLIC_KEY_LEN, ML_DSA_65_PUBLIC_KEY_LEN, ML_DSA_65_SIGNATURE_LEN, SignatureAlgorithm,
};
use crate::codec::hex;
use crate::error::{PqError, Result};
use crate::file;

/// The FIPS 204 context string of envelope signatures.
pub const CONTEXT: &[u8] = b"ringsum/v1";

/// The FIPS 204 context string of key-rotation proofs: a separate domain,
/// so that a proof can never pass for an envelope signature or back.
pub const ROTATION_CONTEXT: &[u8] = b"ringsum/v1/rotation-proof";

/// A participant's id: SHA3-256 of its public key encoding. For an
/// ML-DSA-65 identity that is the SHA3-256 of the raw 1952-byte FIPS 204
/// public key, so `sha3-256sum key.pub` gives it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub [u8; 32]);

impl ParticipantId {
    /// The all-zero id: "every participant" as a recipient.
    pub const BROADCAST: Self = Self([0; 32]);

    /// The id of a public key encoding.
    #[must_use]
    pub fn of_public_key(encoding: &[u8]) -> Self {
        Self(Sha3_256::digest(encoding).into())
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.0.get(..8).unwrap_or(&[]);
        write!(f, "ParticipantId({}..)", hex(short))
    }
}

/// FIPS 204 Algorithm 2's formatted message prefix: 0, |ctx|, ctx. Both
/// context strings are constants far below 255 bytes.
fn context_prefix(context: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(2 + context.len());
    prefix.push(0);
    prefix.push(u8::try_from(context.len()).unwrap_or(u8::MAX));
    prefix.extend_from_slice(context);
    prefix
}

/// ML-DSA.Sign_internal over the formatted message `parts` (FIPS 204
/// Algorithm 7) with the given randomness: the one signing path of ringsum,
/// also run by the known-answer tests.
pub(crate) fn ml_dsa_sign_internal(
    key: &ExpandedSigningKey<MlDsa65>,
    parts: &[&[u8]],
    rnd: &[u8; 32],
) -> Vec<u8> {
    key.sign_internal(parts, &B32::from(*rnd)).encode().to_vec()
}

/// ML-DSA.Verify_internal over the formatted message (FIPS 204 Algorithm 8).
pub(crate) fn ml_dsa_verify_internal(
    key: &ml_dsa::VerifyingKey<MlDsa65>,
    formatted: &[u8],
    signature: &[u8],
) -> bool {
    match ml_dsa::Signature::<MlDsa65>::try_from(signature) {
        Ok(sig) => key.verify_internal(formatted, &sig),
        Err(_) => false,
    }
}

/// The public half of an identity: what the registry holds and what
/// auditors verify with.
#[derive(Clone)]
pub struct PublicIdentity {
    algorithm: SignatureAlgorithm,
    ml_dsa: ml_dsa::VerifyingKey<MlDsa65>,
    ed25519: Option<ed25519_dalek::VerifyingKey>,
    encoding: Vec<u8>,
    id: ParticipantId,
}

impl PublicIdentity {
    /// Decodes a public key: the raw FIPS 204 encoding (1952 bytes) for
    /// ML-DSA-65, followed by the 32-byte RFC 8032 key in hybrid mode.
    ///
    /// # Errors
    /// [`PqError::Malformed`] for a wrong length, [`PqError::InvalidPublicKey`]
    /// for an Ed25519 key that is not a valid point.
    pub fn from_bytes(algorithm: SignatureAlgorithm, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != algorithm.public_key_len() {
            return Err(PqError::malformed(
                "public key",
                format!(
                    "{} needs {} bytes, got {}",
                    algorithm.name(),
                    algorithm.public_key_len(),
                    bytes.len()
                ),
            ));
        }
        let (ml_part, ed_part) = bytes.split_at(ML_DSA_65_PUBLIC_KEY_LEN);
        let encoded = EncodedVerifyingKey::<MlDsa65>::try_from(ml_part)
            .map_err(|_| PqError::InvalidPublicKey("ML-DSA-65"))?;
        let ml_dsa = ml_dsa::VerifyingKey::<MlDsa65>::decode(&encoded);
        let ed25519 = if algorithm.is_hybrid() {
            let ed_bytes: [u8; ED25519_PUBLIC_KEY_LEN] = ed_part
                .try_into()
                .map_err(|_| PqError::InvalidPublicKey("Ed25519"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&ed_bytes)
                .map_err(|_| PqError::InvalidPublicKey("Ed25519"))?;
            if key.is_weak() {
                return Err(PqError::InvalidPublicKey("Ed25519"));
            }
            Some(key)
        } else {
            None
        };
        Ok(Self {
            algorithm,
            ml_dsa,
            ed25519,
            encoding: bytes.to_vec(),
            id: ParticipantId::of_public_key(bytes),
        })
    }

    /// Reads a public key file written by [`SigningIdentity::write_public`].
    ///
    /// # Errors
    /// As [`Self::from_bytes`], or [`PqError::Io`].
    pub fn read(algorithm: SignatureAlgorithm, path: &Path) -> Result<Self> {
        let bytes = file::read_public(path, algorithm.public_key_len() as u64)?;
        Self::from_bytes(algorithm, &bytes)
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The participant id.
    #[must_use]
    pub const fn id(&self) -> ParticipantId {
        self.id
    }

    /// The public key encoding (see [`Self::from_bytes`]).
    #[must_use]
    pub fn to_bytes(&self) -> &[u8] {
        &self.encoding
    }

    /// The raw FIPS 204 ML-DSA-65 public key.
    #[must_use]
    pub fn ml_dsa_public_key(&self) -> &[u8] {
        self.encoding.get(..ML_DSA_65_PUBLIC_KEY_LEN).unwrap_or(&[])
    }

    /// Verifies a signature made by [`SigningIdentity::sign`] under the
    /// same context: ML-DSA-65 and, in hybrid mode, Ed25519 over the same
    /// formatted message. Both halves are always checked.
    pub(crate) fn verify(&self, context: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.algorithm.signature_len() {
            return Err(PqError::BadSignature);
        }
        let (ml_sig, ed_sig) = signature.split_at(ML_DSA_65_SIGNATURE_LEN);
        let formatted = [context_prefix(context).as_slice(), message].concat();
        let ml_ok = ml_dsa_verify_internal(&self.ml_dsa, &formatted, ml_sig);
        let ed_ok = match &self.ed25519 {
            None => true,
            Some(key) => ed25519_dalek::Signature::from_slice(ed_sig)
                .is_ok_and(|sig| key.verify_strict(&formatted, &sig).is_ok()),
        };
        if ml_ok && ed_ok {
            Ok(())
        } else {
            Err(PqError::BadSignature)
        }
    }

    #[cfg(feature = "known-answer-tests")]
    pub(crate) fn ml_dsa_key(&self) -> &ml_dsa::VerifyingKey<MlDsa65> {
        &self.ml_dsa
    }
}

impl PartialEq for PublicIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.encoding == other.encoding
    }
}

impl Eq for PublicIdentity {}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("algorithm", &self.algorithm.name())
            .field("id", &self.id)
            .finish()
    }
}

/// A participant's signing key: ML-DSA-65, plus Ed25519 in hybrid mode.
/// Both secrets are zeroized on drop and never printed.
pub struct SigningIdentity {
    ml_dsa: ml_dsa::SigningKey<MlDsa65>,
    ed25519: Option<ed25519_dalek::SigningKey>,
    public: PublicIdentity,
}

const SIGNING_HEADER: &str = "ringsum signing key v1";

impl SigningIdentity {
    /// A new identity from the operating system's randomness.
    ///
    /// # Errors
    /// [`PqError::Entropy`] if the OS has no randomness to give.
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<Self> {
        let mut ml_seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(ml_seed.as_mut())?;
        let mut ed_seed = Zeroizing::new([0u8; 32]);
        if algorithm.is_hybrid() {
            getrandom::fill(ed_seed.as_mut())?;
        }
        let ed = algorithm.is_hybrid().then_some(&*ed_seed);
        Self::from_seeds(algorithm, &ml_seed, ed)
    }

    /// The identity of given seeds: the FIPS 204 key-generation seed xi and,
    /// in hybrid mode, the RFC 8032 secret key.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if the Ed25519 seed is missing in hybrid mode
    /// or present otherwise.
    pub fn from_seeds(
        algorithm: SignatureAlgorithm,
        ml_dsa_seed: &[u8; 32],
        ed25519_seed: Option<&[u8; 32]>,
    ) -> Result<Self> {
        let xi = Zeroizing::new(B32::from(*ml_dsa_seed));
        let ml_dsa = ml_dsa::SigningKey::<MlDsa65>::from_seed(&xi);
        let ed25519 = match (algorithm.is_hybrid(), ed25519_seed) {
            (true, Some(seed)) => Some(ed25519_dalek::SigningKey::from_bytes(seed)),
            (false, None) => None,
            _ => {
                return Err(PqError::malformed(
                    "signing key",
                    "an Ed25519 seed belongs to hybrid identities only",
                ));
            }
        };
        let mut encoding = ml_dsa.as_ref().encode().to_vec();
        if let Some(ed) = &ed25519 {
            encoding.extend_from_slice(ed.verifying_key().as_bytes());
        }
        let public = PublicIdentity::from_bytes(algorithm, &encoding)?;
        Ok(Self {
            ml_dsa,
            ed25519,
            public,
        })
    }

    /// The public half.
    #[must_use]
    pub const fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The participant id.
    #[must_use]
    pub const fn id(&self) -> ParticipantId {
        self.public.id
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> SignatureAlgorithm {
        self.public.algorithm
    }

    /// Signs `message` under `context`: hedged ML-DSA-65 (FIPS 204
    /// Algorithm 2 with fresh randomness) and, in hybrid mode, Ed25519 over
    /// the same formatted message 0 || |ctx| || ctx || message. Only the
    /// crate signs, and only envelopes and rotation proofs, each under its
    /// own context.
    pub(crate) fn sign(&self, context: &[u8], message: &[u8]) -> Result<Vec<u8>> {
        let mut rnd = Zeroizing::new([0u8; 32]);
        getrandom::fill(rnd.as_mut())?;
        let prefix = context_prefix(context);
        let mut signature =
            ml_dsa_sign_internal(self.ml_dsa.expanded_key(), &[&prefix, message], &rnd);
        if let Some(ed) = &self.ed25519 {
            let formatted = [prefix.as_slice(), message].concat();
            signature.extend_from_slice(&ed.sign(&formatted).to_bytes());
        }
        Ok(signature)
    }

    /// Writes the secret seeds to a new file with mode 0600. An existing
    /// file is never overwritten.
    ///
    /// # Errors
    /// [`PqError::Io`] if the file exists or cannot be written.
    pub fn write_secret(&self, path: &Path) -> Result<()> {
        let mut text = Zeroizing::new(Vec::with_capacity(512));
        text.extend_from_slice(SIGNING_HEADER.as_bytes());
        text.extend_from_slice(b"\nalgorithm ");
        text.extend_from_slice(self.algorithm().name().as_bytes());
        text.push(b'\n');
        let seed = Zeroizing::new(self.ml_dsa.to_seed());
        file::put_secret(&mut text, "ml-dsa-65-seed", &seed);
        if let Some(ed) = &self.ed25519 {
            let ed_seed = Zeroizing::new(ed.to_bytes());
            file::put_secret(&mut text, "ed25519-seed", ed_seed.as_ref());
        }
        file::write_secret(path, &text)
    }

    /// Reads a file written by [`Self::write_secret`].
    ///
    /// # Errors
    /// [`PqError::InsecurePermissions`] if group or others may read the
    /// file, [`PqError::Malformed`] if it does not parse, [`PqError::Io`].
    pub fn read_secret(path: &Path) -> Result<Self> {
        let contents = file::read_secret(path)?;
        Self::from_secret_text(&contents)
    }

    /// Parses the contents of a secret-key file (see [`Self::write_secret`]
    /// and docs/formats.md), for keys kept elsewhere than in a file.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if it does not parse.
    pub fn from_secret_text(contents: &[u8]) -> Result<Self> {
        let mut text = file::SecretText::new(contents, SIGNING_HEADER, "signing key file")?;
        let name = text.field("algorithm")?;
        let algorithm = SignatureAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.name() == name)
            .ok_or_else(|| {
                PqError::malformed("signing key file", format!("unknown algorithm {name:?}"))
            })?;
        let ml_seed = text.secret::<32>("ml-dsa-65-seed")?;
        let ed_seed = if algorithm.is_hybrid() {
            Some(text.secret::<32>("ed25519-seed")?)
        } else {
            None
        };
        text.finish()?;
        Self::from_seeds(algorithm, &ml_seed, ed_seed.as_deref())
    }

    /// Writes the public key encoding (raw FIPS 204 bytes, then the Ed25519
    /// key in hybrid mode) to a new file.
    ///
    /// # Errors
    /// [`PqError::Io`] if the file exists or cannot be written.
    pub fn write_public(&self, path: &Path) -> Result<()> {
        file::write_public(path, self.public.to_bytes())
    }

    #[cfg(feature = "known-answer-tests")]
    pub(crate) fn ml_dsa_expanded(&self) -> &ExpandedSigningKey<MlDsa65> {
        self.ml_dsa.expanded_key()
    }
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("algorithm", &self.algorithm().name())
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_hash_of_the_raw_public_key() {
        let identity = SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[3; 32], None);
        let identity = identity.unwrap_or_else(|e| unreachable!("{e}"));
        let raw = identity.public().to_bytes();
        assert_eq!(raw.len(), 1952);
        assert_eq!(identity.id().0, <[u8; 32]>::from(Sha3_256::digest(raw)));
    }

    #[test]
    fn the_prefix_is_fips_204_formatting_of_the_context() {
        assert_eq!(context_prefix(CONTEXT), b"\x00\x0aringsum/v1");
        // ml-dsa's own external interface accepts what the internal path signs.
        let identity = SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[9; 32], None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let sig = identity
            .sign(CONTEXT, b"message")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let parsed = ml_dsa::Signature::<MlDsa65>::try_from(sig.as_slice());
        let parsed = parsed.unwrap_or_else(|_| unreachable!("signature decodes"));
        assert!(
            identity
                .public()
                .ml_dsa
                .verify_with_context(b"message", CONTEXT, &parsed)
        );
        assert!(
            !identity
                .public()
                .ml_dsa
                .verify_with_context(b"message", b"other", &parsed)
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let identity = SigningIdentity::from_seeds(
            SignatureAlgorithm::MlDsa65Ed25519,
            &[0xab; 32],
            Some(&[0xcd; 32]),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let printed = format!("{identity:?}");
        assert!(
            !printed.contains("abab") && !printed.contains("cdcd"),
            "{printed}"
        );
        assert!(printed.contains("ML-DSA-65+Ed25519"));
    }

    #[test]
    fn a_seed_mismatch_is_refused() {
        assert!(
            SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65, &[1; 32], Some(&[2; 32]))
                .is_err()
        );
        assert!(
            SigningIdentity::from_seeds(SignatureAlgorithm::MlDsa65Ed25519, &[1; 32], None)
                .is_err()
        );
    }
}
