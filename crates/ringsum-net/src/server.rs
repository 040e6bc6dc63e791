//! The coordinator's service: the gRPC endpoints, the limits on what it
//! accepts, and the driver that moves the federation from the ceremony
//! through the rounds.
//!
//! Every state change goes through [`Engine::apply`] under one lock and is
//! recorded in the store (with the audit lines it produced) before the
//! caller hears "accepted". A crash at any point loses at most messages
//! nobody was told were accepted; those are sent again by their
//! participants, and the identical bytes of an accepted one are answered
//! "already accepted".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringsum_pq::codec::unhex;
use ringsum_pq::{Envelope, MessageKind, ParticipantId, Role, SigningIdentity};
use ringsum_protocol::Setup;
use ringsum_threshold::HolderId;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::description::{SetupDescription, federation_hex};
use crate::engine::{Engine, Event, Outcome, Phase, PreparedSubmission, Refusal, max_payload};
use crate::error::{NetError, Result};
use crate::proto::federation_server::{Federation, FederationServer};
use crate::proto::{Ack, Caller, CeremonyReply, Chunk, RoundReply, SetupReply, StatusReply};
use crate::store::CoordinatorStore;
use crate::tls::CertificateFiles;

/// The HTTP/2 flow-control window of a stream (bytes).
pub(crate) const WINDOW: u32 = 8 << 20;

/// What the service accepts.
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chunk: 1 << 20,
            writes_per_second: 5.0,
            write_burst: 20.0,
            reads_per_second: 50.0,
            read_burst: 100.0,
        }
    }
}

/// When the driver acts.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How often the driver looks at the state.
    pub tick: Duration,
    /// How long a round collects before it is decrypted with fewer than
    /// every client (but at least the policy's minimum).
    pub collect_timeout: Duration,
    /// How long a holder may stay silent before it is counted unavailable
    /// (and a decryption it owes is retried with others).
    pub holder_timeout: Duration,
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
            linger: Duration::from_secs(10),
        }
    }
}

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the store, the audit log and the final model live.
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
    /// The setup everyone rebuilds.
    pub description: SetupDescription,
    /// The coordinator's signing identity.
    pub identity: SigningIdentity,
    /// The initial global model.
    pub model: Vec<f32>,
}

/// How the service ended.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The last decrypted round.
    pub round: u64,
    /// Whether every round was done.
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

struct State {
    engine: Engine,
    /// Applied events (with their audit lines) not yet recorded.
    pending: Vec<(Vec<u8>, Vec<String>)>,
    /// Events applied since the start that must be recorded.
    seq: u64,
    failed: Option<String>,
}

/// The store, and how far it is written: one commit records every pending
/// event (group commit), so concurrent submissions share an fsync.
struct Committer {
    store: CoordinatorStore,
    audit_file: PathBuf,
    committed: u64,
}

/// A rate-limit bucket's owner: participant, peer address, writes or reads.
type BucketKey = (ParticipantId, Option<std::net::IpAddr>, bool);

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Shared {
    state: Mutex<State>,
    limits: Limits,
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
    seen: Mutex<HashMap<HolderId, Instant>>,
    description: String,
    federation: String,
    clients: usize,
    /// The setup (fixed for the service's life: it serves no rotations or
    /// revocations), for checks outside the lock.
    setup: Arc<Setup>,
    committer: Mutex<Committer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn audit_hash(line: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("hash")?
        .as_str()
        .map(str::to_owned)
}

/// Replaces `path` with `bytes` through a temporary file beside it, so a
/// reader never sees half a file.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path))
}

