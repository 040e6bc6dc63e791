//! The service over TLS: the handshake settles on the hybrid
//! post-quantum key exchange X25519MLKEM768, a federation runs over it,
//! and a participant that does not trust the certificate gets nowhere.

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ringsum_net::participant::{run_client, run_holder};
use ringsum_net::server::start;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_prefers_x25519mlkem768_and_carries_a_federation() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let coordinator_dir = dir.path().join("coordinator");
    std::fs::create_dir_all(&coordinator_dir).unwrap();
    let (cert, cert_path) =
        ringsum_net::tls::self_signed(&coordinator_dir, &["localhost".into()]).unwrap();
    let mut options = serve_options(&coordinator_dir);
    options.tls = Some(cert.clone());
    let description = description(&keys, 500, 2, 1);
    let pinned = pin(&description);
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let addr = running.addr;

    // A TLS 1.3 client that offers nothing but the hybrid group.
    let pem = cert.cert.clone();
    let group = tokio::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&pem).unwrap())
            .unwrap();
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let mut connection =
            rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
                .unwrap();
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        while connection.is_handshaking() {
            connection.complete_io(&mut socket).unwrap();
        }
        connection.negotiated_key_exchange_group().unwrap().name()
    })
    .await
    .unwrap();
    assert_eq!(group, rustls::NamedGroup::X25519MLKEM768);
    // And the service offers it first.
    assert_eq!(
        ringsum_net::tls::key_exchange_groups()
            .first()
            .map(String::as_str),
        Some("X25519MLKEM768")
    );

    let url = format!("https://localhost:{}", addr.port());
    let ca = std::fs::read(&cert_path).unwrap();

    // Without the certificate: no connection, and no plaintext fallback.
    let mut untrusting = holder_options(&url, pinned, dir.path(), 0);
    untrusting.connect.insecure_plaintext = false;
    untrusting.connect.give_up_after = Duration::from_millis(500);
    let (id, sealing) = holder(dir.path(), 0);
    assert!(run_holder(untrusting, id, sealing).await.is_err());
    let mut plain = client_options(&format!("http://{addr}"), pinned, dir.path(), 0);
    plain.connect.insecure_plaintext = false;
    let refused = run_client(
        plain,
        client(dir.path(), 0),
        Box::new(Synthetic {
            index: 0,
            samples: 10,
        }),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("plaintext flag"), "{refused}");

    let tasks = spawn_participants(&url, pinned, dir.path(), 3, 3, Some(&ca), |_| 1000);
    let results = results(tasks).await;
    let summary = running.wait().await.unwrap();
    assert!(summary.finished);
    assert_eq!(results.len(), 3);
    for v in &summary.model {
        assert!(
            (f64::from(*v) - 0.02).abs() <= results[0].error_bound,
            "{v}"
        );
    }
}
