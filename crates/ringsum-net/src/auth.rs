//! Who asks: every call a participant makes to the coordinator's service
//! carries a proof of identity, an envelope of kind
//! [`MessageKind::Query`] signed with the participant's ML-DSA identity
//! (and Ed25519, when the federation's identities are hybrid).
//!
//! The proof's payload is [`Query`]: which call it authorizes, when it was
//! made (milliseconds since the Unix epoch), a random nonce, and the call's
//! arguments (the round and position a key holder asks shares from; the
//! length and SHA3-256 digest of a streamed message). The envelope's
//! routing names the federation, so a proof made for one federation is
//! refused by another. The coordinator accepts a proof stamped at most
//! [`MAX_SKEW`] behind its clock and [`MAX_AHEAD`] ahead of it, and at
//! most once (it remembers nonces for as long as they are valid, and
//! after a restart refuses proofs stamped before it started), so a proof
//! seen once cannot be replayed to poll as
//! someone else, refresh a holder's liveness or stream a message under
//! another's name.
//!
//! The proof travels in the call's metadata (header [`PROOF_METADATA`]):
//! the coordinator checks it from the headers, before it reads any message
//! of the call. A streamed message (a submission, a holder's answer) is
//! then held against the sender's cap on streams, and its bytes against
//! the service's cap as they arrive, and must be the one the proof names
//! (length and digest).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringsum_pq::{Envelope, FederationId, MessageKind, ParticipantId, Routing, SigningIdentity};
use sha3::{Digest, Sha3_256};

use crate::error::{NetError, Result};

/// The metadata key of a refusal that a client program acts on, and its
/// value for a proof made for another federation.
pub const REFUSAL_KEY: &str = "ringsum-refusal";
/// See [`REFUSAL_KEY`].
pub const ANOTHER_FEDERATION: &str = "another-federation";

/// The gRPC metadata key (binary) of a call's proof.
pub const PROOF_METADATA: &str = "ringsum-proof-bin";

/// `message` as a request carrying `proof` in its metadata.
#[must_use]
pub fn with_proof<T>(message: T, proof: &[u8]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert_bin(
        PROOF_METADATA,
        tonic::metadata::MetadataValue::from_bytes(proof),
    );
    request
}

/// The parameter-set id a proof's envelope carries (proofs belong to the
/// service, not to any parameter set).
pub const QUERY_PARAMETER_SET: &str = "ringsum-query-v1";

/// How far a proof's timestamp may be behind the coordinator's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(120);

/// How far a proof's timestamp may be ahead of the coordinator's clock.
/// Small: after a restart, the coordinator refuses proofs stamped before
/// it started (it forgot their nonces), and only one stamped this far
/// ahead, in the last moments of the previous process, could slip past.
pub const MAX_AHEAD: Duration = Duration::from_secs(10);

/// The length of a [`Query`] payload.
pub const QUERY_LEN: usize = 1 + 8 + 16 + 8 + 8 + 8 + 32;

/// The largest proof the service decodes (envelope header and the largest
/// hybrid signature included, with a margin).
pub const MAX_PROOF: usize = 16 * 1024;

/// The call a proof authorizes (one byte on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GetSetup` (1).
    Setup,
    /// `GetRound` (2).
    Round,
    /// `GetShares` (3).
    Shares,
    /// `Status` (4).
    Status,
    /// `Submit` (5).
    Submit,
    /// `PostAnswer` (6).
    Answer,
}

impl Method {
    const ALL: [Self; 6] = [
        Self::Setup,
        Self::Round,
        Self::Shares,
        Self::Status,
        Self::Submit,
        Self::Answer,
    ];

    /// The byte on the wire.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::Setup => 1,
            Self::Round => 2,
            Self::Shares => 3,
            Self::Status => 4,
            Self::Submit => 5,
            Self::Answer => 6,
        }
    }

    /// The gRPC method's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Setup => "GetSetup",
            Self::Round => "GetRound",
            Self::Shares => "GetShares",
            Self::Status => "Status",
            Self::Submit => "Submit",
            Self::Answer => "PostAnswer",
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.id() == id)
    }
}

