//! TLS for the service, and how connections reach it.
//!
//! Both ends build their own rustls configurations (tonic's would allow
//! TLS 1.2 and classical groups): TLS 1.3 only, and the hybrid
//! post-quantum key exchange X25519MLKEM768 as the only group
//! ([`REQUIRED_GROUP`]), so a peer that offers anything else is refused at
//! the handshake and recorded traffic stays secret against a future
//! quantum computer. ALPN is `h2`.
//!
//! The certificate [`self_signed`] makes is ML-DSA-65: the server signs the
//! handshake with ML-DSA, so an active quantum attacker cannot impersonate
//! the coordinator. A certificate the operator brings (an ECDSA or RSA CA)
//! still works, but authenticates the coordinator only classically; the
//! service warns about it when it starts.
//!
//! TLS protects metadata and the connection. It is not what keeps updates
//! secret: publications and sets are signed with the coordinator's ML-DSA
//! identity pinned by the federation id, and updates are RLWE-encrypted.
//!
//! The coordinator accepts connections itself (`incoming`): at most
//! `max_connections` at once, each handshake in its own task and bounded
//! by [`HANDSHAKE_TIMEOUT`]. Participants connect through [`Connector`].

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, NamedGroup, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::error::{NetError, Result};
use crate::fs::{Access, write_atomic};

/// The one key-exchange group both ends accept: the hybrid of X25519 and
/// ML-KEM-768 (draft-ietf-tls-ecdhe-mlkem).
pub const REQUIRED_GROUP: NamedGroup = NamedGroup::X25519MLKEM768;

/// The signature scheme of the certificate [`self_signed`] makes.
pub const CERTIFICATE_SCHEME: SignatureScheme = SignatureScheme::ML_DSA_65;

/// How long the coordinator waits for a TLS handshake once the TCP
/// connection is accepted.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The only application protocol: HTTP/2 (gRPC).
const ALPN_H2: &[u8] = b"h2";

/// At most one warning per this period about failed handshakes (and
/// about failed accepts); the others are logged at debug level.
const WARN_EVERY: Duration = Duration::from_secs(10);

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
/// loaded if present (an operator may bring their own; one whose key is
/// not ML-DSA authenticates the coordinator only classically, and
/// [`server_config`] warns about it), otherwise a new self-signed ML-DSA-65
/// certificate for `names` (DNS names or IP addresses) is written, the key
/// with mode 0600. Participants trust it by passing `tls-cert.pem` as their
/// CA.
///
/// # Errors
/// [`NetError::Tls`] if the certificate cannot be made, [`NetError::Io`].
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(CertificateFiles, PathBuf)> {
    let cert_path = dir.join("tls-cert.pem");
    let key_path = dir.join("tls-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((load(&cert_path, &key_path)?, cert_path));
    }
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ML_DSA_65)?;
    let made = rcgen::CertificateParams::new(names.to_vec())?.self_signed(&key_pair)?;
    let cert = made.pem();
    let key = zeroize::Zeroizing::new(key_pair.serialize_pem());
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

/// aws-lc-rs with [`REQUIRED_GROUP`] as its only key-exchange group.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = vec![aws_lc_rs::kx_group::X25519MLKEM768];
    Arc::new(provider)
}

