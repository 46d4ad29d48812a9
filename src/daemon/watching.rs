//! The file watcher in the daemon: started when `triggers.file_watch` is
//! on, restarted when its settings change on a reload, its outputs turned
//! into core commands; the core's [`Watching`] part holds it and what it
//! last said about itself.

use std::time::Duration;

use super::core::{Command, Core};
use crate::ipc::WatcherState;
use crate::watch::{self, Output};

/// How often directories that cannot be watched are polled.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What the watcher depends on, to tell when a reload must restart it.
pub(super) fn settings(config: &crate::config::Config) -> Option<String> {
    let fw = &config.triggers.file_watch;
    fw.enabled.then(|| {
        format!(
            "{:?} {:?}",
            fw.paths.as_ref().map(crate::globs::Globs::patterns),
            fw.exclude_paths.as_ref().map(crate::globs::Globs::patterns)
        )
    })
}

/// The running watcher, the settings it runs with, and what it last said
/// about itself.
#[derive(Default)]
pub(super) struct Watching {
    handle: Option<watch::Handle>,
    settings: Option<String>,
    state: Option<WatcherState>,
}

/// What a new state of the watcher means to the core.
pub(super) struct Change {
    /// The kind of state changed (`starting` → `watching`, say).
    pub kind_changed: bool,
    /// The first walk is over.
    pub first_ready: bool,
}

impl Watching {
    /// What the watcher last said about itself.
    pub(super) fn state(&self) -> Option<&WatcherState> {
        self.state.as_ref()
    }

    /// Whether it sees every change in the tree right now.
    pub(super) fn is_watching(&self) -> bool {
        self.state.as_ref().is_some_and(|w| w.state == "watching")
    }

    /// Takes the watcher's new state.
    pub(super) fn update(&mut self, state: WatcherState) -> Change {
        let change = Change {
            kind_changed: self.state.as_ref().map(|w| &w.state) != Some(&state.state),
            first_ready: self.state.as_ref().is_none_or(|w| w.ready_ms.is_none())
                && state.ready_ms.is_some(),
        };
        self.state = Some(state);
        change
    }
}

impl Core {
    /// Starts (or restarts, or stops) the watcher to match the config.
    pub(super) fn sync_watcher(&mut self) {
        let wanted = settings(&self.config);
        let w = &mut self.watching;
        if wanted == w.settings && (w.handle.is_some() || wanted.is_none()) {
            return;
        }
        w.handle = None;
        w.state = None;
        // What changed while no watcher looked is not in the file list.
        self.incoming.files().invalidate();
        w.settings.clone_from(&wanted);
        if wanted.is_none() {
            return;
        }
        let fw = &self.config.triggers.file_watch;
        let tx = self.tx.clone();
        let opts = watch::Options {
            root: self.workspace.root.clone(),
            git: self.incoming.git_dirs().cloned(),
            include: fw.paths.clone(),
            exclude: fw.exclude_paths.clone(),
            poll_interval: POLL_INTERVAL,
        };
        match watch::spawn(opts, move |out| {
            let _ = tx.send(match out {
                Output::Arrival(a, at) => Command::Arrived(a, at),
                Output::State(s) => Command::Watcher(s),
            });
        }) {
            Ok(h) => w.handle = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the file watcher"),
        }
    }

    /// The watcher says how it is.
    pub(super) fn watcher_changed(&mut self, state: WatcherState) {
        if state.state != "watching" {
            self.incoming.files().invalidate();
        }
        let (kind, watched, polled, ready_ms) = (
            state.state.clone(),
            state.watched,
            state.polled,
            state.ready_ms,
        );
        let message = state.message.clone();
        let change = self.watching.update(state);
        if change.kind_changed {
            match kind.as_str() {
                "degraded" | "failed" | "polling" => {
                    let msg = format!("file watcher {kind}: {}", message.as_deref().unwrap_or(""));
                    tracing::warn!("{msg}");
                    let _ = self.persistence.store().event("warning", "watcher", &msg);
                }
                _ => {
                    tracing::info!(state = %kind, watched, polled, ?ready_ms, "file watcher");
                }
            }
        }
        if change.first_ready {
            // The walk of the tree is over: its memory can go.
            self.release_memory(true);
        }
    }
}
