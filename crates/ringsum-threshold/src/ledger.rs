//! The record of issued decryption shares: a holder multiplies each c1
//! (keyed by its SHA3-256, [`crate::c1_digest`]) by its key share for one
//! active set only, and remembers it across restarts. Keying on each c1,
//! not on a list of them, means no reordering, duplication or regrouping
//! of ciphertexts into another request unlocks a second share.
//!
//! The file is text, one record per line, after a header line:
//!
//! ```text
//! ringsum share ledger v1
//! <64 hex digits of a c1 digest> <id>,<id>,...
//! ```
//!
//! The records of a request are appended in one write and synced to disk
//! *before* the share leaves the holder. A crash while appending leaves a
//! last line without its newline; that share was never returned, so opening
//! the ledger drops the torn line. Any other malformed line, and a digest
//! recorded twice, is refused. The file is opened in append mode and locked
//! exclusively while the ledger is open, so two processes cannot both
//! answer from it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::committee::HolderId;
use crate::error::{Result, ThresholdError};

const HEADER: &str = "ringsum share ledger v1\n";

/// What a holder has issued, in memory and optionally in a file it owns.
#[derive(Debug, Default)]
pub struct ShareLedger {
    file: Option<(PathBuf, File)>,
    records: BTreeMap<[u8; 32], Vec<HolderId>>,
}

impl ShareLedger {
    /// A ledger that lives only as long as the process (tests, demos).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Opens the ledger file at `path`, creating it (mode 0600 on Unix)
    /// if absent, locks it, and loads its records.
    ///
    /// # Errors
    /// [`ThresholdError::Ledger`] when the file cannot be read, created,
    /// locked (another process has it open) or parsed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fail = |reason: String| ThresholdError::Ledger {
            path: path.display().to_string(),
            reason,
        };
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let existed = path.exists();
        let mut file = options.open(&path).map_err(|e| fail(e.to_string()))?;
        file.try_lock()
            .map_err(|e| fail(format!("cannot lock (is another process using it?): {e}")))?;
        if !existed {
            sync_parent(&path).map_err(|e| fail(format!("cannot sync its directory: {e}")))?;
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| fail(format!("not readable as UTF-8 text: {e}")))?;
        if text.is_empty() {
            file.write_all(HEADER.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            text.push_str(HEADER);
        }
        let Some(body) = text.strip_prefix(HEADER) else {
            return Err(fail(
                "missing the header 'ringsum share ledger v1'".to_owned(),
            ));
        };
        // A final line without its newline is a torn append: drop it.
        let complete = body.rfind('\n').map_or(0, |i| i + 1);
        let mut records = BTreeMap::new();
        for (number, line) in body.get(..complete).unwrap_or_default().lines().enumerate() {
            let (digest, set) = parse_record(line)
                .ok_or_else(|| fail(format!("line {} is not a valid record", number + 2)))?;
            if records.insert(digest, set).is_some() {
                return Err(fail(format!("line {} records a digest twice", number + 2)));
            }
        }
        if complete < body.len() {
            let keep = (HEADER.len() + complete) as u64;
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(format!("cannot drop a torn record: {e}")))?;
        }
        Ok(Self {
            file: Some((path, file)),
            records,
        })
    }

    /// The active set a share of the c1 with `digest` was issued to, if
    /// any.
    pub fn issued(&self, digest: &[u8; 32]) -> Option<&[HolderId]> {
        self.records.get(digest).map(Vec::as_slice)
    }

    /// How many ciphertexts have been answered.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing has been answered yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Permits shares of the ciphertexts with c1 digests `digests` for
    /// `active`: `Ok` when every digest is new (all are then recorded
    /// durably, in one write, before returning) or was issued to this very
    /// set; refused when any was issued to another set or when a digest
    /// appears twice in the request. On error nothing is recorded.
    ///
    /// # Errors
    /// [`ThresholdError::RetryRefused`], [`ThresholdError::DuplicateCiphertext`],
    /// or [`ThresholdError::Ledger`] when the records cannot be written.
    pub fn permit(&mut self, digests: &[[u8; 32]], active: &[HolderId]) -> Result<()> {
        let mut fresh = BTreeMap::new();
        for (index, digest) in digests.iter().enumerate() {
            if let Some(first) = fresh.insert(*digest, index) {
                return Err(ThresholdError::DuplicateCiphertext {
                    first,
                    second: index,
                });
            }
            if let Some(issued) = self.records.get(digest)
                && issued.as_slice() != active
            {
                return Err(ThresholdError::RetryRefused {
                    digest: hex(digest),
                    issued: issued.clone(),
                    requested: active.to_vec(),
                });
            }
        }
        fresh.retain(|digest, _| !self.records.contains_key(digest));
        if fresh.is_empty() {
            return Ok(());
        }
        if let Some((path, file)) = &mut self.file {
            let ids: Vec<String> = active.iter().map(|h| h.0.to_string()).collect();
            let ids = ids.join(",");
            let mut lines = String::new();
            for digest in fresh.keys() {
                lines.push_str(&hex(digest));
                lines.push(' ');
                lines.push_str(&ids);
                lines.push('\n');
            }
            let fail = |e: std::io::Error| ThresholdError::Ledger {
                path: path.display().to_string(),
                reason: format!("cannot record an issued share: {e}"),
            };
            let length = file.metadata().map_err(fail)?.len();
            if let Err(e) = file
                .write_all(lines.as_bytes())
                .and_then(|()| file.sync_data())
            {
                // Leave no partial record behind for the next append to
                // run into; if even that fails, the torn line is dropped
                // on the next open.
                let _ = file.set_len(length).and_then(|()| file.sync_data());
                return Err(fail(e));
            }
        }
        for digest in fresh.into_keys() {
            self.records.insert(digest, active.to_vec());
        }
        Ok(())
    }
}

/// Syncs the directory holding `path`, so that a new file's entry survives
/// a crash (a no-op where directories cannot be opened).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_record(line: &str) -> Option<([u8; 32], Vec<HolderId>)> {
    let (digest_hex, ids) = line.split_once(' ')?;
    if digest_hex.len() != 64 || !digest_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(digest_hex.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    let set = ids
        .split(',')
        .map(|id| {
            let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            digits
                .then(|| id.parse::<u32>().ok().map(HolderId))
                .flatten()
        })
        .collect::<Option<Vec<_>>>()?;
    let sorted = set.windows(2).all(|w| w.first() < w.get(1));
    (sorted && !set.is_empty()).then_some((digest, set))
}
