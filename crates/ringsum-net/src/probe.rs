//! What a TLS endpoint actually negotiates, seen from a client that offers
//! everything: the probe behind `ringsum assess --coordinator`.
//!
//! [`probe`] connects with a deliberately permissive rustls client (the
//! aws-lc-rs provider with every key-exchange group and cipher suite it
//! has, TLS 1.3 and TLS 1.2, ALPN `h2`), so the server's own choices show:
//! the protocol version, the key-exchange group, the signature scheme the
//! server used to sign the handshake (its `CertificateVerify` in TLS 1.3,
//! its `ServerKeyExchange` in TLS 1.2, recorded by a certificate verifier
//! that delegates to rustls's WebPKI verifier) and the leaf certificate's
//! subject, issuer and signature algorithm (parsed with `x509-parser`).
//! [`probe_offering`] restricts the offer (classical groups only, TLS 1.2
//! only) to see whether the server also accepts weaker clients.
//!
//! Every algorithm is classified by [`PqStatus`]: what a quantum adversary
//! can do to it. Shor's algorithm breaks elliptic-curve and RSA key
//! exchange and signatures; ML-KEM and ML-DSA (FIPS 203, FIPS 204) resist
//! it; a hybrid holds while its post-quantum half does.
//!
//! Without a CA the chain is not checked (the report says so), but the
//! handshake signature still is, against the certificate's key: the probe
//! then shows what the server offers, not whom it proves to be.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, NamedGroup, ProtocolVersion, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long the probe waits for the TCP connection, and then for the TLS
/// handshake.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The port of an `https://` URL that names none.
const DEFAULT_PORT: u16 = 443;

/// A result with a [`ProbeError`].
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

/// Why a probe did not complete a handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// A URL that does not name a TLS endpoint.
    #[error("{url:?} is not a TLS endpoint URL ({reason}); give https://host:port")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An `http://` URL: plaintext, so there is no TLS to probe.
    #[error(
        "{url} is plaintext HTTP: nothing on the connection is encrypted, so there is no TLS to assess (serve with TLS and give https://)"
    )]
    Plaintext {
        /// The URL given.
        url: String,
    },
    /// A name the certificate is to be checked against that is neither a
    /// DNS name nor an IP address.
    #[error("{name:?} is neither a DNS name nor an IP address to check the certificate against")]
    ServerName {
        /// The name.
        name: String,
    },
    /// A CA file without a usable certificate.
    #[error(
        "the CA file is unusable: {reason}; give the coordinator's tls-cert.pem or its CA (PEM)"
    )]
    Ca {
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate file or DER that does not parse.
    #[error("the certificate does not parse: {reason}")]
    Certificate {
        /// What the parser said.
        reason: String,
    },
    /// rustls refused the probe's own configuration.
    #[error("the probe's TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// The endpoint could not be reached.
    #[error(
        "cannot connect to {address}: {source} (is the coordinator running, and is the address right?)"
    )]
    Connect {
        /// host:port.
        address: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The handshake failed: refused by the server, or a certificate the
    /// probe does not accept.
    #[error("the TLS handshake with {address} failed: {source}")]
    Handshake {
        /// host:port.
        address: String,
        /// What rustls said.
        source: io::Error,
    },
    /// No answer in time.
    #[error("{address}: no {stage} within {} s", PROBE_TIMEOUT.as_secs())]
    Timeout {
        /// host:port.
        address: String,
        /// "TCP connection" or "TLS handshake".
        stage: &'static str,
    },
}

/// What an algorithm is worth against a quantum adversary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PqStatus {
    /// Post-quantum on its own (ML-KEM, ML-DSA).
    PostQuantum,
    /// A hybrid of a classical and a post-quantum algorithm: secure while
    /// the post-quantum half is.
    Hybrid,
    /// Classical public-key cryptography (elliptic curves, RSA, finite
    /// field Diffie-Hellman): broken by Shor's algorithm.
    Classical,
    /// Not known to this build: treat it as broken until shown otherwise.
    Unknown,
}

impl PqStatus {
    /// Whether a quantum adversary can break it (classical or unknown).
    #[must_use]
    pub const fn is_quantum_vulnerable(self) -> bool {
        matches!(self, Self::Classical | Self::Unknown)
    }

