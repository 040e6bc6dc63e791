//! The gRPC endpoints: who may call what, how often, how large a message
//! may be, and how a refusal of the protocol reads on the wire. The
//! checks themselves are the protocol's.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ringsum_core::update::RoundId;
use ringsum_pq::{Envelope, ParticipantId, PqError, Role};
use ringsum_protocol::ProtocolError;
use ringsum_protocol::client::Submission;
use ringsum_protocol::message::{max_answer_payload, max_share_payload, max_update_payload};
use ringsum_protocol::spec::Federation;
use sha3::{Digest, Sha3_256};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::guard::{Caller, Hold};
use super::state::audit_head;
use super::{Shared, lock};
use crate::auth::{Method, PROOF_METADATA};
use crate::engine::{Ending, Event, Outcome, Phase};
use crate::proto::federation_server::Federation as FederationService;
use crate::proto::{
    Ack, AckStatus, Caller as CallerMessage, Chunk, RoundReply, SetupReply, ShareQuery,
    SignedMessage, StatusReply,
};

/// The largest submission of `federation` ([`Submission::to_bytes`]).
#[must_use]
pub fn max_submission_bytes(federation: &Federation) -> usize {
    let update = 4 + max_update_payload(federation) + crate::ENVELOPE_OVERHEAD;
    let share = 4 + max_share_payload(federation) + crate::ENVELOPE_OVERHEAD;
    5usize
        .saturating_add(update)
        .saturating_add(share.saturating_mul(federation.holders().len()))
}

/// The largest holder answer of `federation`.
#[must_use]
pub fn max_answer_bytes(federation: &Federation) -> usize {
    max_answer_payload(federation) + crate::ENVELOPE_OVERHEAD
}

/// How a refusal of the protocol reads on the wire (docs/formats.md,
/// "Status codes"): the code says what the sender can do about it, the
/// message says why.
pub(crate) fn refusal(e: &ProtocolError) -> Status {
    let message = e.to_string();
    match e {
        ProtocolError::Pq(
            PqError::UnknownSender(_)
            | PqError::RevokedSender(_)
            | PqError::RotatedSender { .. }
            | PqError::Unauthorized { .. }
            | PqError::BadSignature
            | PqError::AlgorithmMismatch { .. }
            | PqError::WrongFederation,
        ) => Status::permission_denied(message),
        ProtocolError::Pq(PqError::Replay(_) | PqError::DuplicateSubmission { .. }) => {
            Status::already_exists(message)
        }
        ProtocolError::Pq(PqError::WrongRound { .. })
        | ProtocolError::WrongPhase(_)
        | ProtocolError::NotEnoughClients { .. }
        | ProtocolError::NotEnoughHolders { .. }
        | ProtocolError::RoundNotCollected { .. }
        | ProtocolError::RoundOutOfRange { .. }
        | ProtocolError::WrongSet => Status::failed_precondition(message),
        _ => Status::invalid_argument(message),
    }
}

fn peer<T>(request: &Request<T>) -> Option<std::net::IpAddr> {
    request.remote_addr().map(|a| a.ip())
}

/// How long a streamed message may go without a chunk.
const CHUNK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The next chunk of `stream`, within [`CHUNK_TIMEOUT`]: a sender that
/// stalls loses its stream and what it held.
async fn next_chunk(stream: &mut Streaming<Chunk>) -> Result<Option<Chunk>, Status> {
    tokio::time::timeout(CHUNK_TIMEOUT, stream.message())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "no chunk for {} s: the message is dropped",
                CHUNK_TIMEOUT.as_secs()
            ))
        })?
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

impl Shared {
    /// Notes that key holder `id` (if it is one) asked for news.
    fn mark_seen(&self, id: ParticipantId) {
        if let Some(h) = self.federation.holder_point(id) {
            lock(&self.seen).insert(h, Instant::now());
        }
    }

    /// Before a read: everything it can show is recorded, so nobody acts
    /// on state a crash could take back.
    async fn committed(self: &Arc<Self>) -> Result<(), Status> {
        let shared = Arc::clone(self);
        blocking(move || shared.flush_all()).await
    }

