//! Starting the daemon's notifier (`crate::notifier`) beside the core
//! (what the core tells it when a run is recorded: `core/finish.rs`).

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::engine::Workspace;
use crate::notifier::console::ConsoleSink;
use crate::notifier::{Notifier, NotifierOptions, NotifierThread};

/// The notifier's thread, with the console channel on the daemon's
/// stdout (`--dev`: with details), each delivery published on `events`,
/// and its handle. If it cannot start (logged), the daemon runs on without
/// notifications.
pub(super) fn start(
    workspace: &Workspace,
    config: &Config,
    state_db: &Path,
    dev: bool,
    events: &super::events::Events,
) -> (Option<NotifierThread>, Notifier) {
    let started = NotifierThread::start(
        Arc::new(config.clone()),
        NotifierOptions {
            root: workspace.root.clone(),
            state_db: state_db.to_owned(),
            console: Some(ConsoleSink::stdout(dev)),
            send: None,
            on_delivery: Some(super::events::on_delivery(events.clone())),
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
