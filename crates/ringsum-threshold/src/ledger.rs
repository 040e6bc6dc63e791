//! The record of issued decryption shares: a holder answers for each
//! aggregate (keyed by its decryption digest) with one active set only, and
//! remembers it across restarts.
//!
//! The file is text, one record per line, after a header line:
//!
//! ```text
//! ringsum share ledger v1
//! <64 hex digits of the digest> <id>,<id>,...
//! ```
//!
//! A record is appended and synced to disk *before* the share leaves the
//! holder. A crash while appending leaves a last line without its newline;
//! that share was never returned, so opening the ledger drops the torn line.
//! Any other malformed line is refused.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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
    /// if absent, and loads its records.
    ///
    /// # Errors
    /// [`ThresholdError::Ledger`] when the file cannot be read, created or
    /// parsed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fail = |reason: String| ThresholdError::Ledger {
            path: path.display().to_string(),
            reason,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(|e| fail(e.to_string()))?;
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
            records.insert(digest, set);
        }
        if complete < body.len() {
            let keep = (HEADER.len() + complete) as u64;
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(format!("cannot drop a torn record: {e}")))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            file: Some((path, file)),
            records,
        })
    }

    /// The active set a share of aggregate `digest` was issued to, if any.
    pub fn issued(&self, digest: &[u8; 32]) -> Option<&[HolderId]> {
        self.records.get(digest).map(Vec::as_slice)
    }

    /// How many aggregates have been answered.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing has been answered yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Permits a share of `digest` for `active`: `Ok` for a first request
    /// (recorded durably before returning) and for a repeat with the same
    /// set; a request with another set is refused.
    ///
    /// # Errors
    /// [`ThresholdError::RetryRefused`], or [`ThresholdError::Ledger`] when
    /// the record cannot be written (then nothing is recorded).
    pub fn permit(&mut self, digest: &[u8; 32], active: &[HolderId]) -> Result<()> {
        if let Some(issued) = self.records.get(digest) {
            return if issued.as_slice() == active {
                Ok(())
            } else {
                Err(ThresholdError::RetryRefused {
                    digest: hex(digest),
                    issued: issued.clone(),
                    requested: active.to_vec(),
                })
            };
        }
        if let Some((path, file)) = &mut self.file {
            let ids: Vec<String> = active.iter().map(|h| h.0.to_string()).collect();
            let line = format!("{} {}\n", hex(digest), ids.join(","));
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|e| ThresholdError::Ledger {
                    path: path.display().to_string(),
                    reason: format!("cannot record an issued share: {e}"),
                })?;
        }
        self.records.insert(*digest, active.to_vec());
        Ok(())
    }
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
