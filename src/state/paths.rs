//! Where a worktree's daemon keeps its lock, pid file and socket: a private
//! runtime directory, never the repository (socket paths are limited to 108
//! bytes, and a repository may be shared or on a network filesystem).
//!
//! `$XDG_RUNTIME_DIR/bgtask/` when that is a private directory of ours,
//! else `$TMPDIR/bgtask-<uid>/` (created 0700). A directory that is not
//! ours, is open to others, or is a symlink is refused with a fix-it
//! message; so is a socket path that is a symlink.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("{} is not safe for the daemon's socket: {why}; fix it with `chmod 700 {}` (and check its owner), or remove it", dir.display(), dir.display())]
    Unsafe { dir: PathBuf, why: String },
    #[error("create {}", dir.display())]
    Create {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the socket path {} is {len} bytes, over the 107-byte limit; set TMPDIR or XDG_RUNTIME_DIR to a shorter directory", path.display())]
    TooLong { path: PathBuf, len: usize },
    #[error("{} is a symlink; refusing to use it as the daemon's socket", path.display())]
    SymlinkSocket { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Paths {
    /// The private runtime directory.
    pub dir: PathBuf,
    pub lock: PathBuf,
    pub pid: PathBuf,
    pub socket: PathBuf,
    /// `.bgtask/` of the worktree.
    pub state: PathBuf,
    /// The daemon's own log (stdout/stderr when detached).
    pub log: PathBuf,
    /// Live analyzer logs per run.
    pub run_logs: PathBuf,
    /// Hook events written while the daemon was down.
    pub spool: PathBuf,
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Checks that `dir` is a real directory owned by us and closed to others.
fn check_private(dir: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symlink".to_owned());
    }
    if !meta.is_dir() {
        return Err("it is not a directory".to_owned());
    }
    if meta.uid() != uid() {
        return Err(format!("it belongs to uid {}, not {}", meta.uid(), uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "its mode is {:o}, open to other users",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

fn ensure_private(dir: &Path) -> Result<(), PathsError> {
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)
            .map_err(|source| PathsError::Create {
                dir: dir.to_owned(),
                source,
            })?;
        // The umask may have narrowed it further; never widened it.
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    check_private(dir).map_err(|why| PathsError::Unsafe {
        dir: dir.to_owned(),
        why,
    })
}

/// Why `$XDG_RUNTIME_DIR` is passed over for the private fallback under
/// `$TMPDIR`, when it is set but unusable (relative, a symlink, open to
/// others, someone else's); `None` when it is used or simply unset.
pub fn runtime_fallback() -> Option<String> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)?;
    if !xdg.is_absolute() {
        return Some(format!(
            "$XDG_RUNTIME_DIR ({}) is not an absolute path",
            xdg.display()
        ));
    }
    check_private(&xdg)
        .err()
        .map(|why| format!("$XDG_RUNTIME_DIR ({}) is not private: {why}", xdg.display()))
}

/// The runtime directory for this user.
pub fn runtime_dir() -> Result<PathBuf, PathsError> {
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && xdg.is_absolute()
        && check_private(&xdg).is_ok()
    {
        let dir = xdg.join("bgtask");
        ensure_private(&dir)?;
        return Ok(dir);
    }
    let tmp = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let dir = tmp.join(format!("bgtask-{}", uid()));
    ensure_private(&dir)?;
    Ok(dir)
}

impl Paths {
    pub fn for_root(root: &Path) -> Result<Paths, PathsError> {
        let dir = runtime_dir()?;
        let name = &super::registry::id_of(root);
        let socket = dir.join(format!("{name}.sock"));
        let len = socket.as_os_str().len();
        if len > 107 {
            return Err(PathsError::TooLong { path: socket, len });
        }
        if fs::symlink_metadata(&socket).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(PathsError::SymlinkSocket { path: socket });
        }
        let state = root.join(".bgtask");
        Ok(Paths {
            lock: dir.join(format!("{name}.lock")),
            pid: dir.join(format!("{name}.pid")),
            socket,
            log: state.join("logs").join("daemon.log"),
            run_logs: state.join("logs").join("runs"),
            spool: state.join("spool.jsonl"),
            state,
            dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_checks() {
        let base = tempfile::tempdir().unwrap();
        let ok = base.path().join("ok");
        ensure_private(&ok).unwrap();
        assert_eq!(fs::metadata(&ok).unwrap().mode() & 0o777, 0o700);
        let open = base.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private(&open).unwrap_err().to_string();
        assert!(
            err.contains("open to other users") && err.contains("chmod 700"),
            "{err}"
        );
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert!(
            ensure_private(&link)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
    }
}