/// What a proof says: the call, when, a nonce, and the call's arguments
/// (zero where the call has none).
///
/// On the wire, [`QUERY_LEN`] bytes: the method (1 byte), the timestamp
/// (u64 big-endian, milliseconds since the Unix epoch), the nonce (16
/// bytes), the round, the position `from` and the total length (u64
/// big-endian each), the digest (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// The call.
    pub method: Method,
    /// Milliseconds since the Unix epoch, on the caller's clock.
    pub timestamp_ms: u64,
    /// Random, never reused.
    pub nonce: [u8; 16],
    /// `GetShares`: the round.
    pub round: u64,
    /// `GetShares`: the position to start from.
    pub from: u64,
    /// `Submit`, `PostAnswer`: the message's length in bytes.
    pub total: u64,
    /// `Submit`, `PostAnswer`: the SHA3-256 of the message.
    pub digest: [u8; 32],
}

impl Query {
    /// A query for `method` made now, with a fresh nonce and no arguments.
    ///
    /// # Errors
    /// [`NetError::Entropy`] when the system's randomness fails.
    pub fn now(method: Method) -> Result<Self> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)?;
        Ok(Self {
            timestamp_ms: unix_ms(SystemTime::now()),
            nonce,
            ..Self::blank(method)
        })
    }

    /// A query for sending `message` as `method` (a submission or a
    /// holder's answer), made now: its length and digest.
    ///
    /// # Errors
    /// [`NetError::Entropy`] when the system's randomness fails.
    pub fn for_message(method: Method, message: &[u8]) -> Result<Self> {
        Ok(Self {
            total: u64::try_from(message.len()).unwrap_or(u64::MAX),
            digest: Sha3_256::digest(message).into(),
            ..Self::now(method)?
        })
    }

    /// A query for `method` with no arguments, timestamp or nonce (a
    /// template: [`Self::now`] makes one to sign).
    #[must_use]
    pub const fn blank(method: Method) -> Self {
        Self {
            method,
            timestamp_ms: 0,
            nonce: [0; 16],
            round: 0,
            from: 0,
            total: 0,
            digest: [0; 32],
        }
    }

    /// The payload bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(QUERY_LEN);
        out.push(self.method.id());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&self.from.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    /// Decodes a payload.
    ///
    /// # Errors
    /// [`NetError::Proof`] for a payload of the wrong length or an unknown
    /// method.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; QUERY_LEN] = bytes.try_into().map_err(|_| NetError::Proof {
            reason: format!(
                "a query is {QUERY_LEN} bytes, this one {} bytes",
                bytes.len()
            ),
        })?;
        let (method, rest) = bytes.split_at(1);
        let (timestamp, rest) = rest.split_at(8);
        let (nonce, rest) = rest.split_at(16);
        let (round, rest) = rest.split_at(8);
        let (from, rest) = rest.split_at(8);
        let (total, digest) = rest.split_at(8);
        let u64_of = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        let method_id = method.first().copied().unwrap_or(0);
        Ok(Self {
            method: Method::from_id(method_id).ok_or_else(|| NetError::Proof {
                reason: format!("unknown method {method_id}"),
            })?,
            timestamp_ms: u64_of(timestamp),
            nonce: nonce.try_into().unwrap_or([0; 16]),
            round: u64_of(round),
            from: u64_of(from),
            total: u64_of(total),
            digest: digest.try_into().unwrap_or([0; 32]),
        })
    }

    /// The proof: this query signed by `identity` for `federation`.
    ///
    /// # Errors
    /// Signing failures ([`NetError::Pq`]).
    pub fn sign(&self, identity: &SigningIdentity, federation: FederationId) -> Result<Vec<u8>> {
        let routing = Routing {
            federation,
            round: self.round,
            kind: MessageKind::Query,
            recipient: ParticipantId::BROADCAST,
            parameter_set: QUERY_PARAMETER_SET.to_owned(),
        };
        Ok(Envelope::sign(identity, routing, self.to_bytes())?.to_bytes())
    }

    /// How far this query's timestamp is from `now`, as a signed number of
    /// milliseconds (positive: the query is from the future).
    #[must_use]
    pub fn skew_ms(&self, now: SystemTime) -> i128 {
        i128::from(self.timestamp_ms) - i128::from(unix_ms(now))
    }
}

