//! Where bgtask keeps per-user data: managed tool installs and the tool
//! version cache live under the user cache dir, never in a repository.
//!
//! `BGTASK_CACHE_DIR` overrides the location (tests, CI caches).

use std::path::PathBuf;

/// `$BGTASK_CACHE_DIR`, else `$XDG_CACHE_HOME/bgtask`, else `~/.cache/bgtask`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BGTASK_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("bgtask");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("bgtask")
}

/// The managed Python virtualenv (`bgtask tools install`).
pub fn managed_venv() -> PathBuf {
    cache_dir().join("tools").join("venv")
}

/// The managed npm prefix (`bgtask tools install`).
pub fn managed_node() -> PathBuf {
    cache_dir().join("tools").join("node")
}
