//! The gRPC endpoints: who may call what, how often, how large a message
//! may be, and how a refusal of the protocol reads on the wire. The
//! checks themselves are the protocol's.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ringsum_core::update::RoundId;
use ringsum_pq::codec::unhex;
use ringsum_pq::{Envelope, ParticipantId, PqError, Role};
use ringsum_protocol::ProtocolError;
use ringsum_protocol::client::Submission;
use ringsum_protocol::message::{max_answer_payload, max_share_payload, max_update_payload};
use ringsum_protocol::spec::Federation;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::state::audit_head;
use super::{Bucket, Shared, lock};
use crate::engine::{Ending, Event, Outcome, Phase};
use crate::proto::federation_server::Federation as FederationService;
use crate::proto::{
    Ack, AckStatus, Caller, Chunk, RoundReply, SetupReply, ShareQuery, SignedMessage, StatusReply,
};

/// Bytes an envelope adds to its payload, at most (header, routing,
/// signature of the largest algorithm), with a wide margin.
const ENVELOPE_OVERHEAD: usize = 16 * 1024;

/// The largest submission of `federation` ([`Submission::to_bytes`]).
#[must_use]
pub fn max_submission_bytes(federation: &Federation) -> usize {
    let update = 4 + max_update_payload(federation) + ENVELOPE_OVERHEAD;
    let share = 4 + max_share_payload(federation) + ENVELOPE_OVERHEAD;
    5usize
        .saturating_add(update)
        .saturating_add(share.saturating_mul(federation.holders().len()))
}

/// The largest holder answer of `federation`.
#[must_use]
pub fn max_answer_bytes(federation: &Federation) -> usize {
    max_answer_payload(federation) + ENVELOPE_OVERHEAD
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

fn parse_caller(text: &str) -> Result<ParticipantId, Status> {
    let bytes: [u8; 32] = unhex(text).and_then(|b| b.try_into().ok()).ok_or_else(|| {
        Status::invalid_argument("the caller must be a participant id (64 hex digits)")
    })?;
    Ok(ParticipantId(bytes))
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

    fn member(&self, id: &ParticipantId) -> Result<Role, Status> {
        let registry = self.federation.registry();
        if let Some(reason) = registry.revocation(id) {
            tracing::warn!(participant = %id, ?reason, "refused: revoked identity");
            return Err(Status::permission_denied(format!(
                "participant {id} is revoked"
            )));
        }
        registry.get(id).map(|p| p.role).ok_or_else(|| {
            tracing::warn!(participant = %id, "refused: not a member");
            Status::permission_denied(format!(
                "participant {id} is not a member of this federation"
            ))
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
    ) -> Result<(), Status> {
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
    ) -> Result<(ParticipantId, Role), Status> {
        let id = parse_caller(&caller.participant)?;
        let role = self.member(&id)?;
        self.rate(id, peer, false)?;
        Ok((id, role))
    }

    /// A sender of `role` within its write budget.
    fn sender(
        &self,
        id: ParticipantId,
        role: Role,
        what: &'static str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<(), Status> {
        let found = self.member(&id)?;
        if found != role {
            tracing::warn!(sender = %id, what, "refused: wrong role");
            return Err(Status::permission_denied(format!(
                "a {} may not send a {what}",
                found.name()
            )));
        }
        self.rate(id, peer, true)
    }

    /// Reads a streamed message of at most `max` bytes.
    async fn collect(&self, mut stream: Streaming<Chunk>, max: usize) -> Result<Vec<u8>, Status> {
        let mut out: Option<Vec<u8>> = None;
        let mut total = 0usize;
        while let Some(chunk) = stream.message().await? {
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
                        return Err(Status::out_of_range(format!(
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
    async fn get_setup(&self, request: Request<Caller>) -> Result<Response<SetupReply>, Status> {
        let (id, role) = self.0.caller(request.get_ref(), peer(&request))?;
        tracing::info!(participant = %id, role = role.name(), "setup fetched");
        Ok(Response::new(SetupReply {
            setup: self.0.description.clone(),
            federation: self.0.federation_hex.clone(),
        }))
    }

    async fn get_round(&self, request: Request<Caller>) -> Result<Response<RoundReply>, Status> {
        let (id, _) = self.0.caller(request.get_ref(), peer(&request))?;
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
        let from = peer(&request);
        let max = max_submission_bytes(&self.0.federation);
        let bytes = self.0.collect(request.into_inner(), max).await?;
        // The costly checks, in parallel with other submissions but no more
        // at once than there are cores.
        let permit = self
            .0
            .checks
            .acquire()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let shared = Arc::clone(&self.0);
        let (bytes, sender, prepared) = blocking(move || {
            let submission = Submission::from_bytes(&shared.federation, &bytes)
                .map_err(|e| Status::invalid_argument(format!("not a submission: {e}")))?;
            let sender = submission.update.sender();
            shared.sender(sender, Role::Client, "submission", from)?;
            let prepared = shared.read().engine.prepare(submission);
            Ok((bytes, sender, prepared))
        })
        .await?;
        drop(permit);
        // Added and recorded (the wait for the disk holds no check back).
        let shared = Arc::clone(&self.0);
        blocking(move || {
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
        let from = peer(&request);
        let query = request.into_inner();
        let caller = Caller {
            participant: query.participant.clone(),
        };
        let (id, role) = self.0.caller(&caller, from)?;
        if role != Role::KeyHolder {
            return Err(Status::permission_denied(
                "only key holders fetch round key shares",
            ));
        }
        self.0.committed().await?;
        self.0.mark_seen(id);
        let start = usize::try_from(query.from).unwrap_or(usize::MAX);
        let shares = self
            .0
            .read()
            .engine
            .shares_for(id, RoundId(query.round), start);
        let messages = shares
            .into_iter()
            .map(|envelope| Ok(SignedMessage { envelope }));
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn post_answer(
        &self,
        request: Request<Streaming<Chunk>>,
    ) -> Result<Response<Ack>, Status> {
        let from = peer(&request);
        let max = max_answer_bytes(&self.0.federation);
        let bytes = self.0.collect(request.into_inner(), max).await?;
        let shared = Arc::clone(&self.0);
        blocking(move || {
            let envelope = Envelope::from_bytes(&bytes, max_answer_payload(&shared.federation))
                .map_err(|e| Status::invalid_argument(format!("not a valid envelope: {e}")))?;
            let sender = envelope.sender();
            shared.sender(sender, Role::KeyHolder, "holder answer", from)?;
            shared.mark_seen(sender);
            shared.apply_recorded(&Event::Answer(bytes), None, "holder answer", sender)
        })
        .await
    }

    async fn status(&self, request: Request<Caller>) -> Result<Response<StatusReply>, Status> {
        self.0.caller(request.get_ref(), peer(&request))?;
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
