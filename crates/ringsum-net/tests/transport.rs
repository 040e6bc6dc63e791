//! The service's transport: TLS 1.3 with the hybrid group X25519MLKEM768
//! and nothing else, an ML-DSA-65 certificate that signs the handshake,
//! participants that refuse a CA file that is not a certificate before
//! connecting, and a cap on open connections.

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::*;
use ringsum_net::NetError;
use ringsum_net::participant::{fetch_setup, fetch_status};
use ringsum_net::server::{Running, start};
use ringsum_pq::FederationId;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A coordinator over TLS with its self-signed certificate (for
/// "localhost"), at most `max_connections` connections.
struct Served {
    running: Running,
    ca: Vec<u8>,
    ca_path: PathBuf,
    pinned: FederationId,
    member: Arc<ringsum_pq::SigningIdentity>,
    _dir: tempfile::TempDir,
}

async fn serve(max_connections: usize) -> Served {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("tempdir: {e}"));
    let keys = keys(dir.path(), 3, 3);
    let member = Arc::new(client(dir.path(), 0));
    let coordinator_dir = dir.path().join("coordinator");
    std::fs::create_dir_all(&coordinator_dir).unwrap_or_else(|e| unreachable!("mkdir: {e}"));
    let (cert, ca_path) = ringsum_net::tls::self_signed(&coordinator_dir, &["localhost".into()])
        .unwrap_or_else(|e| unreachable!("certificate: {e}"));
    let mut options = serve_options(&coordinator_dir);
    options.tls = Some(cert.clone());
    options.limits.max_connections = max_connections;
    let description = description(&keys, 100, 2, 1);
    let pinned = pin(&description);
    let running = start(plan(dir.path(), description), options)
        .await
        .unwrap_or_else(|e| unreachable!("start: {e}"));
    Served {
        running,
        ca: cert.cert,
        ca_path,
        pinned,
        member,
        _dir: dir,
    }
}

/// Verifies as rustls's WebPKI verifier does, and records the scheme of
/// the server's TLS 1.3 handshake signature.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    scheme: Mutex<Option<SignatureScheme>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        *self.scheme.lock().unwrap_or_else(PoisonError::into_inner) = Some(dss.scheme);
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a raw rustls client saw of a completed handshake.
#[derive(Debug)]
struct Seen {
    group: Option<NamedGroup>,
    signature: Option<SignatureScheme>,
    alpn: Option<Vec<u8>>,
}

