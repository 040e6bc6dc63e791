//! A key holder: follows the coordinator's round openings, fetches the
//! sealed round key shares addressed to it as submissions are accepted,
//! and answers the coordinator's signed set with its masked share of the
//! clients' key sum, recording (round, set) in its journal before the
//! answer leaves. After a restart it gives the same answer for the same
//! set and refuses any other set for that round (the protocol's
//! [`Holder`] does both, over the [`HolderJournal`]).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use ringsum_core::update::RoundId;
use ringsum_pq::{Envelope, Role, SealingKey, SigningIdentity};
use ringsum_protocol::holder::{AnswerJournal as _, Holder};
use ringsum_protocol::message::{max_set_payload, max_share_payload};
use ringsum_protocol::spec::Federation;
use ringsum_threshold::HolderId;
use tonic::{Code, Response};

use super::Connection;
use crate::auth::{Method, Query, with_proof};
use crate::error::{NetError, Result};
use crate::journal::HolderJournal;
use crate::proto::{Phase, ShareQuery};

/// How a key holder runs.
#[derive(Clone, Debug)]
pub struct HolderOptions {
    /// The coordinator (and the pinned federation id, which is required).
    pub connect: super::ConnectOptions,
    /// Where the holder keeps its journal of answered sets
    /// (`holder.redb`).
    pub state_dir: PathBuf,
}

/// What a holder did.
#[derive(Clone, Debug)]
pub struct HolderReport {
    /// Its Shamir point: how logs, the audit log and `ringsum status` name
    /// it.
    pub point: HolderId,
    /// The rounds it answered (from its journal, so across restarts).
    pub answered: Vec<u64>,
    /// Answers this run sent (and the coordinator took, or had).
    pub sent: u64,
}

/// The holder's state while it runs.
struct Run {
    connection: Connection,
    federation: Arc<Federation>,
    holder: Option<Holder<HolderJournal>>,
    point: HolderId,
    /// The round followed, and how many of its shares were fetched.
    round: RoundId,
    fetched: u64,
    /// Rounds this run is done with (answered, or refused).
    done: BTreeSet<u64>,
    sent: u64,
}

impl Run {
    /// Runs `work` on the holder off the async threads.
    async fn with_holder<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Holder<HolderJournal>) -> T + Send + 'static,
    ) -> Result<T> {
        let mut holder = self.holder.take().ok_or(NetError::Publication {
            reason: "the holder is busy",
        })?;
        let (out, holder) = tokio::task::spawn_blocking(move || {
            let out = work(&mut holder);
            (out, holder)
        })
        .await?;
        self.holder = Some(holder);
        Ok(out)
    }

    fn answered(&self, round: RoundId) -> Result<bool> {
        Ok(self
            .holder
            .as_ref()
            .map(|h| h.journal().answered(round))
            .transpose()?
            .flatten()
            .is_some())
    }

    /// Fetches and keeps the shares accepted since the last fetch.
    async fn fetch_shares(&mut self, accepted: u64) -> Result<()> {
        if accepted <= self.fetched || self.answered(self.round)? {
            return Ok(());
        }
        let round = self.round.0;
        let from = self.fetched;
        let connection = &self.connection;
        let shares = connection
            .call("shares", |mut c| {
                let proof = connection.proof(Query {
                    round,
                    from,
                    ..Query::blank(Method::Shares)
                });
                async move {
                    let request = with_proof(ShareQuery {}, &proof?);
                    let mut stream = c.get_shares(request).await?.into_inner();
                    let mut out = Vec::new();
                    while let Some(message) = stream.message().await? {
                        out.push(message.envelope);
                    }
                    Ok(Response::new(out))
                }
            })
            .await?;
        let count = shares.len() as u64;
        let point = self.point.0;
        let max = max_share_payload(&self.federation);
        let refused = self
            .with_holder(move |holder| {
                let mut refused = Vec::new();
                for bytes in shares {
                    let kept = Envelope::from_bytes(&bytes, max)
                        .map_err(ringsum_protocol::ProtocolError::from)
                        .and_then(|envelope| holder.receive_share(&envelope));
                    if let Err(e) = kept {
                        refused.push(e.to_string());
                    }
                }
                refused
            })
            .await?;
        for reason in refused {
            // A client's share that does not open or does not match its
            // commitment: this holder cannot answer a set naming it.
            tracing::warn!(holder = point, round, %reason, "holder {point}: a round key share was refused");
        }
        self.fetched += count;
        tracing::debug!(
            holder = point,
            round,
            shares = self.fetched,
            "shares fetched"
        );
        Ok(())
    }

    /// Answers the signed set `request` of the followed round.
    async fn answer(&mut self, request: Vec<u8>, accepted: u64) -> Result<()> {
        let round = self.round.0;
        let point = self.point.0;
        // Every share of the set first (the set names the accepted
        // submissions).
        self.fetch_shares(accepted).await?;
        let max = max_set_payload(&self.federation);
        let answer = self
            .with_holder(move |holder| {
                Envelope::from_bytes(&request, max)
                    .map_err(ringsum_protocol::ProtocolError::from)
                    .and_then(|request| holder.answer(&request))
            })
            .await?;
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                // Not a set this holder answers (another set than the one
                // it answered, one naming a client it holds no share of,
                // too small...): it says so and waits for the next round.
                tracing::warn!(holder = point, round, reason = %e, "holder {point} refuses the request of round {round}");
                self.done.insert(round);
                return Ok(());
            }
        };
        match self
            .connection
            .send("holder answer", &answer.to_bytes(), true)
            .await
        {
            Ok(ack) => {
                self.sent += 1;
                tracing::info!(
                    holder = point,
                    round,
                    already = ack == super::Acknowledged::AlreadyAccepted,
                    "holder {point} answered round {round}"
                );
            }
            // The round ended meanwhile, or the coordinator took another
            // answer of this holder: nothing to do until the next round.
            Err(NetError::Status(s))
                if matches!(
                    s.code(),
                    Code::FailedPrecondition | Code::InvalidArgument | Code::AlreadyExists
                ) =>
            {
                tracing::warn!(holder = point, round, code = ?s.code(), reason = s.message(), "holder {point}: the answer of round {round} was refused");
            }
            Err(e) => return Err(e),
        }
        self.done.insert(round);
        Ok(())
    }
}

