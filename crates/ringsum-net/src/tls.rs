//! TLS for the service. tonic's rustls transport with the aws-lc-rs
//! provider offers the hybrid post-quantum key exchange X25519MLKEM768
//! first (rustls's `prefer-post-quantum`), then X25519 and the NIST
//! curves; the handshake is authenticated by the coordinator's certificate.
//! TLS protects metadata and the connection; the secrecy of the updates
//! rests on the RLWE encryption, not on TLS.

use std::path::{Path, PathBuf};

use crate::error::{NetError, Result};
use crate::fs::{Access, write_atomic};

/// A PEM certificate and its private key.
#[derive(Clone)]
pub struct CertificateFiles {
    /// The certificate (PEM).
    pub cert: Vec<u8>,
    /// The private key (PEM).
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for CertificateFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateFiles").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(NetError::io(path))
}

/// Loads `cert` and `key` (PEM files).
///
/// # Errors
/// [`NetError::Io`] when a file cannot be read.
pub fn load(cert: &Path, key: &Path) -> Result<CertificateFiles> {
    Ok(CertificateFiles {
        cert: read(cert)?,
        key: zeroize::Zeroizing::new(read(key)?),
    })
}

/// The coordinator's certificate in `dir` (`tls-cert.pem`, `tls-key.pem`):
/// loaded if present, otherwise a new self-signed one for `names` (DNS
/// names or IP addresses) is written, the key with mode 0600. Participants
/// trust it by passing `tls-cert.pem` as their CA.
///
/// # Errors
/// [`NetError::Tls`] if the certificate cannot be made, [`NetError::Io`].
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(CertificateFiles, PathBuf)> {
    let cert_path = dir.join("tls-cert.pem");
    let key_path = dir.join("tls-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((load(&cert_path, &key_path)?, cert_path));
    }
    let made = rcgen::generate_simple_self_signed(names.to_vec())?;
    let cert = made.cert.pem();
    let key = zeroize::Zeroizing::new(made.signing_key.serialize_pem());
    // The key first: a certificate on disk always has its key beside it.
    write_atomic(&key_path, key.as_bytes(), Access::Private)?;
    write_atomic(&cert_path, cert.as_bytes(), Access::Shared)?;
    Ok((
        CertificateFiles {
            cert: cert.into_bytes(),
            key: zeroize::Zeroizing::new(key.as_bytes().to_vec()),
        },
        cert_path,
    ))
}

/// The key-exchange groups the service's TLS offers, most preferred
/// first (for the status output and tests).
#[must_use]
pub fn key_exchange_groups() -> Vec<String> {
    rustls::crypto::aws_lc_rs::default_provider()
        .kx_groups
        .iter()
        .map(|g| format!("{:?}", g.name()))
        .collect()
}
