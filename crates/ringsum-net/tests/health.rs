//! The standard gRPC health service beside the Federation service: asked
//! without any identity, it says SERVING while rounds run and NOT_SERVING
//! once every round has ended (while the service lingers) or once the
//! service stops; a `Watch` stream sees the change and does not hold the
//! service's shutdown.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a service that cannot be reached fails the test"
)]

#[expect(dead_code, reason = "this test uses only some of the shared helpers")]
mod common;

use std::time::{Duration, Instant};

use common::*;
use ringsum_net::participant::fetch_status;
use ringsum_net::proto::Phase;
use ringsum_net::server::start;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The name the health service reports the Federation service under.
const FEDERATION: &str = "ringsum.service.v2.Federation";

fn samples(i: usize) -> u64 {
    100 * (i as u64 + 1)
}

async fn health(url: &str) -> HealthClient<Channel> {
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

/// `Check` of `service`.
async fn check(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    client
        .check(request(service))
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Asks until `service` is `want` (at most 20 s).
async fn wait_for(client: &mut HealthClient<Channel>, service: &str, want: ServingStatus) {
    let started = Instant::now();
    loop {
        let status = check(client, service).await;
        if status == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{service:?} stayed {status:?}, never {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_while_rounds_run_not_serving_once_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let description = description(&keys, 10, 2, 2);
    let running = start(
        plan(dir.path(), description),
        serve_options(&dir.path().join("coordinator")),
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.addr);
    let mut probe = health(&url).await;
    wait_for(&mut probe, FEDERATION, ServingStatus::Serving).await;
    assert_eq!(check(&mut probe, "").await, ServingStatus::Serving);
    // A name it does not know.
    let unknown = probe.check(request("grpc.other.v1.Nothing")).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    // Anyone may ask, so nothing larger than a service name is read: a
    // stranger cannot make the coordinator buffer megabytes this way.
    let huge = probe.check(request(&"x".repeat(64 * 1024))).await;
    assert_eq!(huge.unwrap_err().code(), Code::OutOfRange);
    assert_eq!(check(&mut probe, "").await, ServingStatus::Serving);

    // A watcher sees SERVING, then NOT_SERVING once the service stops,
    // and its stream ends rather than hold the shutdown.
    let mut watch = probe.watch(request(FEDERATION)).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    running.stop();
    let mut seen = Vec::new();
    let watched = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(update)) = watch.message().await {
            seen.push(update.status());
        }
    })
    .await;
    assert!(watched.is_ok(), "the watch stream outlived the service");
    assert!(
        seen.iter().all(|s| *s == ServingStatus::NotServing),
        "{seen:?}"
    );
    let summary = tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!summary.finished);
    // Stopped: the connection is closed (or, if a call still gets
    // through, the answer is NOT_SERVING).
    if let Ok(reply) = probe.check(request(FEDERATION)).await {
        assert_eq!(reply.into_inner().status(), ServingStatus::NotServing);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_once_every_round_has_ended() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path(), 3, 3);
    let description = description(&keys, 10, 2, 1);
    let federation = pin(&description);
    let mut options = serve_options(&dir.path().join("coordinator"));
    options.timing.linger = Duration::from_secs(30);
    let running = start(plan(dir.path(), description), options).await.unwrap();
    let url = format!("http://{}", running.addr);
    let mut probe = health(&url).await;
    wait_for(&mut probe, FEDERATION, ServingStatus::Serving).await;
    let tasks = spawn_participants(&url, federation, dir.path(), 3, 3, None, samples);
    assert_eq!(results(tasks).await.len(), 3);
    // The service lingers (status answers "finished"), but reports that
    // it no longer runs rounds.
    wait_for(&mut probe, FEDERATION, ServingStatus::NotServing).await;
    assert_eq!(check(&mut probe, "").await, ServingStatus::NotServing);
    let status = fetch_status(&connect(&url, federation), client(dir.path(), 0))
        .await
        .unwrap();
    assert_eq!(status.phase(), Phase::Finished);
    running.stop();
    let summary = tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(summary.finished);
}
