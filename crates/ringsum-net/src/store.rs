//! The coordinator's durable state, in redb (an embedded, pure-Rust,
//! ACID key-value store: every commit is crash-safe, so a SIGKILL at any
//! moment leaves either the whole last transaction or none of it).
//!
//! The coordinator is a deterministic state machine ([`crate::engine`]):
//! the store keeps its configuration and every event it applied, in order
//! (round openings, submissions, the closing of a set, holders' answers,
//! the end of each round), each committed together with the audit-log
//! lines it produced before anyone is told the event was accepted. A
//! restart replays the events and checks that the replay writes the same
//! audit chain.
//!
//! Large events (submissions: megabytes each) go to an append-only value
//! log beside the database, `<store>.log`, and the event table holds their
//! place in it: redb copies a value through its B-tree pages, which costs
//! several times a sequential append. The log is written and synced before
//! the transaction that refers to it commits, so a committed reference
//! always points at durable bytes; bytes after the last reference (a crash
//! between the two) are cut off when the store opens. A damaged value is
//! caught on replay: its signature no longer verifies, and the coordinator
//! refuses to start.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
const AUDIT: TableDefinition<'_, u64, &str> = TableDefinition::new("audit");

/// Events at least this large go to the value log.
const LOG_THRESHOLD: usize = 64 * 1024;
/// The tag of an event held in the value log: offset and length follow.
const LOGGED: u8 = 0xff;

/// The coordinator's store.
#[derive(Debug)]
pub struct CoordinatorStore {
    path: PathBuf,
    log_path: PathBuf,
    db: Database,
    log: File,
    log_len: u64,
    events: u64,
    audit: u64,
}

fn logged_ref(value: &[u8]) -> Option<(u64, u64)> {
    let (tag, rest) = value.split_first()?;
    if *tag != LOGGED || rest.len() != 16 {
        return None;
    }
    let (offset, len) = rest.split_at(8);
    Some((
        u64::from_be_bytes(offset.try_into().ok()?),
        u64::from_be_bytes(len.try_into().ok()?),
    ))
}

impl CoordinatorStore {
    /// Opens (or creates) the store at `path`, with its value log beside it
    /// (`path` with the extension `log`).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the file cannot be opened (another
    /// process holds it) or is not a store; [`StoreError::ValueLog`],
    /// [`StoreError::Corrupt`] for a value log shorter than its references.
    pub fn open(path: &Path) -> Result<Self> {
        crate::fs::create_private(path).map_err(StoreError::db(path))?;
        let db = Database::create(path).map_err(StoreError::db(path))?;
        let txn = db.begin_write().map_err(StoreError::db(path))?;
        {
            txn.open_table(META).map_err(StoreError::db(path))?;
            txn.open_table(EVENTS).map_err(StoreError::db(path))?;
            txn.open_table(AUDIT).map_err(StoreError::db(path))?;
        }
        txn.commit().map_err(StoreError::db(path))?;
        let read = db.begin_read().map_err(StoreError::db(path))?;
        let table = read.open_table(EVENTS).map_err(StoreError::db(path))?;
        let events = table.len().map_err(StoreError::db(path))?;
        // The value log, cut back to the end of the last committed value.
        let mut referenced = 0u64;
        for row in table.iter().map_err(StoreError::db(path))? {
            let (_, value) = row.map_err(StoreError::db(path))?;
            if let Some((offset, len)) = logged_ref(value.value()) {
                referenced = referenced.max(offset.saturating_add(len));
            }
        }
        let log_path = path.with_extension("log");
        let log_error = |source| StoreError::ValueLog {
            path: log_path.clone(),
            source,
        };
        crate::fs::create_private(&log_path).map_err(log_error)?;
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(log_error)?;
        let on_disk = log.metadata().map_err(log_error)?.len();
        if on_disk < referenced {
            return Err(StoreError::Corrupt {
                path: log_path,
                reason: format!(
                    "the value log holds {on_disk} bytes, its references reach {referenced}"
                ),
            });
        }
        if on_disk > referenced {
            log.set_len(referenced)
                .and_then(|()| log.sync_all())
                .map_err(log_error)?;
        }
        let audit = read
            .open_table(AUDIT)
            .map_err(StoreError::db(path))?
            .len()
            .map_err(StoreError::db(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            log_path,
            db,
            log,
            log_len: referenced,
            events,
            audit,
        })
    }

