//! A key holder's durable state: the sets it answered, one per round, in
//! redb ([`HolderJournal`], the service's [`AnswerJournal`]). A holder has
//! no long-term key share any more; what it must not lose is which set it
//! answered in each round, so that after a crash it answers the same set
//! with the same bytes and refuses any other set for that round.
//!
//! Tables: `meta` ("federation" -> the 32-byte federation id, "point" ->
//! the u32 big-endian Shamir point), and `answers` (u64 round -> the
//! 32-byte set digest followed by the answer's payload). Each record is
//! committed with immediate durability before [`AnswerJournal::record`]
//! returns, so before the answer leaves.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use ringsum_core::update::RoundId;
use ringsum_pq::FederationId;
use ringsum_protocol::holder::{AnswerJournal, AnsweredSet};
use ringsum_protocol::message::SetDigest;
use ringsum_threshold::HolderId;

use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const ANSWERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("answers");

/// A holder's record of its answered sets.
#[derive(Debug)]
pub struct HolderJournal {
    path: PathBuf,
    db: Database,
}

impl HolderJournal {
    /// Opens (or creates) the journal at `path` for holder `point` of
    /// `federation`.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the file cannot be opened (another
    /// process holds it); [`StoreError::Foreign`] for a journal of another
    /// federation or holder.
    pub fn open(path: &Path, federation: FederationId, point: HolderId) -> Result<Self> {
        crate::fs::create_private(path).map_err(StoreError::db(path))?;
        let db = Database::create(path).map_err(StoreError::db(path))?;
        let point = point.0.to_be_bytes();
        let mut txn = db.begin_write().map_err(StoreError::db(path))?;
        txn.set_durability(Durability::Immediate)
            .map_err(StoreError::db(path))?;
        {
            let mut meta = txn.open_table(META).map_err(StoreError::db(path))?;
            let stored = (
                meta.get("federation")
                    .map_err(StoreError::db(path))?
                    .map(|v| v.value().to_vec()),
                meta.get("point")
                    .map_err(StoreError::db(path))?
                    .map(|v| v.value().to_vec()),
            );
            match stored {
                (None, None) => {
                    meta.insert("federation", federation.0.as_slice())
                        .map_err(StoreError::db(path))?;
                    meta.insert("point", point.as_slice())
                        .map_err(StoreError::db(path))?;
                }
                (Some(f), Some(p)) if f == federation.0 && p == point => {}
                _ => {
                    return Err(StoreError::Foreign {
                        path: path.to_path_buf(),
                    });
                }
            }
            txn.open_table(ANSWERS).map_err(StoreError::db(path))?;
        }
        txn.commit().map_err(StoreError::db(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            db,
        })
    }

    /// The rounds answered, in order.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn rounds(&self) -> Result<Vec<RoundId>> {
        let read = self.db.begin_read().map_err(StoreError::db(&self.path))?;
        let table = read
            .open_table(ANSWERS)
            .map_err(StoreError::db(&self.path))?;
        table
            .iter()
            .map_err(StoreError::db(&self.path))?
            .map(|row| {
                row.map(|(k, _)| RoundId(k.value()))
                    .map_err(StoreError::db(&self.path))
            })
            .collect()
    }

    fn decode(&self, round: RoundId, value: &[u8]) -> Result<AnsweredSet> {
        let (digest, payload) =
            value
                .split_first_chunk::<32>()
                .ok_or_else(|| StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("the record of round {} is truncated", round.0),
                })?;
        Ok(AnsweredSet {
            set: SetDigest(*digest),
            payload: payload.to_vec(),
        })
    }
}

impl AnswerJournal for HolderJournal {
    type Error = StoreError;

    fn answered(&self, round: RoundId) -> Result<Option<AnsweredSet>> {
        let read = self.db.begin_read().map_err(StoreError::db(&self.path))?;
        let table = read
            .open_table(ANSWERS)
            .map_err(StoreError::db(&self.path))?;
        let value = table.get(round.0).map_err(StoreError::db(&self.path))?;
        value.map(|v| self.decode(round, v.value())).transpose()
    }

    fn record(&mut self, round: RoundId, answered: &AnsweredSet) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(StoreError::db(&self.path))?;
        txn.set_durability(Durability::Immediate)
            .map_err(StoreError::db(&self.path))?;
        {
            let mut table = txn
                .open_table(ANSWERS)
                .map_err(StoreError::db(&self.path))?;
            let existing = table
                .get(round.0)
                .map_err(StoreError::db(&self.path))?
                .map(|v| v.value().to_vec());
            if let Some(existing) = existing {
                // The holder checks before it records; this is the store's
                // own guard, so that no bug can replace an answered set.
                if existing.get(..32) != Some(answered.set.0.as_slice()) {
                    return Err(StoreError::SecondSet {
                        path: self.path.clone(),
                        round: round.0,
                    });
                }
            }
            let mut value = answered.set.0.to_vec();
            value.extend_from_slice(&answered.payload);
            table
                .insert(round.0, value.as_slice())
                .map_err(StoreError::db(&self.path))?;
        }
        txn.commit().map_err(StoreError::db(&self.path))
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn records_survive_reopening_and_a_second_set_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holder.redb");
        let federation = FederationId([3; 32]);
        let first = AnsweredSet {
            set: SetDigest([1; 32]),
            payload: vec![9, 8, 7],
        };
        {
            let mut journal = HolderJournal::open(&path, federation, HolderId(2)).unwrap();
            assert_eq!(journal.answered(RoundId(1)).unwrap(), None);
            journal.record(RoundId(1), &first).unwrap();
            // The same set again is harmless; another is refused.
            journal.record(RoundId(1), &first).unwrap();
            let other = AnsweredSet {
                set: SetDigest([2; 32]),
                payload: vec![1],
            };
            assert!(matches!(
                journal.record(RoundId(1), &other),
                Err(StoreError::SecondSet { round: 1, .. })
            ));
        }
        let journal = HolderJournal::open(&path, federation, HolderId(2)).unwrap();
        assert_eq!(journal.answered(RoundId(1)).unwrap(), Some(first));
        assert_eq!(journal.rounds().unwrap(), vec![RoundId(1)]);
        drop(journal);
        // Another holder's or federation's store does not open.
        assert!(matches!(
            HolderJournal::open(&path, federation, HolderId(3)),
            Err(StoreError::Foreign { .. })
        ));
        assert!(matches!(
            HolderJournal::open(&path, FederationId([4; 32]), HolderId(2)),
            Err(StoreError::Foreign { .. })
        ));
    }
}
