//! Sealing keys: an ML-KEM-1024 key pair per key holder, optionally joined
//! by an X25519 key pair (hybrid mode). Encapsulation gives a 32-byte
//! shared secret that [`crate::seal`] turns into an AEAD key.

use std::fmt;
use std::path::Path;

use ml_kem::{Decapsulate as _, DecapsulationKey, EncapsulationKey, KeyExport as _, MlKem1024};
use sha3::{Digest, Sha3_256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::alg::{
    KemAlgorithm, ML_KEM_1024_CIPHERTEXT_LEN, ML_KEM_1024_PUBLIC_KEY_LEN, X25519_PUBLIC_KEY_LEN,
};
use crate::codec::hex;
use crate::error::{PqError, Result};
use crate::file;

/// The hybrid combiner's label (docs/formats.md, "Hybrid shared secret").
const HYBRID_LABEL: &[u8] = b"ringsum/v1 hybrid kem";

/// A 32-byte shared secret, zeroized on drop and never printed.
pub struct SharedSecret(Zeroizing<[u8; 32]>);

impl SharedSecret {
    /// The secret bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// ML-KEM.Encaps_internal (FIPS 203 Algorithm 17) with the message m:
/// ringsum's one encapsulation path, also run by the known-answer tests.
pub(crate) fn ml_kem_encapsulate(
    key: &EncapsulationKey<MlKem1024>,
    m: &[u8; 32],
) -> (Vec<u8>, Zeroizing<[u8; 32]>) {
    let m = Zeroizing::new(ml_kem::B32::from(*m));
    let (ciphertext, mut shared) = key.encapsulate_deterministic(&m);
    let out = Zeroizing::new(shared.into());
    shared.zeroize();
    (ciphertext.to_vec(), out)
}

/// ML-KEM.Decaps (FIPS 203 Algorithm 21), with its implicit rejection.
pub(crate) fn ml_kem_decapsulate(
    key: &DecapsulationKey<MlKem1024>,
    ciphertext: &[u8],
) -> Result<Zeroizing<[u8; 32]>> {
    let ct = ml_kem::Ciphertext::<MlKem1024>::try_from(ciphertext)
        .map_err(|_| PqError::malformed("encapsulation", "wrong ML-KEM-1024 ciphertext length"))?;
    let mut shared = key.decapsulate(&ct);
    let out = Zeroizing::new(shared.into());
    shared.zeroize();
    Ok(out)
}

/// The public half of a sealing key.
#[derive(Clone)]
pub struct SealingPublicKey {
    algorithm: KemAlgorithm,
    ml_kem: EncapsulationKey<MlKem1024>,
    x25519: Option<x25519_dalek::PublicKey>,
    encoding: Vec<u8>,
    fingerprint: [u8; 32],
}

impl SealingPublicKey {
    /// Decodes a public key: the raw FIPS 203 encapsulation key (1568
    /// bytes), followed by the 32-byte RFC 7748 key in hybrid mode.
    ///
    /// # Errors
    /// [`PqError::Malformed`] for a wrong length, [`PqError::InvalidPublicKey`]
    /// for an ML-KEM key that fails FIPS 203's modulus check.
    pub fn from_bytes(algorithm: KemAlgorithm, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != algorithm.public_key_len() {
            return Err(PqError::malformed(
                "sealing public key",
                format!(
                    "{} needs {} bytes, got {}",
                    algorithm.name(),
                    algorithm.public_key_len(),
                    bytes.len()
                ),
            ));
        }
        let (ml_part, x_part) = bytes.split_at(ML_KEM_1024_PUBLIC_KEY_LEN);
        let encoded = ml_kem::Key::<EncapsulationKey<MlKem1024>>::try_from(ml_part)
            .map_err(|_| PqError::InvalidPublicKey("ML-KEM-1024"))?;
        let ml_kem = EncapsulationKey::<MlKem1024>::new(&encoded)
            .map_err(|_| PqError::InvalidPublicKey("ML-KEM-1024"))?;
        let x25519 = if algorithm.is_hybrid() {
            let x: [u8; X25519_PUBLIC_KEY_LEN] = x_part
                .try_into()
                .map_err(|_| PqError::InvalidPublicKey("X25519"))?;
            Some(x25519_dalek::PublicKey::from(x))
        } else {
            None
        };
        Ok(Self {
            algorithm,
            ml_kem,
            x25519,
            encoding: bytes.to_vec(),
            fingerprint: Sha3_256::digest(bytes).into(),
        })
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> KemAlgorithm {
        self.algorithm
    }

    /// The public key encoding (see [`Self::from_bytes`]).
    #[must_use]
    pub fn to_bytes(&self) -> &[u8] {
        &self.encoding
    }

    /// SHA3-256 of the encoding.
    #[must_use]
    pub const fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// Encapsulates a fresh shared secret to this key: the encapsulation
    /// (ML-KEM ciphertext, then the X25519 ephemeral public key in hybrid
    /// mode) and the secret.
    ///
    /// # Errors
    /// [`PqError::Entropy`], or [`PqError::InvalidPublicKey`] if the X25519
    /// key has small order (the exchange would not be contributory).
    pub fn encapsulate(&self) -> Result<(Vec<u8>, SharedSecret)> {
        let mut m = Zeroizing::new([0u8; 32]);
        getrandom::fill(m.as_mut())?;
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        if self.algorithm.is_hybrid() {
            getrandom::fill(ephemeral.as_mut())?;
        }
        self.encapsulate_with(&m, &ephemeral)
    }

    #[cfg(feature = "known-answer-tests")]
    pub(crate) fn ml_kem_key(&self) -> &EncapsulationKey<MlKem1024> {
        &self.ml_kem
    }

    pub(crate) fn encapsulate_with(
        &self,
        m: &[u8; 32],
        ephemeral: &[u8; 32],
    ) -> Result<(Vec<u8>, SharedSecret)> {
        let (mut encapsulation, ml_secret) = ml_kem_encapsulate(&self.ml_kem, m);
        let Some(their) = &self.x25519 else {
            return Ok((encapsulation, SharedSecret(ml_secret)));
        };
        let secret = x25519_dalek::StaticSecret::from(*ephemeral);
        let ephemeral_public = x25519_dalek::PublicKey::from(&secret);
        let dh = secret.diffie_hellman(their);
        if !dh.was_contributory() {
            return Err(PqError::InvalidPublicKey("X25519"));
        }
        let combined = hybrid_secret(
            &ml_secret,
            dh.as_bytes(),
            &encapsulation,
            ephemeral_public.as_bytes(),
            their.as_bytes(),
        );
        encapsulation.extend_from_slice(ephemeral_public.as_bytes());
        Ok((encapsulation, combined))
    }
}

/// SHA3-256(label || K_mlkem || K_x25519 || ML-KEM ciphertext || ephemeral
/// X25519 key || recipient X25519 key): both secrets and everything that
/// fixed them, so neither half can be swapped out.
fn hybrid_secret(
    ml_secret: &[u8; 32],
    dh: &[u8; 32],
    ml_ciphertext: &[u8],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> SharedSecret {
    let mut hash = Sha3_256::new();
    hash.update(HYBRID_LABEL);
    hash.update(ml_secret);
    hash.update(dh);
    hash.update(ml_ciphertext);
    hash.update(ephemeral);
    hash.update(recipient);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&hash.finalize());
    SharedSecret(out)
}

impl PartialEq for SealingPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.encoding == other.encoding
    }
}

impl Eq for SealingPublicKey {}

impl fmt::Debug for SealingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.fingerprint.get(..8).unwrap_or(&[]);
        f.debug_struct("SealingPublicKey")
            .field("algorithm", &self.algorithm.name())
            .field("fingerprint", &format_args!("{}..", hex(short)))
            .finish()
    }
}

