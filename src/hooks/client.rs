//! `bgtask hook NAME [ARGS…]`: what an installed shim runs, on git's hot
//! path. It must cost next to nothing and never break git:
//!
//! - no async runtime, no logging setup, no config read, no git process:
//!   the args, stdin (pre-push refs, post-rewrite mappings), HEAD,
//!   `ORIG_HEAD` and any rebase/merge/cherry-pick in progress are read from
//!   git's own files ([`GitDirs`]);
//! - one request to the daemon, the connect and send bounded by
//!   [`TIMEOUT`] and the answer by [`ANSWER_TIMEOUT`]; a daemon
//!   that is down, hung or restarting gets the event in the spool instead
//!   (appended under `flock`), and, in a worktree that was trusted (a
//!   file's existence) and when `git_hooks.autostart` is on (the daemon
//!   checks that itself), is started fully detached (own session, stdio on
//!   its log, no inherited descriptors) so `git commit | cat` does not
//!   wait for it;
//! - the exit code is the chained hook's (the shim passes it in with
//!   `--status`), whatever happened here.
//!
//! Gating (`--gate`) is the one slow path, in the CLI (`cli/hook_cmd.rs`):
//! it runs analyzers in the foreground, so it reads the config.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::event::HookEvent;
use crate::git::GitDirs;
use crate::ipc::{Client, ClientError, ErrorKind, Request, Response};
use crate::state::Paths;

/// Bounds the connect and the send.
pub const TIMEOUT: Duration = Duration::from_millis(300);

/// Bounds the answer: the daemon saves the event first, which a machine
/// under load (a build on every core) can slow to a few hundred ms. A
/// daemon that does not answer in time gets the event spooled.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// Hooks git feeds on stdin.
pub const STDIN_HOOKS: &[&str] = &["pre-push", "post-rewrite", "pre-receive", "post-receive"];

/// Most stdin kept (a push of many refs, a rebase of many commits).
const MAX_STDIN: u64 = 4 << 20;

struct HookArgs {
    gate: bool,
    status: u8,
    hook: String,
    args: Vec<String>,
}

fn parse(argv: &[OsString]) -> Option<HookArgs> {
    let mut gate = false;
    let mut status = 0;
    let mut rest = argv.iter().map(|a| a.to_string_lossy().into_owned());
    let hook = loop {
        let a = rest.next()?;
        match a.as_str() {
            "--gate" => gate = true,
            "--status" => status = rest.next()?.parse().unwrap_or(1),
            _ => break a,
        }
    };
    Some(HookArgs {
        gate,
        status,
        hook,
        args: rest.collect(),
    })
}

/// The fast entry point, called by `main` before any other setup for
/// `bgtask hook` without `--gate`; returns the exit code.
pub fn main(argv: &[OsString]) -> u8 {
    match parse(argv) {
        Some(parsed) if !parsed.gate => notify(parsed.status, &parsed.hook, parsed.args),
        _ => {
            eprintln!("usage: bgtask hook [--status N] HOOK [ARGS...]");
            crate::exit::USAGE
        }
    }
}

/// Hands the hook's event to the daemon (or the spool); returns `status`
/// whatever happens.
pub fn notify(status: u8, hook: &str, args: Vec<String>) -> u8 {
    notify_with(status, hook, args, None)
}

/// [`notify`] with git's stdin already read (`None`: read it here).
pub fn notify_with(status: u8, hook: &str, args: Vec<String>, stdin: Option<String>) -> u8 {
    if std::env::var_os("BGTASK").is_some_and(|v| v == "0") {
        return status;
    }
    let Ok(top) = std::env::current_dir() else {
        return status;
    };
    let mut event = capture(&top, hook, args, stdin.is_none());
    if let Some(stdin) = stdin {
        event.stdin = stdin;
    }
    if let Err(why) = deliver(&top, &event) {
        // Never fail git over it; say it on stderr (git shows hook
        // output), only when something is really wrong.
        eprintln!("bgtask: {why}");
    }
    status
}

/// Git's stdin for `hook`, when git gives it one (empty otherwise).
pub fn read_stdin(hook: &str) -> String {
    let mut stdin = String::new();
    if STDIN_HOOKS.contains(&hook) {
        let _ = std::io::stdin().take(MAX_STDIN).read_to_string(&mut stdin);
    }
    stdin
}