/// A raw rustls client trusting `ca`, offering `groups` and `versions`.
fn raw_client(
    ca: &[u8],
    groups: Vec<&'static dyn SupportedKxGroup>,
    versions: &[&'static SupportedProtocolVersion],
) -> (TlsConnector, Arc<Recording>) {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca) {
        roots
            .add(cert.unwrap_or_else(|e| unreachable!("PEM: {e}")))
            .unwrap_or_else(|e| unreachable!("root: {e}"));
    }
    let provider = Arc::new(CryptoProvider {
        kx_groups: groups,
        ..aws_lc_rs::default_provider()
    });
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .unwrap_or_else(|e| unreachable!("verifier: {e}"));
    let recording = Arc::new(Recording {
        inner,
        scheme: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap_or_else(|e| unreachable!("versions: {e}"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&recording) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    (TlsConnector::from(Arc::new(config)), recording)
}

/// A handshake with the coordinator at `addr` as "localhost".
async fn handshake(
    addr: SocketAddr,
    ca: &[u8],
    groups: Vec<&'static dyn SupportedKxGroup>,
    versions: &[&'static SupportedProtocolVersion],
) -> std::io::Result<Seen> {
    let (connector, recording) = raw_client(ca, groups, versions);
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap_or_else(|e| unreachable!("name: {e}"));
    let stream = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .unwrap_or_else(|_| unreachable!("the handshake must end within 5 s"))?;
    let connection = stream.get_ref().1;
    let signature = *recording
        .scheme
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Ok(Seen {
        group: connection.negotiated_key_exchange_group().map(|g| g.name()),
        signature,
        alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
    })
}

/// The alert the coordinator refused a handshake with.
fn alert(handshake: std::io::Result<Seen>) -> AlertDescription {
    let Err(e) = handshake else {
        unreachable!("the coordinator accepted this handshake")
    };
    match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(alert)) => *alert,
        _ => unreachable!("not refused by an alert: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tls13_with_x25519mlkem768_and_an_ml_dsa_65_certificate() {
    let served = serve(16).await;
    let addr = served.running.addr;

    // Classical groups only: refused at the handshake.
    let classical = handshake(
        addr,
        &served.ca,
        vec![aws_lc_rs::kx_group::X25519, aws_lc_rs::kx_group::SECP256R1],
        &[&rustls::version::TLS13],
    )
    .await;
    assert_eq!(alert(classical), AlertDescription::HandshakeFailure);

    // TLS 1.2 only (even offering every group): refused.
    let tls12 = handshake(
        addr,
        &served.ca,
        aws_lc_rs::ALL_KX_GROUPS.to_vec(),
        &[&rustls::version::TLS12],
    )
    .await;
    assert_eq!(alert(tls12), AlertDescription::ProtocolVersion);

    // TLS 1.3 offering the hybrid group among classical ones: it is the
    // one negotiated, and the server signs with ML-DSA-65.
    let seen = handshake(
        addr,
        &served.ca,
        vec![
            aws_lc_rs::kx_group::X25519,
            aws_lc_rs::kx_group::X25519MLKEM768,
            aws_lc_rs::kx_group::SECP256R1,
        ],
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    )
    .await
    .unwrap();
    assert_eq!(seen.group, Some(NamedGroup::X25519MLKEM768));
    assert_eq!(seen.group, Some(ringsum_net::tls::REQUIRED_GROUP));
    assert_eq!(seen.signature, Some(SignatureScheme::ML_DSA_65));
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    // What the service says it offers is what it accepts.
    assert_eq!(
        ringsum_net::tls::key_exchange_groups(),
        vec!["X25519MLKEM768".to_owned()]
    );

    served.running.stop();
    served.running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_connect_over_https_and_refuse_a_ca_that_is_not_a_certificate() {
    let served = serve(16).await;
    let url = format!("https://localhost:{}", served.running.addr.port());
    let mut options = connect(&url, served.pinned);
    options.insecure_plaintext = false;
    options.ca = Some(std::fs::read(&served.ca_path).unwrap());

    let (description, federation) = fetch_setup(&options, Arc::clone(&served.member))
        .await
        .unwrap();
    assert_eq!(federation.id(), served.pinned);
    assert_eq!(description.rounds, 1);
    let status = fetch_status(&options, Arc::clone(&served.member))
        .await
        .unwrap();
    assert_eq!(status.rounds, 1);

    // Also by IP address, naming the certificate's DNS name.
    let mut by_ip = options.clone();
    by_ip.url = format!("https://{}", served.running.addr);
    by_ip.domain = Some("localhost".into());
    fetch_setup(&by_ip, Arc::clone(&served.member))
        .await
        .unwrap();

    // A CA file that is not a certificate: a typed error at once, though
    // the participant would retry an unreachable coordinator for a minute.
    let key_pem = std::fs::read(served.ca_path.with_file_name("tls-key.pem")).unwrap();
    let garbled =
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    for ca in [
        b"not a certificate\n".to_vec(),
        key_pem,
        garbled.to_vec(),
        Vec::new(),
    ] {
        let mut bad = options.clone();
        bad.ca = Some(ca);
        bad.give_up_after = Duration::from_secs(60);
        let began = Instant::now();
        let setup = fetch_setup(&bad, Arc::clone(&served.member))
            .await
            .unwrap_err();
        let status = fetch_status(&bad, Arc::clone(&served.member))
            .await
            .unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(1));
        for e in [setup, status] {
            assert!(matches!(e, NetError::CaNotCertificate { .. }), "{e}");
            assert!(
                e.to_string()
                    .contains("the --ca file is not a PEM certificate"),
                "{e}"
            );
        }
    }
    // No CA at all: there are no system roots to fall back on.
    let mut none = options.clone();
    none.ca = None;
    let e = fetch_setup(&none, Arc::clone(&served.member))
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::NoCa), "{e}");

    served.running.stop();
    served.running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_waits_for_a_place() {
    let served = serve(2).await;
    let addr = served.running.addr;
    // Two connections that never start their handshake hold both places
    // (for less than the 10 s handshake timeout).
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A third one connects (the kernel's backlog) but gets no handshake.
    let ca = served.ca.clone();
    let mut third = tokio::spawn(async move {
        handshake(
            addr,
            &ca,
            vec![aws_lc_rs::kx_group::X25519MLKEM768],
            &[&rustls::version::TLS13],
        )
        .await
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut third)
            .await
            .is_err(),
        "a third connection was served while two held the places"
    );

    // One of the first two closes: the third is served.
    drop(first);
    let seen = tokio::time::timeout(Duration::from_secs(3), third)
        .await
        .unwrap_or_else(|_| unreachable!("the third connection got no place"))
        .unwrap()
        .unwrap();
    assert_eq!(seen.group, Some(NamedGroup::X25519MLKEM768));

    served.running.stop();
    served.running.wait().await.unwrap();
}