/// A key holder's secret sealing key: ML-KEM-1024, plus X25519 in hybrid
/// mode. Zeroized on drop, never printed.
pub struct SealingKey {
    ml_kem: DecapsulationKey<MlKem1024>,
    x25519: Option<x25519_dalek::StaticSecret>,
    public: SealingPublicKey,
}

const SEALING_HEADER: &str = "ringsum sealing key v1";

impl SealingKey {
    /// A new key from the operating system's randomness.
    ///
    /// # Errors
    /// [`PqError::Entropy`] if the OS has no randomness to give.
    pub fn generate(algorithm: KemAlgorithm) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 64]);
        getrandom::fill(seed.as_mut())?;
        let mut x = Zeroizing::new([0u8; 32]);
        if algorithm.is_hybrid() {
            getrandom::fill(x.as_mut())?;
        }
        Self::from_seeds(algorithm, &seed, algorithm.is_hybrid().then_some(&*x))
    }

    /// The key of given seeds: FIPS 203's 64-byte d || z and, in hybrid
    /// mode, the X25519 secret scalar bytes.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if the X25519 secret is missing in hybrid
    /// mode or present otherwise.
    pub fn from_seeds(
        algorithm: KemAlgorithm,
        ml_kem_seed: &[u8; 64],
        x25519_secret: Option<&[u8; 32]>,
    ) -> Result<Self> {
        let seed = Zeroizing::new(ml_kem::Seed::from(*ml_kem_seed));
        let ml_kem = DecapsulationKey::<MlKem1024>::from_seed(*seed);
        let x25519 = match (algorithm.is_hybrid(), x25519_secret) {
            (true, Some(x)) => Some(x25519_dalek::StaticSecret::from(*x)),
            (false, None) => None,
            _ => {
                return Err(PqError::malformed(
                    "sealing key",
                    "an X25519 secret belongs to hybrid keys only",
                ));
            }
        };
        let mut encoding = ml_kem.encapsulation_key().to_bytes().to_vec();
        if let Some(x) = &x25519 {
            encoding.extend_from_slice(x25519_dalek::PublicKey::from(x).as_bytes());
        }
        let public = SealingPublicKey::from_bytes(algorithm, &encoding)?;
        Ok(Self {
            ml_kem,
            x25519,
            public,
        })
    }

    /// The public half.
    #[must_use]
    pub const fn public(&self) -> &SealingPublicKey {
        &self.public
    }

    /// Recovers the shared secret of an encapsulation made to this key. A
    /// tampered ML-KEM ciphertext gives an unrelated secret (FIPS 203's
    /// implicit rejection), so the AEAD that follows fails.
    ///
    /// # Errors
    /// [`PqError::Malformed`] for a wrong length.
    pub fn decapsulate(&self, encapsulation: &[u8]) -> Result<SharedSecret> {
        let algorithm = self.public.algorithm;
        if encapsulation.len() != algorithm.encapsulation_len() {
            return Err(PqError::malformed(
                "encapsulation",
                format!(
                    "{} needs {} bytes, got {}",
                    algorithm.name(),
                    algorithm.encapsulation_len(),
                    encapsulation.len()
                ),
            ));
        }
        let (ml_ct, x_part) = encapsulation.split_at(ML_KEM_1024_CIPHERTEXT_LEN);
        let ml_secret = ml_kem_decapsulate(&self.ml_kem, ml_ct)?;
        let (Some(secret), Some(mine)) = (&self.x25519, &self.public.x25519) else {
            return Ok(SharedSecret(ml_secret));
        };
        let ephemeral: [u8; 32] = x_part
            .try_into()
            .map_err(|_| PqError::malformed("encapsulation", "missing X25519 key"))?;
        let dh = secret.diffie_hellman(&x25519_dalek::PublicKey::from(ephemeral));
        if !dh.was_contributory() {
            return Err(PqError::SealOpenFailed);
        }
        Ok(hybrid_secret(
            &ml_secret,
            dh.as_bytes(),
            ml_ct,
            &ephemeral,
            mine.as_bytes(),
        ))
    }

    /// Writes the secret seeds to a new file with mode 0600.
    ///
    /// # Errors
    /// [`PqError::Io`] if the file exists or cannot be written.
    pub fn write_secret(&self, path: &Path) -> Result<()> {
        let seed = self
            .ml_kem
            .to_seed()
            .map(|s| Zeroizing::new(<[u8; 64]>::from(s)));
        let Some(seed) = seed else {
            return Err(PqError::malformed(
                "sealing key",
                "key was not made from a seed",
            ));
        };
        let mut text = Zeroizing::new(Vec::with_capacity(512));
        text.extend_from_slice(SEALING_HEADER.as_bytes());
        text.extend_from_slice(b"\nalgorithm ");
        text.extend_from_slice(self.public.algorithm.name().as_bytes());
        text.push(b'\n');
        file::put_secret(&mut text, "ml-kem-1024-seed", seed.as_ref());
        if let Some(x) = &self.x25519 {
            let bytes = Zeroizing::new(x.to_bytes());
            file::put_secret(&mut text, "x25519-secret", bytes.as_ref());
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
        let mut text = file::SecretText::new(contents, SEALING_HEADER, "sealing key file")?;
        let name = text.field("algorithm")?;
        let algorithm = KemAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.name() == name)
            .ok_or_else(|| {
                PqError::malformed("sealing key file", format!("unknown algorithm {name:?}"))
            })?;
        let seed = text.secret::<64>("ml-kem-1024-seed")?;
        let x = if algorithm.is_hybrid() {
            Some(text.secret::<32>("x25519-secret")?)
        } else {
            None
        };
        text.finish()?;
        Self::from_seeds(algorithm, &seed, x.as_deref())
    }

    #[cfg(feature = "known-answer-tests")]
    pub(crate) fn ml_kem_key(&self) -> &DecapsulationKey<MlKem1024> {
        &self.ml_kem
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
