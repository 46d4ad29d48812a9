//! The core's jobs in progress, by id, and the analyzers it keeps out of
//! them (quarantine).

use std::collections::{BTreeMap, HashMap};

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::schedule::{Millis, Waiting};

/// A job being run.
pub(super) struct Active {
    pub waiting: Waiting,
    pub run_id: i64,
    pub started: Instant,
    /// When it started, on the daemon's clock (to record it later if the
    /// store cannot now).
    pub started_ms: Millis,
    pub cancel: CancellationToken,
    /// `bgtask cancel` asked for it: not retried.
    pub cancelled_by_user: bool,
}
use crate::config::Config;
use crate::schedule::JobId;

/// Jobs being run.
#[derive(Default)]
pub(super) struct Running {
    jobs: HashMap<JobId, Active>,
}

impl Running {
    pub(super) fn len(&self) -> usize {
        self.jobs.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub(super) fn contains(&self, id: JobId) -> bool {
        self.jobs.contains_key(&id)
    }

    /// Whether a job's run `run_id` is in progress.
    pub(super) fn has_run(&self, run_id: i64) -> bool {
        self.jobs.values().any(|a| a.run_id == run_id)
    }

    pub(super) fn insert(&mut self, id: JobId, active: Active) {
        self.jobs.insert(id, active);
    }

    pub(super) fn remove(&mut self, id: JobId) -> Option<Active> {
        self.jobs.remove(&id)
    }

    pub(super) fn get_mut(&mut self, id: JobId) -> Option<&mut Active> {
        self.jobs.get_mut(&id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&JobId, &Active)> {
        self.jobs.iter()
    }

    /// Every job still in progress, taken out (at shutdown).
    pub(super) fn take_all(&mut self) -> HashMap<JobId, Active> {
        std::mem::take(&mut self.jobs)
    }
}

/// Analyzers kept out of jobs after crashing again and again, and why.
#[derive(Default)]
pub(super) struct Quarantine {
    by_analyzer: BTreeMap<String, String>,
}

impl Quarantine {
    /// From the store's rows `(analyzer, digest, error)`: only those whose
    /// definition is still the one that crashed.
    pub(super) fn refresh(&mut self, rows: Vec<(String, String, String)>, config: &Config) {
        self.by_analyzer.clear();
        for (analyzer, digest, error) in rows {
            let current = config.analyzers.get(&analyzer).map(|d| d.digest.as_str());
            if current == Some(digest.as_str()) {
                self.by_analyzer.insert(
                    analyzer,
                    format!(
                        "quarantined after {} crashes in a row ({error}); `bgtask retry` or a change to its definition lifts it",
                        crate::store::QUARANTINE_AFTER
                    ),
                );
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_analyzer.is_empty()
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_analyzer.keys().map(String::as_str)
    }

    /// What a job skips, and why.
    pub(super) fn skip(&self) -> BTreeMap<String, String> {
        self.by_analyzer.clone()
    }
}
