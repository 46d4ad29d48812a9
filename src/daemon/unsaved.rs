//! Runs the store could not record yet (a full disk): kept in memory,
//! their reports included, and written once writes succeed again, so
//! `history` is complete (RELIABILITY 4, 28). `persistence.rs` holds them.

use std::time::Duration;

use super::running::Active;
use crate::report::Report;
use crate::schedule::Millis;
use crate::store::{RunStart, Store, StoreError};

/// How often a degraded store is tried again.
pub(super) const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Runs kept in memory while the store cannot be written; older ones go
/// first (and the log says so).
pub(super) const MAX_UNSAVED_RUNS: usize = 1000;

/// A run the store has not recorded yet (or not finished recording).
#[derive(Debug)]
pub(super) struct UnsavedRun {
    job_id: i64,
    /// The stored run's id, or negative when even its start is unsaved.
    run_id: i64,
    task: String,
    attempt: u32,
    trigger: String,
    started_ms: Millis,
    wait_ms: Millis,
    report: Option<Report>,
}

impl UnsavedRun {
    pub(super) fn task(&self) -> &str {
        &self.task
    }

    pub(super) fn report(&self) -> Option<&Report> {
        self.report.as_ref()
    }

    pub(super) fn of(active: &Active, report: Option<Report>) -> UnsavedRun {
        UnsavedRun {
            job_id: active.waiting.id,
            run_id: active.run_id,
            task: active.waiting.task.clone(),
            attempt: active.waiting.attempt,
            trigger: active.waiting.trigger.label(),
            started_ms: active.started_ms,
            wait_ms: active.started_ms - active.waiting.enqueued,
            report,
        }
    }
}

/// Records `run` (its start too, when that is unsaved); the stored id.
/// Part of a caller's transaction.
pub(super) fn record_run(
    store: &mut Store,
    run: &UnsavedRun,
    report: Option<&Report>,
) -> Result<i64, StoreError> {
    let run_id = if run.run_id < 0 {
        store.begin_run(&RunStart {
            job_id: run.job_id,
            task: &run.task,
            attempt: run.attempt,
            trigger: &run.trigger,
            started_ms: run.started_ms,
            wait_ms: run.wait_ms,
            head: None,
        })?
    } else {
        run.run_id
    };
    if let Some(report) = report {
        store.finish_run(run_id, report)?;
        store.set_last_run(run.job_id, run_id)?;
    }
    Ok(run_id)
}