    /// The caller of a request that reached the service: the address's
    /// budget first, then the proof in the request's metadata, then the
    /// member's budget (the headers only: no message of the call has been
    /// read). Runs as the service's interceptor.
    pub(super) fn admit(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.guard.admit(peer(&request))?;
        let proof = match request.metadata().get_bin(PROOF_METADATA) {
            Some(value) => value.to_bytes().map_err(|_| {
                Status::unauthenticated(format!("the {PROOF_METADATA} header is not base64"))
            })?,
            None => {
                return Err(Status::unauthenticated(format!(
                    "no proof of identity (the {PROOF_METADATA} header): sign every call \
                     with the participant's identity"
                )));
            }
        };
        let caller = self
            .guard
            .authenticate(&self.federation, &proof, peer(&request))?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }

    /// The caller the interceptor admitted, if its proof is for `method`
    /// (and, when given, it has `role`).
    fn caller<T>(
        &self,
        request: &Request<T>,
        method: Method,
        role: Option<Role>,
    ) -> Result<Caller, Status> {
        let caller = *request.extensions().get::<Caller>().ok_or_else(|| {
            Status::unauthenticated("no proof of identity was checked for this call")
        })?;
        if caller.role == Role::Coordinator && !matches!(method, Method::Status | Method::Setup) {
            return Err(Status::permission_denied(format!(
                "the coordinator's identity may only call Status and GetSetup, not {}",
                method.name()
            )));
        }
        if caller.query.method != method {
            return Err(Status::unauthenticated(format!(
                "the proof authorizes {}, not {}",
                caller.query.method.name(),
                method.name()
            )));
        }
        if let Some(role) = role
            && caller.role != role
        {
            tracing::warn!(participant = %caller.id, method = method.name(), "refused: wrong role");
            return Err(Status::permission_denied(format!(
                "{} is for a {}; participant {} is a {}",
                method.name(),
                role.name(),
                caller.id,
                caller.role.name()
            )));
        }
        Ok(caller)
    }

    /// Reads a streamed message whose first chunk carries the sender's
    /// proof for `method` (of `role`): the proof is checked before
    /// anything else is read, the message is held against the caps (until
    /// the returned hold is dropped), and it must be the one the proof
    /// names (at most `max` bytes).
    async fn receive(
        &self,
        request: Request<Streaming<Chunk>>,
        method: Method,
        role: Role,
        max: usize,
    ) -> Result<(Caller, Vec<u8>, Hold), Status> {
        let caller = self.caller(&request, method, Some(role))?;
        let total = usize::try_from(caller.query.total).unwrap_or(usize::MAX);
        if total > max {
            tracing::warn!(participant = %caller.id, total, max, "refused: oversized message");
            return Err(Status::out_of_range(format!(
                "a message of {total} bytes exceeds the limit of {max}"
            )));
        }
        let mut hold = self.guard.hold(caller.id, total)?;
        let mut stream = request.into_inner();
        let first = next_chunk(&mut stream)
            .await?
            .ok_or_else(|| Status::invalid_argument("an empty message"))?;
        if caller.query.total != first.total {
            return Err(Status::invalid_argument(
                "the first chunk's total length is not the one the proof names",
            ));
        }
        let bytes = self.collect(first, stream, total, &mut hold).await?;
        let digest: [u8; 32] = Sha3_256::digest(&bytes).into();
        if digest != caller.query.digest {
            tracing::warn!(participant = %caller.id, "refused: message is not the one its proof names");
            return Err(Status::invalid_argument(
                "the message's SHA3-256 is not the one its proof names",
            ));
        }
        // The decoded copy the checks make.
        hold.take(total)?;
        Ok((caller, bytes, hold))
    }

    /// Reads the rest of a streamed message of `total` bytes after its
    /// `first` chunk, holding each chunk's bytes against the service's cap
    /// as it arrives.
    async fn collect(
        &self,
        first: Chunk,
        mut stream: Streaming<Chunk>,
        total: usize,
        hold: &mut Hold,
    ) -> Result<Vec<u8>, Status> {
        // Address space for the whole message, but resident memory only
        // as bytes arrive (and are held against the cap).
        let mut buffer: Vec<u8> = Vec::with_capacity(total);
        let mut next = Some(first);
        let mut later = false;
        while let Some(chunk) = next {
            // Oversized: OUT_OF_RANGE, as the transport refuses an oversized
            // frame (RESOURCE_EXHAUSTED is the rate limit, which a sender
            // waits out).
            if chunk.data.len() > self.limits.max_chunk {
                return Err(Status::out_of_range(format!(
                    "a chunk of {} bytes exceeds the limit of {}",
                    chunk.data.len(),
                    self.limits.max_chunk
                )));
            }
            if later && chunk.total != 0 && usize::try_from(chunk.total).ok() != Some(total) {
                return Err(Status::invalid_argument(
                    "the chunks disagree on the total length",
                ));
            }
            if buffer.len() + chunk.data.len() > total {
                return Err(Status::invalid_argument(
                    "the chunks exceed the stated total length",
                ));
            }
            hold.take(chunk.data.len())?;
            buffer.extend_from_slice(&chunk.data);
            later = true;
            next = next_chunk(&mut stream).await?;
        }
        if buffer.len() != total {
            return Err(Status::invalid_argument(format!(
                "truncated: {} of {total} bytes",
                buffer.len()
            )));
        }
        Ok(buffer)
    }

