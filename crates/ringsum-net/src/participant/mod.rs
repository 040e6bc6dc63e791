//! Participants: clients ([`run_client`]) that train, encrypt under a
//! fresh round key, record and submit one message per round, and key
//! holders ([`run_holder`]) that fetch the sealed shares addressed to them
//! and answer the coordinator's signed set. Both poll the coordinator,
//! retry with exponential backoff while it is away, and pick up where they
//! were after a restart of either side. Both pin the federation id: a
//! coordinator serving another description is refused.

mod client;
mod failure;
mod holder;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringsum_core::update::RoundId;
use ringsum_pq::{Envelope, FederationId, MessageKind, ParticipantId, Role, SigningIdentity};
use ringsum_protocol::RoundResult;
use ringsum_protocol::message::{Verified, max_set_payload, max_share_payload};
use ringsum_protocol::spec::Federation;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Response, Status};

pub use self::client::{ClientOptions, ClientReport, TrainError, Trainer, run_client};
pub use self::holder::{HolderOptions, HolderReport, run_holder};

use self::failure::Failure;
use crate::auth::{Method, Query, with_proof};
use crate::description::{SetupDescription, federation_hex};
use crate::error::{NetError, Result};
use crate::proto::federation_client::FederationClient;
use crate::proto::{AckStatus, Caller};

/// How a participant reaches the coordinator.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `https://host:port` (or `http://` with `insecure_plaintext`).
    pub url: String,
    /// The CA certificate (PEM) that signed the coordinator's certificate
    /// (its own, when self-signed).
    pub ca: Option<Vec<u8>>,
    /// The name the certificate must carry (default: the URL's host).
    pub domain: Option<String>,
    /// Plaintext HTTP/2 (loopback tests and demos only).
    pub insecure_plaintext: bool,
    /// The federation id this participant insists on. Clients and holders
    /// refuse to start without it; `fetch_status` checks it when given.
    pub federation: Option<FederationId>,
    /// How often to ask for news.
    pub poll: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// Give up after the coordinator was unreachable this long.
    pub give_up_after: Duration,
    /// The largest chunk to send.
    pub max_chunk: usize,
}

impl ConnectOptions {
    /// Defaults for `url`: TLS, poll every 100 ms, back off up to 5 s,
    /// give up after 5 minutes, 1 MiB chunks, no pinned federation.
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            ca: None,
            domain: None,
            insecure_plaintext: false,
            federation: None,
            poll: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            give_up_after: Duration::from_secs(300),
            max_chunk: 1 << 20,
        }
    }
}

/// The largest reply a participant accepts before it has joined (the
/// federation description, whose hash it then checks against the pinned
/// id, and nothing else). Once joined, [`max_reply`] bounds every reply.
const MAX_SETUP_REPLY: usize = 256 << 20;

/// Protobuf framing of a reply (tags, lengths, the small fields).
const FRAMING: usize = 1024;

/// The room a status reply gives each ended round (its reason, a
/// sentence of the coordinator's, and the holders it names).
const STATUS_PER_ROUND: usize = 4096;

/// The most bytes the payload of a model publication can take: the
/// model's parameters (4 bytes each) and the result's head.
fn max_publication_payload(federation: &Federation) -> usize {
    federation
        .layout()
        .parameter_count()
        .saturating_mul(4)
        .saturating_add(64)
}

/// The largest valid reply of any call to a participant of `federation`
/// (of `rounds` rounds), once it has joined: a round's reply (the signed
/// model publication and the signed set request), one sealed share
/// message, or the status with every ended round.
fn max_reply(federation: &Federation, rounds: u64) -> usize {
    let publication = max_publication_payload(federation).saturating_add(crate::ENVELOPE_OVERHEAD);
    let request = max_set_payload(federation).saturating_add(crate::ENVELOPE_OVERHEAD);
    let round = publication.saturating_add(request).saturating_add(FRAMING);
    let share = max_share_payload(federation)
        .saturating_add(crate::ENVELOPE_OVERHEAD)
        .saturating_add(FRAMING);
    let per_round = STATUS_PER_ROUND.saturating_add(8 * federation.holders().len());
    let status = usize::try_from(rounds)
        .unwrap_or(usize::MAX)
        .saturating_mul(per_round)
        .saturating_add(FRAMING + 16 * federation.holders().len());
    round.max(share).max(status)
}