/// Milliseconds since the Unix epoch (0 before it).
#[must_use]
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Decodes a proof's envelope and its query, without checking who signed
/// it (the registry does: [`ringsum_pq::Registry::authenticate`]).
///
/// # Errors
/// [`NetError::Proof`] for bytes that are not a query envelope of
/// `federation`.
pub fn decode_proof(bytes: &[u8], federation: FederationId) -> Result<(Envelope, Query)> {
    if bytes.is_empty() {
        return Err(NetError::Proof {
            reason: "no proof of identity: sign the call with the participant's identity".into(),
        });
    }
    let envelope = Envelope::from_bytes(bytes, QUERY_LEN).map_err(|e| NetError::Proof {
        reason: format!("the proof does not decode: {e}"),
    })?;
    let routing = envelope.routing();
    if routing.kind != MessageKind::Query {
        return Err(NetError::Proof {
            reason: format!("the proof is a {:?} message, not a query", routing.kind),
        });
    }
    if routing.federation != federation {
        return Err(NetError::NotThisFederation {
            expected: crate::federation_hex(routing.federation),
        });
    }
    if routing.parameter_set != QUERY_PARAMETER_SET {
        return Err(NetError::Proof {
            reason: format!(
                "the proof names parameter set {:?}, not {QUERY_PARAMETER_SET:?}",
                routing.parameter_set
            ),
        });
    }
    let query = Query::from_bytes(envelope.payload())?;
    if routing.round != query.round {
        return Err(NetError::Proof {
            reason: "the proof's routing and query disagree on the round".into(),
        });
    }
    Ok((envelope, query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringsum_pq::SignatureAlgorithm;

    fn identity() -> SigningIdentity {
        SigningIdentity::generate(SignatureAlgorithm::MlDsa65)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_query_round_trips_through_its_proof() {
        let me = identity();
        let federation = FederationId([7; 32]);
        let mut query = Query::now(Method::Shares).unwrap_or_else(|e| unreachable!("{e}"));
        query.round = 3;
        query.from = 17;
        let proof = query
            .sign(&me, federation)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let (envelope, decoded) =
            decode_proof(&proof, federation).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(decoded, query);
        assert_eq!(envelope.sender(), me.id());
        assert!(envelope.verify_signature(me.public()).is_ok());
        assert!(query.skew_ms(SystemTime::now()).abs() < 60_000);
    }

    #[test]
    fn proofs_of_another_kind_federation_or_shape_are_refused() {
        let me = identity();
        let federation = FederationId([7; 32]);
        let query = Query::now(Method::Round).unwrap_or_else(|e| unreachable!("{e}"));
        let proof = query
            .sign(&me, federation)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(decode_proof(&proof, FederationId([8; 32])).is_err());
        assert!(decode_proof(&[], federation).is_err());
        let truncated = proof.get(..proof.len() / 2).unwrap_or_default();
        assert!(decode_proof(truncated, federation).is_err());
        // Another kind of envelope with a query-sized payload.
        let other = Envelope::sign(
            &me,
            Routing {
                federation,
                round: 0,
                kind: MessageKind::UpdateSubmission,
                recipient: ParticipantId::BROADCAST,
                parameter_set: QUERY_PARAMETER_SET.to_owned(),
            },
            query.to_bytes(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(decode_proof(&other.to_bytes(), federation).is_err());
        // A payload of another length, or an unknown method.
        assert!(Query::from_bytes(&[2; QUERY_LEN - 1]).is_err());
        let mut bytes = query.to_bytes();
        if let Some(m) = bytes.first_mut() {
            *m = 99;
        }
        assert!(Query::from_bytes(&bytes).is_err());
    }
}
