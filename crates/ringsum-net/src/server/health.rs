//! The standard gRPC health service (`grpc.health.v1.Health`) beside the
//! Federation service, for load balancers and orchestrators
//! (`grpc_health_probe`, a Kubernetes gRPC probe, `grpcurl`).
//!
//! It names the whole server (`""`) and `ringsum.service.v2.Federation`:
//! NOT_SERVING until the state is recovered and the driver runs, SERVING
//! while rounds run, NOT_SERVING again once the last round has ended (the
//! service lingers so that participants fetch the final model) or the
//! service is stopping. It asks for no identity and says nothing about the
//! federation beyond that word.
//!
//! The answers are tonic-health's; only `Watch` is wrapped, so that its
//! streams end when the service stops: an open stream would otherwise hold
//! the server's graceful shutdown for ever.

use std::pin::Pin;
use std::sync::{Arc, TryLockError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

use super::Shared;
use crate::engine::Phase;
use crate::proto::federation_server::SERVICE_NAME;

/// The names whose health is reported: the whole server and the
/// Federation service.
const NAMES: [&str; 2] = ["", SERVICE_NAME];

/// The health endpoint.
pub(super) struct Probe {
    inner: HealthService,
    /// Turns true once the service stops: `Watch` streams end then.
    closed: watch::Receiver<bool>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

/// What [`report`] needs to drive the health the endpoint serves.
#[derive(Debug)]
pub(super) struct Reporter {
    reporter: HealthReporter,
    closed: watch::Sender<bool>,
}

/// The largest health request or answer: a service name and a status.
const MAX_HEALTH_REQUEST: usize = 512;

/// The health endpoint, every name NOT_SERVING, and its reporter.
pub(super) async fn service() -> (Reporter, HealthServer<Probe>) {
    let reporter = HealthReporter::new();
    set(&reporter, ServingStatus::NotServing).await;
    let (closed, closed_rx) = watch::channel(false);
    let probe = Probe {
        inner: HealthService::from_health_reporter(reporter.clone()),
        closed: closed_rx,
    };
    // Anyone may ask, unauthenticated: a request is a service name, so
    // nothing larger is read (tonic's default would buffer 4 MiB a call).
    let server = HealthServer::new(probe)
        .max_decoding_message_size(MAX_HEALTH_REQUEST)
        .max_encoding_message_size(MAX_HEALTH_REQUEST);
    (Reporter { reporter, closed }, server)
}

async fn set(reporter: &HealthReporter, status: ServingStatus) {
    for name in NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Whether every round has ended; `None` while the state is locked for
/// writing (the driver or an endpoint is changing it: ask again later
/// rather than hold a runtime thread).
fn finished(shared: &Shared) -> Option<bool> {
    match shared.state.try_read() {
        Ok(state) => Some(state.engine.phase() == Phase::Finished),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner().engine.phase() == Phase::Finished),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Reports SERVING while rounds run and NOT_SERVING once every round has
/// ended or `stop` turns true (looking every `tick`); once stopped, ends
/// the `Watch` streams. Runs beside the driver, from its start.
pub(super) async fn report(
    health: Reporter,
    shared: Arc<Shared>,
    tick: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut serving = false;
    loop {
        if *stop.borrow_and_update() || finished(&shared) == Some(true) {
            break;
        }
        if !serving {
            serving = true;
            set(&health.reporter, ServingStatus::Serving).await;
            tracing::debug!("health: serving");
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(tick) => {}
        }
    }
    set(&health.reporter, ServingStatus::NotServing).await;
    tracing::debug!("health: not serving");
    // NOT_SERVING while the service lingers; the streams end when it stops
    // (or when every handle that could stop it is gone).
    let _ = stop.wait_for(|s| *s).await;
    let _ = health.closed.send(true);
}

#[tonic::async_trait]
impl Health for Probe {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = Until;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let inner = self.inner.watch(request).await?.into_inner();
        let mut closed = self.closed.clone();
        Ok(Response::new(Until {
            inner: Box::pin(inner),
            closed: Box::pin(async move {
                let _ = closed.wait_for(|c| *c).await;
            }),
            ended: false,
        }))
    }
}

/// A `Watch` stream that ends once the service stops, after the updates
/// it has not yet passed on (the last NOT_SERVING among them).
pub(super) struct Until {
    inner: Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl std::fmt::Debug for Until {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Until").finish_non_exhaustive()
    }
}

impl Stream for Until {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.as_mut().poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.closed.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