    /// The worse of two statuses (for a chain of signatures, where the
    /// weakest link decides).
    #[must_use]
    pub const fn worse(self, other: Self) -> Self {
        if self.rank() >= other.rank() {
            self
        } else {
            other
        }
    }

    const fn rank(self) -> u8 {
        match self {
            Self::PostQuantum => 0,
            Self::Hybrid => 1,
            Self::Classical => 2,
            Self::Unknown => 3,
        }
    }
}

impl fmt::Display for PqStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PostQuantum => "post-quantum",
            Self::Hybrid => "hybrid: post-quantum while its ML-KEM/ML-DSA half holds",
            Self::Classical => "classical: broken by Shor",
            Self::Unknown => "unknown to this build: assumed broken",
        })
    }
}

/// An algorithm by name, with its [`PqStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Algorithm {
    /// Its name, e.g. `X25519MLKEM768`, `ML_DSA_65`, `ecdsa-with-SHA256`.
    pub name: String,
    /// What a quantum adversary can do to it.
    pub status: PqStatus,
}

impl Algorithm {
    fn new(name: impl Into<String>, status: PqStatus) -> Self {
        Self {
            name: name.into(),
            status,
        }
    }
}

/// The classification of a TLS key-exchange group.
#[must_use]
pub fn group_status(group: NamedGroup) -> PqStatus {
    match group {
        NamedGroup::X25519MLKEM768 | NamedGroup::secp256r1MLKEM768 => PqStatus::Hybrid,
        NamedGroup::MLKEM512 | NamedGroup::MLKEM768 | NamedGroup::MLKEM1024 => {
            PqStatus::PostQuantum
        }
        NamedGroup::secp256r1
        | NamedGroup::secp384r1
        | NamedGroup::secp521r1
        | NamedGroup::X25519
        | NamedGroup::X448
        | NamedGroup::FFDHE2048
        | NamedGroup::FFDHE3072
        | NamedGroup::FFDHE4096
        | NamedGroup::FFDHE6144
        | NamedGroup::FFDHE8192 => PqStatus::Classical,
        _ => PqStatus::Unknown,
    }
}

/// The classification of a TLS signature scheme.
#[must_use]
pub fn scheme_status(scheme: SignatureScheme) -> PqStatus {
    match scheme {
        SignatureScheme::ML_DSA_44 | SignatureScheme::ML_DSA_65 | SignatureScheme::ML_DSA_87 => {
            PqStatus::PostQuantum
        }
        SignatureScheme::RSA_PKCS1_SHA1
        | SignatureScheme::ECDSA_SHA1_Legacy
        | SignatureScheme::RSA_PKCS1_SHA256
        | SignatureScheme::ECDSA_NISTP256_SHA256
        | SignatureScheme::RSA_PKCS1_SHA384
        | SignatureScheme::ECDSA_NISTP384_SHA384
        | SignatureScheme::RSA_PKCS1_SHA512
        | SignatureScheme::ECDSA_NISTP521_SHA512
        | SignatureScheme::RSA_PSS_SHA256
        | SignatureScheme::RSA_PSS_SHA384
        | SignatureScheme::RSA_PSS_SHA512
        | SignatureScheme::ED25519
        | SignatureScheme::ED448 => PqStatus::Classical,
        _ => PqStatus::Unknown,
    }
}

