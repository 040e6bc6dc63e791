//! The coordinator's service: the gRPC endpoints (`service.rs`), the limits
//! on what it accepts, the durable state and its recovery (`state.rs`), and
//! the driver that opens rounds, closes sets and ends rounds (`driver.rs`).
//!
//! Every state change goes through [`crate::engine::Engine::apply`] under
//! one lock and is recorded in the store (with the audit lines it
//! produced) before the caller hears "accepted". A crash at any point
//! loses at most messages nobody was told were accepted; their senders
//! send them again, and the same signed content of an accepted one is
//! answered "already accepted". Submissions are checked (signatures,
//! decoding, share bindings) outside the lock, in parallel.

mod driver;
mod guard;
mod health;
mod service;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use ringsum_pq::SigningIdentity;
use ringsum_protocol::spec::Federation;
use ringsum_threshold::HolderId;
use tokio::sync::watch;

use crate::description::SetupDescription;
use crate::engine::RoundEnd;
use crate::error::{NetError, Result};
use crate::proto::federation_server::FederationServer;
use crate::tls::CertificateFiles;

use self::guard::Guard;
use self::state::{Committer, Pending, State};

/// The default HTTP/2 flow-control window of a stream and of a
/// connection (bytes).
pub(crate) const WINDOW: u32 = 1 << 20;

/// Calls one connection may have open at once (participants make one or
/// two; each open call may hold its headers).
const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// The largest header block of a call (a proof of identity is about 4.6
/// KiB in base64).
const MAX_HEADER_LIST: u32 = 16 << 10;

/// What the service accepts. With the defaults, what strangers can make
/// the coordinator hold is at most `max_connections` × (the connection
/// window + 16 headers of 16 KiB) = 128 × 1.25 MiB = 160 MiB, and members
/// at most `max_inflight_bytes` = 64 MiB of messages besides: with the
/// state of 100 clients of 10^5 parameters (about 60 MB), under 300 MB.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest chunk of a streamed message (and, with framing, the
    /// largest gRPC message the server decodes).
    pub max_chunk: usize,
    /// Sustained state-changing calls per second per identity.
    pub writes_per_second: f64,
    /// Burst of state-changing calls per identity.
    pub write_burst: f64,
    /// Sustained queries per second per identity.
    pub reads_per_second: f64,
    /// Burst of queries per identity.
    pub read_burst: f64,
    /// Sustained calls per second from one address, checked before any
    /// proof of identity (many participants may share an address).
    pub peer_calls_per_second: f64,
    /// Burst of calls from one address.
    pub peer_burst: f64,
    /// Open connections at once (TCP and TLS handshakes included); a
    /// connection over the cap waits in the kernel's backlog.
    pub max_connections: usize,
    /// The HTTP/2 flow-control window of one stream (bytes): what a peer
    /// may send on a stream before the service reads it.
    pub stream_window: u32,
    /// The HTTP/2 flow-control window of one connection (bytes): with
    /// `max_connections`, it bounds what unauthenticated peers can make
    /// the service hold.
    pub connection_window: u32,
    /// Bytes of authenticated streamed messages held at once, over every
    /// sender.
    pub max_inflight_bytes: usize,
    /// Streamed messages one identity may send at once.
    pub max_streams_per_identity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chunk: 1 << 20,
            writes_per_second: 5.0,
            write_burst: 20.0,
            reads_per_second: 50.0,
            read_burst: 100.0,
            peer_calls_per_second: 2000.0,
            peer_burst: 4000.0,
            max_connections: 128,
            stream_window: WINDOW,
            connection_window: WINDOW,
            max_inflight_bytes: 64 << 20,
            max_streams_per_identity: 2,
        }
    }
}

/// When the driver acts.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How often the driver looks at the state.
    pub tick: Duration,
    /// How long a round collects before its set is closed with fewer than
    /// every client (but at least the policy's minimum).
    pub collect_timeout: Duration,
    /// How long the holders have to answer before the round is finished
    /// with the answers in (at least t), without the silent ones.
    pub holder_timeout: Duration,
    /// How long a round may stay short of `min_clients` submissions, or of
    /// t answers, before it is abandoned (recorded as failed in the audit
    /// log) and the next round opens.
    pub round_timeout: Duration,
    /// How often the log says that a round is waiting, and for what.
    pub report_every: Duration,
    /// How long the service keeps answering after the last round, so that
    /// participants fetch the final result.
    pub linger: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(20),
            collect_timeout: Duration::from_secs(300),
            holder_timeout: Duration::from_secs(10),
            round_timeout: Duration::from_secs(3600),
            report_every: Duration::from_secs(30),
            linger: Duration::from_secs(10),
        }
    }
}

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the store, the audit log and the models live.
    pub data_dir: PathBuf,
    /// The certificate; `None` serves plaintext (loopback tests and demos
    /// only: the CLI requires an explicit flag).
    pub tls: Option<CertificateFiles>,
    /// Limits.
    pub limits: Limits,
    /// Timing.
    pub timing: Timing,
}

/// The federation the coordinator runs.
#[derive(Debug)]
pub struct Plan {
    /// The description everyone rebuilds.
    pub description: SetupDescription,
    /// The coordinator's signing identity.
    pub identity: SigningIdentity,
    /// The initial global model.
    pub model: Vec<f32>,
}

/// How the service ended.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The rounds that ended, decoded or failed.
    pub ended: Vec<RoundEnd>,
    /// Whether every round has ended.
    pub finished: bool,
    /// The global model.
    pub model: Vec<f32>,
    /// Events replayed at start (0 on a first start).
    pub replayed: u64,
    /// Time the replay took.
    pub recovery: Duration,
    /// Audit lines.
    pub audit_lines: usize,
}