    /// Applies `event` and records it before answering.
    fn apply_recorded(
        &self,
        event: &Event,
        prepared: Option<crate::engine::Prepared>,
        what: &'static str,
        sender: ParticipantId,
    ) -> Result<Response<Ack>, Status> {
        let (outcome, seq) = self.apply(event, prepared)?;
        match seq {
            Some(seq) => self.flush(seq)?,
            // "Already accepted" only once the original is recorded.
            None if matches!(outcome, Outcome::Duplicate) => self.flush_all()?,
            None => {}
        }
        let round = self.round().0;
        match outcome {
            Outcome::Accepted => {
                tracing::info!(%sender, what, round, "accepted");
                Ok(Response::new(Ack {
                    status: AckStatus::Accepted.into(),
                }))
            }
            Outcome::Duplicate => {
                tracing::info!(%sender, what, round, "already accepted");
                Ok(Response::new(Ack {
                    status: AckStatus::AlreadyAccepted.into(),
                }))
            }
            Outcome::Refused(e) => {
                tracing::warn!(%sender, what, round, reason = %e, "refused");
                Err(refusal(&e))
            }
        }
    }
}

/// The service over the shared state.
#[derive(Clone, Debug)]
pub(super) struct Service(Arc<Shared>);

impl Service {
    pub(super) const fn new(shared: Arc<Shared>) -> Self {
        Self(shared)
    }
}

type SharesStream = Pin<Box<dyn Stream<Item = Result<SignedMessage, Status>> + Send>>;

fn wire_phase(phase: Phase) -> crate::proto::Phase {
    match phase {
        Phase::Collecting => crate::proto::Phase::Collecting,
        Phase::Answering => crate::proto::Phase::Answering,
        Phase::Between => crate::proto::Phase::Between,
        Phase::Finished => crate::proto::Phase::Finished,
    }
}

#[tonic::async_trait]
impl FederationService for Service {
    async fn get_setup(
        &self,
        request: Request<CallerMessage>,
    ) -> Result<Response<SetupReply>, Status> {
        let caller = self.0.caller(&request, Method::Setup, None)?;
        tracing::info!(participant = %caller.id, role = caller.role.name(), "setup fetched");
        Ok(Response::new(SetupReply {
            setup: self.0.description.clone(),
            federation: self.0.federation_hex.clone(),
        }))
    }

    async fn get_round(
        &self,
        request: Request<CallerMessage>,
    ) -> Result<Response<RoundReply>, Status> {
        let id = self.0.caller(&request, Method::Round, None)?.id;
        self.0.committed().await?;
        self.0.mark_seen(id);
        let state = self.0.read();
        let engine = &state.engine;
        Ok(Response::new(RoundReply {
            round: engine.round().0,
            phase: wire_phase(engine.phase()).into(),
            rounds: engine.rounds(),
            publication: engine.publication().to_vec(),
            request: engine.request().map(<[u8]>::to_vec).unwrap_or_default(),
            submitted: engine.has_submitted(id),
            accepted: count(engine.accepted()),
        }))
    }

