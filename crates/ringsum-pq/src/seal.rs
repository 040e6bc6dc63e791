//! Sealed boxes: a key share encrypted so that only its recipient reads
//! it. ML-KEM-1024 (plus X25519 in hybrid mode) to the recipient's sealing
//! key, HKDF-SHA3-256 over the shared secret and the transcript, and
//! ChaCha20-Poly1305 with the header (sender, recipient, federation, epoch,
//! round, encapsulation) as associated data. [`seal_round_share`] then
//! signs a client's box, bound to its update, in an envelope;
//! [`open_round_share`] checks both before reading.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use hkdf::SimpleHkdf;
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use crate::alg::KemAlgorithm;
use crate::codec::{Reader, put_len};
use crate::envelope::{Envelope, FederationId, MessageKind, PROTOCOL_VERSION, Routing};
use crate::error::{PqError, Result};
use crate::identity::{ParticipantId, SigningIdentity};
use crate::kem::{SealingKey, SealingPublicKey, SharedSecret};
use crate::registry::{Accepted, Inbox, KeyStatus, Registry, Role};

/// HKDF's salt: the label of the seal key derivation.
const KDF_SALT: &[u8] = b"ringsum/v1 seal";
/// Poly1305's tag length.
const TAG_LEN: usize = 16;

/// Who seals to whom, for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealContext {
    /// The federation.
    pub federation: FederationId,
    /// The sender.
    pub sender: ParticipantId,
    /// The recipient.
    pub recipient: ParticipantId,
    /// The key epoch, a field of the box's header: 0 for round key shares
    /// ([`seal_round_share`]). (The removed collective-key scheme numbered
    /// its committees here.)
    pub epoch: u64,
    /// The round.
    pub round: u64,
}

