//! What a worktree's daemon and its clients agree on outside the socket:
//! the worktree's `.bgtask/` state directory ([`state_dir`]),
//! where the daemon's lock, pid file and socket live (`paths.rs`), and the
//! spool hooks write to while it is away (`spool.rs`). The hook client
//! needs this and `ipc`, never the daemon itself. Per user: the data
//! directory ([`data_dir`]) and the worktrees it knows (`registry.rs`).

pub mod paths;
pub mod registry;
pub mod spool;

pub use paths::Paths;

use std::path::{Path, PathBuf};

/// `.bgtask/` under the worktree root, created with a `.gitignore` of `*` so
/// git never sees it.
pub fn state_dir(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join(".bgtask");
    // One level: a worktree deleted meanwhile (a daemon starting as its
    // checkout is removed) is an error, never made again.
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "*\n")?;
    }
    Ok(dir)
}

/// The user's bgtask data: `BGTASK_DATA_DIR`, else `$XDG_DATA_HOME/bgtask`,
/// else `~/.local/share/bgtask`.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BGTASK_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("bgtask");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".local").join("share").join("bgtask")
}
