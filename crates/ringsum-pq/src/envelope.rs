//! Signed envelopes: every protocol message travels in one. The signature
//! covers a canonical byte string (docs/formats.md, "Signed bytes") that
//! binds the protocol version, the algorithm, the message kind, the round,
//! the federation, sender and recipient, the parameter set and the SHA3-256
//! of the payload.

use std::fmt;

use sha3::{Digest, Sha3_256};

use crate::alg::SignatureAlgorithm;
use crate::codec::{Reader, hex, put_len};
use crate::error::{PqError, Result};
use crate::identity::{ParticipantId, PublicIdentity, SigningIdentity};

/// The protocol version written in every envelope and sealed box.
pub const PROTOCOL_VERSION: u16 = 1;

/// The longest parameter-set id an envelope may carry.
pub const MAX_PARAMETER_SET_LEN: usize = 64;

/// What a message is, as named on the wire (big-endian u16).
///
/// The identifiers never change. 2, 3, 4 and 11 are reserved: they named
/// the key ceremony's commitment, public-key share and sealed secret share
/// and the collective public key of the collective-key scheme, removed in
/// December 2026; [`MessageKind::from_id`] refuses them as unknown, and no
/// new kind may take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MessageKind {
    /// A client's encrypted model update (id 1).
    UpdateSubmission,
    /// The coordinator's request to the key holders: the signed set of
    /// clients whose key sum they are asked for (id 5; the name is that of
    /// the first scheme's decryption request).
    DecryptionRequest,
    /// A key holder's answer: the sum of its shares of the set's round
    /// secrets (id 6; the name is that of the first scheme's decryption
    /// share).
    DecryptionShare,
    /// The coordinator's published result of a round (id 7).
    RoundResult,
    /// A new identity key, announced under the old one (id 8).
    KeyRotation,
    /// A revocation notice (id 9).
    Revocation,
    /// The coordinator's signature on one line of the audit log (id 10).
    AuditRecord,
    /// A client's Shamir share of its per-round secret, sealed to one key
    /// holder and bound to the digest of the client's update (id 12).
    RoundKeyShare,
    /// A client's or key holder's proof of identity to the coordinator's
    /// service: a signed, timestamped query, or the header of a streamed
    /// message (id 13). Never part of a round; the service checks it and
    /// forgets it.
    Query,
}

impl MessageKind {
    /// Every kind this build knows.
    pub const ALL: [Self; 9] = [
        Self::UpdateSubmission,
        Self::DecryptionRequest,
        Self::DecryptionShare,
        Self::RoundResult,
        Self::KeyRotation,
        Self::Revocation,
        Self::AuditRecord,
        Self::RoundKeyShare,
        Self::Query,
    ];

    /// Identifiers of removed kinds, never to be reused: 2, 3, 4 (the key
    /// ceremony's commitment, public-key share and secret share) and 11
    /// (the collective public key).
    pub const RESERVED_IDS: [u16; 4] = [2, 3, 4, 11];

    /// The identifier on the wire.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::UpdateSubmission => 1,
            Self::DecryptionRequest => 5,
            Self::DecryptionShare => 6,
            Self::RoundResult => 7,
            Self::KeyRotation => 8,
            Self::Revocation => 9,
            Self::AuditRecord => 10,
            Self::RoundKeyShare => 12,
            Self::Query => 13,
        }
    }

    /// Whether the sender sends one such message to each recipient (round
    /// key shares: one per key holder). Every other kind is one message per
    /// sender and round, whoever it is addressed to.
    #[must_use]
    pub const fn is_per_recipient(self) -> bool {
        matches!(self, Self::RoundKeyShare)
    }

    /// The kind with this identifier.
    ///
    /// # Errors
    /// [`PqError::UnknownKind`], also for the reserved identifiers of
    /// removed kinds ([`Self::RESERVED_IDS`]).
    pub fn from_id(id: u16) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.id() == id)
            .ok_or(PqError::UnknownKind(id))
    }
}

/// A federation's id: 32 bytes fixed when it is set up (for example the
/// SHA3-256 of its configuration), so that messages of one federation are
/// never accepted by another that happens to use the same round numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FederationId(pub [u8; 32]);

impl fmt::Debug for FederationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.0.get(..8).unwrap_or(&[]);
        write!(f, "FederationId({}..)", hex(short))
    }
}

/// Where a message goes: everything of the signed header that the sender
/// chooses (the version, algorithm and sender id come from its identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// The federation.
    pub federation: FederationId,
    /// The round.
    pub round: u64,
    /// The kind of message.
    pub kind: MessageKind,
    /// The addressee, or [`ParticipantId::BROADCAST`].
    pub recipient: ParticipantId,
    /// The parameter-set id (1 to 64 printable ASCII characters).
    pub parameter_set: String,
}

/// The signed header of an envelope. Only [`Envelope::sign`] and the
/// decoder make one, so its parameter-set id is always valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    version: u16,
    algorithm: SignatureAlgorithm,
    sender: ParticipantId,
    routing: Routing,
}

impl Header {
    /// The protocol version ([`PROTOCOL_VERSION`]).
    #[must_use]
    pub const fn version(&self) -> u16 {
        self.version
    }

    /// The signature algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The sender's id.
    #[must_use]
    pub const fn sender(&self) -> ParticipantId {
        self.sender
    }

