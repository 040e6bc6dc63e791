//! Who may call, how often, and how much they may make the service hold.
//!
//! Before anything else, a call's peer address spends a token of its
//! address's budget (`governor`, per address): a flood from one address
//! is refused before a single signature is checked. Then the proof of
//! identity ([`crate::auth`]) is decoded and checked against the
//! federation's registry, its timestamp against the clock, its nonce
//! against those seen; then the participant's own budget is spent (reads
//! and writes apart). A streamed message's bytes are held against the
//! service-wide cap and the sender's cap on streams only after that, and
//! the message must be the one its proof names (length and digest).
//!
//! Every keyed state is pruned: the rate limiters drop keys whose budget
//! is full again, the nonces are kept in two generations of
//! [`MAX_SKEW`] + [`MAX_AHEAD`] each.
//!
//! The guard's clock is the wall clock read once at start, then advanced
//! by the monotonic clock: a wall clock stepped back cannot make proofs
//! whose nonces were forgotten valid again.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ringsum_pq::{ParticipantId, Role};
use ringsum_protocol::spec::Federation;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::{Limits, lock};
use crate::auth::{
    ANOTHER_FEDERATION, MAX_AHEAD, MAX_PROOF, MAX_SKEW, Method, Query, REFUSAL_KEY, decode_proof,
};
use crate::error::NetError;

/// Failed signature checks one address may cause: 10 a second, 50 at
/// once; past them the address is refused before any check for at least
/// [`FAILURE_BLOCK`].
const FAILURES_PER_SECOND: f64 = 10.0;
const FAILURE_BURST: f64 = 50.0;
const FAILURE_BLOCK: Duration = Duration::from_secs(5);

/// How often the keyed state is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// An authenticated call.
#[derive(Clone, Copy, Debug)]
pub(super) struct Caller {
    /// Who.
    pub id: ParticipantId,
    /// As what.
    pub role: Role,
    /// What the proof said.
    pub query: Query,
}

/// Seen nonces, in two generations.
#[derive(Debug)]
struct Nonces {
    hasher: RandomState,
    current: HashSet<u64>,
    previous: HashSet<u64>,
    since: Instant,
}

impl Nonces {
    fn rotate(&mut self) {
        // A proof is valid for MAX_SKEW + MAX_AHEAD of the guard's
        // (monotonic) clock; a generation keeps it at least that long.
        if self.since.elapsed() > MAX_SKEW + MAX_AHEAD {
            self.previous = std::mem::take(&mut self.current);
            self.since = Instant::now();
        }
    }

    fn key(&self, id: ParticipantId, nonce: &[u8; 16]) -> u64 {
        self.hasher.hash_one((id.as_bytes(), nonce))
    }

    /// Whether `nonce` of `id` was recorded.
    fn seen(&mut self, id: ParticipantId, nonce: &[u8; 16]) -> bool {
        self.rotate();
        let key = self.key(id, nonce);
        self.previous.contains(&key) || self.current.contains(&key)
    }

    /// Records `nonce` of `id`; false when it was recorded before.
    fn insert(&mut self, id: ParticipantId, nonce: &[u8; 16]) -> bool {
        self.rotate();
        let key = self.key(id, nonce);
        !self.previous.contains(&key) && self.current.insert(key)
    }
}

/// The key of an address for the per-address budgets: an IPv6 address
/// by its /64 (one subscriber's prefix), an IPv4 address whole.
fn address_key(peer: Option<IpAddr>) -> Option<IpAddr> {
    peer.map(|ip| match ip {
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        v4 @ IpAddr::V4(_) => v4,
    })
}

fn quota(per_second: f64, burst: f64) -> Quota {
    // The limits are checked positive and finite where they are read.
    let period = Duration::from_secs_f64(1.0 / per_second.max(1e-6));
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a burst is a small positive count"
    )]
    let burst =
        NonZeroU32::new(burst.clamp(1.0, f64::from(u32::MAX)) as u32).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

fn denied<K>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: impl FnOnce(Duration) -> String,
) -> Result<(), Status>
where
    K: std::hash::Hash + Eq + Clone,
{
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Status::resource_exhausted(what(wait))
    })
}

