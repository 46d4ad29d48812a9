//! The core's incoming triggers: the intake of hook and watcher events
//! waiting for the worktree to be quiet (`schedule/intake.rs`), whether a
//! released batch is being resolved, the timers (cron, idle), the git
//! directories whose locks hold a batch back, and the project's file list
//! the triggers keep true (`engine/index.rs`). `triggers.rs` turns what
//! comes out into jobs.

use crate::clock::Millis;
use crate::engine::FileIndex;
use crate::event::Arrival;
use crate::git::GitDirs;
use crate::schedule::intake::{GitState, Intake, IntakeId, Window};
use crate::schedule::timers::Timers;

/// How recent a write of git's index means git is finishing a step.
const INDEX_JUST_WRITTEN: std::time::Duration = std::time::Duration::from_millis(20);

pub(super) struct Incoming {
    intake: Intake,
    /// A released batch is being resolved in the blocking pool.
    resolving: bool,
    /// Hook and watcher triggers taken since start.
    arrivals: u64,
    git_dirs: Option<GitDirs>,
    timers: Timers,
    files: FileIndex,
}

impl Incoming {
    pub(super) fn new(intake: Intake, git_dirs: Option<GitDirs>, timers: Timers) -> Incoming {
        Incoming {
            intake,
            resolving: false,
            arrivals: 0,
            git_dirs,
            timers,
            files: FileIndex::default(),
        }
    }

    /// Takes an arrival that came at `at`; its id in the intake.
    pub(super) fn add(&mut self, arrival: Arrival, at: Millis) -> IntakeId {
        self.arrivals += 1;
        self.intake.add(arrival, at)
    }

    /// An arrival saved by an earlier daemon.
    pub(super) fn restore(&mut self, id: IntakeId, arrival: Arrival, now: Millis) {
        self.intake.restore(id, arrival, now);
    }

    /// Triggers waiting for quiet.
    pub(super) fn pending(&self) -> usize {
        self.intake.len()
    }

    pub(super) fn arrivals(&self) -> u64 {
        self.arrivals
    }

    pub(super) fn resolving(&self) -> bool {
        self.resolving
    }

    /// When the next batch is due.
    pub(super) fn next_wake(&self) -> Option<Millis> {
        self.intake.next_wakeup()
    }

    /// A batch due at `now`, unless one is being resolved or git holds its
    /// locks.
    pub(super) fn take_due(&mut self, now: Millis) -> Option<Vec<(IntakeId, Arrival)>> {
        if self.resolving || self.intake.next_wakeup().is_none_or(|at| at > now) {
            return None;
        }
        let git = self
            .git_dirs
            .as_ref()
            .map_or_else(GitState::default, |d| GitState {
                index_locked: d.index_locked(),
                operation_in_progress: d.operation().is_some(),
                index_just_written: d.index_written_within(INDEX_JUST_WRITTEN),
            });
        self.intake.take(now, git)
    }

    /// A batch went to the blocking pool; [`Incoming::resolved`] ends it.
    pub(super) fn start_resolving(&mut self) {
        self.resolving = true;
    }

    pub(super) fn resolved(&mut self) {
        self.resolving = false;
    }

    pub(super) fn set_window(&mut self, window: Window) {
        self.intake.set_window(window);
    }

    pub(super) fn git_dirs(&self) -> Option<&GitDirs> {
        self.git_dirs.as_ref()
    }

    /// The kept file list (shared with the jobs that plan with it).
    pub(super) fn files(&self) -> &FileIndex {
        &self.files
    }

    pub(super) fn timers(&mut self) -> &mut Timers {
        &mut self.timers
    }

    pub(super) fn timers_ref(&self) -> &Timers {
        &self.timers
    }
}

/// The intake's windows: the configured debounce, and whether git's hooks
/// deliver here (else a HEAD move waits for no hook).
pub(super) fn window(config: &crate::config::Config, root: &std::path::Path) -> Window {
    let ms: Millis =
        i64::try_from(config.triggers.file_watch.debounce.as_millis()).unwrap_or(i64::MAX / 4);
    Window {
        hooks: config.triggers.git_hooks.enabled && crate::hooks::install::delivers(root),
        ..Window::for_debounce(ms)
    }
}
