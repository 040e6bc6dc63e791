//! The tamper-evident audit log: one JSON line per protocol event, each
//! chained to the previous one with SHA3-256 and signed by the coordinator
//! in a signed envelope (docs/formats.md, "Audit log"). Changing a byte,
//! removing a line or swapping two breaks the chain or a signature, and
//! [`verify_log`] names the first line that fails.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ringsum_pq::codec::{hex, unhex};
use ringsum_pq::{
    Envelope, FederationId, MessageKind, ParticipantId, PublicIdentity, Routing,
    SignatureAlgorithm, SigningIdentity,
};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};

use crate::error::{ProtocolError, Result};

/// One line of the log as it is stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    round: u64,
    prev: String,
    hash: String,
    event: String,
    envelope: String,
}

/// The chain hash of a line: SHA3-256(previous hash || event text).
fn chain(prev: &[u8; 32], event: &str) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(prev);
    h.update(event.as_bytes());
    h.finalize().into()
}

/// The signed payload of a line: its sequence number and chain hash.
fn signed_payload(seq: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut out = seq.to_be_bytes().to_vec();
    out.extend_from_slice(hash);
    out
}

/// The coordinator's append-only log.
#[derive(Debug)]
pub struct AuditLog {
    federation: FederationId,
    parameter_set: String,
    seq: u64,
    prev: [u8; 32],
    file: Option<(PathBuf, File)>,
    lines: Vec<String>,
}

impl AuditLog {
    /// A log kept in memory ([`Self::lines`]).
    #[must_use]
    pub fn in_memory(federation: FederationId, parameter_set: &str) -> Self {
        Self {
            federation,
            parameter_set: parameter_set.to_owned(),
            seq: 0,
            prev: [0; 32],
            file: None,
            lines: Vec::new(),
        }
    }

    /// A log written to a new file at `path` (never over an existing one),
    /// each line flushed as it is appended; also kept in memory.
    ///
    /// # Errors
    /// [`ProtocolError::Io`] if the file exists or cannot be created.
    pub fn create(federation: FederationId, parameter_set: &str, path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| ProtocolError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let mut log = Self::in_memory(federation, parameter_set);
        log.file = Some((path.to_path_buf(), file));
        Ok(log)
    }