/// Signature and public-key algorithm identifiers of X.509 (dotted OID,
/// name, status): RFC 5758 and RFC 8017 (ECDSA, RSA), RFC 8410 (EdDSA),
/// RFC 9881 / NIST CSOR (ML-DSA, 2.16.840.1.101.3.4.3.17-19).
const X509_ALGORITHMS: [(&str, &str, PqStatus); 19] = [
    (
        "2.16.840.1.101.3.4.3.17",
        "ML-DSA-44",
        PqStatus::PostQuantum,
    ),
    (
        "2.16.840.1.101.3.4.3.18",
        "ML-DSA-65",
        PqStatus::PostQuantum,
    ),
    (
        "2.16.840.1.101.3.4.3.19",
        "ML-DSA-87",
        PqStatus::PostQuantum,
    ),
    (
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256",
        PqStatus::Classical,
    ),
    (
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384",
        PqStatus::Classical,
    ),
    (
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512",
        PqStatus::Classical,
    ),
    ("1.2.840.10045.2.1", "id-ecPublicKey", PqStatus::Classical),
    ("1.2.840.113549.1.1.1", "rsaEncryption", PqStatus::Classical),
    (
        "1.2.840.113549.1.1.5",
        "sha1WithRSAEncryption",
        PqStatus::Classical,
    ),
    (
        "1.2.840.113549.1.1.11",
        "sha256WithRSAEncryption",
        PqStatus::Classical,
    ),
    (
        "1.2.840.113549.1.1.12",
        "sha384WithRSAEncryption",
        PqStatus::Classical,
    ),
    (
        "1.2.840.113549.1.1.13",
        "sha512WithRSAEncryption",
        PqStatus::Classical,
    ),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS", PqStatus::Classical),
    ("1.3.101.110", "X25519", PqStatus::Classical),
    ("1.3.101.111", "X448", PqStatus::Classical),
    ("1.3.101.112", "Ed25519", PqStatus::Classical),
    ("1.3.101.113", "Ed448", PqStatus::Classical),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1", PqStatus::Classical),
    ("1.2.840.10040.4.3", "dsa-with-SHA1", PqStatus::Classical),
];

/// The name and classification of an X.509 algorithm identifier given as a
/// dotted OID; an OID this build does not know keeps its dotted form and is
/// [`PqStatus::Unknown`].
#[must_use]
pub fn x509_algorithm(oid: &str) -> Algorithm {
    X509_ALGORITHMS
        .iter()
        .find(|(known, _, _)| *known == oid)
        .map_or_else(
            || Algorithm::new(oid, PqStatus::Unknown),
            |&(_, name, status)| Algorithm::new(name, status),
        )
}

/// What a certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    /// The subject's distinguished name, e.g. `CN=rcgen self signed cert`.
    pub subject: String,
    /// The issuer's distinguished name (the subject again when self-signed).
    pub issuer: String,
    /// The algorithm the issuer signed the certificate with: the key an
    /// attacker must break to forge a certificate in this one's name.
    pub signature_algorithm: Algorithm,
    /// The algorithm of the certificate's own key: the key an attacker
    /// must break to sign handshakes as its subject.
    pub public_key_algorithm: Algorithm,
}

impl CertificateInfo {
    /// The weaker of the two signatures that authenticate the subject: the
    /// issuer's on the certificate, and the subject key's on handshakes.
    #[must_use]
    pub const fn status(&self) -> PqStatus {
        self.signature_algorithm
            .status
            .worse(self.public_key_algorithm.status)
    }

    /// Parses one DER certificate.
    ///
    /// # Errors
    /// [`ProbeError::Certificate`] when it is not an X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| ProbeError::Certificate {
                reason: e.to_string(),
            })?;
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            signature_algorithm: x509_algorithm(&cert.signature_algorithm.algorithm.to_id_string()),
            public_key_algorithm: x509_algorithm(
                &cert.public_key().algorithm.algorithm.to_id_string(),
            ),
        })
    }

    /// The first certificate of a PEM file (a certificate on disk, e.g.
    /// the coordinator's `tls-cert.pem`).
    ///
    /// # Errors
    /// [`ProbeError::Certificate`] when the file holds no PEM certificate
    /// or it does not parse.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let der = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or_else(|| ProbeError::Certificate {
                reason: "no PEM CERTIFICATE section".into(),
            })?
            .map_err(|e| ProbeError::Certificate {
                reason: format!("not PEM: {e}"),
            })?;
        Self::from_der(&der)
    }
}

