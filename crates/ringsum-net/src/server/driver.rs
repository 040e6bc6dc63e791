//! The driver: decides when the federation moves (open the next round,
//! close the set, finish the round, abandon a round that cannot complete),
//! says in the log what a waiting round waits for, and writes the
//! published models.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ringsum_core::privacy::accountant;
use ringsum_core::update::RoundId;
use tokio::sync::watch;

use super::{Shared, Summary, Timing, lock};
use crate::engine::{Ending, Engine, Event, Outcome, Phase};
use crate::error::{NetError, Result};
use crate::model_file::{ModelFile, ModelOrigin};

/// Where the driver saw the federation last, and since when.
struct Progress {
    at: (RoundId, Phase),
    since: Instant,
    reported: Instant,
    /// Rounds whose end the driver has seen (and whose model it wrote).
    ended: usize,
    /// Whether the latest round's model file was looked for (after a
    /// restart, a crash may have come between the round's end and it).
    checked_latest: bool,
    final_written: bool,
}

/// What the driver decides now, if anything.
fn decide(engine: &Engine, elapsed: std::time::Duration, timing: &Timing) -> Option<Event> {
    let federation = engine.federation();
    let min_clients = federation.policy().min_clients;
    let clients = federation.clients().len();
    let holders = federation.holders().len();
    let threshold = usize::try_from(federation.committee().threshold()).unwrap_or(usize::MAX);
    match engine.phase() {
        Phase::Between => Some(Event::Open),
        Phase::Finished => None,
        Phase::Collecting => {
            let accepted = engine.accepted();
            if accepted >= clients || (accepted >= min_clients && elapsed >= timing.collect_timeout)
            {
                Some(Event::Close)
            } else if accepted < min_clients && elapsed >= timing.round_timeout {
                Some(Event::Abandon(format!(
                    "only {accepted} of the {min_clients} submissions a round needs arrived within {} s",
                    timing.round_timeout.as_secs()
                )))
            } else {
                None
            }
        }
        Phase::Answering => {
            let answers = engine.answered().len();
            if answers >= holders || (answers >= threshold && elapsed >= timing.holder_timeout) {
                Some(Event::Finish)
            } else if answers < threshold && elapsed >= timing.round_timeout {
                Some(Event::Abandon(format!(
                    "only {answers} of the {threshold} holder answers a round needs arrived within {} s",
                    timing.round_timeout.as_secs()
                )))
            } else {
                None
            }
        }
    }
}

/// Says what a waiting round waits for.
fn report(engine: &Engine, elapsed: std::time::Duration) {
    let federation = engine.federation();
    let round = engine.round().0;
    let waited_s = elapsed.as_secs();
    match engine.phase() {
        Phase::Collecting => {
            let accepted = engine.accepted();
            let min_clients = federation.policy().min_clients;
            if accepted < min_clients {
                tracing::warn!(
                    round,
                    accepted,
                    min_clients,
                    clients = federation.clients().len(),
                    waited_s,
                    "round {round} has {accepted} of the {min_clients} submissions it needs; waiting for clients"
                );
            } else {
                tracing::info!(
                    round,
                    accepted,
                    clients = federation.clients().len(),
                    waited_s,
                    "round {round} has {accepted} submissions; waiting for the others until the collection deadline"
                );
            }
        }
        Phase::Answering => {
            let answered: Vec<u32> = engine.answered().iter().map(|h| h.0).collect();
            let waiting: Vec<u32> = federation
                .holders()
                .keys()
                .map(|h| h.0)
                .filter(|h| !answered.contains(h))
                .collect();
            tracing::warn!(
                round,
                ?answered,
                ?waiting,
                threshold = federation.committee().threshold(),
                waited_s,
                "round {round}: holders {waiting:?} have not answered yet"
            );
        }
        Phase::Between | Phase::Finished => {}
    }
}

/// The model files due: the model of each round decoded since the last
/// call, and the final model once every round has ended (built under the
/// engine's lock, written after it).
fn due_models(
    engine: &Engine,
    dir: &Path,
    progress: &mut Progress,
    federation: &str,
) -> Vec<(PathBuf, ModelFile)> {
    let fresh = engine.ended().get(progress.ended..).unwrap_or_default();
    for end in fresh {
        let round = end.round.0;
        match &end.ending {
            Ending::Finished {
                clients,
                liars,
                used,
                ..
            } => tracing::info!(
                round,
                clients,
                holders_used = ?used.iter().map(|h| h.0).collect::<Vec<_>>(),
                holders_named = ?liars.iter().map(|h| h.0).collect::<Vec<_>>(),
                "round {round} decoded from {clients} clients and published"
            ),
            Ending::Failed { reason } => tracing::warn!(
                round,
                %reason,
                "round {round} failed; the next round starts from the same model"
            ),
        }
    }
    let decoded = fresh
        .iter()
        .any(|e| matches!(e.ending, Ending::Finished { .. }));
    progress.ended = engine.ended().len();
    let origin = engine
        .last_result()
        .map_or_else(ModelOrigin::default, |r| ModelOrigin {
            round: r.round,
            clients: r.clients,
            weight_sum: r.weight_sum,
            error_bound: r.error_bound,
            epsilon: epsilon_spent(engine, r.round),
        });
    let round_file = dir
        .join("models")
        .join(format!("round-{}.json", origin.round));
    let missing = !progress.checked_latest
        && origin.round > 0
        && !(round_file.exists() && round_file.with_extension("safetensors").exists());
    progress.checked_latest = true;
    let last = engine.phase() == Phase::Finished && !progress.final_written;
    progress.final_written |= last;
    if !(decoded || missing || last) {
        return Vec::new();
    }
    let file = ModelFile::new(
        federation,
        engine.federation().layout(),
        engine.model(),
        origin,
    );
    let mut due = Vec::new();
    if decoded || missing {
        due.push((round_file, file.clone()));
    }
    if last {
        // Every round ended: the rounds that failed after the last decoded
        // one count too.
        let epsilon = epsilon_spent(engine, u64::MAX);
        due.push((dir.join("final-model.json"), ModelFile { epsilon, ..file }));
    }
    due
}

