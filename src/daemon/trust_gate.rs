//! The core's trust gate: each task's trust now, asked on every trigger
//! (`crate::trust` fingerprints what the tasks would run, keeping git's
//! answers about tracked environments between triggers), and which
//! untrusted states were already said, so each is said once per change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{Config, Projects};
use crate::trust::{TaskTrust, Tracked};

pub(super) struct TrustGate {
    /// Trust is not checked (`--trust`, `CI=true`).
    bypass: bool,
    /// Tasks already reported as untrusted, and in which state.
    noted: BTreeMap<String, String>,
    /// What git tracks in each project's environments, kept until the
    /// index changes (shared with the states worked out off the loop).
    tracked: Arc<Mutex<BTreeMap<PathBuf, Tracked>>>,
}

/// Each task's trust, worked out where it costs the core's loop nothing.
pub(super) type StatesLater = Box<dyn FnOnce() -> BTreeMap<String, TaskTrust> + Send>;

impl TrustGate {
    pub(super) fn new(bypass: bool) -> TrustGate {
        TrustGate {
            bypass,
            noted: BTreeMap::new(),
            tracked: Arc::default(),
        }
    }

    /// Each task's trust now, by key (all trusted when the check is off).
    pub(super) fn states(
        &mut self,
        config: &Config,
        projects: &Projects,
        root: &Path,
    ) -> BTreeMap<String, TaskTrust> {
        if self.bypass {
            return config
                .tasks
                .keys()
                .map(|t| (t.clone(), TaskTrust::Trusted))
                .collect();
        }
        evaluate(projects, root, &self.tracked)
    }

    /// [`TrustGate::states`] to be worked out off the loop (beside a
    /// batch's resolving, when git's index just changed and git must be
    /// asked again); `None` when the check is off.
    pub(super) fn states_later(&self, projects: &Projects, root: &Path) -> Option<StatesLater> {
        if self.bypass {
            return None;
        }
        let (projects, root, tracked) = (projects.clone(), root.to_owned(), self.tracked.clone());
        Some(Box::new(move || evaluate(&projects, &root, &tracked)))
    }

    /// What to say about `task` being held back in `state`, unless it was
    /// said already for this state.
    pub(super) fn note(&mut self, task: &str, state: &TaskTrust) -> Option<String> {
        let key = format!("{state:?}");
        if self.noted.get(task) == Some(&key) {
            return None;
        }
        self.noted.insert(task.to_owned(), key);
        match state {
            TaskTrust::Trusted => None,
            TaskTrust::Untrusted => Some(format!(
                "task {task} was triggered but this worktree is not trusted, so it does not run by itself; `bgtask trust` trusts it (`bgtask run {task}` runs it now)"
            )),
            TaskTrust::Changed { diff } => Some(format!(
                "task {task} does not run by itself until trusted again: what it runs changed ({}); `bgtask trust --diff` shows it, `bgtask trust` accepts it",
                diff.join("; ")
            )),
        }
    }
}

fn evaluate(
    projects: &Projects,
    root: &Path,
    tracked: &Mutex<BTreeMap<PathBuf, Tracked>>,
) -> BTreeMap<String, TaskTrust> {
    let mut tracked = tracked.lock().unwrap_or_else(PoisonError::into_inner);
    let fp = crate::trust::fingerprint_projects(projects, root, &mut tracked);
    let record = crate::trust::load(root);
    crate::trust::evaluate(&fp, record.as_ref())
}
