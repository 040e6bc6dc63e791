//! The coordinator's durable state: the engine, the events applied but not
//! yet recorded, the store they go to (group commit: one transaction for
//! every event pending), and the recovery that replays the store into a
//! fresh engine after a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use ringsum_core::update::RoundId;
use tonic::Status;

use super::{Plan, Shared, lock};
use crate::engine::{Engine, Event, Outcome, Prepared};
use crate::error::{NetError, Result};
use crate::fs::{Access, write_atomic};
use crate::store::CoordinatorStore;

/// Events read from the store at once during a replay: bounds the memory a
/// replay of a long federation takes.
const REPLAY_BATCH: usize = 32;

/// The engine.
pub(super) struct State {
    pub(super) engine: Engine,
}

/// Events applied (each with its audit lines) and not yet recorded.
#[derive(Default)]
pub(super) struct Pending {
    events: Vec<(Vec<u8>, Vec<String>)>,
    /// Events applied since the start that must be recorded.
    seq: u64,
    /// Set when recording failed: the engine moved past the store, so the
    /// service stops and a restart replays the store.
    failed: Option<String>,
}

/// The store, and how far it is written.
pub(super) struct Committer {
    store: CoordinatorStore,
    audit_file: PathBuf,
    committed: u64,
}

/// What [`State::recover`] gives.
pub(super) struct Recovered {
    pub(super) state: State,
    pub(super) committer: Committer,
    pub(super) replayed: u64,
    pub(super) recovery: Duration,
}

fn audit_hash(line: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("hash")?
        .as_str()
        .map(str::to_owned)
}

/// The hash of the last audit line (what an operator compares with a
/// witness's copy).
pub(super) fn audit_head(lines: &[String]) -> String {
    lines.last().and_then(|l| audit_hash(l)).unwrap_or_default()
}

