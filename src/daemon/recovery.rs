//! The store failing and healing under a running daemon (RELIABILITY 4,
//! 28): work goes on in memory while writes fail (a full disk), and what
//! could not be written — queue changes and whole runs with their reports —
//! is written once writes succeed again, so `history` is complete. While
//! degraded the store is retried every second, so DEGRADED clears within
//! seconds of space returning even when nothing else happens.
//!
//! A worktree deleted under its daemon stops it (found the same way).
//!
//! A state directory deleted under the daemon (`rm -rf .bgtask`) leaves
//! the connection writing into a file nobody will read again: the file's
//! identity is checked before each run is recorded and at every health
//! check, and the database is then rewritten in place from the open
//! connection (history included), reported once as a health alert.

use std::time::Duration;

use super::core::{Active, Core};
use super::jobs::trigger_label;
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
            trigger: trigger_label(&active.waiting.trigger),
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

impl Core {
    /// Tries the store again (at most every second), after checking that
    /// its file is still there (`Persistence::retry`).
    pub(super) fn retry_store(&mut self) {
        if !self.persistence.take_retry() {
            return;
        }
        self.check_state_file();
        self.persistence.retry(self.clock.now());
    }

    /// Notices a state database deleted or replaced under the daemon and
    /// rewrites it from the open connection; says so once.
    pub(super) fn check_state_file(&mut self) {
        if self.persistence.store().file_intact() {
            return;
        }
        // The whole worktree went (a deleted checkout, a test's temporary
        // directory): nothing to serve; never recreate it. A directory
        // made again at its path (by a log written late) is not it.
        if root_id(&self.workspace.root) != self.root_id {
            if !self.stopping.is_cancelled() {
                tracing::error!(
                    root = %self.workspace.root.display(),
                    "the worktree was deleted; stopping"
                );
                self.stopping.cancel();
            }
            return;
        }
        let rescued = crate::state::state_dir(&self.workspace.root)
            .map_err(|source| StoreError::MoveAside {
                path: self.paths.state.clone(),
                source,
            })
            .and_then(|_| self.persistence.store().rescue());
        match rescued {
            Ok(()) => {
                let msg = format!(
                    "the state database {} was deleted under the daemon; it was recreated with everything the daemon held (history and queue kept)",
                    self.persistence.store().path().display()
                );
                tracing::error!("{msg}");
                let _ = self.persistence.store().event("error", "health", &msg);
                self.notifier
                    .send(crate::notifier::NotificationEvent::health_alert(true, &msg));
                self.persistence.ok();
            }
            Err(e) => self
                .persistence
                .failed("recreate the deleted state database", &e),
        }
    }
}

/// Which directory `root` is (device and inode), while it exists.
pub(super) fn root_id(root: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(root).ok().map(|m| (m.dev(), m.ino()))
}
