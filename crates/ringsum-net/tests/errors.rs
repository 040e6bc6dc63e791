//! What a participant says when it cannot talk to the coordinator: a
//! certificate it does not accept fails at once with what to fix (not
//! after `give_up_after` of retries), and a coordinator that is not there
//! is retried, then named with its URL and the reason.

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use std::time::{Duration, Instant};

use common::*;
use ringsum_net::NetError;
use ringsum_net::participant::{ConnectOptions, fetch_status};
use ringsum_net::server::start;

/// Well within the retry budget the options give.
const AT_ONCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_coordinator_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let coordinator_dir = dir.path().join("coordinator");
    let other_dir = dir.path().join("other-federation");
    std::fs::create_dir_all(&coordinator_dir).unwrap();
    std::fs::create_dir_all(&other_dir).unwrap();
    let (cert, _) = ringsum_net::tls::self_signed(&coordinator_dir, &["localhost".into()]).unwrap();
    let (other, _) = ringsum_net::tls::self_signed(&other_dir, &["localhost".into()]).unwrap();
    let mut options = serve_options(&coordinator_dir);
    options.tls = Some(cert.clone());
    let description = description(&keys, 100, 2, 1);
    let pinned = pin(&description);
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let url = format!("https://localhost:{}", running.addr.port());
    let mut connect = ConnectOptions::new(&url);
    connect.give_up_after = Duration::from_secs(120);
    connect.federation = Some(pinned);

    // Another coordinator's certificate as the CA.
    connect.ca = Some(other.cert.clone());
    let started = Instant::now();
    let refused = tokio::time::timeout(AT_ONCE, fetch_status(&connect, client(dir.path(), 0)))
        .await
        .expect("a refused certificate must not be retried")
        .unwrap_err();
    assert!(started.elapsed() < AT_ONCE);
    let message = refused.to_string();
    assert!(
        matches!(&refused, NetError::Handshake { url: u, .. } if *u == url),
        "{message}"
    );
    assert!(
        message.contains("certificate was not accepted"),
        "{message}"
    );
    assert!(message.contains("check --ca"), "{message}");

    // A file that is not a certificate: refused at once too.
    connect.ca = Some(b"this is not a certificate\n".to_vec());
    let refused = tokio::time::timeout(AT_ONCE, fetch_status(&connect, client(dir.path(), 0)))
        .await
        .expect("a CA that is not a certificate must not be retried")
        .unwrap_err();
    assert!(refused.to_string().contains("--ca"), "{refused}");

    // The right one: the status comes.
    connect.ca = Some(cert.cert.clone());
    let status = tokio::time::timeout(AT_ONCE, fetch_status(&connect, client(dir.path(), 0)))
        .await
        .expect("the coordinator answers")
        .unwrap();
    assert_eq!(status.rounds, 1);
    running.stop_handle().stop();
    let _ = running.wait().await;
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or_else(|e| unreachable!("{e}"), |addr| addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_that_is_down_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path(), 0, 1);
    let (cert, _) = ringsum_net::tls::self_signed(dir.path(), &["localhost".into()]).unwrap();
    let port = closed_port();
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let mut connect = ConnectOptions::new(&url);
        connect.insecure_plaintext = url.starts_with("http://");
        connect.ca = Some(cert.cert.clone());
        connect.federation = Some(ringsum_pq::FederationId([1; 32]));
        connect.give_up_after = Duration::from_millis(600);
        let started = Instant::now();
        let down = tokio::time::timeout(AT_ONCE, fetch_status(&connect, client(dir.path(), 0)))
            .await
            .expect("gives up after give_up_after")
            .unwrap_err();
        let message = down.to_string();
        assert!(started.elapsed() >= connect.give_up_after, "{message}");
        assert!(
            matches!(&down, NetError::Unreachable { url: u, .. } if *u == url),
            "{message}"
        );
        assert!(
            message.contains(&format!("the coordinator at {url} cannot be reached")),
            "{message}"
        );
        assert!(message.contains("connection refused"), "{message}");
        assert!(!message.contains("currently unavailable"), "{message}");
    }
}