/// What a TLS handshake with an endpoint negotiated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    /// host:port connected to.
    pub address: String,
    /// The name the certificate was checked against (and sent as SNI when
    /// it is a DNS name).
    pub server_name: String,
    /// The protocol version, e.g. `TLS 1.3`.
    pub protocol: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// The key-exchange group the server chose.
    pub group: Option<Algorithm>,
    /// The scheme the server signed the handshake with (TLS 1.3
    /// `CertificateVerify`, TLS 1.2 `ServerKeyExchange`).
    pub handshake_signature: Option<Algorithm>,
    /// The leaf certificate.
    pub certificate: Option<CertificateInfo>,
    /// The certificates the server sent (leaf first); each one's issuer
    /// signature matters for impersonation.
    pub chain_length: usize,
    /// The worst signature algorithm over the certificates the server
    /// sent (the leaf's issuer signature and every intermediate's).
    pub chain_signature_status: Option<PqStatus>,
    /// Whether the chain was verified against a CA (without one, only the
    /// handshake signature was checked, against the certificate's key).
    pub chain_verified: bool,
    /// The ALPN protocol agreed, e.g. `h2`.
    pub alpn: Option<String>,
}

impl Negotiated {
    /// How well the endpoint's identity resists a quantum attacker: the
    /// worst of the handshake signature, the leaf's key and every issuer
    /// signature the server sent. `None` when nothing was seen.
    #[must_use]
    pub fn authentication_status(&self) -> Option<PqStatus> {
        [
            self.handshake_signature.as_ref().map(|a| a.status),
            self.certificate.as_ref().map(CertificateInfo::status),
            self.chain_signature_status,
        ]
        .into_iter()
        .flatten()
        .reduce(PqStatus::worse)
    }
}

/// Which groups the probe offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Groups {
    /// Every group of the aws-lc-rs provider, post-quantum hybrids first.
    All,
    /// Only the classical groups (X25519, P-256, P-384): does the server
    /// accept a client that cannot do post-quantum key exchange?
    ClassicalOnly,
}

/// Which protocol versions the probe offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.3 and TLS 1.2.
    Both,
    /// TLS 1.2 only: does the server still speak it?
    Tls12Only,
}

/// What the probe offers the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The key-exchange groups.
    pub groups: Groups,
    /// The protocol versions.
    pub versions: Versions,
}

impl Offer {
    /// Everything: what [`probe`] offers.
    pub const ALL: Self = Self {
        groups: Groups::All,
        versions: Versions::Both,
    };
}

/// Connects to `url` (`https://host:port`) offering every group, cipher
/// suite and TLS 1.3 and 1.2, and reports what the server chose. `ca` (PEM)
/// is the certificate or CA the chain is checked against; without it the
/// chain is not checked ([`Negotiated::chain_verified`] is false). `domain`
/// overrides the name the certificate is checked against (default: the
/// URL's host).
///
/// # Errors
/// [`ProbeError::Url`] or [`ProbeError::Plaintext`] for a URL without
/// TLS, [`ProbeError::Ca`], [`ProbeError::ServerName`],
/// [`ProbeError::Connect`] for an unreachable endpoint,
/// [`ProbeError::Handshake`] for a refused handshake or certificate,
/// [`ProbeError::Timeout`].
pub async fn probe(url: &str, ca: Option<&[u8]>, domain: Option<&str>) -> Result<Negotiated> {
    probe_offering(url, ca, domain, Offer::ALL).await
}