fn write_audit_file(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    replace_file(path, text.as_bytes()).map_err(|source| NetError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn append_audit_file(path: &Path, lines: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    for line in lines {
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
    }
    file.flush()
}

impl State {
    /// Opens the store in `dir` and replays it into a fresh engine.
    fn recover(plan: Plan, dir: &Path) -> Result<(Self, Committer, u64, Duration)> {
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(|source| NetError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("coordinator.redb");
        let mut store = CoordinatorStore::open(&path)?;
        let description = plan.description.to_json()?;
        let model_bytes: Vec<u8> = plan.model.iter().flat_map(|v| v.to_le_bytes()).collect();
        let seed = match (store.meta("description")?, store.meta("rng_seed")?) {
            (Some(stored), Some(seed)) => {
                if stored != description.as_bytes()
                    || store.meta("initial_model")?.as_deref() != Some(model_bytes.as_slice())
                {
                    return Err(NetError::Config(format!(
                        "{} belongs to another federation or initial model: use a new data directory",
                        path.display()
                    )));
                }
                seed.try_into().map_err(|_| {
                    NetError::Config("the stored generator seed is malformed".into())
                })?
            }
            _ => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| NetError::Config(e.to_string()))?;
                store.set_meta(&[
                    ("description", description.as_bytes()),
                    ("initial_model", &model_bytes),
                    ("rng_seed", &seed),
                ])?;
                seed
            }
        };
        let setup = plan.description.setup()?;
        let mut engine = Engine::new(
            setup,
            plan.description.rounds,
            plan.identity,
            plan.model,
            seed,
        )?;
        let events = store
            .events()?
            .iter()
            .map(|b| Event::decode(b))
            .collect::<Result<Vec<_>>>()?;
        let replayed = events.len() as u64;
        // The costly part of each submission, on every core at once.
        let max_submission = max_payload(engine.setup(), MessageKind::UpdateSubmission);
        let prepared: Vec<Option<PreparedSubmission>> = {
            use rayon::prelude::*;
            let setup = engine.setup();
            events
                .par_iter()
                .map(|e| match e {
                    Event::Submission(b) => Some(PreparedSubmission::new(setup, max_submission, b)),
                    _ => None,
                })
                .collect()
        };
        for (i, (event, prepared)) in events.iter().zip(prepared).enumerate() {
            let applied = engine.apply_prepared(event, prepared);
            if !applied.record {
                return Err(NetError::Config(format!(
                    "recorded event {i} no longer applies: the store was written by another version"
                )));
            }
        }
        let stored = store.audit_lines()?;
        let regenerated = engine.audit_lines();
        if stored.len() > regenerated.len()
            || stored
                .iter()
                .zip(regenerated)
                .any(|(a, b)| audit_hash(a) != audit_hash(b))
        {
            return Err(NetError::Config(
                "replaying the store does not reproduce its audit chain".into(),
            ));
        }
        // Lines produced without an event (the setup line on a first start).
        let missing: Vec<String> = regenerated.get(stored.len()..).unwrap_or_default().to_vec();
        store.record(&[], &missing)?;
        // The file gets the recorded lines, with their original signatures
        // (the replay's carry fresh ones over the same hashes).
        let mut audit = stored;
        audit.extend(missing);
        let audit_file = dir.join("audit.jsonl");
        write_audit_file(&audit_file, &audit)?;
        Ok((
            Self {
                engine,
                pending: Vec::new(),
                seq: 0,
                failed: None,
            },
            Committer {
                store,
                audit_file,
                committed: 0,
            },
            replayed,
            started.elapsed(),
        ))
    }

    /// Applies a live event. If it must be recorded, returns its sequence
    /// number: the caller tells nobody about it before [`Shared::flush`]
    /// has recorded it.
    fn apply(&mut self, event: &Event) -> std::result::Result<(Outcome, Option<u64>), Status> {
        self.apply_prepared(event, None)
    }

    fn apply_prepared(
        &mut self,
        event: &Event,
        prepared: Option<PreparedSubmission>,
    ) -> std::result::Result<(Outcome, Option<u64>), Status> {
        if let Some(reason) = &self.failed {
            return Err(Status::unavailable(format!(
                "the coordinator stopped: {reason}"
            )));
        }
        let before = self.engine.audit_lines().len();
        let applied = self.engine.apply_prepared(event, prepared);
        if !applied.record {
            return Ok((applied.outcome, None));
        }
        let lines = self
            .engine
            .audit_lines()
            .get(before..)
            .unwrap_or_default()
            .to_vec();
        self.pending.push((event.encode(), lines));
        self.seq += 1;
        Ok((applied.outcome, Some(self.seq)))
    }
}

fn refusal_status(refusal: &Refusal) -> Status {
    match refusal {
        Refusal::Invalid(m) => Status::invalid_argument(m.clone()),
        Refusal::Unauthorized(m) => Status::permission_denied(m.clone()),
        Refusal::Conflict(m) => Status::already_exists(m.clone()),
        Refusal::Phase(m) => Status::failed_precondition(m.clone()),
    }
}

fn peer<T>(request: &Request<T>) -> Option<std::net::IpAddr> {
    request.remote_addr().map(|a| a.ip())
}

fn parse_caller(text: &str) -> std::result::Result<ParticipantId, Status> {
    let bytes: [u8; 32] = unhex(text).and_then(|b| b.try_into().ok()).ok_or_else(|| {
        Status::invalid_argument("the caller must be a participant id (64 hex digits)")
    })?;
    Ok(ParticipantId(bytes))
}

impl Shared {
    /// Records every applied event up to sequence number `upto` (and any
    /// pending after it) in one durable transaction, unless another caller
    /// already did.
    fn flush(&self, upto: u64) -> std::result::Result<(), Status> {
        let mut committer = lock(&self.committer);
        if let Some(reason) = &lock(&self.state).failed {
            return Err(Status::unavailable(format!(
                "the coordinator stopped: {reason}"
            )));
        }
        if committer.committed >= upto {
            return Ok(());
        }
        let batch = std::mem::take(&mut lock(&self.state).pending);
        let events: Vec<&[u8]> = batch.iter().map(|(e, _)| e.as_slice()).collect();
        let lines: Vec<String> = batch.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
        if let Err(e) = committer.store.record(&events, &lines) {
            // The engine moved past what the store holds: stop, and let a
            // restart replay the store.
            tracing::error!(error = %e, "cannot record events; stopping");
            lock(&self.state).failed = Some(e.to_string());
            return Err(Status::unavailable(
                "the coordinator cannot record; it stops",
            ));
        }
        committer.committed += batch.len() as u64;
        if let Err(e) = append_audit_file(&committer.audit_file, &lines) {
            tracing::warn!(error = %e, "cannot append to the audit file (the store has the lines)");
        }
        tracing::debug!(events = batch.len(), "recorded");
        if committer.committed < upto {
            // Events before ours were lost by a failed commit.
            return Err(Status::unavailable(
                "the coordinator cannot record; it stops",
            ));
        }
        Ok(())
    }

    /// Notes that key holder `id` (if it is one) asked for news.
    fn mark_seen(&self, id: ParticipantId) {
        if let Some(h) = self.setup.holder_of(id) {
            lock(&self.seen).insert(h, Instant::now());
        }
    }

    /// Records everything applied so far.
    fn flush_all(&self) -> std::result::Result<(), Status> {
        let seq = lock(&self.state).seq;
        self.flush(seq)
    }

    /// Before a read: everything it can show is recorded, so nobody acts
    /// on state a crash could take back.
    async fn committed(self: &Arc<Self>) -> std::result::Result<(), Status> {
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || shared.flush_all())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
    }

    fn check_member(&self, id: &ParticipantId) -> std::result::Result<Role, Status> {
        let state = lock(&self.state);
        let registry = &state.engine.setup().registry;
        if let Some(reason) = registry.revocation(id) {
            tracing::warn!(participant = %id, ?reason, "refused: revoked identity");
            return Err(Status::permission_denied(format!(
                "participant {id} is revoked"
            )));
        }
        registry.get(id).map(|p| p.role).ok_or_else(|| {
            tracing::warn!(participant = %id, "refused: not on the allow-list");
            Status::permission_denied(format!("participant {id} is not on the allow-list"))
        })
    }

    /// Takes a token from the bucket of `id` calling from `peer`: keyed by
    /// both, so that a caller naming someone else's id from another address
    /// cannot use up that participant's budget.
    fn rate(
        &self,
        id: ParticipantId,
        peer: Option<std::net::IpAddr>,
        write: bool,
    ) -> std::result::Result<(), Status> {
        let (per_second, burst) = if write {
            (self.limits.writes_per_second, self.limits.write_burst)
        } else {
            (self.limits.reads_per_second, self.limits.read_burst)
        };
        let mut buckets = lock(&self.buckets);
        let now = Instant::now();
        let bucket = buckets.entry((id, peer, write)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            tracing::warn!(participant = %id, write, "refused: rate limit");
            return Err(Status::resource_exhausted(format!(
                "rate limit: at most {per_second} {} per second for participant {id}",
                if write { "messages" } else { "queries" }
            )));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    fn caller(
        &self,
        caller: &Caller,
        peer: Option<std::net::IpAddr>,
        write: bool,
    ) -> std::result::Result<(ParticipantId, Role), Status> {
        let id = parse_caller(&caller.participant)?;
        let role = self.check_member(&id)?;
        self.rate(id, peer, write)?;
        Ok((id, role))
    }

    async fn apply(
        self: &Arc<Self>,
        event: Event,
        prepared: Option<PreparedSubmission>,
        what: &'static str,
        sender: ParticipantId,
    ) -> std::result::Result<Response<Ack>, Status> {
        let shared = Arc::clone(self);
        let outcome = tokio::task::spawn_blocking(move || {
            let (outcome, seq) = lock(&shared.state).apply_prepared(&event, prepared)?;
            match seq {
                Some(seq) => shared.flush(seq)?,
                // "Already accepted" only once the original is recorded.
                None if matches!(outcome, Outcome::Duplicate) => shared.flush_all()?,
                None => {}
            }
            Ok::<_, Status>(outcome)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        match outcome {
            Outcome::Accepted => {
                tracing::info!(%sender, what, "accepted");
                Ok(Response::new(Ack {
                    status: "accepted".into(),
                }))
            }
            Outcome::Duplicate => {
                tracing::info!(%sender, what, "already accepted");
                Ok(Response::new(Ack {
                    status: "already accepted".into(),
                }))
            }
            Outcome::Refused(r) => {
                tracing::warn!(%sender, what, reason = %r, "refused");
                Err(refusal_status(&r))
            }
        }
    }

    /// Reads a streamed message of at most `max` bytes.
    async fn collect(
        &self,
        mut stream: Streaming<Chunk>,
        max: usize,
    ) -> std::result::Result<Vec<u8>, Status> {
        let mut out: Option<Vec<u8>> = None;
        let mut total = 0usize;
        while let Some(chunk) = stream.message().await? {
            if chunk.data.len() > self.limits.max_chunk {
                return Err(Status::resource_exhausted(format!(
                    "a chunk of {} bytes exceeds the limit of {}",
                    chunk.data.len(),
                    self.limits.max_chunk
                )));
            }
            let buffer = match &mut out {
                Some(b) => {
                    if chunk.total != 0 && usize::try_from(chunk.total).ok() != Some(total) {
                        return Err(Status::invalid_argument(
                            "the chunks disagree on the total length",
                        ));
                    }
                    b
                }
                None => {
                    total = usize::try_from(chunk.total).unwrap_or(usize::MAX);
                    if total > max {
                        tracing::warn!(total, max, "refused: oversized message");
                        return Err(Status::resource_exhausted(format!(
                            "a message of {total} bytes exceeds the limit of {max}"
                        )));
                    }
                    // Grows with what arrives, not with what is claimed.
                    out.insert(Vec::new())
                }
            };
            if buffer.len() + chunk.data.len() > total {
                return Err(Status::invalid_argument(
                    "the chunks exceed the stated total length",
                ));
            }
            buffer.extend_from_slice(&chunk.data);
        }
        let buffer = out.ok_or_else(|| Status::invalid_argument("an empty message"))?;
        if buffer.len() != total {
            return Err(Status::invalid_argument(format!(
                "truncated: {} of {total} bytes",
                buffer.len()
            )));
        }
        Ok(buffer)
    }

    /// Reads a streamed envelope of `kind`, checks its sender against the
    /// allow-list and the rate limit, and applies it.
    async fn streamed(
        self: &Arc<Self>,
        peer: Option<std::net::IpAddr>,
        stream: Streaming<Chunk>,
        kind: MessageKind,
        event: fn(Vec<u8>) -> Event,
        what: &'static str,
    ) -> std::result::Result<Response<Ack>, Status> {
        let max_payload = max_payload(&self.setup, kind);
        let bytes = self.collect(stream, max_payload + 16_384).await?;
        let shared = Arc::clone(self);
        let (sender, prepared) = tokio::task::spawn_blocking(move || {
            shared
                .authenticate(&bytes, max_payload, Some(kind), what, peer)
                .map(|(sender, envelope)| {
                    let prepared = (kind == MessageKind::UpdateSubmission)
                        .then(|| PreparedSubmission::from_envelope(&shared.setup, envelope));
                    (sender, (bytes, prepared))
                })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        self.apply(event(prepared.0), prepared.1, what, sender)
            .await
    }

    /// Parses an envelope and checks, before anything is recorded, that
    /// its sender is on the allow-list in the role that sends `kind` (a
    /// submission: a client; otherwise a key holder) and that it is of
    /// that kind (when given),
    /// within its rate, and that the signature verifies: nothing forged
    /// reaches the protocol or its audit log.
    fn authenticate(
        &self,
        bytes: &[u8],
        max_payload: usize,
        kind: Option<MessageKind>,
        what: &'static str,
        peer: Option<std::net::IpAddr>,
    ) -> std::result::Result<(ParticipantId, Envelope), Status> {
        let envelope = Envelope::from_bytes(bytes, max_payload).map_err(|e| {
            tracing::warn!(error = %e, what, "refused: malformed envelope");
            Status::invalid_argument(format!("not a valid envelope: {e}"))
        })?;
        let sender = envelope.sender();
        let role = self.check_member(&sender)?;
        let allowed = match kind {
            Some(MessageKind::UpdateSubmission) => Role::Client,
            _ => Role::KeyHolder,
        };
        if role != allowed || kind.is_some_and(|k| envelope.routing().kind != k) {
            tracing::warn!(%sender, what, "refused: wrong role or kind");
            return Err(Status::permission_denied(format!(
                "a {} may not send this as a {what}",
                role.name()
            )));
        }
        self.rate(sender, peer, true)?;
        self.setup.registry.authenticate(&envelope).map_err(|e| {
            tracing::warn!(%sender, what, error = %e, "refused: not authentic");
            Status::permission_denied(e.to_string())
        })?;
        Ok((sender, envelope))
    }
}

#[derive(Clone)]
struct Service(Arc<Shared>);

type ChunkStream = Pin<Box<dyn Stream<Item = std::result::Result<Chunk, Status>> + Send>>;

fn chunk_stream(bytes: &[u8], size: usize) -> ChunkStream {
    Box::pin(tokio_stream::iter(
        crate::chunks(bytes, size).into_iter().map(Ok),
    ))
}

#[tonic::async_trait]
impl Federation for Service {
    async fn get_setup(
        &self,
        request: Request<Caller>,
    ) -> std::result::Result<Response<SetupReply>, Status> {
        let (id, role) = self.0.caller(request.get_ref(), peer(&request), false)?;
        tracing::info!(participant = %id, ?role, "setup fetched");
        Ok(Response::new(SetupReply {
            setup: self.0.description.clone(),
            federation: self.0.federation.clone(),
        }))
    }

    async fn post_ceremony(
        &self,
        request: Request<crate::proto::Envelope>,
    ) -> std::result::Result<Response<Ack>, Status> {
        let from = peer(&request);
        let bytes = request.into_inner().envelope;
        let max_payload = max_payload(&self.0.setup, MessageKind::SecretShare);
        let shared = Arc::clone(&self.0);
        let (sender, bytes) = tokio::task::spawn_blocking(move || {
            // Which ceremony message it is, the protocol checks.
            let (sender, _) =
                shared.authenticate(&bytes, max_payload, None, "ceremony message", from)?;
            Ok::<_, Status>((sender, bytes))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        self.0
            .apply(Event::Ceremony(bytes), None, "ceremony message", sender)
            .await
    }

    async fn get_ceremony(
        &self,
        request: Request<Caller>,
    ) -> std::result::Result<Response<CeremonyReply>, Status> {
        let (id, _) = self.0.caller(request.get_ref(), peer(&request), false)?;
        self.0.committed().await?;
        let view = lock(&self.0.state).engine.ceremony_view(&id);
        Ok(Response::new(CeremonyReply {
            commitments: view.commitments,
            public_shares: view.public_shares,
            sealed_shares: view.sealed,
            collective_key: view.announcement.unwrap_or_default(),
        }))
    }

    async fn get_round(
        &self,
        request: Request<Caller>,
    ) -> std::result::Result<Response<RoundReply>, Status> {
        let (id, _) = self.0.caller(request.get_ref(), peer(&request), false)?;
        self.0.committed().await?;
        self.0.mark_seen(id);
        let state = lock(&self.0.state);
        let engine = &state.engine;
        let (commitments, public_shares, sealed, announced) = engine.ceremony_counts(&id);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(RoundReply {
            commitments: count(commitments),
            public_shares: count(public_shares),
            sealed_for_caller: count(sealed),
            key_announced: announced,
            round: engine.round(),
            phase: engine.phase().name().into(),
            publication: engine.publication().map(<[u8]>::to_vec).unwrap_or_default(),
            submitted: engine.has_submitted(&id),
            rounds: engine.rounds(),
        }))
    }

    type GetTaskStream = ChunkStream;

    async fn get_task(
        &self,
        request: Request<Caller>,
    ) -> std::result::Result<Response<ChunkStream>, Status> {
        let (id, role) = self.0.caller(request.get_ref(), peer(&request), false)?;
        if role != Role::KeyHolder {
            return Err(Status::permission_denied("only key holders decrypt"));
        }
        let shared = Arc::clone(&self.0);
        let task = tokio::task::spawn_blocking(move || {
            // Only a recorded request is handed out.
            shared.flush_all()?;
            shared.mark_seen(id);
            Ok::<_, Status>(lock(&shared.state).engine.task(&id))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        let bytes = match task {
            Some((request, aggregate)) => {
                let mut out = (request.len() as u64).to_be_bytes().to_vec();
                out.extend_from_slice(&request);
                out.extend_from_slice(&aggregate);
                out
            }
            None => Vec::new(),
        };
        Ok(Response::new(chunk_stream(&bytes, self.0.limits.max_chunk)))
    }

    async fn submit(
        &self,
        request: Request<Streaming<Chunk>>,
    ) -> std::result::Result<Response<Ack>, Status> {
        self.0
            .streamed(
                peer(&request),
                request.into_inner(),
                MessageKind::UpdateSubmission,
                Event::Submission,
                "submission",
            )
            .await
    }

    async fn post_share(
        &self,
        request: Request<Streaming<Chunk>>,
    ) -> std::result::Result<Response<Ack>, Status> {
        self.0
            .streamed(
                peer(&request),
                request.into_inner(),
                MessageKind::DecryptionShare,
                Event::Share,
                "decryption share",
            )
            .await
    }

    async fn status(
        &self,
        request: Request<Caller>,
    ) -> std::result::Result<Response<StatusReply>, Status> {
        self.0.caller(request.get_ref(), peer(&request), false)?;
        self.0.committed().await?;
        let state = lock(&self.0.state);
        let engine = &state.engine;
        Ok(Response::new(StatusReply {
            round: engine.round(),
            phase: engine.phase().name().into(),
            rounds: engine.rounds(),
            accepted: engine.accepted() as u64,
            clients: self.0.clients as u64,
            missing_holders: engine.missing_holders().iter().map(|h| h.0).collect(),
            audit_lines: engine.audit_lines().len() as u64,
            audit_head: engine
                .audit_lines()
                .last()
                .and_then(|l| audit_hash(l))
                .unwrap_or_default(),
        }))
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
        self.task
            .await
            .map_err(|e| NetError::Config(format!("the service task failed: {e}")))?
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("federation", &self.federation)
            .finish_non_exhaustive()
    }
}

/// What the driver decides now, if anything.
fn decide(
    state: &State,
    seen: &HashMap<HolderId, Instant>,
    since: Instant,
    timing: &Timing,
    clients: usize,
) -> Option<Event> {
    let engine = &state.engine;
    let setup = engine.setup();
    let now = Instant::now();
    let live: Vec<HolderId> = setup
        .holders
        .keys()
        .copied()
        .filter(|h| {
            seen.get(h)
                .is_some_and(|t| now.duration_since(*t) < timing.holder_timeout)
        })
        .collect();
    let threshold = usize::try_from(setup.committee.threshold()).unwrap_or(usize::MAX);
    match engine.phase() {
        Phase::Ceremony => engine.key_ready().then_some(Event::CollectKey),
        Phase::Between => {
            (engine.round() < engine.rounds()).then(|| Event::Open(engine.round() + 1))
        }
        Phase::Collecting => {
            let accepted = engine.accepted();
            let due = accepted >= clients
                || (now.duration_since(since) >= timing.collect_timeout
                    && accepted >= setup.policy.min_clients);
            (due && live.len() >= threshold).then_some(Event::Request(live))
        }
        Phase::Decrypting => {
            let missing = engine.missing_holders();
            if missing.is_empty() {
                // Every share came and combining failed (a bad share, or
                // declared samples that do not match the weights): ask a
                // new set, after a pause.
                return (now.duration_since(since) >= timing.holder_timeout
                    && live.len() >= threshold)
                    .then_some(Event::Retry(live));
            }
            // Each request has its deadline: holders that did not answer
            // within it are left out of the next set, however often they
            // (or someone naming them) poll.
            let others: Vec<HolderId> = live.into_iter().filter(|h| !missing.contains(h)).collect();
            (now.duration_since(since) >= timing.holder_timeout && others.len() >= threshold)
                .then_some(Event::Retry(others))
        }
        Phase::Finished => None,
    }
}

async fn drive(
    shared: Arc<Shared>,
    timing: Timing,
    data_dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) -> Result<Summary> {
    let mut since = Instant::now();
    let mut last = (u64::MAX, Phase::Ceremony);
    let mut finished_at: Option<Instant> = None;
    let mut refused_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(timing.tick) => {}
            _ = stop.changed() => break,
        }
        let step = Arc::clone(&shared);
        let dir = data_dir.clone();
        let (phase, round, failed, decided) = tokio::task::spawn_blocking(move || {
            // Record whatever is pending, and stop if that fails.
            let _ = step.flush_all();
            let mut state = lock(&step.state);
            let seen = lock(&step.seen).clone();
            let now = (state.engine.round(), state.engine.phase());
            let since_now = if now == last { since } else { Instant::now() };
            let mut decided = None;
            let paused = refused_at.is_some_and(|t: Instant| t.elapsed() < timing.holder_timeout);
            if let Some(event) = decide(&state, &seen, since_now, &timing, step.clients).filter(|_| !paused) {
                match state.apply(&event).map(|(o, _)| o) {
                    Ok(Outcome::Accepted) => {
                        tracing::info!(
                            decision = event_name(&event),
                            round = state.engine.round(),
                            "driver"
                        );
                        decided = Some(true);
                    }
                    Ok(Outcome::Refused(r)) => {
                        tracing::warn!(reason = %r, decision = event_name(&event), "driver decision refused; pausing");
                        decided = Some(false);
                    }
                    Ok(Outcome::Duplicate) | Err(_) => {}
                }
            }
            drop(state);
            let _ = step.flush_all();
            let state = lock(&step.state);
            if state.engine.phase() == Phase::Finished && state.failed.is_none() {
                let model = dir.join("final-model.json");
                if !model.exists() {
                    let json = serde_json::to_string(state.engine.model()).unwrap_or_default();
                    if let Err(e) = replace_file(&model, json.as_bytes()) {
                        tracing::warn!(error = %e, "cannot write the final model");
                    }
                }
            }
            (
                state.engine.phase(),
                state.engine.round(),
                state.failed.clone(),
                decided,
            )
        })
        .await
        .map_err(|e| NetError::Config(format!("the driver failed: {e}")))?;
        if let Some(reason) = failed {
            return Err(NetError::Store {
                path: data_dir.display().to_string(),
                reason,
            });
        }
        match decided {
            Some(true) => since = Instant::now(),
            Some(false) => refused_at = Some(Instant::now()),
            None => {}
        }
        if (round, phase) != last {
            since = Instant::now();
            last = (round, phase);
            tracing::info!(round, phase = phase.name(), "federation");
        }
        if phase == Phase::Finished {
            let at = *finished_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= timing.linger {
                break;
            }
        }
    }
    let state = lock(&shared.state);
    Ok(Summary {
        round: state.engine.result().map_or(0, |r| r.round),
        finished: state.engine.phase() == Phase::Finished,
        model: state.engine.model().to_vec(),
        replayed: 0,
        recovery: Duration::ZERO,
        audit_lines: state.engine.audit_lines().len(),
    })
}

const fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Ceremony(_) => "ceremony",
        Event::CollectKey => "collective key announced",
        Event::Open(_) => "round opened",
        Event::Submission(_) => "submission",
        Event::Request(_) => "decryption requested",
        Event::Retry(_) => "decryption retried",
        Event::Share(_) => "share",
    }
}

/// Recovers the coordinator's state from `options.data_dir` (replaying
/// every recorded event), binds, and serves until the last round is done
/// (plus the linger time) or [`Running::stop`].
///
/// # Errors
/// A store of another federation, a store that does not replay, a
/// configuration the protocol refuses, or an address that cannot be bound.
pub async fn start(plan: Plan, options: ServeOptions) -> Result<Running> {
    let description = plan.description.to_json()?;
    let clients = plan.description.clients.len();
    let dir = options.data_dir.clone();
    let (state, committer, replayed, recovery) =
        tokio::task::spawn_blocking(move || State::recover(plan, &dir))
            .await
            .map_err(|e| NetError::Config(format!("recovery failed: {e}")))??;
    let federation = federation_hex(state.engine.setup().federation());
    let setup = Arc::new(state.engine.setup().clone());
    tracing::info!(%federation, replayed, recovery_ms = recovery.as_secs_f64() * 1e3, "coordinator state recovered");
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        limits: options.limits,
        buckets: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashMap::new()),
        description,
        federation: federation.clone(),
        clients,
        setup,
        committer: Mutex::new(committer),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| NetError::Io {
            path: options.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| NetError::Io {
        path: options.listen.to_string(),
        source,
    })?;
    // Large HTTP/2 windows: an update is megabytes, and the default 64 KiB
    // window would make every stream wait for acknowledgements.
    let mut builder = tonic::transport::Server::builder()
        // A stalled call cannot hold a stream (and its buffer) for ever.
        .timeout(Duration::from_secs(120))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(4 * WINDOW))
        .max_concurrent_streams(Some(1024));
    if let Some(tls) = &options.tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert, tls.key.as_slice());
        builder =
            builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // A chunk, or a whole ceremony message (a polynomial: not chunked).
    let ceremony = max_payload(&shared.setup, MessageKind::SecretShare) + 16_384;
    let service = FederationServer::new(Service(Arc::clone(&shared)))
        .max_decoding_message_size(options.limits.max_chunk.max(ceremony) + 4096)
        // Replies are the service's own (the ceremony's is a few MB).
        .max_encoding_message_size(usize::MAX);
    let mut server_stop = stop_rx.clone();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = builder
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
    let driver = drive(
        Arc::clone(&shared),
        options.timing,
        options.data_dir.clone(),
        stop_rx,
    );
    let stop_all = stop.clone();
    let task = tokio::spawn(async move {
        let server = tokio::spawn(server);
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
            Err(e) => Err(NetError::Config(format!("the server task failed: {e}"))),
        }
    });
    tracing::info!(%addr, tls = options.tls.is_some(), "serving");
    Ok(Running {
        addr,
        federation,
        replayed,
        recovery,
        stop,
        task,
    })
}
