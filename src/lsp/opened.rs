//! Asking the daemon to analyse a file the editor opened that no run has
//! looked at: delivered as git hooks are (`hooks::client`), so a daemon
//! that is down hears of it when it starts (and is started, in a trusted
//! worktree), and the daemon decides as for a save which tasks it
//! concerns, trust and pause included. Off the editor's thread.

use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use crate::event::EDITOR_OPEN;

/// Sends the request for `path` (repo-relative) in the background.
pub fn ask_to_analyse(root: &Path, path: String) {
    let root: PathBuf = root.to_owned();
    let started = std::thread::Builder::new()
        .name("lsp-open".into())
        .spawn(move || {
            let event =
                crate::hooks::client::capture(&root, EDITOR_OPEN, vec![path.clone()], false);
            match crate::hooks::client::deliver(&root, &event) {
                Ok(()) => debug!(%path, "asked the daemon to analyse it"),
                Err(why) => warn!(%path, %why, "could not ask the daemon to analyse it"),
            }
        });
    if let Err(e) = started {
        warn!(error = %e, "cannot ask the daemon to analyse an opened file");
    }
}