/// [`probe`] with a restricted offer: whether the server also accepts a
/// client limited to classical groups, or to TLS 1.2.
///
/// # Errors
/// As [`probe`]; a server that refuses the offer fails with
/// [`ProbeError::Handshake`].
pub async fn probe_offering(
    url: &str,
    ca: Option<&[u8]>,
    domain: Option<&str>,
    offer: Offer,
) -> Result<Negotiated> {
    let (host, port) = parse_url(url)?;
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let name_text = domain.unwrap_or(&host).to_owned();
    let server_name =
        ServerName::try_from(name_text.clone()).map_err(|_| ProbeError::ServerName {
            name: name_text.clone(),
        })?;
    let provider = Arc::new(provider(offer.groups));
    let verifier = Arc::new(Recorder::new(chain_verifier(ca, &provider)?, &provider));
    let versions: &[&'static SupportedProtocolVersion] = match offer.versions {
        Versions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Versions::Tls12Only => &[&rustls::version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(ProbeError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    // No session resumption: every probe is a full handshake.
    config.resumption = rustls::client::Resumption::disabled();

    let tcp = tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(&address))
        .await
        .map_err(|_| ProbeError::Timeout {
            address: address.clone(),
            stage: "TCP connection",
        })?
        .map_err(|source| ProbeError::Connect {
            address: address.clone(),
            source,
        })?;
    let connector = TlsConnector::from(Arc::new(config));
    let mut tls = tokio::time::timeout(PROBE_TIMEOUT, connector.connect(server_name, tcp))
        .await
        .map_err(|_| ProbeError::Timeout {
            address: address.clone(),
            stage: "TLS handshake",
        })?
        .map_err(|source| ProbeError::Handshake {
            address: address.clone(),
            source,
        })?;
    let negotiated = {
        let (_, connection) = tls.get_ref();
        let chain = connection.peer_certificates().unwrap_or_default();
        let certificate = chain
            .first()
            .map(|der| CertificateInfo::from_der(der))
            .transpose()?;
        let chain_signature_status = chain
            .iter()
            .map(|der| CertificateInfo::from_der(der).map(|c| c.signature_algorithm.status))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .reduce(PqStatus::worse);
        Negotiated {
            address,
            server_name: name_text,
            protocol: connection
                .protocol_version()
                .map_or_else(|| "unknown".to_owned(), version_name),
            cipher_suite: connection
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            group: connection.negotiated_key_exchange_group().map(|g| {
                let name = g.name();
                Algorithm::new(format!("{name:?}"), group_status(name))
            }),
            handshake_signature: verifier
                .scheme()
                .map(|s| Algorithm::new(format!("{s:?}"), scheme_status(s))),
            certificate,
            chain_length: chain.len(),
            chain_signature_status,
            chain_verified: ca.is_some(),
            alpn: connection
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    };
    // A polite close; the probe has what it came for either way.
    let _ = tls.shutdown().await;
    Ok(negotiated)
}

/// host and port of `https://host[:port][/...]` or `host:port`.
fn parse_url(url: &str) -> Result<(String, u16)> {
    let bad = |reason| ProbeError::Url {
        url: url.to_owned(),
        reason,
    };
    if url.starts_with("http://") {
        return Err(ProbeError::Plaintext {
            url: url.to_owned(),
        });
    }
    let rest = match url.split_once("://") {
        Some(("https", rest)) => rest,
        Some(_) => return Err(bad("the scheme is not https")),
        None => url,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address without its closing bracket"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("text after the IPv6 address")),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number up to 65535"))
        })
        .transpose()?
        .unwrap_or(DEFAULT_PORT);
    Ok((host.to_owned(), port))
}

fn version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// aws-lc-rs with every cipher suite and the groups of `groups`.
fn provider(groups: Groups) -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites = aws_lc_rs::ALL_CIPHER_SUITES.to_vec();
    provider.kx_groups = match groups {
        Groups::All => aws_lc_rs::ALL_KX_GROUPS.to_vec(),
        Groups::ClassicalOnly => aws_lc_rs::ALL_KX_GROUPS
            .iter()
            .copied()
            .filter(|g| group_status(g.name()) == PqStatus::Classical)
            .collect(),
    };
    provider
}

/// The WebPKI verifier over the certificates of `ca`, or, without a CA, one
/// that accepts any chain but still checks handshake signatures.
fn chain_verifier(
    ca: Option<&[u8]>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    let Some(pem) = ca else {
        return Ok(Arc::new(UncheckedChain {
            algorithms: provider.signature_verification_algorithms,
        }));
    };
    let bad = |reason: String| ProbeError::Ca { reason };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            bad(format!(
                "a certificate rustls refuses as a trust anchor: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM CERTIFICATE section".into()));
    }
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
            .build()
            .map_err(|e| bad(e.to_string()))?;
    Ok(verifier)
}

/// A verifier that delegates every decision and records the scheme of the
/// handshake signature it was asked to check.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Mutex<Option<SignatureScheme>>,
    schemes: Vec<SignatureScheme>,
}

impl Recorder {
    fn new(inner: Arc<dyn ServerCertVerifier>, provider: &CryptoProvider) -> Self {
        Self {
            inner,
            seen: Mutex::new(None),
            schemes: provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }

    fn record(&self, scheme: SignatureScheme) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(scheme);
    }