/// The guard's state.
pub(super) struct Guard {
    limits: Limits,
    peers: DefaultKeyedRateLimiter<Option<IpAddr>>,
    failures: DefaultKeyedRateLimiter<Option<IpAddr>>,
    blocked: Mutex<HashMap<Option<IpAddr>, Instant>>,
    /// When the service started (ms since the Unix epoch, wall clock).
    started_ms: u64,
    /// The same instant on the monotonic clock.
    started: Instant,
    reads: DefaultKeyedRateLimiter<ParticipantId>,
    writes: DefaultKeyedRateLimiter<ParticipantId>,
    nonces: Mutex<Nonces>,
    streams: Mutex<HashMap<ParticipantId, usize>>,
    bytes: Arc<Semaphore>,
    pruned: Mutex<Instant>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A streamed message's hold on the caps; released when dropped.
/// It owns its share of the guard, so that the blocking work a message
/// goes on to (its checks, its recording) can keep it after the call is
/// cancelled: a cancelled call gives back nothing before that work ends.
#[derive(Debug)]
pub(super) struct Hold {
    guard: Arc<Guard>,
    id: ParticipantId,
    bytes: Option<OwnedSemaphorePermit>,
}

impl Hold {
    /// Holds `n` more bytes against the service's cap, as they arrive
    /// (`RESOURCE_EXHAUSTED`, which senders retry, when it is full).
    pub(super) fn take(&mut self, n: usize) -> Result<(), Status> {
        if n == 0 {
            return Ok(());
        }
        let permits = u32::try_from(n).map_err(|_| Status::out_of_range("a chunk over 4 GiB"))?;
        let permit = Arc::clone(&self.guard.bytes)
            .try_acquire_many_owned(permits)
            .map_err(|_| {
                tracing::warn!(participant = %self.id, "refused: the service holds its cap of message bytes");
                Status::resource_exhausted(format!(
                    "the coordinator holds {} bytes of messages already (its cap); retry shortly",
                    self.guard.limits.max_inflight_bytes
                ))
            })?;
        match &mut self.bytes {
            Some(held) => held.merge(permit),
            None => self.bytes = Some(permit),
        }
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.guard.release_stream(self.id);
    }
}

impl Guard {
    pub(super) fn new(limits: Limits) -> Self {
        let permits = limits.max_inflight_bytes.min(Semaphore::MAX_PERMITS);
        let started_ms = crate::auth::unix_ms(SystemTime::now());
        Self {
            limits,
            peers: governor::RateLimiter::keyed(quota(
                limits.peer_calls_per_second,
                limits.peer_burst,
            )),
            failures: governor::RateLimiter::keyed(quota(FAILURES_PER_SECOND, FAILURE_BURST)),
            blocked: Mutex::new(HashMap::new()),
            started_ms,
            started: Instant::now(),
            reads: governor::RateLimiter::keyed(quota(limits.reads_per_second, limits.read_burst)),
            writes: governor::RateLimiter::keyed(quota(
                limits.writes_per_second,
                limits.write_burst,
            )),
            nonces: Mutex::new(Nonces {
                hasher: RandomState::new(),
                current: HashSet::new(),
                previous: HashSet::new(),
                since: Instant::now(),
            }),
            streams: Mutex::new(HashMap::new()),
            bytes: Arc::new(Semaphore::new(permits)),
            pruned: Mutex::new(Instant::now()),
        }
    }

    fn prune(&self) {
        let mut pruned = lock(&self.pruned);
        if pruned.elapsed() < PRUNE_EVERY {
            return;
        }
        *pruned = Instant::now();
        for limiter in [&self.reads, &self.writes] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for limiter in [&self.peers, &self.failures] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        lock(&self.blocked).retain(|_, until| *until > now);
    }

