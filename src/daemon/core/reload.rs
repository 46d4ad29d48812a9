//! Hot reload: the config files are watched; on a change (or SIGHUP or
//! `bgtask reload`) the config is validated and applied if good. A bad one
//! keeps the last good config in use, marks it stale in `status` and is
//! reported once (RELIABILITY 21), in the log and as a notification.
//!
//! An editor or `git stash pop` rewrites a file in steps (empty, then
//! whole): a config read as invalid after a change is read again after a
//! short settle before it is called invalid. `bgtask reload` answers at
//! once.

use std::sync::Arc;

use super::Core;

/// How long a config that reads as invalid after a change may take to
/// become whole before it is reported.
pub(super) const CONFIG_SETTLE: crate::clock::Millis = 300;

impl Core {
    /// A change on disk: applied if good; if not, looked at again once the
    /// file has had [`CONFIG_SETTLE`] to settle.
    pub(super) fn reload(&mut self) {
        self.reload_with(false);
    }

    /// `bgtask reload`: the answer now.
    pub(super) fn reload_now(&mut self) {
        self.reload_with(true);
    }

    /// Re-reads a config that looked invalid, once it had time to settle.
    pub(super) fn settle_config(&mut self) {
        if self.config_settle.is_some_and(|at| at <= self.clock.now()) {
            self.reload_with(true);
        }
    }

    fn reload_with(&mut self, settled: bool) {
        self.config_settle = None;
        match self.workspace.projects() {
            Ok(projects) => {
                let mut config = projects.combined();
                self.projects = Arc::new(projects);
                let was_stale = self.config_state.stale;
                self.queue.set_max_size(config.execution.max_queue_size);
                config.execution.max_concurrent =
                    self.workers.resize(config.execution.max_concurrent);
                self.config_state.files = config
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                self.config_state.stale = false;
                self.config_state.problems.clear();
                self.config = Arc::new(config);
                self.incoming.set_window(crate::daemon::incoming::window(
                    &self.config,
                    &self.workspace.root,
                ));
                self.reset_timers();
                self.sync_watcher();
                self.notifier.reconfigure(self.config.clone());
                self.refresh_quarantine();
                self.self_writes.resume_all();
                tracing::info!(stale_before = was_stale, "config reloaded");
                self.publish(crate::ipc::events::What::ConfigReloaded {
                    stale: false,
                    problems: Vec::new(),
                });
                let _ = self
                    .persistence
                    .store()
                    .event("info", "config", "config reloaded");
            }
            Err(_) if !settled => {
                self.config_settle = Some(self.clock.now() + CONFIG_SETTLE);
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
                    let _ = self.persistence.store().event("warning", "config", &msg);
                    self.notifier
                        .send(crate::notifier::NotificationEvent::config_invalid(
                            &problems,
                        ));
                }
                self.config_state.stale = true;
                self.publish(crate::ipc::events::What::ConfigReloaded {
                    stale: true,
                    problems: problems.clone(),
                });
                self.config_state.problems = problems;
            }
        }
    }
}