    async fn submit(&self, request: Request<Streaming<Chunk>>) -> Result<Response<Ack>, Status> {
        let max = max_submission_bytes(&self.0.federation);
        let (caller, bytes, hold) = self
            .0
            .receive(request, Method::Submit, Role::Client, max)
            .await?;
        // The costly checks, in parallel with other submissions but no more
        // at once than there are cores. The permit and the hold on the
        // caps go into the blocking work: a call cancelled meanwhile gives
        // them back only when that work ends.
        let permit = Arc::clone(&self.0.checks)
            .acquire_owned()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let shared = Arc::clone(&self.0);
        let (bytes, sender, prepared, hold) = blocking(move || {
            let _permit = permit;
            let submission = Submission::from_bytes(&shared.federation, &bytes)
                .map_err(|e| Status::invalid_argument(format!("not a submission: {e}")))?;
            let sender = submission.update.sender();
            if sender != caller.id {
                tracing::warn!(%sender, caller = %caller.id, "refused: another client's submission");
                return Err(Status::permission_denied(format!(
                    "the submission is signed by {sender}, but sent by {}",
                    caller.id
                )));
            }
            let prepared = shared.read().engine.prepare(submission);
            Ok((bytes, sender, prepared, hold))
        })
        .await?;
        // Added and recorded (the wait for the disk holds no check back).
        let shared = Arc::clone(&self.0);
        blocking(move || {
            let _hold = hold;
            shared.apply_recorded(
                &Event::Submission(bytes),
                Some(prepared),
                "submission",
                sender,
            )
        })
        .await
    }

    type GetSharesStream = SharesStream;

    async fn get_shares(
        &self,
        request: Request<ShareQuery>,
    ) -> Result<Response<SharesStream>, Status> {
        let caller = self
            .0
            .caller(&request, Method::Shares, Some(Role::KeyHolder))?;
        let id = caller.id;
        self.0.committed().await?;
        self.0.mark_seen(id);
        let start = usize::try_from(caller.query.from).unwrap_or(usize::MAX);
        let shares = self
            .0
            .read()
            .engine
            .shares_for(id, RoundId(caller.query.round), start);
        let messages = shares
            .into_iter()
            .map(|envelope| Ok(SignedMessage { envelope }));
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn post_answer(
        &self,
        request: Request<Streaming<Chunk>>,
    ) -> Result<Response<Ack>, Status> {
        let max = max_answer_bytes(&self.0.federation);
        let (caller, bytes, hold) = self
            .0
            .receive(request, Method::Answer, Role::KeyHolder, max)
            .await?;
        let shared = Arc::clone(&self.0);
        blocking(move || {
            let _hold = hold;
            let envelope = Envelope::from_bytes(&bytes, max_answer_payload(&shared.federation))
                .map_err(|e| Status::invalid_argument(format!("not a valid envelope: {e}")))?;
            let sender = envelope.sender();
            if sender != caller.id {
                tracing::warn!(%sender, caller = %caller.id, "refused: another holder's answer");
                return Err(Status::permission_denied(format!(
                    "the answer is signed by {sender}, but sent by {}",
                    caller.id
                )));
            }
            shared.mark_seen(sender);
            shared.apply_recorded(&Event::Answer(bytes), None, "holder answer", sender)
        })
        .await
    }

    async fn status(
        &self,
        request: Request<CallerMessage>,
    ) -> Result<Response<StatusReply>, Status> {
        self.0.caller(&request, Method::Status, None)?;
        self.0.committed().await?;
        let since = *lock(&self.0.phase_since);
        let state = self.0.read();
        let engine = &state.engine;
        let federation = &self.0.federation;
        let ended = engine
            .ended()
            .iter()
            .map(|end| match &end.ending {
                Ending::Finished { clients, liars, .. } => crate::proto::RoundEnd {
                    round: end.round.0,
                    failed: false,
                    clients: *clients,
                    reason: String::new(),
                    holders_named: liars.iter().map(|h| h.0).collect(),
                },
                Ending::Failed { reason } => crate::proto::RoundEnd {
                    round: end.round.0,
                    failed: true,
                    clients: 0,
                    reason: reason.clone(),
                    holders_named: Vec::new(),
                },
            })
            .collect();
        Ok(Response::new(StatusReply {
            round: engine.round().0,
            phase: wire_phase(engine.phase()).into(),
            rounds: engine.rounds(),
            accepted: count(engine.accepted()),
            clients: count(federation.clients().len()),
            min_clients: count(federation.policy().min_clients),
            holders: federation.holders().keys().map(|h| h.0).collect(),
            answered: engine.answered().iter().map(|h| h.0).collect(),
            threshold: federation.committee().threshold(),
            audit_lines: count(engine.audit_lines().len()),
            audit_head: audit_head(engine.audit_lines()),
            ended,
            phase_seconds: since.elapsed().as_secs(),
        }))
    }
}