/// Runs a key holder until the federation's last round has ended.
///
/// # Errors
/// [`NetError::NotPinned`] without a pinned federation; a federation it is
/// not a key holder of; a journal of another federation or holder; a
/// coordinator that stays away past the give-up time.
pub async fn run_holder(
    options: HolderOptions,
    identity: impl Into<Arc<SigningIdentity>>,
    sealing: SealingKey,
) -> Result<HolderReport> {
    let identity: Arc<SigningIdentity> = identity.into();
    if options.connect.federation.is_none() {
        return Err(NetError::NotPinned);
    }
    let me = identity.id();
    let mut connection = Connection::new(&options.connect, Arc::clone(&identity))?;
    let (_, federation) = connection.join(Some(Role::KeyHolder)).await?;
    let federation = Arc::new(federation);
    let point = federation
        .holder_point(me)
        .ok_or_else(|| NetError::NotAMember {
            id: me,
            role: "key holder",
            federation: crate::federation_hex(federation.id()),
        })?;
    crate::fs::ensure_dir(&options.state_dir)?;
    let journal = HolderJournal::open(
        &options.state_dir.join("holder.redb"),
        federation.id(),
        point,
    )?;
    let answered_before = journal.rounds()?;
    tracing::info!(
        holder = point.0,
        answered = ?answered_before.iter().map(|r| r.0).collect::<Vec<_>>(),
        "holder {} (Shamir point {}) joined",
        point.0,
        point.0
    );
    let holder = Holder::new(Arc::clone(&federation), identity, sealing, journal)?;
    let poll = options.connect.poll;
    let mut run = Run {
        connection,
        federation: Arc::clone(&federation),
        holder: Some(holder),
        point,
        round: RoundId(0),
        fetched: 0,
        done: BTreeSet::new(),
        sent: 0,
    };
    loop {
        let reply = run.connection.round().await?;
        let phase = reply.phase();
        if phase == Phase::Finished {
            let answered = run
                .holder
                .as_ref()
                .map(|h| h.journal().rounds())
                .transpose()?
                .unwrap_or_default();
            return Ok(HolderReport {
                point,
                answered: answered.iter().map(|r| r.0).collect(),
                sent: run.sent,
            });
        }
        let round = RoundId(reply.round);
        if round != run.round && !reply.publication.is_empty() {
            let publication = reply.publication.clone();
            let max = federation
                .layout()
                .parameter_count()
                .saturating_mul(4)
                .saturating_add(64);
            let followed = run
                .with_holder(move |holder| {
                    Envelope::from_bytes(&publication, max)
                        .map_err(ringsum_protocol::ProtocolError::from)
                        .and_then(|envelope| holder.follow(&envelope))
                })
                .await?;
            match followed {
                Ok(_) => {
                    run.round = round;
                    run.fetched = 0;
                }
                Err(e) => {
                    tracing::warn!(holder = point.0, round = round.0, reason = %e, "the round's opening does not check");
                }
            }
        }
        if run.round == round && matches!(phase, Phase::Collecting | Phase::Answering) {
            run.fetch_shares(reply.accepted).await?;
            if phase == Phase::Answering
                && !reply.request.is_empty()
                && !run.done.contains(&round.0)
            {
                run.answer(reply.request, reply.accepted).await?;
            }
        }
        tokio::time::sleep(poll).await;
    }
}
