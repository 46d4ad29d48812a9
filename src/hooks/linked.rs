//! The fast hook client as the hook itself: `install-hooks` makes each
//! notify hook a symbolic link to `bgtask-hook`, so git starts it directly
//! and no shell runs on a commit. Invoked under a hook's name, it does
//! what the shell shim (`hooks/shim.sh`) does: runs the hook that was there
//! before (`<hook>.bgtask-chained`, with git's stdin when git gives one)
//! and keeps its exit code, stops there when `BGTASK=0`, and tells the
//! daemon.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::client::{STDIN_HOOKS, notify_with, read_stdin};
use super::shim::{CHAINED_SUFFIX, FAST_CLIENT};

/// The hook `argv0` names, when the client was started as one (through a
/// link in a hooks directory) rather than as `bgtask-hook`.
pub fn invoked_as(argv0: &Path) -> Option<&str> {
    let name = argv0.file_name()?.to_str()?;
    (name != FAST_CLIENT && !name.starts_with("bgtask")).then_some(name)
}

/// Runs as the hook `argv0` names; returns the exit code for git.
pub fn run(argv0: &Path, args: &[OsString]) -> u8 {
    let Some(hook) = invoked_as(argv0) else {
        return 0;
    };
    let stdin = STDIN_HOOKS.contains(&hook).then(|| read_stdin(hook));
    let status = match chained(argv0) {
        Some(earlier) => run_chained(&earlier, args, stdin.as_deref()),
        None => 0,
    };
    let args = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    notify_with(status, hook, args, Some(stdin.unwrap_or_default()))
}

/// The earlier hook kept beside this one, if it can be run.
fn chained(argv0: &Path) -> Option<PathBuf> {
    let mut path = argv0.as_os_str().to_owned();
    path.push(CHAINED_SUFFIX);
    let path = PathBuf::from(path);
    let meta = std::fs::metadata(&path).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(path)
}

/// Runs the earlier hook as git would have; its exit code (1 when it
/// could not start or died of a signal, as a shell reports neither as 0).
fn run_chained(path: &Path, args: &[OsString], stdin: Option<&str>) -> u8 {
    let mut cmd = Command::new(path);
    cmd.args(args);
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let Ok(mut child) = cmd.spawn() else {
        eprintln!("bgtask: could not run {}", path.display());
        return 1;
    };
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A hook that does not read its stdin closes the pipe: not an error.
        let _ = pipe.write_all(input.as_bytes());
    }
    child
        .wait()
        .ok()
        .and_then(|s| s.code())
        .map_or(1, |c| u8::try_from(c).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_name_is_a_hook_and_the_client_is_not() {
        assert_eq!(
            invoked_as(Path::new(".git/hooks/post-commit")),
            Some("post-commit")
        );
        assert_eq!(invoked_as(Path::new("/usr/bin/bgtask-hook")), None);
        assert_eq!(invoked_as(Path::new("target/debug/bgtask")), None);
    }
}