fn audit_text(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn append_audit_file(path: &Path, lines: &[String]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    file.write_all(audit_text(lines).as_bytes())?;
    file.flush()
}

impl State {
    /// Opens the store in `dir` and replays it into a fresh engine; the
    /// audit file is rewritten from the store.
    pub(super) fn recover(plan: Plan, dir: &Path) -> Result<Recovered> {
        let started = Instant::now();
        crate::fs::ensure_dir(dir)?;
        let path = dir.join("coordinator.redb");
        let mut store = CoordinatorStore::open(&path)?;
        let description = plan.description.to_json()?;
        let model_bytes: Vec<u8> = plan.model.iter().flat_map(|v| v.to_le_bytes()).collect();
        match (store.meta("description")?, store.meta("initial_model")?) {
            (Some(stored), Some(model)) => {
                if stored != description.as_bytes() || model != model_bytes {
                    return Err(NetError::ForeignStore { path });
                }
            }
            _ => store.set_meta(&[
                ("description", description.as_bytes()),
                ("initial_model", &model_bytes),
            ])?,
        }
        let federation = Arc::new(plan.description.federation()?);
        let mut engine = Engine::new(federation, plan.identity, plan.model)?;
        let total = store.event_count();
        let mut seq = 0u64;
        while seq < total {
            let batch = store.read_events(seq, REPLAY_BATCH)?;
            if batch.is_empty() {
                break;
            }
            let events = batch
                .iter()
                .zip(seq..)
                .map(|(bytes, i)| Event::decode(i, bytes))
                .collect::<Result<Vec<_>>>()?;
            replay(&mut engine, &path, seq, &events)?;
            seq += events.len() as u64;
        }
        let stored = store.audit_lines()?;
        let regenerated = engine.audit_lines();
        if stored.len() > regenerated.len()
            || stored
                .iter()
                .zip(regenerated)
                .any(|(a, b)| audit_hash(a) != audit_hash(b))
        {
            return Err(NetError::ReplayDiverged {
                path,
                reason: "the replay does not reproduce the recorded audit chain".into(),
            });
        }
        // Lines produced without an event (the setup line on a first start).
        let missing: Vec<String> = regenerated.get(stored.len()..).unwrap_or_default().to_vec();
        store.record(&[], &missing)?;
        // The file gets the recorded lines, with their original signatures
        // (the replay's carry fresh ones over the same hashes).
        let mut audit = stored;
        audit.extend(missing);
        let audit_file = dir.join("audit.jsonl");
        write_atomic(&audit_file, audit_text(&audit).as_bytes(), Access::Shared)?;
        tracing::info!(
            events = total,
            round = engine.round().0,
            phase = engine.phase().name(),
            "replayed the store"
        );
        Ok(Recovered {
            state: Self { engine },
            committer: Committer {
                store,
                audit_file,
                committed: 0,
            },
            replayed: total,
            recovery: started.elapsed(),
        })
    }
}

/// Applies recorded events; the submissions among them are checked in
/// parallel first (consecutive submissions meet the same round and phase,
/// and checking does not depend on the ones before).
fn replay(engine: &mut Engine, path: &Path, first: u64, events: &[Event]) -> Result<()> {
    let mut i = 0;
    while let Some(event) = events.get(i) {
        let run = events
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|e| matches!(e, Event::Submission(_)))
            .count();
        let batch: Vec<(&Event, Option<Prepared>)> = if run > 0 {
            let run_events = events.get(i..i + run).unwrap_or_default();
            let bytes: Vec<&[u8]> = run_events
                .iter()
                .filter_map(|e| match e {
                    Event::Submission(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect();
            let shared: &Engine = engine;
            let prepared: Vec<Prepared> =
                bytes.par_iter().map(|b| shared.prepare_bytes(b)).collect();
            run_events
                .iter()
                .zip(prepared.into_iter().map(Some))
                .collect()
        } else {
            vec![(event, None)]
        };
        let step = batch.len();
        for (offset, (event, prepared)) in batch.into_iter().enumerate() {
            let applied = engine.apply(event, prepared);
            if !applied.record {
                let reason = match applied.outcome {
                    Outcome::Refused(e) => e.to_string(),
                    Outcome::Accepted | Outcome::Duplicate => "it changes nothing".into(),
                };
                return Err(NetError::ReplayDiverged {
                    path: path.to_path_buf(),
                    reason: format!(
                        "recorded event {} ({}) no longer applies: {reason}",
                        first + (i + offset) as u64,
                        event.name()
                    ),
                });
            }
        }
        i += step;
    }
    Ok(())
}

/// Refused: the coordinator stopped recording.
fn stopped(reason: &str) -> Status {
    Status::unavailable(format!("the coordinator stopped: {reason}"))
}

impl Shared {
    /// Applies a live event under the engine's lock. If it must be
    /// recorded, returns its sequence number: the caller tells nobody
    /// about it before [`Self::flush`] has recorded it.
    pub(super) fn apply(
        &self,
        event: &Event,
        prepared: Option<Prepared>,
    ) -> std::result::Result<(Outcome, Option<u64>), Status> {
        let mut state = self.write();
        // Checked under the engine's lock: a failed commit sets it under
        // the pending lock, taken inside this one.
        if let Some(reason) = &lock(&self.pending).failed {
            return Err(stopped(reason));
        }
        let before = state.engine.audit_lines().len();
        let applied = state.engine.apply(event, prepared);
        if !applied.record {
            return Ok((applied.outcome, None));
        }
        let lines = state
            .engine
            .audit_lines()
            .get(before..)
            .unwrap_or_default()
            .to_vec();
        let mut pending = lock(&self.pending);
        pending.events.push((event.encode(), lines));
        pending.seq += 1;
        Ok((applied.outcome, Some(pending.seq)))
    }

    /// Records every applied event up to sequence number `upto` (and any
    /// pending after it) in one durable transaction, unless another caller
    /// already did.
    pub(super) fn flush(&self, upto: u64) -> std::result::Result<(), Status> {
        let mut committer = lock(&self.committer);
        if let Some(reason) = &lock(&self.pending).failed {
            return Err(stopped(reason));
        }
        if committer.committed >= upto {
            return Ok(());
        }
        let batch = std::mem::take(&mut lock(&self.pending).events);
        let events: Vec<&[u8]> = batch.iter().map(|(e, _)| e.as_slice()).collect();
        let lines: Vec<String> = batch.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
        let started = Instant::now();
        let bytes: usize = events.iter().map(|e| e.len()).sum();
        if let Err(e) = committer.store.record(&events, &lines) {
            // The engine moved past what the store holds: stop, and let a
            // restart replay the store.
            tracing::error!(error = %e, "cannot record events; stopping");
            let reason = e.to_string();
            lock(&self.pending).failed = Some(reason.clone());
            return Err(stopped(&reason));
        }
        committer.committed += batch.len() as u64;
        if let Err(e) = append_audit_file(&committer.audit_file, &lines) {
            tracing::warn!(error = %e, "cannot append to the audit file (the store has the lines)");
        }
        tracing::debug!(
            events = batch.len(),
            bytes,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "recorded"
        );
        if committer.committed < upto {
            // Events before ours were lost by a failed commit.
            return Err(stopped("an earlier commit failed"));
        }
        Ok(())
    }

    /// Records everything applied so far.
    pub(super) fn flush_all(&self) -> std::result::Result<(), Status> {
        let seq = lock(&self.pending).seq;
        self.flush(seq)
    }

    /// Why the service stopped recording, if it did.
    pub(super) fn failure(&self) -> Option<String> {
        lock(&self.pending).failed.clone()
    }

    /// The round the engine is in (for logs).
    pub(super) fn round(&self) -> RoundId {
        self.read().engine.round()
    }
}