/// What the hook saw (`read`: git's stdin too).
pub fn capture(top: &Path, hook: &str, args: Vec<String>, read: bool) -> HookEvent {
    let stdin = if read {
        read_stdin(hook)
    } else {
        String::new()
    };
    let dirs = GitDirs::find(top);
    let skip = std::env::var("BGTASK_SKIP")
        .map(|s| {
            s.split([',', ' '])
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    HookEvent {
        hook: hook.to_owned(),
        args,
        stdin,
        head: dirs.as_ref().and_then(GitDirs::head),
        orig_head: dirs.as_ref().and_then(GitDirs::orig_head),
        operation: dirs
            .as_ref()
            .and_then(GitDirs::operation)
            .map(str::to_owned),
        skip,
        at_ms: crate::clock::now_ms(),
    }
}

/// The daemon's root for a hook running in `top`: the worktree itself,
/// whose one daemon serves every project in it (`config::Projects`).
fn root_of(top: &Path) -> PathBuf {
    top.canonicalize().unwrap_or_else(|_| top.to_owned())
}

/// Sends the event, or spools it (and starts the daemon if configured).
pub fn deliver(top: &Path, event: &HookEvent) -> Result<(), String> {
    let root = root_of(top);
    let paths = Paths::for_root(&root).map_err(|e| e.to_string())?;
    let down = match send(&paths, event) {
        Ok(()) => return Ok(()),
        Err(Failure::Down) => true,
        Err(Failure::Unresponsive) => false,
    };
    crate::state::state_dir(&root)
        .and_then(|_| crate::state::spool::append(&paths.spool, &Request::Hook(event.clone())))
        .map_err(|e| {
            format!(
                "could not queue the {} event in {}: {e}",
                event.hook,
                paths.spool.display()
            )
        })?;
    // A daemon in a worktree nobody trusted would run nothing (a fresh
    // `git worktree add`, a clone): the event waits in the spool until
    // `bgtask trust` and a start.
    if down && (crate::trust::has_record(&root) || crate::trust::skipped_by_env()) {
        autostart(&root, &paths).map_err(|e| format!("could not start the daemon: {e}"))?;
    }
    Ok(())
}

enum Failure {
    /// Nothing listens: spool, and maybe start it.
    Down,
    /// It is there but did not take the event in time: spool only.
    Unresponsive,
}

fn send(paths: &Paths, event: &HookEvent) -> Result<(), Failure> {
    let mut client = match Client::connect(&paths.socket, TIMEOUT) {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => return Err(Failure::Down),
        Err(_) => return Err(Failure::Unresponsive),
    };
    if client.read_timeout(ANSWER_TIMEOUT).is_err() {
        return Err(Failure::Unresponsive);
    }
    match client.call(Request::Hook(event.clone())) {
        Ok(Response::Accepted) => Ok(()),
        // Taken but not saved (disk full): it runs; a spooled copy would
        // run it twice.
        Err(ClientError::Daemon(e)) if e.kind == ErrorKind::Degraded => Ok(()),
        _ => Err(Failure::Unresponsive),
    }
}

/// The main `bgtask` binary: this one, or the one beside `bgtask-hook`.
fn main_binary() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(if exe.file_name().is_some_and(|n| n == "bgtask-hook") {
        exe.with_file_name("bgtask")
    } else {
        exe
    })
}

/// Starts `bgtask start --foreground --if-autostart` in its own session
/// with stdio on the daemon log and every other descriptor closed, and
/// does not wait: the daemon's lock settles races between hooks, and the
/// daemon itself reads the config and goes away if `git_hooks.autostart`
/// is off (this process reads no config).
fn autostart(root: &Path, paths: &Paths) -> std::io::Result<()> {
    if let Some(parent) = paths.log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)?;
    let mut cmd = std::process::Command::new(main_binary()?);
    cmd.arg("-C")
        .arg(root)
        .args(["start", "--foreground", "--if-autostart"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid and close_range are async-signal-safe. The child gets
    // its own session (no terminal, no hangup from git's), and no
    // descriptor of git's (a pipe held open would make `| cat` wait).
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    // Reaped by init once this process exits; never waited for.
    cmd.spawn().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments() {
        let a = parse(&os(&["--status", "3", "post-checkout", "a", "b", "1"])).unwrap();
        assert_eq!(
            (a.status, a.gate, a.hook.as_str()),
            (3, false, "post-checkout")
        );
        assert_eq!(a.args, ["a", "b", "1"]);
        let g = parse(&os(&["--gate", "pre-push", "origin", "--not-a-flag"])).unwrap();
        assert!(g.gate);
        assert_eq!(g.args, ["origin", "--not-a-flag"]);
        assert!(parse(&os(&[])).is_none());
        assert!(parse(&os(&["--status"])).is_none());
    }
}
