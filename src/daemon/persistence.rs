//! The core's persistence: the store, and what could not be written to it
//! yet. A failed write keeps the daemon going in memory — DEGRADED, with
//! why — while queue changes wait in `unsaved` and finished runs (their
//! reports included) in `unsaved_runs`; both are written with the next
//! change, or by the retry every second (`core/healing.rs`). Only this part
//! touches them: the core asks it to write and reads the store through it.

use std::time::Instant;

use super::unsaved::{MAX_UNSAVED_RUNS, RETRY_EVERY, UnsavedRun, record_run};
use crate::schedule::{Effect, Millis, Pending};
use crate::store::{Store, StoreError};

/// Whether queue changes reached the disk.
#[must_use = "queue changes that did not reach the disk live only in memory: say what that means here"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Saved {
    OnDisk,
    /// Kept in memory and written with the next change; the daemon says
    /// DEGRADED until then (`store_failed` has said why).
    InMemory,
}

impl Saved {
    pub(super) fn on_disk(self) -> bool {
        self == Saved::OnDisk
    }

    /// Going on is right here: what was not saved is written with the next
    /// change, and `status` says DEGRADED meanwhile.
    pub(super) fn or_later(self, what: &str) {
        if self == Saved::InMemory {
            tracing::debug!(what, "kept in memory until the store can be written");
        }
    }
}

pub(super) struct Persistence {
    store: Store,
    /// Queue changes not written yet because the store failed.
    unsaved: Pending,
    /// Why the store cannot be written, while it cannot (disk full, say).
    degraded: Option<String>,
    /// Runs the store could not record yet.
    unsaved_runs: Vec<UnsavedRun>,
    /// When a degraded store is tried next.
    retry_at: Option<Instant>,
}

impl Persistence {
    pub(super) fn new(store: Store) -> Persistence {
        Persistence {
            store,
            unsaved: Pending::default(),
            degraded: None,
            unsaved_runs: Vec::new(),
            retry_at: None,
        }
    }

    /// The store, for reads and for writes with nothing to catch up on.
    pub(super) fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    pub(super) fn store_ref(&self) -> &Store {
        &self.store
    }

    /// Why writes fail, while they do.
    pub(super) fn degraded(&self) -> Option<&str> {
        self.degraded.as_deref()
    }

    /// Queue changes waiting to be written.
    pub(super) fn unsaved_len(&self) -> usize {
        self.unsaved.len()
    }

    /// Commits queue effects (after any left unsaved by an earlier
    /// failure); on failure keeps them for the next write.
    pub(super) fn persist(&mut self, effects: &[Effect], now: Millis) -> Saved {
        if effects.is_empty() && self.unsaved.is_empty() {
            return Saved::OnDisk;
        }
        let all = self.unsaved.take_with(effects);
        match self.store.apply(&all, now) {
            Ok(()) => {
                self.ok();
                Saved::OnDisk
            }
            Err(e) => {
                self.unsaved.put_back(all);
                self.failed("record queue changes", &e);
                Saved::InMemory
            }
        }
    }

    /// Runs `write` in one transaction that also commits `effects` and the
    /// queue changes held back; on failure they are held back again.
    pub(super) fn write_with<T>(
        &mut self,
        effects: &[Effect],
        now: Millis,
        write: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let all = self.unsaved.take_with(effects);
        let written = self.store.batch(|store| {
            let out = write(store)?;
            store.apply(&all, now)?;
            Ok(out)
        });
        match &written {
            Ok(_) => self.ok(),
            Err(_) => self.unsaved.put_back(all),
        }
        written
    }

    /// Notes a failed write: degraded until one succeeds.
    pub(super) fn failed(&mut self, what: &str, e: &StoreError) {
        let why = format!("could not {what}: {e}");
        if self.degraded.is_none() {
            tracing::error!(
                unsaved = self.unsaved.len(),
                "{why}; going on in memory (degraded)"
            );
        }
        self.degraded = Some(why);
    }

    /// A write succeeded.
    pub(super) fn ok(&mut self) {
        if let Some(why) = self.degraded.take() {
            tracing::info!(was = %why, "the store is writable again");
        }
    }

    /// Keeps a run the store could not record, to write it later.
    pub(super) fn keep_run(&mut self, run: UnsavedRun) {
        if self.unsaved_runs.len() >= MAX_UNSAVED_RUNS {
            let dropped = self.unsaved_runs.remove(0);
            tracing::error!(
                task = %dropped.task(),
                "the store has been failing for {MAX_UNSAVED_RUNS} runs: the oldest unsaved run is dropped"
            );
        }
        self.unsaved_runs.push(run);
    }

    /// Whether the loop should come back soon to try the store again.
    pub(super) fn retry_due(&self) -> bool {
        self.degraded.is_some() || !self.unsaved.is_empty() || !self.unsaved_runs.is_empty()
    }

    /// Whether a retry is due now (at most every [`RETRY_EVERY`]); marks
    /// the attempt.
    pub(super) fn take_retry(&mut self) -> bool {
        if !self.retry_due() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        self.retry_at = Some(Instant::now() + RETRY_EVERY);
        true
    }

    /// Writes what was held back: queue changes first, then the runs, then
    /// — when nothing was waiting — a probe write. Any success clears
    /// DEGRADED.
    pub(super) fn retry(&mut self, now: Millis) {
        if !self.persist(&[], now).on_disk() {
            return;
        }
        while let Some(run) = self.unsaved_runs.first() {
            let written = self
                .store
                .batch(|store| record_run(store, run, run.report()));
            match written {
                Ok(_) => {
                    self.unsaved_runs.remove(0);
                    self.ok();
                }
                Err(e) => {
                    self.failed("record a finished run", &e);
                    return;
                }
            }
        }
        if self.degraded.is_some() {
            match self
                .store
                .event("info", "store", "the store is writable again")
            {
                Ok(()) => self.ok(),
                Err(e) => self.failed("write to the store", &e),
            }
        }
    }
}
