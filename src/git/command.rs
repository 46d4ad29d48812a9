//! Running git: never taking optional locks (a user's concurrent `git`
//! must not fail on our `index.lock`), never firing our own hooks, never
//! following the per-repository variables a hook inherited.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
#[error("`git {args}` failed: {message}")]
pub struct GitError {
    pub args: String,
    pub message: String,
}

/// HEAD's commit in the worktree at `dir`, asked of git; `None` before
/// the first commit or outside a repository.
pub fn head_commit(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])
        .ok()
        .map(|o| String::from_utf8_lossy(&o).trim().to_owned())
        .filter(|c| !c.is_empty())
}

/// Runs git in `dir`; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let failed = |message: String| GitError {
        args: args.join(" "),
        message,
    };
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("BGTASK", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// The paths of a `-z` listing.
pub fn split_z(out: &[u8]) -> impl Iterator<Item = PathBuf> + '_ {
    out.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| PathBuf::from(OsStr::from_bytes(e)))
}