/// How the coordinator acknowledged a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledged {
    /// Accepted and recorded.
    Accepted,
    /// The same signed content was accepted before.
    AlreadyAccepted,
}

/// A connection to the coordinator that retries.
#[derive(Debug)]
struct Connection {
    client: FederationClient<Channel>,
    options: ConnectOptions,
    me: ParticipantId,
    identity: Arc<SigningIdentity>,
    /// The federation the proofs of identity name (the pinned one).
    federation: FederationId,
}

/// Whether a failed call is worth retrying: not a TLS handshake that
/// cannot succeed; a coordinator that cannot be reached, yes; otherwise
/// as the status code says.
fn retryable(status: &Status) -> bool {
    match failure::classify(status) {
        Failure::Handshake { .. } => return false,
        Failure::Unreachable(_) => return true,
        Failure::Other => {}
    }
    match status.code() {
        Code::Unavailable
        | Code::Unknown
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        // The rate limit: wait and try again.
        | Code::ResourceExhausted => true,
        // tonic reports a connection torn down under a call (an HTTP/2
        // GOAWAY when the coordinator restarts, a reset stream) as
        // `Internal` with the transport error as its source; the
        // coordinator's own `Internal` answers carry no source.
        Code::Internal => transport_failure(status),
        _ => false,
    }
}

