//! The file watcher seen from the core: started, restarted on a reload
//! whose settings changed, and what it says about itself taken in.

use super::Core;
use crate::ipc::WatcherState;

impl Core {
    /// Starts (or restarts, or stops) the watcher to match the config.
    pub(super) fn sync_watcher(&mut self) {
        let git = self.incoming.git_dirs().cloned();
        if self
            .watching
            .sync(&self.config, &self.workspace.root, git, &self.tx)
        {
            // What changed while no watcher looked is not in the file list.
            self.incoming.files().invalidate();
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
            self.publish(crate::ipc::events::What::WatcherChanged {
                state: kind.clone(),
                message: message.clone(),
            });
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
