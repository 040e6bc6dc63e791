//! The coordinator's durable state, in redb (an embedded, pure-Rust,
//! ACID key-value store: every commit is crash-safe, so a SIGKILL at any
//! moment leaves either the whole last transaction or none of it).
//!
//! The coordinator is a deterministic state machine ([`crate::engine`]):
//! the store keeps its configuration, the seed of its random generator,
//! and every event it applied, in order, each committed together with the
//! audit-log lines it produced before anyone is told the event was
//! accepted. A restart replays the events and checks that the replay
//! writes the same audit chain.

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::error::{Result, store_error};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
const AUDIT: TableDefinition<'_, u64, &str> = TableDefinition::new("audit");

/// The coordinator's store.
#[derive(Debug)]
pub struct CoordinatorStore {
    path: PathBuf,
    db: Database,
    events: u64,
    audit: u64,
}

impl CoordinatorStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// [`crate::NetError::Store`] when the file cannot be opened (another
    /// process holds it) or is not a store.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |e: &dyn std::fmt::Display| store_error(path, e);
        let db = Database::create(path).map_err(|e| fail(&e))?;
        let txn = db.begin_write().map_err(|e| fail(&e))?;
        {
            txn.open_table(META).map_err(|e| fail(&e))?;
            txn.open_table(EVENTS).map_err(|e| fail(&e))?;
            txn.open_table(AUDIT).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))?;
        let read = db.begin_read().map_err(|e| fail(&e))?;
        let events = read
            .open_table(EVENTS)
            .map_err(|e| fail(&e))?
            .len()
            .map_err(|e| fail(&e))?;
        let audit = read
            .open_table(AUDIT)
            .map_err(|e| fail(&e))?
            .len()
            .map_err(|e| fail(&e))?;
        Ok(Self {
            path: path.to_path_buf(),
            db,
            events,
            audit,
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> crate::NetError {
        store_error(&self.path, e)
    }

    /// A configuration value.
    ///
    /// # Errors
    /// [`crate::NetError::Store`] when the store cannot be read.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let read = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = read.open_table(META).map_err(|e| self.fail(e))?;
        let value = table.get(key).map_err(|e| self.fail(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Sets configuration values, all in one transaction.
    ///
    /// # Errors
    /// [`crate::NetError::Store`] when the transaction fails.
    pub fn set_meta(&mut self, values: &[(&str, &[u8])]) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| self.fail(e))?;
            for (key, value) in values {
                table.insert(*key, *value).map_err(|e| self.fail(e))?;
            }
        }
        txn.commit().map_err(|e| self.fail(e))
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

    /// Every event, in order.
    ///
    /// # Errors
    /// [`crate::NetError::Store`] when the store cannot be read or has a gap.
    pub fn events(&self) -> Result<Vec<Vec<u8>>> {
        let read = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = read.open_table(EVENTS).map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for (expected, row) in (0u64..).zip(table.iter().map_err(|e| self.fail(e))?) {
            let (key, value) = row.map_err(|e| self.fail(e))?;
            if key.value() != expected {
                return Err(self.fail(format!("event {expected} is missing")));
            }
            out.push(value.value().to_vec());
        }
        Ok(out)
    }

    /// Every audit line, in order.
    ///
    /// # Errors
    /// [`crate::NetError::Store`] when the store cannot be read or has a gap.
    pub fn audit_lines(&self) -> Result<Vec<String>> {
        let read = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = read.open_table(AUDIT).map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for (expected, row) in (0u64..).zip(table.iter().map_err(|e| self.fail(e))?) {
            let (key, value) = row.map_err(|e| self.fail(e))?;
            if key.value() != expected {
                return Err(self.fail(format!("audit line {expected} is missing")));
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
    /// [`crate::NetError::Store`] when the transaction fails.
    pub fn record(&mut self, events: &[&[u8]], audit: &[String]) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.fail(e))?;
        {
            let mut table = txn.open_table(EVENTS).map_err(|e| self.fail(e))?;
            for (i, event) in (self.events..).zip(events) {
                table.insert(i, *event).map_err(|e| self.fail(e))?;
            }
            let mut table = txn.open_table(AUDIT).map_err(|e| self.fail(e))?;
            for (i, line) in (self.audit..).zip(audit) {
                table.insert(i, line.as_str()).map_err(|e| self.fail(e))?;
            }
        }
        txn.commit().map_err(|e| self.fail(e))?;
        self.events += events.len() as u64;
        self.audit += audit.len() as u64;
        Ok(())
    }
}