    /// The guard's clock: the wall clock at start, advanced by the
    /// monotonic clock since.
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.started_ms) + self.started.elapsed()
    }

    /// Spends a token of `peer`'s budget: the first check of every call,
    /// before its proof is decoded.
    pub(super) fn admit(&self, peer: Option<IpAddr>) -> Result<(), Status> {
        self.prune();
        denied(&self.peers, &address_key(peer), |wait| {
            tracing::warn!(?peer, "refused: the address's rate limit");
            format!(
                "rate limit: at most {} calls per second from one address; retry in {} ms",
                self.limits.peer_calls_per_second,
                wait.as_millis()
            )
        })
    }

    /// Checks `proof` from `peer` against `federation`, cheapest first so
    /// that a stranger cannot make the service check signatures for
    /// nothing: the proof decodes for this federation, its time is within
    /// [`MAX_SKEW`] of the clock and after the service started, its
    /// sender is a member, its nonce is unseen, the address is not
    /// blocked for failed signatures; then the signature (a failure
    /// spends the address's small budget of failures), the member's budget
    /// for the kind of call the proof names, and the nonce is recorded.
    /// The endpoint checks that the call is the one the proof names.
    pub(super) fn authenticate(
        &self,
        federation: &Federation,
        proof: &[u8],
        peer: Option<IpAddr>,
    ) -> Result<Caller, Status> {
        if proof.len() > MAX_PROOF {
            return Err(Status::unauthenticated(format!(
                "a proof of identity is at most {MAX_PROOF} bytes"
            )));
        }
        let (envelope, query) = decode_proof(proof, federation.id()).map_err(|e| {
            let mut status = Status::unauthenticated(format!("proof of identity refused: {e}"));
            if matches!(e, NetError::NotThisFederation { .. }) {
                status.metadata_mut().insert(
                    REFUSAL_KEY,
                    tonic::metadata::MetadataValue::from_static(ANOTHER_FEDERATION),
                );
            }
            status
        })?;
        let id = envelope.sender();
        // A blocked address is refused before anything about the sender
        // is looked at, whoever the proof names.
        let key = address_key(peer);
        if lock(&self.blocked)
            .get(&key)
            .is_some_and(|until| *until > Instant::now())
        {
            return Err(Status::resource_exhausted(
                "too many proofs that failed to verify from this address: wait and retry",
            ));
        }
        let skew = query.skew_ms(self.now());
        let behind = i128::try_from(MAX_SKEW.as_millis()).unwrap_or(i128::MAX);
        let ahead = i128::try_from(MAX_AHEAD.as_millis()).unwrap_or(i128::MAX);
        if skew < -behind || skew > ahead {
            tracing::warn!(participant = %id, skew_ms = %skew, "refused: stale proof");
            return Err(Status::unauthenticated(format!(
                "the proof's time is {:.1} s {} the coordinator's clock (at most {} s behind \
                 or {} s ahead): check this machine's clock",
                (skew.unsigned_abs() as f64) / 1e3,
                if skew > 0 { "ahead of" } else { "behind" },
                MAX_SKEW.as_secs(),
                MAX_AHEAD.as_secs()
            )));
        }
        // The nonces seen before a restart are gone: a proof made before
        // the start could be a replay. Honest callers sign again. (One
        // stamped ahead of the clock by up to MAX_AHEAD, in the last
        // moments of the previous process, is not caught here: refusing
        // those would refuse every honest caller for MAX_AHEAD after each
        // restart, longer than a round's wait for its key holders.)
        if query.timestamp_ms < self.started_ms {
            return Err(Status::unavailable(
                "the coordinator restarted after this proof was made: sign the call again",
            ));
        }
        // A failure spends the address's small budget of failures; past
        // it, the address is blocked for a while.
        let failed = || {
            if let Err(not_until) = self.failures.check_key(&key) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                lock(&self.blocked).insert(key, Instant::now() + wait.max(FAILURE_BLOCK));
            }
        };
        // Strangers, revoked and rotated keys alike: one answer, and the
        // same budget spent, so that a stranger learns nothing about who
        // is a member (the log says).
        let member = |reason: &dyn std::fmt::Display| {
            tracing::warn!(participant = %id, %reason, ?peer, "refused: not a member's proof");
            Status::unauthenticated(
                "proof of identity refused: not a valid proof of a member of this federation",
            )
        };
        match federation.registry().get(&id) {
            Some(_) if federation.registry().revocation(&id).is_none() => {}
            _ => {
                failed();
                return Err(member(&"unknown or revoked sender"));
            }
        }
        if lock(&self.nonces).seen(id, &query.nonce) {
            tracing::warn!(participant = %id, "refused: replayed proof");
            return Err(Status::unauthenticated(
                "this proof of identity was used before: sign every call afresh",
            ));
        }
        let participant = federation.registry().authenticate(&envelope).map_err(|e| {
            failed();
            member(&e)
        })?;
        let role = participant.role;
        let method = query.method;
        let write = matches!(method, Method::Submit | Method::Answer);
        let (limiter, per_second, what) = if write {
            (&self.writes, self.limits.writes_per_second, "messages")
        } else {
            (&self.reads, self.limits.reads_per_second, "queries")
        };
        denied(limiter, &id, |wait| {
            tracing::warn!(participant = %id, write, "refused: rate limit");
            format!(
                "rate limit: at most {per_second} {what} per second for participant {id}; \
                 retry in {} ms",
                wait.as_millis()
            )
        })?;
        // Recorded last: a proof refused for the budget is not remembered,
        // so what one member can make the service remember is bounded by
        // its budget. Two calls racing with one nonce: the second loses.
        if !lock(&self.nonces).insert(id, &query.nonce) {
            return Err(Status::unauthenticated(
                "this proof of identity was used before: sign every call afresh",
            ));
        }
        Ok(Caller { id, role, query })
    }

    /// One of `id`'s streams against its cap, for a message of `total`
    /// bytes whose bytes are then held against the service's cap as they
    /// arrive ([`Hold::take`]); refused (`RESOURCE_EXHAUSTED`, which
    /// senders retry) when the identity sends as many as it may, and
    /// (`FAILED_PRECONDITION`) when the message could never fit.
    pub(super) fn hold(self: &Arc<Self>, id: ParticipantId, total: usize) -> Result<Hold, Status> {
        // Twice the message: its bytes, and the decoded copy the checks
        // make while the bytes are still held.
        if total.saturating_mul(2) > self.limits.max_inflight_bytes {
            return Err(Status::failed_precondition(format!(
                "a message of {total} bytes (held twice while it is checked) is over the \
                 coordinator's cap on message bytes held at once ({}): its operator must raise \
                 max_inflight_bytes",
                self.limits.max_inflight_bytes
            )));
        }
        let mut streams = lock(&self.streams);
        let n = streams.entry(id).or_insert(0);
        if *n >= self.limits.max_streams_per_identity {
            return Err(Status::resource_exhausted(format!(
                "participant {id} already sends {n} messages at once (the limit)"
            )));
        }
        *n += 1;
        Ok(Hold {
            guard: Arc::clone(self),
            id,
            bytes: None,
        })
    }

    fn release_stream(&self, id: ParticipantId) {
        let mut streams = lock(&self.streams);
        if let Some(n) = streams.get_mut(&id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                streams.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(max_inflight_bytes: usize) -> Arc<Guard> {
        Arc::new(Guard::new(Limits {
            max_inflight_bytes,
            max_streams_per_identity: 2,
            ..Limits::default()
        }))
    }

    #[test]
    fn the_guards_clock_starts_at_the_wall_clock_and_moves_monotonically() {
        let g = guard(1 << 20);
        let first = crate::auth::unix_ms(g.now());
        assert!(first >= g.started_ms && first < g.started_ms + 60_000);
        assert!(crate::auth::unix_ms(g.now()) >= first);
    }

    #[test]
    fn a_claimed_length_holds_nothing_until_bytes_arrive() {
        let g = guard(1000);
        let (a, b) = (ParticipantId([1; 32]), ParticipantId([2; 32]));
        // Two streams of `a` claiming the most that fits hold no bytes.
        let mut first = g.hold(a, 500).unwrap_or_else(|e| unreachable!("{e}"));
        let _second = g.hold(a, 500).unwrap_or_else(|e| unreachable!("{e}"));
        // A third of `a` is over its cap on streams; `b` is not blocked.
        assert_eq!(
            g.hold(a, 10).map(|_| ()).unwrap_err().code(),
            tonic::Code::ResourceExhausted
        );
        let mut other = g.hold(b, 500).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(other.take(600).is_ok());
        // Bytes that arrive are held; over the cap they are refused.
        assert!(first.take(400).is_ok());
        assert_eq!(
            first.take(1).unwrap_err().code(),
            tonic::Code::ResourceExhausted
        );
        drop(other);
        assert!(first.take(100).is_ok());
        // A message that can never fit twice is refused for good.
        assert_eq!(
            g.hold(b, 501).map(|_| ()).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
        // Dropping a hold gives back its stream and its bytes.
        drop(first);
        let mut again = g.hold(a, 500).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(again.take(1000).is_ok());
    }

    #[test]
    fn a_nonce_is_recorded_once_and_only_for_its_sender() {
        let g = guard(1 << 20);
        let mut nonces = lock(&g.nonces);
        let (a, b) = (ParticipantId([1; 32]), ParticipantId([2; 32]));
        assert!(!nonces.seen(a, &[7; 16]));
        assert!(nonces.insert(a, &[7; 16]));
        assert!(nonces.seen(a, &[7; 16]));
        assert!(!nonces.insert(a, &[7; 16]));
        assert!(!nonces.seen(b, &[7; 16]));
        // Kept through one rotation, gone after two.
        nonces.since = Instant::now()
            .checked_sub(3 * MAX_SKEW)
            .unwrap_or_else(Instant::now);
        assert!(nonces.seen(a, &[7; 16]));
        nonces.since = Instant::now()
            .checked_sub(3 * MAX_SKEW)
            .unwrap_or_else(Instant::now);
        assert!(!nonces.seen(a, &[7; 16]));
    }

    #[test]
    fn ipv6_addresses_share_the_budget_of_their_64_prefix() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let two: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(address_key(Some(one)), address_key(Some(two)));
        assert_ne!(address_key(Some(one)), address_key(Some(other)));
        let v4: IpAddr = "10.0.0.1".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(address_key(Some(v4)), Some(v4));
    }
}