    fn db_error<E: Into<redb::Error>>(&self) -> impl FnOnce(E) -> StoreError + '_ {
        StoreError::db(&self.path)
    }

    fn log_error(&self) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        |source| StoreError::ValueLog {
            path: self.log_path.clone(),
            source,
        }
    }

    /// A configuration value.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the store cannot be read.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let read = self.db.begin_read().map_err(self.db_error())?;
        let table = read.open_table(META).map_err(self.db_error())?;
        let value = table.get(key).map_err(self.db_error())?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Sets configuration values, all in one durable transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the transaction fails.
    pub fn set_meta(&mut self, values: &[(&str, &[u8])]) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(self.db_error())?;
        txn.set_durability(Durability::Immediate)
            .map_err(self.db_error())?;
        {
            let mut table = txn.open_table(META).map_err(self.db_error())?;
            for (key, value) in values {
                table.insert(*key, *value).map_err(self.db_error())?;
            }
        }
        txn.commit().map_err(self.db_error())
    }

    /// Events recorded.
    #[must_use]
    pub const fn event_count(&self) -> u64 {
        self.events
    }

    /// Audit lines recorded.
    #[must_use]
    pub const fn audit_count(&self) -> u64 {
        self.audit
    }

    /// Up to `limit` events from sequence number `from`, in order (a
    /// replay reads them a batch at a time, so that it never holds every
    /// submission of a long federation at once).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::ValueLog`];
    /// [`StoreError::Corrupt`] for a gap in the sequence.
    pub fn read_events(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let read = self.db.begin_read().map_err(self.db_error())?;
        let table = read.open_table(EVENTS).map_err(self.db_error())?;
        let mut out = Vec::new();
        let rows = table.range(from..).map_err(self.db_error())?;
        for (expected, row) in (from..).zip(rows.take(limit)) {
            let (key, value) = row.map_err(self.db_error())?;
            if key.value() != expected {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("event {expected} is missing"),
                });
            }
            let value = value.value();
            match logged_ref(value) {
                Some((offset, len)) => {
                    let len = usize::try_from(len).map_err(|_| StoreError::Corrupt {
                        path: self.path.clone(),
                        reason: format!("event {expected} is longer than memory"),
                    })?;
                    let mut body = vec![0u8; len];
                    self.log
                        .read_exact_at(&mut body, offset)
                        .map_err(self.log_error())?;
                    out.push(body);
                }
                None => out.push(value.to_vec()),
            }
        }
        Ok(out)
    }

    /// Every event, in order.
    ///
    /// # Errors
    /// As [`Self::read_events`].
    pub fn events(&self) -> Result<Vec<Vec<u8>>> {
        self.read_events(0, usize::MAX)
    }

    /// Every audit line, in order.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for a gap.
    pub fn audit_lines(&self) -> Result<Vec<String>> {
        let read = self.db.begin_read().map_err(self.db_error())?;
        let table = read.open_table(AUDIT).map_err(self.db_error())?;
        let mut out = Vec::new();
        for (expected, row) in (0u64..).zip(table.iter().map_err(self.db_error())?) {
            let (key, value) = row.map_err(self.db_error())?;
            if key.value() != expected {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("audit line {expected} is missing"),
                });
            }
            out.push(value.value().to_owned());
        }
        Ok(out)
    }

    /// Records events and the audit lines they produced in one durable
    /// transaction: after it returns, a crash loses none of them; if it
    /// fails or the process dies inside it, none is recorded.
    ///
    /// # Errors
    /// [`StoreError::ValueLog`], [`StoreError::Database`].
    pub fn record(&mut self, events: &[&[u8]], audit: &[String]) -> Result<()> {
        // Large values first, to the log, synced; the transaction then
        // refers to them.
        let mut stored: Vec<Vec<u8>> = Vec::with_capacity(events.len());
        let mut appended = 0u64;
        for event in events {
            if event.len() >= LOG_THRESHOLD {
                let offset = self.log_len + appended;
                self.log
                    .write_all_at(event, offset)
                    .map_err(self.log_error())?;
                appended += event.len() as u64;
                let mut reference = vec![LOGGED];
                reference.extend_from_slice(&offset.to_be_bytes());
                reference.extend_from_slice(&(event.len() as u64).to_be_bytes());
                stored.push(reference);
            } else {
                stored.push(event.to_vec());
            }
        }
        if appended > 0 {
            self.log.sync_data().map_err(self.log_error())?;
        }
        let mut txn = self.db.begin_write().map_err(self.db_error())?;
        txn.set_durability(Durability::Immediate)
            .map_err(self.db_error())?;
        {
            let mut table = txn.open_table(EVENTS).map_err(self.db_error())?;
            for (i, event) in (self.events..).zip(&stored) {
                table.insert(i, event.as_slice()).map_err(self.db_error())?;
            }
            let mut table = txn.open_table(AUDIT).map_err(self.db_error())?;
            for (i, line) in (self.audit..).zip(audit) {
                table.insert(i, line.as_str()).map_err(self.db_error())?;
            }
        }
        txn.commit().map_err(self.db_error())?;
        self.log_len += appended;
        self.events += events.len() as u64;
        self.audit += audit.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn events_round_trip_through_the_value_log_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let small = vec![3u8, 0, 0, 0, 0, 0, 0, 0, 1];
        {
            let mut store = CoordinatorStore::open(&path).unwrap();
            store.record(&[&small, &big], &["line 0".into()]).unwrap();
            store.record(&[&big[..70_000]], &[]).unwrap();
        }
        // A crash after a value was appended but before its transaction
        // committed leaves bytes nobody refers to.
        let log = path.with_extension("log");
        let committed = std::fs::metadata(&log).unwrap().len();
        assert_eq!(committed, 270_000);
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, &[7; 1234]).unwrap();
        drop(file);
        let mut store = CoordinatorStore::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), committed);
        assert_eq!(store.event_count(), 3);
        let events = store.events().unwrap();
        assert_eq!(
            events,
            vec![small.clone(), big.clone(), big[..70_000].to_vec()]
        );
        assert_eq!(store.audit_lines().unwrap(), vec!["line 0".to_owned()]);
        // A batch from the middle.
        assert_eq!(store.read_events(1, 1).unwrap(), vec![big.clone()]);
        assert_eq!(store.read_events(2, 10).unwrap().len(), 1);
        assert!(store.read_events(3, 10).unwrap().is_empty());
        // Appending goes on after the cut.
        store.record(&[&big], &[]).unwrap();
        assert_eq!(store.events().unwrap()[3], big);
        // A log shorter than its references is refused.
        drop(store);
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(10)
            .unwrap();
        assert!(CoordinatorStore::open(&path).is_err());
    }
}
