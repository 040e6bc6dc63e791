//! Participants: clients that train, encrypt, sign and submit, and key
//! holders that run the key ceremony and answer decryption requests. Both
//! poll the coordinator, retry with exponential backoff while it is away,
//! and pick up where they were after a restart of either side.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringsum_core::scheme::PublicKey;
use ringsum_math::Csprng;
use ringsum_pq::{Envelope, MessageKind, ParticipantId, Role, SealingKey, SigningIdentity};
use ringsum_protocol::payload::{
    RoundResult, decode_aggregate, decode_key_share, encode_key_share,
};
use ringsum_protocol::{ClientNode, HolderNode, Setup};
use ringsum_threshold::{HolderId, ShareLedger};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Response, Status};

use crate::description::{SetupDescription, federation_hex};
use crate::engine::max_payload;
use crate::error::{NetError, Result};
use crate::holder_store::HolderStore;
use crate::proto::Caller;
use crate::proto::federation_client::FederationClient;

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
    /// The federation id (hex) this participant expects; the join fails
    /// if the coordinator serves another.
    pub federation: Option<String>,
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
    /// give up after 5 minutes, 1 MiB chunks.
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

/// The largest reply a participant accepts (64 holders' ceremony messages).
const MAX_REPLY: usize = 512 << 20;

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
        | Code::Aborted => true,
        Code::ResourceExhausted => status.message().starts_with("rate limit"),
        _ => false,
    }
}

impl Connection {
    fn new(options: &ConnectOptions, me: ParticipantId) -> Result<Self> {
        let uri: tonic::codegen::http::Uri = options
            .url
            .parse()
            .map_err(|e| NetError::Config(format!("coordinator URL {}: {e}", options.url)))?;
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let plaintext = match scheme.as_str() {
            "https" => false,
            "http" if options.insecure_plaintext => true,
            "http" => {
                return Err(NetError::Config(
                    "an http:// coordinator needs the explicit plaintext flag (tests and demos on loopback only)".into(),
                ));
            }
            other => {
                return Err(NetError::Config(format!(
                    "coordinator URL scheme {other:?}: use https://"
                )));
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
            // The ceremony reply carries a polynomial per holder (and the
            // sealed shares): bounded by the committee's size.
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
                    let jitter = Duration::from_millis(u64::from(rand_byte()) % 50);
                    tokio::time::sleep(delay + jitter).await;
                    delay = (delay * 2).min(self.options.max_backoff);
                }
                Err(status) => return Err(status.into()),
            }
        }
    }

    async fn send(&self, what: &'static str, bytes: &[u8], share: bool) -> Result<String> {
        let ack = self
            .call(what, |mut client| {
                let chunks = crate::chunks(bytes, self.options.max_chunk);
                async move {
                    let stream = tokio_stream::iter(chunks);
                    if share {
                        client.post_share(stream).await
                    } else {
                        client.submit(stream).await
                    }
                }
            })
            .await?;
        Ok(ack.status)
    }

    async fn join(&self, role: Option<Role>) -> Result<(SetupDescription, Setup)> {
        let reply = self
            .call("setup", |mut c| {
                let caller = self.caller();
                async move { c.get_setup(caller).await }
            })
            .await?;
        let description = SetupDescription::from_json(&reply.setup)?;
        let setup = description.setup()?;
        let federation = federation_hex(setup.federation());
        if federation != reply.federation {
            return Err(NetError::Config(format!(
                "the coordinator's setup hashes to federation {federation}, not the {} it names",
                reply.federation
            )));
        }
        if let Some(pinned) = &self.options.federation
            && !pinned.eq_ignore_ascii_case(&federation)
        {
            return Err(NetError::Config(format!(
                "the coordinator serves federation {federation}, not the expected {pinned}"
            )));
        }
        match setup.registry.get(&self.me) {
            Some(p) if role.is_none_or(|r| r == p.role) => {}
            _ => {
                return Err(NetError::Config(format!(
                    "this identity ({}) is not a {} of federation {federation}",
                    self.me,
                    role.map_or("member", Role::name)
                )));
            }
        }
        tracing::info!(%federation, "joined");
        Ok((description, setup))
    }

    async fn round(&self) -> Result<crate::proto::RoundReply> {
        self.call("round", |mut c| {
            let caller = self.caller();
            async move { c.get_round(caller).await }
        })
        .await
    }

    async fn ceremony(&self) -> Result<crate::proto::CeremonyReply> {
        self.call("ceremony", |mut c| {
            let caller = self.caller();
            async move { c.get_ceremony(caller).await }
        })
        .await
    }

    async fn post_ceremony(&self, envelope: &Envelope) -> Result<()> {
        let bytes = envelope.to_bytes();
        self.call("ceremony message", |mut c| {
            let message = crate::proto::Envelope {
                envelope: bytes.clone(),
            };
            async move { c.post_ceremony(message).await }
        })
        .await?;
        Ok(())
    }
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    b[0]
}