/// What the endpoints and the driver share.
struct Shared {
    state: RwLock<State>,
    pending: Mutex<Pending>,
    committer: Mutex<Committer>,
    limits: Limits,
    guard: Arc<Guard>,
    seen: Mutex<HashMap<HolderId, Instant>>,
    /// When the current phase began, as the driver saw it.
    phase_since: Mutex<Instant>,
    /// Submissions checked at once: as many as there are cores, so that
    /// checks do not crowd each other (and the engine's lock) off the CPU.
    checks: Arc<tokio::sync::Semaphore>,
    description: String,
    federation_hex: String,
    federation: Arc<Federation>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("federation", &self.federation_hex)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running service.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The federation id (hex).
    pub federation: String,
    /// Events replayed at start.
    pub replayed: u64,
    /// Time the replay took.
    pub recovery: Duration,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<Summary>>,
}

/// Stops a running service from elsewhere (a signal handler).
#[derive(Clone, Debug)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    /// Asks the service to stop.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Running {
    /// A handle that stops the service.
    #[must_use]
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Asks the service to stop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the service ends: after the last round (and the
    /// linger time) or [`Self::stop`].
    ///
    /// # Errors
    /// The server's transport error, or a failure to record.
    pub async fn wait(self) -> Result<Summary> {
        self.task.await?
    }
}

/// Recovers the coordinator's state from `options.data_dir` (replaying
/// every recorded event), binds, and serves until the last round has
/// ended (plus the linger time) or [`Running::stop`].
///
/// # Errors
/// A description the protocol refuses (a collective-key parameter set, a
/// threshold that is not a majority), a store of another federation, a
/// store that does not replay, or an address that cannot be bound.
pub async fn start(plan: Plan, options: ServeOptions) -> Result<Running> {
    let description = plan.description.to_json()?;
    let dir = options.data_dir.clone();
    let recovered = tokio::task::spawn_blocking(move || State::recover(plan, &dir)).await??;
    let federation = Arc::clone(recovered.state.engine.federation());
    let federation_hex = crate::federation_hex(federation.id());
    let (replayed, recovery) = (recovered.replayed, recovered.recovery);
    tracing::info!(
        federation = %federation_hex,
        replayed,
        recovery_ms = recovery.as_secs_f64() * 1e3,
        "coordinator state recovered"
    );
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: RwLock::new(recovered.state),
        pending: Mutex::new(Pending::default()),
        committer: Mutex::new(recovered.committer),
        limits: options.limits,
        guard: Arc::new(Guard::new(options.limits)),
        seen: Mutex::new(HashMap::new()),
        phase_since: Mutex::new(Instant::now()),
        checks: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )),
        description,
        federation_hex: federation_hex.clone(),
        federation,
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| NetError::Io {
            path: options.listen.to_string().into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| NetError::Io {
        path: options.listen.to_string().into(),
        source,
    })?;
    // Large HTTP/2 windows: a submission is megabytes, and the default
    // 64 KiB window would make every stream wait for acknowledgements.
    let mut builder = tonic::transport::Server::builder()
        // A stalled call cannot hold a stream (and its buffer) for ever.
        .timeout(Duration::from_secs(120))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .initial_stream_window_size(Some(options.limits.stream_window))
        .initial_connection_window_size(Some(options.limits.connection_window))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .http2_max_header_list_size(Some(MAX_HEADER_LIST));
    // TLS 1.3 with X25519MLKEM768 only, from our own rustls configuration
    // (tonic's would allow TLS 1.2 and classical groups): the connections
    // are accepted, capped and handshaken in `tls::incoming`.
    let tls = options
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let service = FederationServer::new(service::Service::new(Arc::clone(&shared)))
        .max_decoding_message_size(options.limits.max_chunk + 4096)
        // Replies are the service's own (bounded by the federation).
        .max_encoding_message_size(usize::MAX);
    // Every call is authenticated from its headers, before its body is
    // read: what a stranger can make the service hold is the flow-control
    // window of its connection.
    let admitting = Arc::clone(&shared);
    let service = tonic::service::interceptor::InterceptedService::new(
        service,
        move |request: tonic::Request<()>| admitting.admit(request),
    );
    // The standard health service, beside the Federation service and not
    // behind its checks: it asks for no identity and reveals one word.
    let (health_reporter, health_service) = health::service().await;
    let mut server_stop = stop_rx.clone();
    let incoming = crate::tls::incoming(
        listener,
        tls,
        options.limits.max_connections,
        stop_rx.clone(),
    );
    let server = builder
        .add_service(service)
        .add_service(health_service)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
    let driver = driver::drive(
        Arc::clone(&shared),
        options.timing,
        options.data_dir.clone(),
        stop_rx,
    );
    let health_report = health::report(
        health_reporter,
        Arc::clone(&shared),
        options.timing.tick,
        stop.subscribe(),
    );
    let stop_all = stop.clone();
    let task = tokio::spawn(async move {
        let server = tokio::spawn(server);
        tokio::spawn(health_report);
        let result = driver.await;
        let _ = stop_all.send(true);
        let served = server.await;
        let summary = result?;
        match served {
            Ok(Ok(())) => Ok(Summary {
                replayed,
                recovery,
                ..summary
            }),
            Ok(Err(e)) => Err(NetError::Transport(e)),
            Err(e) => Err(NetError::Task(e)),
        }
    });
    tracing::info!(%addr, tls = options.tls.is_some(), "serving");
    Ok(Running {
        addr,
        federation: federation_hex,
        replayed,
        recovery,
        stop,
        task,
    })
}
