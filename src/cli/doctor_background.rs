//! The background half of `bgtask doctor`: are the hooks present and
//! current in every worktree, can the watcher watch the tree within the
//! inotify limits, is the worktree trusted, is the daemon running, and how
//! analyzer processes are cleaned up.

use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Effects, Style};
use serde::Serialize;

use crate::config::Config;
use crate::engine::Workspace;
use crate::git::git;
use crate::hooks::{self, HookState};
use crate::trust::TaskTrust;

#[derive(Debug, Serialize)]
pub struct HooksReport {
    pub dir: String,
    pub worktrees: Vec<String>,
    pub hooks: Vec<(String, HookState)>,
}

#[derive(Debug, Serialize)]
pub struct WatchReport {
    pub enabled: bool,
    pub directories: usize,
    pub max_user_watches: Option<u64>,
    /// The user namespace's own limit, when lower.
    pub namespace_limit: Option<u64>,
    pub ok: bool,
    pub advice: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Background {
    pub hooks: Vec<HooksReport>,
    pub hooks_enabled: bool,
    pub watch: WatchReport,
    pub trust: std::collections::BTreeMap<String, TaskTrust>,
    pub daemon_pid: Option<u32>,
    /// Where the socket, lock and pid file live.
    pub runtime_dir: Option<String>,
    /// Why `$XDG_RUNTIME_DIR` was passed over for a private fallback.
    pub runtime_fallback: Option<String>,
    /// How an analyzer's processes are all found and killed here.
    pub process_cleanup: String,
    /// Why a hook's last attempt to start the daemon failed, if it did.
    pub autostart_failure: Option<String>,
}

/// The worktrees of the repository (`git worktree list`), or just this one.
pub(super) fn worktrees(root: &Path) -> Vec<PathBuf> {
    let Ok(out) = git(root, &["worktree", "list", "--porcelain"]) else {
        return vec![root.to_owned()];
    };
    let list: Vec<PathBuf> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .collect();
    if list.is_empty() {
        vec![root.to_owned()]
    } else {
        list
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn watch_report(config: &Config, root: &Path) -> WatchReport {
    let fw = &config.triggers.file_watch;
    let directories = if fw.enabled {
        crate::watch::walk(root, root, fw.exclude_paths.as_ref(), false)
            .dirs
            .len()
    } else {
        0
    };
    let max_user_watches = read_number("/proc/sys/fs/inotify/max_user_watches");
    let namespace_limit = read_number("/proc/sys/user/max_inotify_watches")
        .filter(|n| max_user_watches.is_none_or(|g| *n < g));
    let limit = namespace_limit.or(max_user_watches);
    // Other watchers (editors, language servers) share the limit: leave room.
    let ok = !fw.enabled
        || limit.is_none_or(|l| u64::try_from(directories).unwrap_or(u64::MAX) * 2 <= l);
    let advice = (!ok).then(|| {
        let want = (directories * 4).max(524_288);
        format!(
            "the tree has {directories} directories to watch and the limit is {}; raise it with `sudo sysctl fs.inotify.max_user_watches={want}` (and add it to /etc/sysctl.d/ to keep it), or exclude directories with triggers.file_watch.exclude_paths",
            limit.unwrap_or(0)
        )
    });
    WatchReport {
        enabled: fw.enabled,
        directories,
        max_user_watches,
        namespace_limit,
        ok,
        advice,
    }
}

pub fn collect(workspace: &Workspace, config: &Config) -> Background {
    let root = &workspace.root;
    let bin = std::env::current_exe().unwrap_or_default();
    let mut hooks_reports: Vec<HooksReport> = Vec::new();
    if workspace.git {
        for wt in worktrees(root) {
            let Ok(dir) = hooks::install::hooks_dir(&wt) else {
                continue;
            };
            let dir_text = dir.path.display().to_string();
            let wt_text = wt.display().to_string();
            if let Some(r) = hooks_reports.iter_mut().find(|r| r.dir == dir_text) {
                r.worktrees.push(wt_text);
                continue;
            }
            hooks_reports.push(HooksReport {
                hooks: hooks::install::check(&dir.path, config, &bin),
                dir: dir_text,
                worktrees: vec![wt_text],
            });
        }
    }
    let fp = crate::trust::fingerprint(config, root);
    let trust = if crate::trust::skipped_by_env() {
        fp.tasks
            .into_keys()
            .map(|t| (t, TaskTrust::Trusted))
            .collect()
    } else {
        crate::trust::evaluate(&fp, crate::trust::load(root).as_ref())
    };
    let daemon_pid = crate::state::Paths::for_root(root)
        .ok()
        .and_then(|p| crate::daemon::is_running(&p));
    Background {
        hooks: hooks_reports,
        hooks_enabled: config.triggers.git_hooks.enabled,
        watch: watch_report(config, root),
        trust,
        daemon_pid,
        runtime_dir: crate::state::paths::runtime_dir()
            .map(|d| d.display().to_string())
            .ok(),
        runtime_fallback: crate::state::paths::runtime_fallback(),
        process_cleanup: crate::run::cleanup_mechanism(),
        autostart_failure: super::daemon_cmd::autostart_failure(root),
    }
}

pub fn print(bg: &Background) {
    anstream::println!();
    print_daemon(bg);
    print_hooks(bg);
    print_watch(&bg.watch);
    print_trust(bg);
}

/// The daemon's lines: running or not, a failed autostart, where its
/// runtime files live, how analyzer processes are cleaned up.
fn print_daemon(bg: &Background) {
    let bold = Style::new().effects(Effects::BOLD);
    let red = AnsiColor::Red.on_default();
    match bg.daemon_pid {
        Some(pid) => anstream::println!("{bold}daemon{bold:#}   running (pid {pid})"),
        None => anstream::println!("{bold}daemon{bold:#}   not running (`bgtask start`)"),
    }
    if let (None, Some(why)) = (bg.daemon_pid, &bg.autostart_failure) {
        anstream::println!("         {red}!{red:#} a hook could not start it at {why}");
    }
    match (&bg.runtime_dir, &bg.runtime_fallback) {
        (Some(dir), None) => anstream::println!("{bold}runtime{bold:#}  {dir} (socket, lock, pid)"),
        (Some(dir), Some(why)) => anstream::println!(
            "{bold}runtime{bold:#}  {red}!{red:#} {dir} (socket, lock, pid), a private fallback: {why}"
        ),
        (None, _) => anstream::println!(
            "{bold}runtime{bold:#}  {red}!{red:#} no safe directory for the socket (`bgtask start` says why)"
        ),
    }
    anstream::println!(
        "{bold}cleanup{bold:#}  analyzer processes: {}",
        bg.process_cleanup
    );
}

/// The hooks' lines: off, or the state of each hooks directory's hooks.
fn print_hooks(bg: &Background) {
    let bold = Style::new().effects(Effects::BOLD);
    let green = AnsiColor::Green.on_default();
    let red = AnsiColor::Red.on_default();
    if !bg.hooks_enabled {
        anstream::println!("{bold}hooks{bold:#}    off (triggers.git_hooks.enabled is false)");
    }
    for r in bg.hooks.iter().filter(|_| bg.hooks_enabled) {
        let states: Vec<String> = r
            .hooks
            .iter()
            .map(|(h, s)| match s {
                HookState::Current => format!("{green}{h}{green:#}"),
                HookState::Stale => format!("{red}{h} stale{red:#}"),
                HookState::Missing => format!("{red}{h} missing{red:#}"),
                HookState::Foreign => format!("{red}{h} not ours{red:#}"),
            })
            .collect();
        anstream::println!("{bold}hooks{bold:#}    {}: {}", r.dir, states.join(", "));
        if r.worktrees.len() > 1 {
            anstream::println!("         shared by {}", r.worktrees.join(", "));
        }
        if r.hooks.iter().any(|(_, s)| *s != HookState::Current) {
            anstream::println!(
                "         run `bgtask install-hooks` to install or refresh them (hooks that are not ours are chained, not lost)"
            );
        }
    }
}

/// The watcher's line: off, within the inotify limit, or what to do.
fn print_watch(w: &WatchReport) {
    let bold = Style::new().effects(Effects::BOLD);
    let green = AnsiColor::Green.on_default();
    let red = AnsiColor::Red.on_default();
    if !w.enabled {
        anstream::println!("{bold}watch{bold:#}    off (triggers.file_watch.enabled is false)");
    } else if w.ok {
        anstream::println!(
            "{bold}watch{bold:#}    {} directories to watch, within the inotify limit ({}) {green}✓{green:#}",
            w.directories,
            w.namespace_limit
                .or(w.max_user_watches)
                .map_or_else(|| "unknown".to_owned(), |l| l.to_string())
        );
    } else {
        anstream::println!(
            "{bold}watch{bold:#}    {red}!{red:#} {}",
            w.advice.as_deref().unwrap_or("")
        );
    }
}

/// The trust line: trusted, or which tasks do not run by themselves.
fn print_trust(bg: &Background) {
    let bold = Style::new().effects(Effects::BOLD);
    let green = AnsiColor::Green.on_default();
    let red = AnsiColor::Red.on_default();
    let untrusted: Vec<&String> = bg
        .trust
        .iter()
        .filter(|(_, t)| **t != TaskTrust::Trusted)
        .map(|(n, _)| n)
        .collect();
    if untrusted.is_empty() {
        anstream::println!(
            "{bold}trust{bold:#}    trusted: hooks, saves, schedules and idle time run tasks {green}✓{green:#}"
        );
    } else {
        anstream::println!(
            "{bold}trust{bold:#}    {red}!{red:#} {} do not run by themselves here; `bgtask trust --diff` shows why, `bgtask trust` trusts",
            untrusted
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