/// Parses signed messages of `kind`, each bounded as the coordinator bounds it.
fn envelopes(list: &[Vec<u8>], setup: &Setup, kind: MessageKind) -> Result<Vec<Envelope>> {
    let max = max_payload(setup, kind);
    list.iter()
        .map(|b| Envelope::from_bytes(b, max).map_err(NetError::from))
        .collect()
}

/// Fetches and checks the setup, as a participant joining would.
///
/// # Errors
/// As the join of [`run_client`].
pub async fn fetch_setup(
    options: &ConnectOptions,
    me: ParticipantId,
) -> Result<(SetupDescription, Setup)> {
    let connection = Connection::new(options, me)?;
    connection.join(None).await
}

/// The coordinator's status reply.
///
/// # Errors
/// An unreachable coordinator or a refused identity.
pub async fn fetch_status(
    options: &ConnectOptions,
    me: ParticipantId,
) -> Result<crate::proto::StatusReply> {
    let connection = Connection::new(options, me)?;
    connection
        .call("status", |mut c| {
            let caller = connection.caller();
            async move { c.status(caller).await }
        })
        .await
}

/// Checks and reads a signed model publication or round result.
///
/// # Errors
/// [`NetError::Pq`] if it is not the coordinator's, [`NetError::Protocol`]
/// if it does not decode.
pub fn read_publication(setup: &Setup, bytes: &[u8]) -> Result<(u64, RoundResult)> {
    let params = setup.layout.parameter_count();
    let envelope = Envelope::from_bytes(bytes, max_payload(setup, MessageKind::RoundResult))?;
    let sender = setup.registry.authenticate(&envelope)?;
    let routing = envelope.routing();
    if sender.role != Role::Coordinator
        || routing.kind != MessageKind::RoundResult
        || routing.parameter_set != setup.params.id().as_str()
    {
        return Err(NetError::Config(
            "the model publication is not the coordinator's round result".into(),
        ));
    }
    Ok((
        routing.round,
        RoundResult::decode(envelope.payload(), params)?,
    ))
}

/// A client's local training.
pub trait Trainer: Send + 'static {
    /// The update (trained model minus `global`) and the sample count for
    /// `round`, trained from `global`.
    ///
    /// # Errors
    /// Why training failed.
    fn train(&mut self, round: u64, global: &[f32])
    -> std::result::Result<(Vec<f32>, u64), String>;
}

/// How a client runs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The coordinator.
    pub connect: ConnectOptions,
    /// Where the client keeps what it submitted (so a restart resends the
    /// same bytes instead of a second submission).
    pub state_dir: PathBuf,
    /// Deterministic randomness (tests and reproducible demos only; see
    /// [`crate::insecure_test_rng`]).
    pub insecure_seed: Option<u64>,
}

