//! The file watcher in the daemon: started when `triggers.file_watch` is
//! on, restarted when its settings change on a reload, its outputs turned
//! into core commands; the core's [`Watching`] part holds it and what it
//! last said about itself.

use std::time::Duration;

use tokio::sync::mpsc;

use super::command::Command;
use crate::ipc::WatcherState;
use crate::watch::{self, Output};

/// How often directories that cannot be watched are polled.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What the watcher depends on, to tell when a reload must restart it.
fn settings(config: &crate::config::Config) -> Option<String> {
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
    /// Starts, restarts or stops the watcher to match `config`; whether
    /// it did (what changed meanwhile was not seen).
    pub(super) fn sync(
        &mut self,
        config: &crate::config::Config,
        root: &std::path::Path,
        git: Option<crate::git::GitDirs>,
        tx: &mpsc::UnboundedSender<Command>,
    ) -> bool {
        let wanted = settings(config);
        if wanted == self.settings && (self.handle.is_some() || wanted.is_none()) {
            return false;
        }
        self.handle = None;
        self.state = None;
        self.settings.clone_from(&wanted);
        if wanted.is_none() {
            return true;
        }
        let fw = &config.triggers.file_watch;
        let tx = tx.clone();
        let opts = watch::Options {
            root: root.to_owned(),
            git,
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
            Ok(h) => self.handle = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the file watcher"),
        }
        true
    }

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
