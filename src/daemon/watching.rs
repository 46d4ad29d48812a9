//! The file watcher in the daemon: started when `triggers.file_watch` is
//! on, restarted when its settings change on a reload, its outputs turned
//! into core commands.

use std::time::Duration;

use super::core::{Command, Core};
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

impl Core {
    /// Starts (or restarts, or stops) the watcher to match the config.
    pub(super) fn sync_watcher(&mut self) {
        let wanted = settings(&self.config);
        if wanted == self.watch_settings && (self.watch.is_some() || wanted.is_none()) {
            return;
        }
        self.watch = None;
        self.watcher = None;
        // What changed while no watcher looked is not in the file list.
        self.files.invalidate();
        self.watch_settings.clone_from(&wanted);
        if wanted.is_none() {
            return;
        }
        let fw = &self.config.triggers.file_watch;
        let tx = self.tx.clone();
        let opts = watch::Options {
            root: self.workspace.root.clone(),
            git: self.git_dirs.clone(),
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
            Ok(h) => self.watch = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the file watcher"),
        }
    }
}
