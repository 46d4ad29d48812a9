//! The store failing and healing under a running daemon, seen from the
//! core (`persistence.rs` keeps what could not be written): a degraded
//! store is retried every second, and a state database deleted under the
//! daemon is rewritten in place from the open connection (history
//! included), reported once as a health alert. A worktree deleted under
//! its daemon stops it (found the same way).

use super::Core;
use crate::store::StoreError;

impl Core {
    /// Tries the store again (at most every second), after checking that
    /// its file is still there (`Persistence::retry`).
    pub(super) fn retry_store(&mut self) {
        if !self.persistence.take_retry() {
            return;
        }
        self.check_state_file();
        self.persistence.retry(self.clock.now());
    }

    /// Notices a state database deleted or replaced under the daemon and
    /// rewrites it from the open connection; says so once.
    pub(super) fn check_state_file(&mut self) {
        if self.persistence.store().file_intact() {
            return;
        }
        // The whole worktree went (a deleted checkout, a test's temporary
        // directory): nothing to serve; never recreate it. A directory
        // made again at its path (by a log written late) is not it.
        if self.worktree_gone() {
            if !self.stopping.is_cancelled() {
                tracing::error!(
                    root = %self.workspace.root.display(),
                    "the worktree was deleted; stopping"
                );
                self.stopping.cancel();
            }
            return;
        }
        let rescued = crate::state::state_dir(&self.workspace.root)
            .map_err(|source| StoreError::MoveAside {
                path: self.paths.state.clone(),
                source,
            })
            .and_then(|_| self.persistence.store().rescue());
        match rescued {
            Ok(()) => {
                let msg = format!(
                    "the state database {} was deleted under the daemon; it was recreated with everything the daemon held (history and queue kept)",
                    self.persistence.store().path().display()
                );
                tracing::error!("{msg}");
                let _ = self.persistence.store().event("error", "health", &msg);
                self.notifier
                    .send(crate::notifier::NotificationEvent::health_alert(true, &msg));
                self.persistence.ok();
            }
            Err(e) => self
                .persistence
                .failed("recreate the deleted state database", &e),
        }
    }
}

impl Core {
    /// Whether the worktree was deleted (a directory made again at its
    /// path is not it).
    pub(super) fn worktree_gone(&self) -> bool {
        root_id(&self.workspace.root) != self.root_id
    }
}

/// Which directory `root` is (device and inode), while it exists.
pub(super) fn root_id(root: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(root).ok().map(|m| (m.dev(), m.ino()))
}