    /// Appends `event` (a JSON object) for `round`, chained and signed by
    /// `coordinator`.
    ///
    /// # Errors
    /// [`ProtocolError::Pq`] if signing fails, [`ProtocolError::Io`].
    pub fn append(
        &mut self,
        coordinator: &SigningIdentity,
        round: u64,
        event: &serde_json::Value,
    ) -> Result<()> {
        let text = event.to_string();
        let hash = chain(&self.prev, &text);
        let envelope = Envelope::sign(
            coordinator,
            Routing {
                federation: self.federation,
                round,
                kind: MessageKind::AuditRecord,
                recipient: ParticipantId::BROADCAST,
                parameter_set: self.parameter_set.clone(),
            },
            signed_payload(self.seq, &hash),
        )?;
        let line = Line {
            seq: self.seq,
            round,
            prev: hex(&self.prev),
            hash: hex(&hash),
            event: text,
            envelope: hex(&envelope.to_bytes()),
        };
        let mut json = serde_json::to_string(&line).map_err(|e| ProtocolError::Audit {
            line: self.lines.len() + 1,
            reason: e.to_string(),
        })?;
        if let Some((path, file)) = &mut self.file {
            json.push('\n');
            file.write_all(json.as_bytes())
                .and_then(|()| file.flush())
                .map_err(|source| ProtocolError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            json.pop();
        }
        self.lines.push(json);
        self.seq += 1;
        self.prev = hash;
        Ok(())
    }

    /// The lines written so far.
    #[must_use]
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

/// What a verified log holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSummary {
    /// Lines checked.
    pub lines: usize,
    /// The federation of every line.
    pub federation: FederationId,
    /// The hash of the last line: a log cut short verifies on its own, so
    /// compare the head with one recorded elsewhere (the coordinator's
    /// published head, a witness's copy) to detect truncation.
    pub head: [u8; 32],
    /// The highest round named.
    pub last_round: u64,
    /// The coordinator whose signatures were checked.
    pub coordinator: ParticipantId,
}

/// Verifies a whole log: the first line is the setup event, every line
/// parses (hex in lower case only, so the text is canonical), counts up
/// from 0, chains to the previous line, and carries the coordinator's valid
/// signature over its sequence number and hash, for one federation (the
/// setup event's, and `federation` if given). The coordinator's key is
/// `coordinator` if given; otherwise the one the setup event names, which
/// the first line's own signature must then match.
///
/// # Errors
/// [`ProtocolError::Audit`] naming the first line that fails and why.
pub fn verify_log(
    text: &str,
    coordinator: Option<&PublicIdentity>,
    federation: Option<FederationId>,
) -> Result<AuditSummary> {
    let mut key = coordinator.cloned();
    let mut prev = [0u8; 32];
    let mut federation = federation;
    let mut last_round = 0;
    let mut count = 0;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let bad = |reason: String| ProtocolError::Audit {
            line: number,
            reason,
        };
        let line: Line =
            serde_json::from_str(raw).map_err(|e| bad(format!("not a log line: {e}")))?;
        if line.seq != index as u64 {
            return Err(bad(format!(
                "sequence number {} where {index} was due (a line removed, added or moved)",
                line.seq
            )));
        }
        if [&line.prev, &line.hash, &line.envelope]
            .iter()
            .any(|h| h.bytes().any(|b| b.is_ascii_uppercase()))
        {
            return Err(bad("hex must be lower case".into()));
        }
        if unhex(&line.prev).as_deref() != Some(prev.as_slice()) {
            return Err(bad("does not chain to the previous line".into()));
        }
        let hash = chain(&prev, &line.event);
        if unhex(&line.hash).as_deref() != Some(hash.as_slice()) {
            return Err(bad(
                "hash does not match the event (the line was changed)".into()
            ));
        }
        let bytes = unhex(&line.envelope).ok_or_else(|| bad("envelope is not hex".into()))?;
        let envelope =
            Envelope::from_bytes(&bytes, 40).map_err(|e| bad(format!("envelope: {e}")))?;
        if envelope.payload() != signed_payload(line.seq, &hash).as_slice()
            || envelope.routing().kind != MessageKind::AuditRecord
            || envelope.routing().round != line.round
        {
            return Err(bad("the signed record does not match the line".into()));
        }
        if *federation.get_or_insert(envelope.routing().federation) != envelope.routing().federation
        {
            return Err(bad("belongs to another federation".into()));
        }
        if index == 0 {
            let (named_key, named_federation) = setup_event(&line.event).map_err(&bad)?;
            if named_federation != envelope.routing().federation {
                return Err(bad(
                    "the setup event names another federation than its envelope".into(),
                ));
            }
            if key.is_none() {
                key = Some(named_key);
            }
        }
        let public = key
            .as_ref()
            .ok_or_else(|| bad("no coordinator key".into()))?;
        envelope
            .verify_signature(public)
            .map_err(|e| bad(format!("coordinator signature: {e}")))?;
        prev = hash;
        last_round = last_round.max(line.round);
        count += 1;
    }
    let empty = || ProtocolError::Audit {
        line: 1,
        reason: "the log is empty".into(),
    };
    let coordinator = key.map(|k| k.id()).ok_or_else(empty)?;
    Ok(AuditSummary {
        lines: count,
        federation: federation.ok_or_else(empty)?,
        head: prev,
        last_round,
        coordinator,
    })
}

/// The coordinator key and federation a setup event names.
fn setup_event(event: &str) -> std::result::Result<(PublicIdentity, FederationId), String> {
    let value: serde_json::Value =
        serde_json::from_str(event).map_err(|e| format!("event is not JSON: {e}"))?;
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    if field("type") != Some("setup") {
        return Err("the first line must be the setup event".into());
    }
    let algorithm = field("coordinator_algorithm")
        .and_then(|name| {
            SignatureAlgorithm::ALL
                .into_iter()
                .find(|a| a.name() == name)
        })
        .ok_or("the setup event must name the coordinator's algorithm")?;
    let bytes = field("coordinator_key")
        .and_then(unhex)
        .ok_or("the setup event must carry the coordinator's public key in hex")?;
    let federation: [u8; 32] = field("federation")
        .and_then(unhex)
        .and_then(|b| b.try_into().ok())
        .ok_or("the setup event must name the federation")?;
    let key = PublicIdentity::from_bytes(algorithm, &bytes).map_err(|e| e.to_string())?;
    Ok((key, FederationId(federation)))
}