/// The least time between two warnings of a participant retrying.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Whether `status` was made on this side from a failed connection.
fn transport_failure(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn rand_jitter() -> Duration {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    Duration::from_millis(u64::from(b[0]) % 50)
}

impl Connection {
    fn new(options: &ConnectOptions, identity: Arc<SigningIdentity>) -> Result<Self> {
        // Every call is signed for the federation it is made in: without
        // a pinned id there is nothing to sign for.
        let federation = options.federation.ok_or(NetError::NotPinned)?;
        let me = identity.id();
        let url = || options.url.clone();
        let uri: tonic::codegen::http::Uri = options.url.parse().map_err(|_| NetError::Url {
            url: url(),
            reason: "not a URL",
        })?;
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let plaintext = match scheme.as_str() {
            "https" => false,
            "http" if options.insecure_plaintext => true,
            "http" => {
                return Err(NetError::Url {
                    url: url(),
                    reason: "an http:// coordinator needs the explicit plaintext flag (tests and demos on loopback only)",
                });
            }
            _ => {
                return Err(NetError::Url {
                    url: url(),
                    reason: "use https://",
                });
            }
        };
        // TLS 1.3 with X25519MLKEM768 only, through our own connector
        // (tonic's TLS would allow TLS 1.2 and classical groups). A CA that
        // is not a certificate fails here, before any connection. tonic
        // refuses an https:// URI it does not secure itself, so its
        // endpoint gets the same authority over http://.
        let tls = if plaintext {
            None
        } else {
            Some(crate::tls::Connector::new(
                &options.url,
                options.ca.as_deref(),
                options.domain.as_deref(),
            )?)
        };
        let target = tls
            .as_ref()
            .map_or_else(|| options.url.clone(), crate::tls::Connector::endpoint_uri);
        let endpoint = Endpoint::from_shared(target)?
            .connect_timeout(Duration::from_secs(5))
            .initial_stream_window_size(Some(crate::server::WINDOW))
            .initial_connection_window_size(Some(4 * crate::server::WINDOW))
            .tcp_nodelay(true);
        let channel = match tls {
            None => endpoint.connect_lazy(),
            Some(connector) => endpoint
                .origin(connector.origin().clone())
                .connect_with_connector_lazy(connector),
        };
        let client = FederationClient::new(channel)
            .max_decoding_message_size(MAX_SETUP_REPLY)
            .max_encoding_message_size(options.max_chunk + 4096);
        Ok(Self {
            client,
            options: options.clone(),
            me,
            identity,
            federation,
        })
    }

    /// A fresh proof of identity for `query` (made now: every attempt
    /// signs anew, as the coordinator accepts a proof once).
    fn proof(&self, query: Query) -> std::result::Result<Vec<u8>, Status> {
        let fresh = Query::now(query.method).and_then(|now| {
            Query {
                timestamp_ms: now.timestamp_ms,
                nonce: now.nonce,
                ..query
            }
            .sign(&self.identity, self.federation)
        });
        fresh.map_err(|e| Status::internal(format!("could not sign the call: {e}")))
    }

    /// A call of `method` (without arguments) carrying a fresh proof.
    fn caller(&self, method: Method) -> std::result::Result<tonic::Request<Caller>, Status> {
        Ok(with_proof(Caller {}, &self.proof(Query::blank(method))?))
    }

    /// Calls, retrying transient failures with exponential backoff for up
    /// to `give_up_after`, saying so at most every [`WARN_EVERY`]. A TLS
    /// handshake that cannot succeed fails at once
    /// ([`NetError::Handshake`]); a coordinator that stays out of reach
    /// ends in [`NetError::Unreachable`].
    async fn call<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut(FederationClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<Response<T>, Status>>,
    {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        let mut warned: Option<Instant> = None;
        let url = self.options.url.as_str();
        loop {
            let status = match call(self.client.clone()).await {
                Ok(response) => {
                    if warned.is_some() {
                        tracing::info!(what, "reached the coordinator at {url}");
                    }
                    return Ok(response.into_inner());
                }
                Err(status) => status,
            };
            let waited = started.elapsed();
            let give_up = self.options.give_up_after;
            let problem = match failure::classify(&status) {
                Failure::Handshake { tls, detail } => {
                    return Err(failure::handshake_error(
                        url,
                        self.options.ca.as_deref(),
                        tls.as_ref(),
                        &detail,
                    ));
                }
                Failure::Unreachable(reason) if waited >= give_up => {
                    return Err(NetError::Unreachable {
                        url: url.to_owned(),
                        reason,
                        waited,
                    });
                }
                Failure::Unreachable(reason) => {
                    format!("the coordinator at {url} cannot be reached ({reason})")
                }
                Failure::Other if retryable(&status) && waited < give_up => format!(
                    "the {what} call to the coordinator at {url} failed ({:?}: {})",
                    status.code(),
                    status.message()
                ),
                Failure::Other => return Err(status.into()),
            };
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                warned = Some(Instant::now());
                tracing::warn!(
                    what,
                    code = ?status.code(),
                    "{problem}; retrying for another {} s before giving up",
                    give_up.saturating_sub(waited).as_secs()
                );
            }
            tokio::time::sleep(delay + rand_jitter()).await;
            delay = (delay * 2).min(self.options.max_backoff);
        }
    }

    /// Sends a streamed message: a submission, or a holder's answer.
    async fn send(&self, what: &'static str, bytes: &[u8], answer: bool) -> Result<Acknowledged> {
        let method = if answer {
            Method::Answer
        } else {
            Method::Submit
        };
        let query = Query::for_message(method, bytes)?;
        let ack = self
            .call(what, |mut client| {
                let chunks = crate::chunks(bytes, self.options.max_chunk);
                let proof = self.proof(query);
                async move {
                    let stream = with_proof(tokio_stream::iter(chunks), &proof?);
                    if answer {
                        client.post_answer(stream).await
                    } else {
                        client.submit(stream).await
                    }
                }
            })
            .await?;
        Ok(match ack.status() {
            AckStatus::AlreadyAccepted => Acknowledged::AlreadyAccepted,
            AckStatus::Accepted | AckStatus::Unspecified => Acknowledged::Accepted,
        })
    }

    /// Fetches the description, rebuilds the federation, and checks its id
    /// against the one the coordinator names and the pinned one, and that
    /// this identity is a member in `role`.
    /// Fetches and checks the federation description; from then on every
    /// reply is capped at the largest valid one of this federation.
    async fn join(&mut self, role: Option<Role>) -> Result<(SetupDescription, Federation)> {
        let reply = self
            .call("setup", |mut c| {
                let caller = self.caller(Method::Setup);
                async move { c.get_setup(caller?).await }
            })
            .await
            .map_err(|e| match e {
                // A typed refusal: the pinned federation is not this
                // coordinator's.
                NetError::Status(s)
                    if s.metadata()
                        .get(crate::auth::REFUSAL_KEY)
                        .is_some_and(|v| v == crate::auth::ANOTHER_FEDERATION) =>
                {
                    NetError::NotThisFederation {
                        expected: federation_hex(self.federation),
                    }
                }
                other => other,
            })?;
        let description = SetupDescription::from_json(&reply.setup)?;
        let federation = description.federation()?;
        let computed = federation_hex(federation.id());
        if computed != reply.federation.to_ascii_lowercase() {
            return Err(NetError::FederationMisnamed {
                computed,
                named: reply.federation,
            });
        }
        if let Some(pinned) = self.options.federation
            && pinned != federation.id()
        {
            return Err(NetError::FederationMismatch {
                expected: federation_hex(pinned),
                found: computed,
            });
        }
        let member = federation
            .registry()
            .get(&self.me)
            .is_some_and(|p| role.is_none_or(|r| r == p.role));
        if !member {
            return Err(NetError::NotAMember {
                id: self.me,
                role: role.map_or("member", Role::name),
                federation: computed,
            });
        }
        let cap = max_reply(&federation, description.rounds);
        self.client = self.client.clone().max_decoding_message_size(cap);
        tracing::info!(federation = %computed, max_reply = cap, "joined");
        Ok((description, federation))
    }

    async fn round(&self) -> Result<crate::proto::RoundReply> {
        self.call("round", |mut c| {
            let caller = self.caller(Method::Round);
            async move { c.get_round(caller?).await }
        })
        .await
    }
}

/// Fetches and checks the federation description, as a participant
/// joining would (against `options.federation` when given).
///
/// # Errors
/// An unreachable coordinator, a description that does not build, another
/// federation than the pinned one, an identity that is not a member.
pub async fn fetch_setup(
    options: &ConnectOptions,
    identity: impl Into<Arc<SigningIdentity>>,
) -> Result<(SetupDescription, Federation)> {
    Connection::new(options, identity.into())?.join(None).await
}

/// The coordinator's status reply (checked against `options.federation`
/// when given).
///
/// # Errors
/// An unreachable coordinator, another federation, a refused identity.
pub async fn fetch_status(
    options: &ConnectOptions,
    identity: impl Into<Arc<SigningIdentity>>,
) -> Result<crate::proto::StatusReply> {
    let mut connection = Connection::new(options, identity.into())?;
    connection.join(None).await?;
    connection
        .call("status", |mut c| {
            let caller = connection.caller(Method::Status);
            async move { c.status(caller?).await }
        })
        .await
}

/// Checks and reads a signed model publication: a round's opening (whose
/// payload is the model of the round before) or a round's result, signed
/// by the federation's coordinator. Returns the round the envelope names
/// and its payload.
///
/// # Errors
/// [`NetError::Pq`] / [`NetError::Protocol`] for an envelope that is not
/// the coordinator's or does not decode; [`NetError::Publication`].
pub fn read_publication(federation: &Federation, bytes: &[u8]) -> Result<(RoundId, RoundResult)> {
    let parameters = federation.layout().parameter_count();
    let envelope = Envelope::from_bytes(bytes, max_publication_payload(federation))?;
    let verified = Verified::check(federation, envelope, MessageKind::RoundResult, None)?;
    if verified.origin() != federation.coordinator() {
        return Err(NetError::Publication {
            reason: "not signed by the federation's coordinator",
        });
    }
    let result = RoundResult::decode(verified.envelope().payload(), parameters)?;
    if result.model.len() != parameters {
        return Err(NetError::Publication {
            reason: "the model does not have the layout's size",
        });
    }
    Ok((verified.round(), result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_torn_connection_is_retried_and_a_coordinator_fault_is_not() {
        // Nothing listens on port 1 of loopback: the connect fails with a
        // transport error, as a GOAWAY or reset does under a live call.
        let torn = Endpoint::from_static("http://127.0.0.1:1")
            .connect()
            .await
            .expect_err("nothing listens on port 1");
        let mut status = Status::internal("h2 protocol error");
        status.set_source(Arc::new(torn));
        assert!(retryable(&status));
        assert!(!retryable(&Status::internal("the state directory failed")));
        assert!(!retryable(&Status::invalid_argument("bad signature")));
        assert!(retryable(&Status::unavailable("restarting")));
    }
}
