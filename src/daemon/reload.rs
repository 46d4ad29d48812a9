//! Hot reload: the config files are watched; on a change (or SIGHUP or
//! `bgtask reload`) the config is validated and applied if good. A bad one
//! keeps the last good config in use, marks it stale in `status` and is
//! reported once (RELIABILITY 21).

use std::path::Path;
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{Semaphore, mpsc};

use super::scheduler::{Command, Scheduler};
use crate::config::{CONFIG_FILE, LOCAL_CONFIG_FILE};

/// Watches the worktree root (not recursively) for changes to the config
/// files; keep the watcher alive for as long as changes matter.
pub fn watch(
    root: &Path,
    tx: mpsc::UnboundedSender<Command>,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let ours = event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n == CONFIG_FILE || n == LOCAL_CONFIG_FILE)
        });
        if ours {
            let _ = tx.send(Command::Reload);
        }
    })?;
    watcher.watch(root, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

impl Scheduler {
    pub(super) fn reload(&mut self) {
        match crate::config::load(&self.workspace.root) {
            Ok(config) => {
                let was_stale = self.config_state.stale;
                let workers_changed =
                    config.execution.max_concurrent != self.config.execution.max_concurrent;
                self.queue.set_max_size(config.execution.max_queue_size);
                if workers_changed {
                    self.slots = Arc::new(Semaphore::new(config.execution.max_concurrent.max(1)));
                    self.workers = config.execution.max_concurrent.max(1);
                }
                self.config_state.files = config
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                self.config_state.stale = false;
                self.config_state.problems.clear();
                self.config = Arc::new(config);
                self.refresh_quarantine();
                tracing::info!(stale_before = was_stale, "config reloaded");
                let _ = self.store.event("info", "config", "config reloaded");
            }
            Err(e) => {
                let problems: Vec<String> = if e.problems().is_empty() {
                    vec![format!("{e:#}")]
                } else {
                    e.problems().iter().map(ToString::to_string).collect()
                };
                if !self.config_state.stale || self.config_state.problems != problems {
                    let msg = format!(
                        "config is invalid, keeping the last good one: {}",
                        problems.join("; ")
                    );
                    tracing::warn!("{msg}");
                    let _ = self.store.event("warning", "config", &msg);
                }
                self.config_state.stale = true;
                self.config_state.problems = problems;
            }
        }
    }
}