/// What a client did.
#[derive(Clone, Debug)]
pub struct ClientReport {
    /// The rounds it submitted to.
    pub submitted: Vec<u64>,
    /// The final model.
    pub model: Vec<f32>,
    /// The final round's result.
    pub result: Option<RoundResult>,
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |source| NetError::Io {
        path: path.display().to_string(),
        source,
    };
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Runs a client until the federation's last round is done.
///
/// # Errors
/// A federation it is not part of, a coordinator that stays away longer
/// than the give-up time, a refused submission, a failed training.
pub async fn run_client(
    options: ClientOptions,
    identity: SigningIdentity,
    mut trainer: Box<dyn Trainer>,
) -> Result<ClientReport> {
    let me = identity.id();
    let connection = Connection::new(&options.connect, me)?;
    let (description, setup) = connection.join(Some(Role::Client)).await?;
    let index = description
        .client_index(&setup, me)
        .ok_or_else(|| NetError::Config("this identity is not a client".into()))?;
    std::fs::create_dir_all(&options.state_dir).map_err(|source| NetError::Io {
        path: options.state_dir.display().to_string(),
        source,
    })?;
    let mut node = ClientNode::new(identity);
    let key: PublicKey = loop {
        if !connection.round().await?.key_announced {
            tokio::time::sleep(options.connect.poll).await;
            continue;
        }
        let ceremony = connection.ceremony().await?;
        if !ceremony.collective_key.is_empty() {
            let announcement = Envelope::from_bytes(
                &ceremony.collective_key,
                max_payload(&setup, MessageKind::CollectiveKey),
            )?;
            break node.accept_key(
                &setup,
                &announcement,
                &envelopes(&ceremony.commitments, &setup, MessageKind::KeyCommitment)?,
                &envelopes(&ceremony.public_shares, &setup, MessageKind::PublicKeyShare)?,
            )?;
        }
        tokio::time::sleep(options.connect.poll).await;
    };
    tracing::info!("collective key checked against the holders' signed shares");
    let mut submitted = Vec::new();
    loop {
        let reply = connection.round().await?;
        match reply.phase.as_str() {
            "finished" => {
                let (_, result) = read_publication(&setup, &reply.publication)?;
                tracing::info!(round = result.round, "federation finished");
                return Ok(ClientReport {
                    submitted,
                    model: result.model.clone(),
                    result: Some(result),
                });
            }
            "collecting" if !reply.submitted && !submitted.contains(&reply.round) => {
                let round = reply.round;
                let file = options.state_dir.join(format!("submission-{round}.bin"));
                let bytes = if let Ok(bytes) = std::fs::read(&file) {
                    tracing::info!(round, "resending the submission made before a restart");
                    bytes
                } else {
                    let (published, global) = read_publication(&setup, &reply.publication)?;
                    if published != round {
                        return Err(NetError::Config(
                            "the publication is for another round".into(),
                        ));
                    }
                    let seed = options.insecure_seed;
                    let (setup2, key2) = (setup.clone(), key.clone());
                    let (bytes, back, node_back) = tokio::task::spawn_blocking(move || {
                        let outcome = (|| {
                            let (delta, samples) = trainer
                                .train(round, &global.model)
                                .map_err(NetError::Training)?;
                            let mut rng = match seed {
                                Some(s) => crate::insecure_test_rng(s, index, round),
                                None => Csprng::from_os()
                                    .map_err(|e| NetError::Config(e.to_string()))?,
                            };
                            let envelope =
                                node.submit(&setup2, &key2, round, &delta, samples, &mut rng)?;
                            Ok::<_, NetError>(envelope.to_bytes())
                        })();
                        (outcome, trainer, node)
                    })
                    .await
                    .map_err(|e| NetError::Training(e.to_string()))?;
                    trainer = back;
                    node = node_back;
                    let bytes = bytes?;
                    write_durably(&file, &bytes)?;
                    bytes
                };
                match connection.send("submission", &bytes, false).await {
                    Ok(status) => tracing::info!(round, status, bytes = bytes.len(), "submitted"),
                    Err(NetError::Status(s)) if s.code() == Code::AlreadyExists => {
                        tracing::warn!(
                            round,
                            message = s.message(),
                            "the coordinator already holds a submission of this client for the round"
                        );
                    }
                    // The round closed in between, or the coordinator refused
                    // this submission: carry on with the next round.
                    Err(NetError::Status(s))
                        if matches!(s.code(), Code::FailedPrecondition | Code::InvalidArgument) =>
                    {
                        tracing::warn!(round, code = ?s.code(), message = s.message(), "submission refused; waiting for the next round");
                    }
                    Err(e) => return Err(e),
                }
                submitted.push(round);
            }
            _ => tokio::time::sleep(options.connect.poll).await,
        }
    }
}

/// How a key holder runs.
#[derive(Clone, Debug)]
pub struct HolderOptions {
    /// The coordinator.
    pub connect: ConnectOptions,
    /// Where the holder keeps its encrypted key share and its ledger.
    pub state_dir: PathBuf,
    /// The secret file the storage key is derived from (its sealing key).
    pub key_file: PathBuf,
}

/// What a holder did.
#[derive(Clone, Debug)]
pub struct HolderReport {
    /// Decryption shares sent.
    pub shares: u64,
    /// Whether it ran the ceremony (false: restored its stored share).
    pub ran_ceremony: bool,
}

/// Polls the (small) round reply until `ready`, then fetches the ceremony
/// messages once.
async fn wait_for(
    connection: &Connection,
    poll: Duration,
    ready: impl Fn(&crate::proto::RoundReply) -> bool,
) -> Result<crate::proto::CeremonyReply> {
    loop {
        if ready(&connection.round().await?) {
            return connection.ceremony().await;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Runs a key holder until the federation's last round is done: the key
/// ceremony (unless a share from an earlier run is stored), then a
/// decryption share for each request addressed to it.
///
/// # Errors
/// A federation it is not part of, a store that does not open with this
/// key file, a coordinator that stays away past the give-up time, and
/// refused messages.
pub async fn run_holder(
    options: HolderOptions,
    identity: SigningIdentity,
    sealing: SealingKey,
) -> Result<HolderReport> {
    let me = identity.id();
    let connection = Connection::new(&options.connect, me)?;
    let (_, setup) = connection.join(Some(Role::KeyHolder)).await?;
    let point: HolderId = setup
        .holder_of(me)
        .ok_or_else(|| NetError::Config("this identity is not a key holder".into()))?;
    std::fs::create_dir_all(&options.state_dir).map_err(|source| NetError::Io {
        path: options.state_dir.display().to_string(),
        source,
    })?;
    let store = HolderStore::open(
        &options.state_dir.join("holder.redb"),
        &options.key_file,
        setup.federation(),
        point,
    )?;
    let ledger = ShareLedger::open(options.state_dir.join("ledger.txt"))
        .map_err(ringsum_protocol::ProtocolError::from)?;
    let poll = options.connect.poll;
    let (mut node, ran_ceremony) = if let Some(bytes) = store.key_share()? {
        let share = decode_key_share(&setup.params, &bytes)?;
        tracing::info!(
            holder = point.0,
            "key share restored from the encrypted store"
        );
        (
            HolderNode::restore(&setup, identity, sealing, point, share, ledger)?,
            false,
        )
    } else {
        let mut node = HolderNode::new(identity, sealing, point, ledger);
        let mut rng = Csprng::from_os().map_err(|e| NetError::Config(e.to_string()))?;
        let n = setup.holders.len();
        connection
            .post_ceremony(&node.commit(&setup, &mut rng)?)
            .await?;
        let all = u32::try_from(n).unwrap_or(u32::MAX);
        wait_for(&connection, poll, |r| r.commitments == all).await?;
        connection.post_ceremony(&node.reveal(&setup)?).await?;
        for sealed in node.deal(&setup, &mut rng)? {
            connection.post_ceremony(&sealed).await?;
        }
        let mine = wait_for(&connection, poll, |r| r.sealed_for_caller == all)
            .await?
            .sealed_shares;
        let mine = envelopes(&mine, &setup, MessageKind::SecretShare)?;
        node.receive_shares(&setup, &mine)?;
        let share = node
            .key_share()
            .ok_or_else(|| NetError::Config("the ceremony left no key share".into()))?;
        store.set_key_share(&encode_key_share(share))?;
        tracing::info!(
            holder = point.0,
            "key ceremony done; key share stored encrypted"
        );
        (node, true)
    };
    let mut shares = 0u64;
    loop {
        let round = connection.round().await?;
        if round.phase == "finished" {
            return Ok(HolderReport {
                shares,
                ran_ceremony,
            });
        }
        if round.phase == "decrypting" {
            let task = connection
                .call("task", |mut c| {
                    let caller = connection.caller();
                    async move {
                        let mut stream = c.get_task(caller).await?.into_inner();
                        let mut bytes = Vec::new();
                        while let Some(chunk) = stream.message().await? {
                            bytes.extend_from_slice(&chunk.data);
                        }
                        Ok(Response::new(bytes))
                    }
                })
                .await?;
            if !task.is_empty() {
                let setup2 = setup.clone();
                let (answer, back) = tokio::task::spawn_blocking(move || {
                    let answer = answer_task(&setup2, &mut node, &task);
                    (answer, node)
                })
                .await
                .map_err(|e| NetError::Config(e.to_string()))?;
                node = back;
                let share = match answer {
                    Ok(share) => share,
                    Err(e) => {
                        // A request this holder will not answer (stale,
                        // not its set, refused by its ledger): say so and
                        // carry on.
                        tracing::warn!(round = round.round, error = %e, "decryption request refused");
                        tokio::time::sleep(poll).await;
                        continue;
                    }
                };
                match connection.send("decryption share", &share, true).await {
                    Ok(status) => {
                        shares += 1;
                        tracing::info!(round = round.round, status, "decryption share sent");
                    }
                    // Overtaken by a retry with another set, or the round
                    // moved on: not this holder's fault, keep serving.
                    Err(NetError::Status(s))
                        if matches!(
                            s.code(),
                            Code::FailedPrecondition | Code::InvalidArgument | Code::AlreadyExists
                        ) =>
                    {
                        tracing::warn!(round = round.round, code = ?s.code(), message = s.message(), "decryption share refused");
                        tokio::time::sleep(poll).await;
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
        }
        tokio::time::sleep(poll).await;
    }
}

fn answer_task(setup: &Setup, node: &mut HolderNode, task: &[u8]) -> Result<Vec<u8>> {
    let bad = || NetError::Config("the decryption task is malformed".into());
    let (len, rest) = task.split_at_checked(8).ok_or_else(bad)?;
    let len = usize::try_from(u64::from_be_bytes(len.try_into().map_err(|_| bad())?))
        .map_err(|_| bad())?;
    let (request, aggregate) = rest.split_at_checked(len).ok_or_else(bad)?;
    let request =
        Envelope::from_bytes(request, max_payload(setup, MessageKind::DecryptionRequest))?;
    let aggregate = decode_aggregate(&setup.params, &setup.packing, &setup.layout, aggregate)?;
    Ok(node
        .decryption_share(setup, &request, &aggregate)?
        .to_bytes())
}