    fn scheme(&self) -> Option<SignatureScheme> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.record(dss.scheme);
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.record(dss.scheme);
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // Every scheme the provider can check, so that the server signs
        // with whatever its key is.
        self.schemes.clone()
    }
}

/// Without a CA: any chain is accepted (the report says it was not
/// checked), but the handshake must be signed by the certificate's key.
#[derive(Debug)]
struct UncheckedChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for UncheckedChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_schemes_are_classified() {
        assert_eq!(group_status(NamedGroup::X25519MLKEM768), PqStatus::Hybrid);
        assert_eq!(group_status(NamedGroup::MLKEM1024), PqStatus::PostQuantum);
        assert_eq!(group_status(NamedGroup::X25519), PqStatus::Classical);
        assert_eq!(group_status(NamedGroup::secp384r1), PqStatus::Classical);
        assert_eq!(group_status(NamedGroup::Unknown(0x7777)), PqStatus::Unknown);
        assert_eq!(
            scheme_status(SignatureScheme::ML_DSA_65),
            PqStatus::PostQuantum
        );
        assert_eq!(
            scheme_status(SignatureScheme::ECDSA_NISTP256_SHA256),
            PqStatus::Classical
        );
        assert_eq!(
            scheme_status(SignatureScheme::RSA_PSS_SHA256),
            PqStatus::Classical
        );
        assert_eq!(x509_algorithm("2.16.840.1.101.3.4.3.18").name, "ML-DSA-65");
        assert_eq!(
            x509_algorithm("1.2.840.10045.4.3.2").status,
            PqStatus::Classical
        );
        assert_eq!(x509_algorithm("1.2.3.4").status, PqStatus::Unknown);
        assert_eq!(
            PqStatus::PostQuantum.worse(PqStatus::Classical),
            PqStatus::Classical
        );
        assert!(PqStatus::Unknown.is_quantum_vulnerable());
        assert!(!PqStatus::Hybrid.is_quantum_vulnerable());
    }

    #[test]
    fn urls_name_a_tls_endpoint() {
        let ok = |url: &str| parse_url(url).unwrap_or_else(|e| unreachable!("{url}: {e}"));
        assert_eq!(ok("https://example.org:7443"), ("example.org".into(), 7443));
        assert_eq!(ok("https://example.org/x"), ("example.org".into(), 443));
        assert_eq!(ok("127.0.0.1:9"), ("127.0.0.1".into(), 9));
        assert_eq!(ok("https://[::1]:7443/"), ("::1".into(), 7443));
        assert!(matches!(
            parse_url("http://127.0.0.1:9"),
            Err(ProbeError::Plaintext { .. })
        ));
        for bad in ["ftp://x:1", "https://:1", "https://x:port", "https://[::1"] {
            assert!(
                matches!(parse_url(bad), Err(ProbeError::Url { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn certificates_name_their_algorithms() {
        // An ECDSA P-256 certificate (rcgen's default with aws-lc-rs).
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap_or_else(|e| unreachable!("{e}"));
        let info = CertificateInfo::from_pem(made.cert.pem().as_bytes())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(info.signature_algorithm.name, "ecdsa-with-SHA256");
        assert_eq!(info.status(), PqStatus::Classical);
        assert_eq!(info.subject, info.issuer);
        // An ML-DSA-65 one.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ML_DSA_65)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .and_then(|p| p.self_signed(&key))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let info = CertificateInfo::from_der(cert.der()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(info.signature_algorithm.name, "ML-DSA-65");
        assert_eq!(info.public_key_algorithm.name, "ML-DSA-65");
        assert_eq!(info.status(), PqStatus::PostQuantum);
        assert!(CertificateInfo::from_pem(b"not pem").is_err());
    }

    /// A certificate for "localhost" and 127.0.0.1: ML-DSA-65 or rcgen's
    /// default ECDSA P-256, with its PEM and its PKCS#8 key.
    fn certificate(ml_dsa: bool) -> (CertificateDer<'static>, String, Vec<u8>) {
        let key = if ml_dsa {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ML_DSA_65)
        } else {
            rcgen::KeyPair::generate()
        }
        .unwrap_or_else(|e| unreachable!("{e}"));
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .and_then(|p| p.self_signed(&key))
            .unwrap_or_else(|e| unreachable!("{e}"));
        (cert.der().clone(), cert.pem(), key.serialize_der())
    }

    /// A TLS server on loopback that completes handshakes (and then closes)
    /// with `groups` and `versions` only; its port.
    async fn server(
        ml_dsa: bool,
        groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> (u16, String) {
        let (der, pem, key) = certificate(ml_dsa);
        let mut provider = aws_lc_rs::default_provider();
        provider.kx_groups = groups;
        provider.cipher_suites = aws_lc_rs::ALL_CIPHER_SUITES.to_vec();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .and_then(|b| {
                b.with_no_client_auth().with_single_cert(
                    vec![der],
                    rustls::pki_types::PrivatePkcs8KeyDer::from(key).into(),
                )
            })
            .unwrap_or_else(|e| unreachable!("{e}"));
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| unreachable!("{e}"))
            .port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        (port, pem)
    }

    #[tokio::test]
    async fn the_probe_sees_what_the_server_chose() {
        let tls13 = [&rustls::version::TLS13];
        // Post-quantum: hybrid group, ML-DSA-65 certificate, chain checked.
        let (port, pem) = server(true, vec![aws_lc_rs::kx_group::X25519MLKEM768], &tls13).await;
        let url = format!("https://127.0.0.1:{port}");
        let seen = probe(&url, Some(pem.as_bytes()), None)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(seen.protocol, "TLS 1.3");
        assert_eq!(
            seen.group,
            Some(Algorithm::new("X25519MLKEM768", PqStatus::Hybrid))
        );
        assert_eq!(
            seen.handshake_signature,
            Some(Algorithm::new("ML_DSA_65", PqStatus::PostQuantum))
        );
        assert_eq!(seen.authentication_status(), Some(PqStatus::PostQuantum));
        assert!(seen.chain_verified);
        assert_eq!(seen.alpn.as_deref(), Some("h2"));
        assert_eq!(seen.chain_length, 1);
        // A client limited to classical groups is refused by that server.
        let classical = Offer {
            groups: Groups::ClassicalOnly,
            versions: Versions::Both,
        };
        let refused = probe_offering(&url, Some(pem.as_bytes()), None, classical).await;
        assert!(
            matches!(refused, Err(ProbeError::Handshake { .. })),
            "{refused:?}"
        );
        // Another CA: the chain does not verify, and the probe says so.
        let (_, other, _) = certificate(true);
        let refused = probe(&url, Some(other.as_bytes()), None).await;
        assert!(
            matches!(refused, Err(ProbeError::Handshake { .. })),
            "{refused:?}"
        );

        // Classical: X25519 and an ECDSA certificate; no CA given.
        let (port, _) = server(false, vec![aws_lc_rs::kx_group::X25519], &tls13).await;
        let seen = probe(
            &format!("https://127.0.0.1:{port}"),
            None,
            Some("localhost"),
        )
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            seen.group,
            Some(Algorithm::new("X25519", PqStatus::Classical))
        );
        assert_eq!(
            seen.handshake_signature.as_ref().map(|a| a.status),
            Some(PqStatus::Classical)
        );
        assert_eq!(seen.authentication_status(), Some(PqStatus::Classical));
        assert!(!seen.chain_verified);
        assert_eq!(seen.server_name, "localhost");

        // TLS 1.2 only: the probe still gets through, and reports it.
        let (port, pem) = server(
            false,
            vec![aws_lc_rs::kx_group::SECP256R1],
            &[&rustls::version::TLS12],
        )
        .await;
        let seen = probe(
            &format!("https://localhost:{port}"),
            Some(pem.as_bytes()),
            None,
        )
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(seen.protocol, "TLS 1.2");
        assert_eq!(seen.group.map(|g| g.name), Some("secp256r1".to_owned()));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let err = probe(&format!("https://127.0.0.1:{port}"), None, None).await;
        assert!(matches!(err, Err(ProbeError::Connect { .. })), "{err:?}");
    }
}
