//! The config files' watcher: the worktree root, not recursively; a
//! change of a config file sends the core a reload.

use std::path::Path;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::command::Command;
use crate::config::{CONFIG_FILE, LOCAL_CONFIG_FILE};

/// Watches the worktree root (not recursively) for changes to the config
/// files; keep the watcher alive for as long as changes matter.
pub fn watch(
    root: &Path,
    tx: mpsc::UnboundedSender<Command>,
) -> notify::Result<notify::RecommendedWatcher> {
    let config = notify::Config::default().with_event_kinds(notify::event::EventKindMask::CORE);
    let mut watcher = notify::RecommendedWatcher::new(
        move |res: notify::Result<notify::Event>| {
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
        },
        config,
    )?;
    watcher.watch(root, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