/// With differential privacy, the epsilon spent (at the plan's delta) by
/// the rounds up to `through` that ended: a decoded round is charged the
/// zCDP of the clients its sum held; a failed one the plan's worst case
/// (the noise of `noise_clients` clients), since the log does not say
/// whether its set reached the holders. `None` without a plan, or if the
/// accountant refuses (never for the sets the holders accept).
fn epsilon_spent(engine: &Engine, through: u64) -> Option<f64> {
    let plan = engine.federation().privacy()?;
    let noise_clients = plan.settings().noise_clients;
    let min_clients = engine.federation().policy().min_clients as u64;
    let mut rho = 0.0;
    for end in engine.ended().iter().filter(|e| e.round.0 <= through) {
        let clients = match end.ending {
            Ending::Finished { clients, .. } => clients,
            Ending::Failed { .. } => noise_clients,
        };
        rho += plan.set_rho(clients, min_clients).ok()?;
    }
    if rho == 0.0 {
        return Some(0.0);
    }
    accountant::epsilon_for_rho(rho, plan.conversion_delta()).ok()
}

/// Writes each model file as JSON and, beside it, as safetensors.
fn write_models(due: Vec<(PathBuf, ModelFile)>) {
    for (path, file) in due {
        let written = path
            .parent()
            .map_or(Ok(()), crate::fs::ensure_dir)
            .and_then(|()| file.write(&path))
            .and_then(|()| file.write_safetensors(&path.with_extension("safetensors")));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write a model file");
        }
    }
}

/// One step: record what is pending, decide, apply, record. Returns the
/// phase after it.
fn step(shared: &Shared, timing: &Timing, dir: &Path, progress: &mut Progress) -> Phase {
    // Record whatever is pending (and learn whether that fails).
    let _ = shared.flush_all();
    let now = Instant::now();
    let decided = {
        let state = shared.read();
        let at = (state.engine.round(), state.engine.phase());
        if at != progress.at {
            progress.at = at;
            progress.since = now;
            progress.reported = now;
            *lock(&shared.phase_since) = now;
            tracing::info!(round = at.0.0, phase = at.1.name(), "federation");
        }
        let elapsed = now.duration_since(progress.since);
        if now.duration_since(progress.reported) >= timing.report_every {
            progress.reported = now;
            report(&state.engine, elapsed);
        }
        decide(&state.engine, elapsed, timing)
    };
    if let Some(event) = decided {
        match shared.apply(&event, None) {
            Ok((Outcome::Accepted, _)) => {
                let round = shared.round().0;
                match &event {
                    Event::Abandon(reason) => {
                        tracing::warn!(round, %reason, "round {round} abandoned");
                    }
                    _ => tracing::info!(round, decision = event.name(), "driver"),
                }
            }
            Ok((Outcome::Refused(e), _)) => {
                tracing::warn!(reason = %e, decision = event.name(), "driver decision refused");
            }
            Ok((Outcome::Duplicate, _)) | Err(_) => {}
        }
        let _ = shared.flush_all();
    }
    let (phase, due) = {
        let state = shared.read();
        let due = if shared.failure().is_none() {
            due_models(&state.engine, dir, progress, &shared.federation_hex)
        } else {
            Vec::new()
        };
        (state.engine.phase(), due)
    };
    write_models(due);
    phase
}

pub(super) async fn drive(
    shared: Arc<Shared>,
    timing: Timing,
    data_dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) -> Result<Summary> {
    let now = Instant::now();
    let mut progress = Some(Progress {
        at: (RoundId(u64::MAX), Phase::Between),
        since: now,
        reported: now,
        // Rounds that ended before a restart were reported then.
        ended: shared.read().engine.ended().len(),
        checked_latest: false,
        final_written: false,
    });
    let mut finished_at: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(timing.tick) => {}
            _ = stop.changed() => break,
        }
        let step_shared = Arc::clone(&shared);
        let dir = data_dir.clone();
        let mut moved = progress.take();
        let (phase, back) = tokio::task::spawn_blocking(move || {
            let phase = moved.as_mut().map(|p| step(&step_shared, &timing, &dir, p));
            (phase, moved)
        })
        .await?;
        progress = back;
        if let Some(reason) = shared.failure() {
            return Err(NetError::Stopped { reason });
        }
        if phase == Some(Phase::Finished) {
            let at = *finished_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= timing.linger {
                break;
            }
        }
    }
    let state = shared.read();
    let engine = &state.engine;
    Ok(Summary {
        ended: engine.ended().to_vec(),
        finished: engine.phase() == Phase::Finished,
        model: engine.model().to_vec(),
        replayed: 0,
        recovery: std::time::Duration::ZERO,
        audit_lines: engine.audit_lines().len(),
    })
}