    /// Federation, round, kind, recipient, parameter set.
    #[must_use]
    pub const fn routing(&self) -> &Routing {
        &self.routing
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.algorithm.id().to_be_bytes());
        out.extend_from_slice(&self.routing.kind.id().to_be_bytes());
        out.extend_from_slice(&self.routing.round.to_be_bytes());
        out.extend_from_slice(&self.routing.federation.0);
        out.extend_from_slice(&self.sender.0);
        out.extend_from_slice(&self.routing.recipient.0);
        // `sign` and `read` are the only constructors and both keep the id
        // within 1..=64 bytes.
        let id = self.routing.parameter_set.as_bytes();
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let version = reader.u16("version")?;
        if version != PROTOCOL_VERSION {
            return Err(PqError::UnsupportedVersion {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let algorithm = SignatureAlgorithm::from_id(reader.u16("algorithm")?)?;
        let kind = MessageKind::from_id(reader.u16("kind")?)?;
        let round = reader.u64("round")?;
        let federation = FederationId(reader.array("federation")?);
        let sender = ParticipantId(reader.array("sender")?);
        let recipient = ParticipantId(reader.array("recipient")?);
        let len = usize::from(reader.u8("parameter-set length")?);
        let id = reader.take(len, "parameter set")?;
        let parameter_set = check_parameter_set(id)?;
        Ok(Self {
            version,
            algorithm,
            sender,
            routing: Routing {
                federation,
                round,
                kind,
                recipient,
                parameter_set,
            },
        })
    }

    /// The canonical signed bytes: the header, then SHA3-256 of the payload.
    #[must_use]
    fn signed_bytes(&self, payload_hash: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        self.write(&mut out);
        out.extend_from_slice(payload_hash);
        out
    }
}

fn check_parameter_set(id: &[u8]) -> Result<String> {
    if id.is_empty() || id.len() > MAX_PARAMETER_SET_LEN || !id.iter().all(u8::is_ascii_graphic) {
        return Err(PqError::malformed(
            "envelope",
            "parameter-set id must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(id).into_owned())
}

/// A signed message: header, payload and signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    header: Header,
    payload: Vec<u8>,
    payload_hash: [u8; 32],
    signature: Vec<u8>,
}

impl Envelope {
    /// Signs `payload` for `routing` with `identity`.
    ///
    /// # Errors
    /// [`PqError::Malformed`] for a bad parameter-set id or a payload over
    /// 4 GiB, [`PqError::Entropy`].
    pub fn sign(identity: &SigningIdentity, routing: Routing, payload: Vec<u8>) -> Result<Self> {
        check_parameter_set(routing.parameter_set.as_bytes())?;
        if u32::try_from(payload.len()).is_err() {
            return Err(PqError::TooLarge {
                what: "payload",
                len: payload.len() as u64,
                limit: u64::from(u32::MAX),
            });
        }
        let header = Header {
            version: PROTOCOL_VERSION,
            algorithm: identity.algorithm(),
            sender: identity.id(),
            routing,
        };
        let payload_hash: [u8; 32] = Sha3_256::digest(&payload).into();
        let signature = identity.sign(
            crate::identity::CONTEXT,
            &header.signed_bytes(&payload_hash),
        )?;
        Ok(Self {
            header,
            payload,
            payload_hash,
            signature,
        })
    }

    /// The signed header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The routing part of the header.
    #[must_use]
    pub const fn routing(&self) -> &Routing {
        &self.header.routing
    }

    /// The sender's id.
    #[must_use]
    pub const fn sender(&self) -> ParticipantId {
        self.header.sender
    }

    /// The payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signature.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The bytes the signature covers.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        self.header.signed_bytes(&self.payload_hash)
    }

    /// SHA3-256 of the signed bytes: the message's identity for replay
    /// detection (a re-signed copy of the same content has the same digest).
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Sha3_256::digest(self.signed_bytes()).into()
    }

    /// Verifies the signature under `public`, which must be the sender's.
    ///
    /// # Errors
    /// [`PqError::AlgorithmMismatch`] if the envelope names another
    /// algorithm than the key's, [`PqError::BadSignature`].
    pub fn verify_signature(&self, public: &PublicIdentity) -> Result<()> {
        if public.algorithm() != self.header.algorithm {
            return Err(PqError::AlgorithmMismatch {
                registered: public.algorithm().name(),
                claimed: self.header.algorithm.name(),
            });
        }
        if public.id() != self.header.sender {
            return Err(PqError::BadSignature);
        }
        public.verify(
            crate::identity::CONTEXT,
            &self.signed_bytes(),
            &self.signature,
        )
    }

    /// The wire encoding: header, u32 payload length, payload, signature.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200 + self.payload.len() + self.signature.len());
        self.header.write(&mut out);
        // The length fits: `sign` and `from_bytes` refuse longer payloads.
        let _ = put_len(&mut out, self.payload.len(), "payload");
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes an envelope from untrusted bytes. Nothing larger than
    /// `max_payload` is allocated; the signature is not checked here.
    ///
    /// # Errors
    /// [`PqError::Malformed`], [`PqError::TooLarge`],
    /// [`PqError::UnsupportedVersion`], [`PqError::UnknownAlgorithm`],
    /// [`PqError::UnknownKind`].
    pub fn from_bytes(bytes: &[u8], max_payload: usize) -> Result<Self> {
        let mut reader = Reader::new(bytes, "envelope");
        let header = Header::read(&mut reader)?;
        let len = reader.length("payload", max_payload)?;
        let payload = reader.take(len, "payload")?.to_vec();
        let signature = reader
            .take(header.algorithm.signature_len(), "signature")?
            .to_vec();
        reader.finish()?;
        let payload_hash = Sha3_256::digest(&payload).into();
        Ok(Self {
            header,
            payload,
            payload_hash,
            signature,
        })
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}
