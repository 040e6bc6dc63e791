//! Participants: clients ([`run_client`]) that train, encrypt under a
//! fresh round key, record and submit one message per round, and key
//! holders ([`run_holder`]) that fetch the sealed shares addressed to them
//! and answer the coordinator's signed set. Both poll the coordinator,
//! retry with exponential backoff while it is away, and pick up where they
//! were after a restart of either side. Both pin the federation id: a
//! coordinator serving another description is refused.

mod client;
mod holder;

use std::future::Future;
use std::time::{Duration, Instant};

use ringsum_core::update::RoundId;
use ringsum_pq::{Envelope, FederationId, MessageKind, ParticipantId, Role};
use ringsum_protocol::RoundResult;
use ringsum_protocol::message::Verified;
use ringsum_protocol::spec::Federation;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Response, Status};

pub use self::client::{ClientOptions, ClientReport, TrainError, Trainer, run_client};
pub use self::holder::{HolderOptions, HolderReport, run_holder};

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

/// The largest reply a participant accepts.
const MAX_REPLY: usize = 256 << 20;

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
}

fn retryable(status: &Status) -> bool {
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
    fn new(options: &ConnectOptions, me: ParticipantId) -> Result<Self> {
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
        let mut endpoint = Endpoint::from_shared(options.url.clone())?
            .connect_timeout(Duration::from_secs(5))
            .initial_stream_window_size(Some(crate::server::WINDOW))
            .initial_connection_window_size(Some(4 * crate::server::WINDOW))
            .tcp_nodelay(true);
        if !plaintext {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &options.ca {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some(domain) = &options.domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        let client = FederationClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_REPLY)
            .max_encoding_message_size(options.max_chunk + 4096);
        Ok(Self {
            client,
            options: options.clone(),
            me,
        })
    }

    fn caller(&self) -> Caller {
        Caller {
            participant: self.me.to_string(),
        }
    }

    /// Calls, retrying transient failures with exponential backoff.
    async fn call<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut(FederationClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<Response<T>, Status>>,
    {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            match call(self.client.clone()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status)
                    if retryable(&status) && started.elapsed() < self.options.give_up_after =>
                {
                    tracing::warn!(what, code = ?status.code(), message = status.message(), retry_ms = delay.as_millis(), "coordinator unavailable; retrying");
                    tokio::time::sleep(delay + rand_jitter()).await;
                    delay = (delay * 2).min(self.options.max_backoff);
                }
                Err(status) => return Err(status.into()),
            }
        }
    }

    /// Sends a streamed message: a submission, or a holder's answer.
    async fn send(&self, what: &'static str, bytes: &[u8], answer: bool) -> Result<Acknowledged> {
        let ack = self
            .call(what, |mut client| {
                let chunks = crate::chunks(bytes, self.options.max_chunk);
                async move {
                    let stream = tokio_stream::iter(chunks);
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
    async fn join(&self, role: Option<Role>) -> Result<(SetupDescription, Federation)> {
        let reply = self
            .call("setup", |mut c| {
                let caller = self.caller();
                async move { c.get_setup(caller).await }
            })
            .await?;
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
        tracing::info!(federation = %computed, "joined");
        Ok((description, federation))
    }

    async fn round(&self) -> Result<crate::proto::RoundReply> {
        self.call("round", |mut c| {
            let caller = self.caller();
            async move { c.get_round(caller).await }
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
    me: ParticipantId,
) -> Result<(SetupDescription, Federation)> {
    Connection::new(options, me)?.join(None).await
}

/// The coordinator's status reply (checked against `options.federation`
/// when given).
///
/// # Errors
/// An unreachable coordinator, another federation, a refused identity.
pub async fn fetch_status(
    options: &ConnectOptions,
    me: ParticipantId,
) -> Result<crate::proto::StatusReply> {
    let connection = Connection::new(options, me)?;
    if options.federation.is_some() {
        connection.join(None).await?;
    }
    connection
        .call("status", |mut c| {
            let caller = connection.caller();
            async move { c.status(caller).await }
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
    let max = parameters.saturating_mul(4).saturating_add(64);
    let envelope = Envelope::from_bytes(bytes, max)?;
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