/// An encrypted message to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBox {
    algorithm: KemAlgorithm,
    context: SealContext,
    encapsulation: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl SealedBox {
    /// Seals `plaintext` to `recipient` (whose id is `context.recipient`).
    ///
    /// # Errors
    /// [`PqError::TooLarge`] for a plaintext over 4 GiB, and those of
    /// [`SealingPublicKey::encapsulate`].
    pub fn seal(
        recipient: &SealingPublicKey,
        context: SealContext,
        plaintext: &[u8],
    ) -> Result<Self> {
        if u32::try_from(plaintext.len() + TAG_LEN).is_err() {
            return Err(PqError::TooLarge {
                what: "sealed plaintext",
                len: plaintext.len() as u64,
                limit: u64::from(u32::MAX) - TAG_LEN as u64,
            });
        }
        let (encapsulation, secret) = recipient.encapsulate()?;
        let mut sealed = Self {
            algorithm: recipient.algorithm(),
            context,
            encapsulation,
            ciphertext: Vec::new(),
        };
        let header = sealed.header();
        let cipher = aead(&secret, recipient.fingerprint(), &header);
        sealed.ciphertext = cipher
            .encrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: plaintext,
                    aad: &header,
                },
            )
            .map_err(|_| PqError::TooLarge {
                what: "sealed plaintext",
                len: plaintext.len() as u64,
                limit: u64::from(u32::MAX) - TAG_LEN as u64,
            })?;
        Ok(sealed)
    }

    /// Opens the box with the recipient's key, after checking that its
    /// header names exactly the `expected` context.
    ///
    /// # Errors
    /// [`PqError::WrongEpoch`], [`PqError::SealMismatch`] for another
    /// sender, recipient, federation or round, [`PqError::SealOpenFailed`]
    /// if the box was tampered with or sealed to another key.
    pub fn open(&self, key: &SealingKey, expected: &SealContext) -> Result<Zeroizing<Vec<u8>>> {
        let found = &self.context;
        if found.epoch != expected.epoch {
            return Err(PqError::WrongEpoch {
                expected: expected.epoch,
                found: found.epoch,
            });
        }
        for (same, field) in [
            (found.federation == expected.federation, "federation"),
            (found.sender == expected.sender, "sender"),
            (found.recipient == expected.recipient, "recipient"),
            (found.round == expected.round, "round"),
        ] {
            if !same {
                return Err(PqError::SealMismatch(field));
            }
        }
        if self.algorithm != key.public().algorithm() {
            return Err(PqError::SealOpenFailed);
        }
        let secret = key.decapsulate(&self.encapsulation)?;
        let header = self.header();
        let cipher = aead(&secret, key.public().fingerprint(), &header);
        cipher
            .decrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: &self.ciphertext,
                    aad: &header,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| PqError::SealOpenFailed)
    }

    /// The context in the header.
    #[must_use]
    pub const fn context(&self) -> &SealContext {
        &self.context
    }

    /// The KEM algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> KemAlgorithm {
        self.algorithm
    }

    /// The header: everything before the ciphertext length. It is the
    /// AEAD's associated data.
    fn header(&self) -> Vec<u8> {
        let c = &self.context;
        let mut out = Vec::with_capacity(116 + self.encapsulation.len());
        out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        out.extend_from_slice(&self.algorithm.id().to_be_bytes());
        out.extend_from_slice(&c.federation.0);
        out.extend_from_slice(&c.sender.0);
        out.extend_from_slice(&c.recipient.0);
        out.extend_from_slice(&c.epoch.to_be_bytes());
        out.extend_from_slice(&c.round.to_be_bytes());
        out.extend_from_slice(&self.encapsulation);
        out
    }

    /// The wire encoding: header, u32 ciphertext length, ciphertext.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        // The length fits: `seal` and `from_bytes` refuse longer ones.
        let _ = put_len(&mut out, self.ciphertext.len(), "sealed ciphertext");
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Decodes a sealed box from untrusted bytes, allocating at most
    /// `max_plaintext` + 16 bytes for the ciphertext.
    ///
    /// # Errors
    /// [`PqError::Malformed`], [`PqError::TooLarge`],
    /// [`PqError::UnsupportedVersion`], [`PqError::UnknownAlgorithm`].
    pub fn from_bytes(bytes: &[u8], max_plaintext: usize) -> Result<Self> {
        let mut reader = Reader::new(bytes, "sealed box");
        let version = reader.u16("version")?;
        if version != PROTOCOL_VERSION {
            return Err(PqError::UnsupportedVersion {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let algorithm = KemAlgorithm::from_id(reader.u16("algorithm")?)?;
        let context = SealContext {
            federation: FederationId(reader.array("federation")?),
            sender: ParticipantId(reader.array("sender")?),
            recipient: ParticipantId(reader.array("recipient")?),
            epoch: reader.u64("epoch")?,
            round: reader.u64("round")?,
        };
        let encapsulation = reader
            .take(algorithm.encapsulation_len(), "encapsulation")?
            .to_vec();
        let len = reader.length("sealed ciphertext", max_plaintext.saturating_add(TAG_LEN))?;
        if len < TAG_LEN {
            return Err(PqError::malformed(
                "sealed box",
                "ciphertext shorter than its tag",
            ));
        }
        let ciphertext = reader.take(len, "sealed ciphertext")?.to_vec();
        reader.finish()?;
        Ok(Self {
            algorithm,
            context,
            encapsulation,
            ciphertext,
        })
    }
}

/// The AEAD keyed by HKDF-SHA3-256(salt = "ringsum/v1 seal", ikm = shared
/// secret, info = recipient key fingerprint || SHA3-256(header)). Each box
/// has its own encapsulation and therefore its own key, so the all-zero
/// nonce is used once per key.
fn aead(
    secret: &SharedSecret,
    recipient_fingerprint: &[u8; 32],
    header: &[u8],
) -> ChaCha20Poly1305 {
    let mut info = [0u8; 64];
    let (fp, hh) = info.split_at_mut(32);
    fp.copy_from_slice(recipient_fingerprint);
    hh.copy_from_slice(&Sha3_256::digest(header));
    let kdf = SimpleHkdf::<Sha3_256>::new(Some(KDF_SALT), secret.as_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF's limit of 255 hash lengths.
    let _ = kdf.expand(&info, key.as_mut());
    ChaCha20Poly1305::new(&(*key).into())
}

/// How many bytes bind a round key share to its submission: the 32-byte
/// digest of the client's signed update, then the 32-byte commitment to
/// the answer key sealed with the share.
pub const ROUND_SHARE_BINDING_BYTES: usize = 64;

/// Seals a client's Shamir share of its per-round secret to
/// `context.recipient` (a key holder) and signs it, bound to the client's
/// update: an envelope of kind [`MessageKind::RoundKeyShare`] whose payload
/// is the 64-byte `binding` (update digest, then answer-key commitment, as
/// the protocol layer defines them) followed by the sealed box. The holder
/// learns which update the share belongs to without seeing the update, and
/// the client's signature binds the two.
///
/// # Errors
/// [`PqError::SealMismatch`] if `context.sender` is not `sender`,
/// [`PqError::WrongFederation`] for another federation than the
/// registry's, [`PqError::NotASealingRecipient`] unless the recipient is an
/// active, unrevoked key holder with a sealing key, and those of
/// [`SealedBox::seal`] and [`Envelope::sign`].
pub fn seal_round_share(
    sender: &SigningIdentity,
    registry: &Registry,
    context: SealContext,
    parameter_set: &str,
    binding: &[u8; ROUND_SHARE_BINDING_BYTES],
    share: &[u8],
) -> Result<Envelope> {
    if context.sender != sender.id() {
        return Err(PqError::SealMismatch("sender"));
    }
    if context.federation != registry.federation() {
        return Err(PqError::WrongFederation);
    }
    let recipient = context.recipient;
    let recipient_key = registry
        .get(&recipient)
        .filter(|p| {
            p.role == Role::KeyHolder
                && p.status == KeyStatus::Active
                && registry.revocation(&recipient).is_none()
        })
        .and_then(|p| p.sealing.as_ref())
        .ok_or(PqError::NotASealingRecipient(recipient))?;
    let sealed = SealedBox::seal(recipient_key, context, share)?;
    let mut payload = binding.to_vec();
    payload.extend_from_slice(&sealed.to_bytes());
    Envelope::sign(
        sender,
        Routing {
            federation: context.federation,
            round: context.round,
            kind: MessageKind::RoundKeyShare,
            recipient,
            parameter_set: parameter_set.to_owned(),
        },
        payload,
    )
}

/// A key holder's side of [`seal_round_share`]: checks the envelope in
/// `inbox` (signature, sender, round, replay, one share per client and
/// round), opens the box (sealed for key epoch 0), and only then records
/// the message. Returns the binding the client signed with the share
/// ([`seal_round_share`]), and the share.
///
/// # Errors
/// Those of [`Inbox::check`] (signature, sender, round, replay, a second
/// share of the same client), [`PqError::WrongRecipient`] for a share
/// addressed to another holder, [`PqError::Malformed`] for a payload too
/// short to hold the binding, and those of [`SealedBox::from_bytes`] and
/// [`SealedBox::open`]. A box that fails to open leaves the inbox
/// unchanged.
pub fn open_round_share(
    inbox: &mut Inbox,
    registry: &Registry,
    key: &SealingKey,
    me: ParticipantId,
    envelope: &Envelope,
    max_share: usize,
) -> Result<(
    Accepted,
    [u8; ROUND_SHARE_BINDING_BYTES],
    Zeroizing<Vec<u8>>,
)> {
    let pending = inbox.check(registry, envelope, MessageKind::RoundKeyShare)?;
    let routing = envelope.routing();
    if routing.recipient != me {
        return Err(PqError::WrongRecipient {
            found: routing.recipient,
        });
    }
    let (head, boxed) = envelope
        .payload()
        .split_at_checked(ROUND_SHARE_BINDING_BYTES)
        .ok_or_else(|| PqError::malformed("round key share", "payload shorter than its binding"))?;
    let mut digest = [0u8; ROUND_SHARE_BINDING_BYTES];
    digest.copy_from_slice(head);
    let sealed = SealedBox::from_bytes(boxed, max_share)?;
    let expected = SealContext {
        federation: routing.federation,
        sender: envelope.sender(),
        recipient: me,
        epoch: 0,
        round: routing.round,
    };
    let plaintext = sealed.open(key, &expected)?;
    let accepted = inbox.commit(pending)?;
    Ok((accepted, digest, plaintext))
}
