//! Starting the daemon's notifier (`crate::notifier`) beside the
//! scheduler, and what the scheduler tells it when a run is recorded.

use std::path::Path;
use std::sync::Arc;

use super::core::{Active, Core};
use crate::config::Config;
use crate::engine::Workspace;
use crate::notifier::console::ConsoleSink;
use crate::notifier::{Notifier, NotifierOptions, NotifierThread, RunFinished};
use crate::report::Report;

/// The notifier's thread, with the console channel on the daemon's
/// stdout (`--dev`: with details), and its handle. If it cannot start
/// (logged), the daemon runs on without notifications.
pub(super) fn start(
    workspace: &Workspace,
    config: &Config,
    state_db: &Path,
    dev: bool,
) -> (Option<NotifierThread>, Notifier) {
    let started = NotifierThread::start(
        Arc::new(config.clone()),
        NotifierOptions {
            root: workspace.root.clone(),
            state_db: state_db.to_owned(),
            console: Some(ConsoleSink::stdout(dev)),
            send: None,
        },
    );
    match started {
        Ok(thread) => {
            let handle = thread.handle();
            (Some(thread), handle)
        }
        Err(e) => {
            tracing::error!(error = %e, "no notifications: the notifier did not start");
            (None, Notifier::disabled())
        }
    }
}

impl Core {
    /// Tells the notifier about a recorded run (or one that could not be
    /// planned: `report` is `None`).
    pub(super) fn notify_run(&self, active: &Active, report: Option<&Report>) {
        let task = &active.waiting.task;
        let policy = self
            .config
            .tasks
            .get(task)
            .map(|t| t.notify)
            .unwrap_or_default();
        let run = match report {
            Some(report) => {
                let scope = active.waiting.files.as_ref().map(|files| {
                    files
                        .iter()
                        .map(|f| f.to_string_lossy().into_owned())
                        .collect()
                });
                RunFinished::from_report(task, active.run_id, policy, scope, report)
            }
            None => RunFinished::without_report(
                task,
                active.run_id,
                policy,
                "the job could not be planned",
            ),
        };
        self.notifier.run_finished(run);
    }
}