/// The coordinator's rustls configuration: TLS 1.3 only,
/// [`REQUIRED_GROUP`] only, ALPN `h2`, no client certificates. Logs a
/// warning when the key is not ML-DSA (the handshake is then authenticated
/// only classically).
///
/// # Errors
/// [`NetError::ServerCertificate`] when the certificate or key is not PEM,
/// is not supported, or they do not match.
pub fn server_config(files: &CertificateFiles) -> Result<Arc<ServerConfig>> {
    let bad = |reason: String| NetError::ServerCertificate { reason };
    let chain = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("the certificate file is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad(
            "the certificate file holds no PEM CERTIFICATE section".into()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(files.key.as_slice())
        .map_err(|e| bad(format!("the key file holds no PEM private key: {e}")))?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| bad(format!("the private key is not supported: {e}")))?;
    let ml_dsa = [
        SignatureScheme::ML_DSA_44,
        SignatureScheme::ML_DSA_65,
        SignatureScheme::ML_DSA_87,
    ];
    if signing.choose_scheme(&ml_dsa).is_none() {
        tracing::warn!(
            algorithm = ?signing.algorithm(),
            "the coordinator's TLS key is not ML-DSA: its handshakes are authenticated only classically, and an active quantum attacker could impersonate it (the certificate `serve` makes when the data directory has none is ML-DSA-65)"
        );
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(NetError::TlsSetup)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(e.to_string()))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A participant's rustls configuration: TLS 1.3 only, [`REQUIRED_GROUP`]
/// only, ALPN `h2`, trusting exactly the certificates in `ca` (PEM).
///
/// # Errors
/// [`NetError::NoCa`] without `ca` (this build carries no system roots);
/// [`NetError::CaNotCertificate`] when `ca` holds no PEM certificate or one
/// that does not parse.
pub fn client_config(ca: Option<&[u8]>) -> Result<Arc<ClientConfig>> {
    let ca = ca.ok_or(NetError::NoCa)?;
    let bad = |reason: String| NetError::CaNotCertificate { reason };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca) {
        let cert = cert.map_err(|e| bad(format!("unreadable PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("a CERTIFICATE section that does not parse: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no PEM CERTIFICATE section".into()));
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(NetError::TlsSetup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The key-exchange groups the service's TLS offers and accepts, most
/// preferred first (for the status output and tests): only
/// [`REQUIRED_GROUP`].
#[must_use]
pub fn key_exchange_groups() -> Vec<String> {
    provider()
        .kx_groups
        .iter()
        .map(|g| format!("{:?}", g.name()))
        .collect()
}

/// Logs failures of one kind without flooding: each at debug level, and
/// at most one warning per [`WARN_EVERY`] that counts the ones in between.
#[derive(Debug, Default)]
struct Throttled {
    /// When the last warning was logged, and the failures since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttled {
    fn note(&self, what: &'static str, peer: Option<SocketAddr>, reason: &dyn Display) {
        let peer = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
        tracing::debug!(%peer, %reason, "{what}");
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, since) = &mut *state;
        if last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            let suppressed = *since;
            *last = Some(now);
            *since = 0;
            drop(state);
            tracing::warn!(
                %peer,
                %reason,
                suppressed,
                "{what} (further ones within {} s are logged at debug level)",
                WARN_EVERY.as_secs()
            );
        } else {
            *since = since.saturating_add(1);
        }
    }
}

/// The bytes of an accepted connection.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A connection the coordinator accepted: it holds one of the
/// `max_connections` places until it is dropped.
#[derive(Debug)]
pub(crate) struct Accepted {
    stream: Stream,
    info: TcpConnectInfo,
    _place: OwnedSemaphorePermit,
}

impl Connected for Accepted {
    // The TCP addresses, so that `Request::remote_addr` works for both
    // plaintext and TLS.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Accepted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Waits until `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The connections the coordinator serves, accepted from `listener`: with
/// `tls`, each after its handshake (in its own task, at most
/// [`HANDSHAKE_TIMEOUT`]; failures are logged and dropped), otherwise as
/// they come (plaintext, for loopback tests and demos).
///
/// At most `max_connections` (at least 1) are open at once, handshakes
/// included: while the cap is reached the listener is not accepted from,
/// so a further connection waits in the kernel's backlog (and is refused
/// by the kernel once that is full) until a place frees. The listener is
/// closed once `stop` turns true or the stream is dropped.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<std::result::Result<Accepted, Infallible>> {
    let cap = max_connections.max(1);
    // Never full: at most `cap` connections hold a place at once.
    let (tx, rx) = mpsc::channel(cap);
    let places = Arc::new(Semaphore::new(cap));
    let acceptor = tls.map(TlsAcceptor::from);
    let handshakes = Arc::new(Throttled::default());
    let accepts = Throttled::default();
    tokio::spawn(async move {
        loop {
            let place = tokio::select! {
                place = Arc::clone(&places).acquire_owned() => match place {
                    Ok(place) => place,
                    Err(_) => break,
                },
                () = tx.closed() => break,
                () = stopped(&mut stop) => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: wait a little
                        // rather than spin.
                        accepts.note("accepting a connection failed", None, &e);
                        drop(place);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = tx.closed() => break,
                () = stopped(&mut stop) => break,
            };
            let info = tcp.connect_info();
            let Some(acceptor) = &acceptor else {
                let accepted = Accepted {
                    stream: Stream::Plain(tcp),
                    info,
                    _place: place,
                };
                if tx.send(Ok(accepted)).await.is_err() {
                    break;
                }
                continue;
            };
            let handshake = acceptor.accept(tcp);
            let (tx, handshakes) = (tx.clone(), Arc::clone(&handshakes));
            tokio::spawn(async move {
                const FAILED: &str =
                    "TLS handshake failed (TLS 1.3 with X25519MLKEM768 is required)";
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(stream)) => {
                        let accepted = Accepted {
                            stream: Stream::Tls(Box::new(stream)),
                            info,
                            _place: place,
                        };
                        // An error: the service stopped; the connection
                        // is dropped.
                        let _ = tx.send(Ok(accepted)).await;
                    }
                    Ok(Err(e)) => handshakes.note(FAILED, Some(peer), &e),
                    Err(_) => handshakes.note(
                        FAILED,
                        Some(peer),
                        &format_args!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
                    ),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// How a participant connects to an https:// coordinator: TCP to its host
/// and port, then a TLS 1.3 handshake with [`client_config`] for the name
/// the certificate must carry. A tower service for
/// [`tonic::transport::Endpoint::connect_with_connector_lazy`]; the
/// endpoint itself is given [`Self::endpoint_uri`] (tonic refuses an
/// https:// URI it does not secure itself).
#[derive(Clone, Debug)]
pub struct Connector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    /// The host to connect to (without IPv6 brackets).
    host: String,
    port: u16,
    /// `host:port` as it appears in a URI (IPv6 in brackets).
    authority: String,
    /// `https://host:port`.
    origin: Uri,
}

impl Connector {
    /// A connector for `url` (an https:// URL): trusting `ca` (PEM),
    /// checking the certificate for `domain` or, without it, the URL's
    /// host (a DNS name or an IP address).
    ///
    /// # Errors
    /// [`NetError::Url`] for a URL without a host or a name that is
    /// neither a DNS name nor an IP address; the errors of
    /// [`client_config`], at once (they are never retried).
    pub fn new(url: &str, ca: Option<&[u8]>, domain: Option<&str>) -> Result<Self> {
        let invalid = |reason: &'static str| NetError::Url {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let bracketed = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = bracketed
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(bracketed);
        let port = uri.port_u16().unwrap_or(443);
        let name = ServerName::try_from(domain.unwrap_or(host).to_owned()).map_err(|_| {
            invalid(if domain.is_some() {
                "the certificate name given (domain) is neither a DNS name nor an IP address"
            } else {
                "the host is neither a DNS name nor an IP address"
            })
        })?;
        let authority = format!("{bracketed}:{port}");
        let origin = format!("https://{authority}")
            .parse()
            .map_err(|_| invalid("not a URL"))?;
        Ok(Self {
            config: client_config(ca)?,
            name,
            host: host.to_owned(),
            port,
            authority,
            origin,
        })
    }

    /// The URI to give tonic's endpoint: `http://host:port`, the
    /// coordinator's authority with a scheme tonic does not try to secure
    /// (the connector does).
    #[must_use]
    pub fn endpoint_uri(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// The origin requests carry: `https://host:port`.
    #[must_use]
    pub fn origin(&self) -> &Uri {
        &self.origin
    }
}

impl Service<Uri> for Connector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        // The errors as they come: callers find the rustls error (a
        // handshake that cannot succeed) or the io error kind (an
        // unreachable coordinator) in the chain, and name the URL
        // themselves.
        Box::pin(async move {
            let tcp = TcpStream::connect((this.host.as_str(), this.port)).await?;
            tcp.set_nodelay(true)?;
            let stream = TlsConnector::from(this.config)
                .connect(this.name, tcp)
                .await?;
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    async fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    #[tokio::test]
    async fn plaintext_connections_are_capped_carry_their_peer_and_end_with_stop() {
        let (listener, addr) = listener().await;
        let (stop, stop_rx) = watch::channel(false);
        let mut incoming = incoming(listener, None, 1, stop_rx);
        let first = TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        // The peer address tonic's `Request::remote_addr` reads.
        assert_eq!(
            accepted.connect_info().remote_addr(),
            Some(first.local_addr().unwrap())
        );
        // Over the cap: connected (backlog) but not handed over ...
        let _second = TcpStream::connect(addr).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), incoming.next()).await;
        assert!(waiting.is_err(), "a second connection passed a cap of 1");
        // ... until the first is done.
        drop(accepted);
        let second = tokio::time::timeout(Duration::from_secs(2), incoming.next()).await;
        assert!(matches!(second, Ok(Some(Ok(_)))));
        // After stop, the listener is closed.
        stop.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_tls_connection_carries_its_peer_and_a_silent_one_does_not_block_others() {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = self_signed(dir.path(), &["localhost".into()]).unwrap();
        let (listener, addr) = listener().await;
        let (_stop, stop_rx) = watch::channel(false);
        let mut incoming = incoming(listener, Some(server_config(&files).unwrap()), 4, stop_rx);
        // A peer that never says hello holds a place, not the accept loop.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = tokio::spawn(
            TlsConnector::from(client_config(Some(&files.cert)).unwrap()).connect(name, tcp),
        );
        let accepted = tokio::time::timeout(Duration::from_secs(5), incoming.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(accepted.connect_info().remote_addr(), Some(local));
        let stream = client.await.unwrap().unwrap();
        assert_eq!(
            stream
                .get_ref()
                .1
                .negotiated_key_exchange_group()
                .map(|g| g.name()),
            Some(REQUIRED_GROUP)
        );
    }

    #[test]
    fn made_certificates_are_ml_dsa_65_brought_ones_still_load_and_a_ca_must_be_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (files, path) = self_signed(dir.path(), &["localhost".into()]).unwrap();
        let key = PrivateKeyDer::from_pem_slice(files.key.as_slice()).unwrap();
        let signing = provider().key_provider.load_private_key(key).unwrap();
        assert!(signing.choose_scheme(&[CERTIFICATE_SCHEME]).is_some());
        // Loaded again, not remade.
        let (again, _) = self_signed(dir.path(), &["localhost".into()]).unwrap();
        assert_eq!(again.cert, files.cert);
        assert_eq!(std::fs::read(path).unwrap(), files.cert);
        assert!(client_config(Some(&files.cert)).is_ok());
        assert!(matches!(
            client_config(Some(files.key.as_slice())),
            Err(NetError::CaNotCertificate { .. })
        ));
        assert!(matches!(client_config(None), Err(NetError::NoCa)));
        // An operator's classical certificate in the data directory is
        // still loaded and served (with a warning).
        let classical = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(classical.path().join("tls-cert.pem"), cert.pem()).unwrap();
        std::fs::write(classical.path().join("tls-key.pem"), key.serialize_pem()).unwrap();
        let (loaded, _) = self_signed(classical.path(), &[]).unwrap();
        assert_eq!(loaded.cert, cert.pem().into_bytes());
        assert!(server_config(&loaded).is_ok());
        assert!(matches!(
            server_config(&CertificateFiles {
                cert: files.cert.clone(),
                key: zeroize::Zeroizing::new(b"no key".to_vec()),
            }),
            Err(NetError::ServerCertificate { .. })
        ));
        assert!(matches!(
            Connector::new("https://[::1]:7000", Some(&files.cert), None),
            Ok(c) if c.endpoint_uri() == "http://[::1]:7000" && c.host == "::1"
        ));
        assert!(matches!(
            Connector::new("https://localhost", Some(&files.cert), None),
            Ok(c) if c.endpoint_uri() == "http://localhost:443"
        ));
    }
}
