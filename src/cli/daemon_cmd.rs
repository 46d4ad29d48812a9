//! `bgtask start|stop|restart|status|service`: the daemon's lifecycle.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::Ctx;
use crate::config::TriggerKind;
use crate::daemon::{self, LockError, Paths, StartOptions, service};
use crate::engine::Workspace;
use crate::exit;
use crate::ipc::{Client, Level, Request, Response};

pub const START_EXAMPLES: &str = "Examples:
  bgtask start                 start the daemon for this worktree (returns once it answers)
  bgtask start --foreground    run it in this terminal (systemd, CI, debugging)
  bgtask start --dev           in this terminal, verbose, one worker";

#[derive(Debug, Default, Args, Clone)]
pub struct StartArgs {
    /// Stay in the foreground (logs to stderr) instead of detaching.
    #[arg(long)]
    pub foreground: bool,
    /// Foreground, debug logs, one worker.
    #[arg(long)]
    pub dev: bool,
    /// Run analyzers even as root.
    #[arg(long)]
    pub allow_root: bool,
    /// Write the default .background-tasks.json if the repository has none.
    #[arg(long)]
    pub auto_init: bool,
    /// Run hook-, watch-, cron- and idle-triggered work without checking trust (CI; also `CI=true`).
    #[arg(long)]
    pub trust: bool,
    /// Started by a git hook: start only if `triggers.git_hooks.autostart` is on.
    #[arg(long, hide = true)]
    pub if_autostart: bool,
}

pub const WATCH_EXAMPLES: &str = "Examples:
  bgtask watch            watch this worktree in this terminal: saves, commits, schedules run their tasks,
                          and each result is one line here (Ctrl-C stops, like watchexec)
  bgtask watch --dev      the same with the daemon's debug log on stderr and one worker
When the worktree's daemon already runs (`bgtask start`), watch follows it: each result is one line.
Only tasks with triggers run (\"save\", \"commit\", …); the worktree must be trusted (`bgtask trust`).";

#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// Debug logs on stderr, one worker.
    #[arg(long)]
    pub dev: bool,
    /// Run analyzers even as root.
    #[arg(long)]
    pub allow_root: bool,
    /// Run triggered work without checking trust.
    #[arg(long)]
    pub trust: bool,
}

/// `bgtask watch`: the daemon in this terminal, its notifications on
/// stdout, one line per result.
pub fn watch(ctx: &Ctx, args: &WatchArgs) -> anyhow::Result<u8> {
    let (workspace, paths) = paths(ctx)?;
    if daemon::is_running(&paths).is_some() {
        // One daemon per worktree: follow the one that runs.
        return super::events_cmd::follow_results(ctx);
    }
    let projects = workspace.projects()?;
    let config = projects.combined();
    let by_kind = |kind: TriggerKind| -> Vec<&str> {
        config
            .tasks
            .values()
            .filter(|t| t.enabled && t.triggers.contains(&kind))
            .map(|t| t.name.as_str())
            .collect()
    };
    let mut parts = Vec::new();
    for (label, kind) in [
        ("save", TriggerKind::Save),
        ("commit", TriggerKind::Commit),
        ("schedule", TriggerKind::Schedule),
        ("idle", TriggerKind::Idle),
    ] {
        let tasks = by_kind(kind);
        if !tasks.is_empty() {
            parts.push(format!("{label}: {}", tasks.join(", ")));
        }
    }
    anstream::println!(
        "watching {} ({}); Ctrl-C stops",
        workspace.root.display(),
        if parts.is_empty() {
            "no task has triggers: add \"triggers\": [\"save\"] to one".to_owned()
        } else {
            parts.join("; ")
        }
    );
    if !args.trust && !crate::trust::skipped_by_env() {
        let fp = crate::trust::fingerprint_worktree(&projects, &workspace.root);
        let states = crate::trust::evaluate(&fp, crate::trust::load(&workspace.root).as_ref());
        let blocked: Vec<&String> = states
            .iter()
            .filter(|(_, s)| **s != crate::trust::TaskTrust::Trusted)
            .map(|(t, _)| t)
            .collect();
        if !blocked.is_empty() {
            ctx.note(&format!(
                "note: {} will not run by themselves until you trust this worktree: `bgtask trust` (or `bgtask watch --trust`)",
                blocked.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let opts = StartOptions {
        dev: args.dev,
        allow_root: args.allow_root,
        auto_init: false,
        trust: args.trust,
    };
    daemon::run_foreground(&workspace, &opts)?;
    Ok(exit::OK)
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write a systemd user unit that runs this worktree's daemon at login.
    Install {
        /// Print the unit instead of writing it.
        #[arg(long)]
        print: bool,
    },
    /// Remove the unit.
    Uninstall,
}

fn paths(ctx: &Ctx) -> anyhow::Result<(Workspace, Paths)> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let paths = Paths::for_root(&workspace.root)?;
    Ok((workspace, paths))
}

/// Where a hook's failed attempt to start the daemon is kept, for
/// `status` and `doctor` (the daemon's log is not where people look).
pub fn autostart_failure_file(root: &std::path::Path) -> std::path::PathBuf {
    root.join(".bgtask").join("autostart-failure.txt")
}

/// Remembers why a hook's daemon did not start (or forgets it once one
/// ran). Another daemon already running is not a failure.
fn record_autostart(root: &std::path::Path, error: Option<&anyhow::Error>) {
    let file = autostart_failure_file(root);
    match error {
        Some(e) if e.downcast_ref::<LockError>().is_none() => {
            let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            let _ = std::fs::write(&file, format!("{when}: {e:#}\n"));
        }
        Some(_) => {}
        None => {
            let _ = std::fs::remove_file(&file);
        }
    }
}

/// The last failed autostart, if one is on record.
pub fn autostart_failure(root: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(autostart_failure_file(root))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The daemon in this process (`--foreground`, `--dev`, and what a hook's
/// autostart runs).
fn start_foreground(
    workspace: &Workspace,
    args: &StartArgs,
    opts: &StartOptions,
) -> anyhow::Result<u8> {
    let result = daemon::run_foreground(workspace, opts);
    if args.if_autostart {
        record_autostart(&workspace.root, result.as_ref().err());
    }
    match result {
        Ok(()) => Ok(exit::OK),
        Err(e) => match e.downcast_ref::<LockError>() {
            Some(LockError::Held { .. }) => {
                anstream::println!("{e}");
                Ok(exit::OK)
            }
            _ => Err(e),
        },
    }
}

pub fn start(ctx: &Ctx, args: &StartArgs) -> anyhow::Result<u8> {
    let (workspace, paths) = paths(ctx)?;
    if !args.if_autostart {
        // Someone starts it by hand: an old autostart failure is history.
        let _ = std::fs::remove_file(autostart_failure_file(&workspace.root));
    }
    if args.if_autostart {
        // A bad config is the daemon's to report (in its log), so only a
        // good one that says no stops it here.
        if let Ok(c) = crate::config::load(&workspace.root)
            && !(c.triggers.git_hooks.enabled && c.triggers.git_hooks.autostart)
        {
            tracing::info!("not starting: triggers.git_hooks.autostart is off");
            return Ok(exit::OK);
        }
    }
    if let Some(pid) = daemon::is_running(&paths) {
        anstream::println!("already running (pid {pid})");
        return Ok(exit::OK);
    }
    let opts = StartOptions {
        dev: args.dev,
        allow_root: args.allow_root,
        auto_init: args.auto_init,
        trust: args.trust,
    };
    if args.foreground || args.dev {
        return start_foreground(&workspace, args, &opts);
    }
    crate::state::state_dir(&workspace.root).context("create .bgtask")?;
    std::fs::create_dir_all(paths.log.parent().expect("log has a parent"))
        .context("create the log directory")?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&paths.log)
        .with_context(|| format!("open {}", paths.log.display()))?;
    let offset = log.seek(SeekFrom::End(0))?;
    let child = spawn_detached(&workspace, args, &log)?;
    wait_until_answering(&paths, child, &mut log, offset)
}

/// Starts `bgtask start --foreground` for this worktree in a session of its
/// own, with its output going to the daemon's log.
fn spawn_detached(
    workspace: &Workspace,
    args: &StartArgs,
    log: &std::fs::File,
) -> anyhow::Result<std::process::Child> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("-C")
        .arg(&workspace.root)
        .arg("start")
        .arg("--foreground");
    if args.allow_root {
        cmd.arg("--allow-root");
    }
    if args.auto_init {
        cmd.arg("--auto-init");
    }
    if args.trust {
        cmd.arg("--trust");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    // SAFETY: setsid is async-signal-safe; the child gets its own session,
    // so the terminal's signals and hangup do not reach it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().context("start the daemon")
}

/// Waits (up to 15 s) until a daemon answers for this worktree, reporting
/// the log written since `offset` if the started one exits first.
fn wait_until_answering(
    paths: &Paths,
    mut child: std::process::Child,
    log: &mut std::fs::File,
    offset: u64,
) -> anyhow::Result<u8> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(pid) = daemon::is_running(paths) {
            if pid == child.id() {
                anstream::println!("started (pid {pid}); log: {}", paths.log.display());
            } else {
                anstream::println!("already running (pid {pid})");
            }
            return Ok(exit::OK);
        }
        if let Some(status) = child.try_wait()? {
            let mut tail = String::new();
            log.seek(SeekFrom::Start(offset))?;
            log.read_to_string(&mut tail)?;
            if tail.contains("already running") {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            bail!(
                "the daemon exited ({status}) before answering:\n{}",
                tail.trim_end()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon did not answer within 15 s; see {}",
                paths.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

pub fn stop(ctx: &Ctx) -> anyhow::Result<u8> {
    let (_, paths) = paths(ctx)?;
    let Ok(mut client) = Client::connect(&paths.socket, Duration::from_secs(5)) else {
        anstream::println!("not running");
        return Ok(exit::OK);
    };
    let pid = match client.call(Request::Stop)? {
        Response::Stopping { pid } => pid,
        other => bail!("unexpected answer to stop: {other:?}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while process_alive(pid) {
        if Instant::now() > deadline {
            bail!("the daemon (pid {pid}) is still stopping after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anstream::println!("stopped (pid {pid})");
    Ok(exit::OK)
}

/// The run side of `status`: paused and given-up tasks, recent runs.
fn print_runs(s: &crate::ipc::Status) {
    for task in &s.paused {
        anstream::println!(
            "paused   {task}: its runs keep writing the files that start it; a save of yours or `bgtask submit {task}` starts it again"
        );
    }
    for r in &s.given_up {
        anstream::println!("given up run {} {}: {}", r.run_id, r.task, r.verdict);
    }
    if !s.last_runs.is_empty() {
        anstream::println!("recent runs");
        for r in &s.last_runs {
            // A run still going has no duration or exit code yet.
            if let Some(job) = s.running_jobs.iter().find(|j| j.run_id == r.run_id) {
                anstream::println!(
                    "  run {:<5} {:<12} {:>7.1}s  running",
                    r.run_id,
                    r.task,
                    job.running_s
                );
                continue;
            }
            anstream::println!(
                "  run {:<5} {:<12} {:>7}ms  exit {}  {}",
                r.run_id,
                r.task,
                r.duration_ms,
                r.exit_code,
                r.verdict
            );
        }
    }
}

/// The trigger side of `status`: the intake, the watcher, trust.
fn print_triggers(s: &crate::ipc::Status) {
    if s.intake > 0 {
        anstream::println!(
            "intake   {} trigger(s) waiting for the worktree to be quiet",
            s.intake
        );
    }
    match &s.watcher {
        Some(w) if w.state == "watching" => anstream::println!(
            "watcher  watching {} directories (ready in {} ms)",
            w.watched,
            w.ready_ms.unwrap_or(0)
        ),
        Some(w) => anstream::println!(
            "watcher  {}: {} watched, {} polled{}",
            w.state,
            w.watched,
            w.polled,
            w.message
                .as_deref()
                .map(|m| format!("\n           {m}"))
                .unwrap_or_default()
        ),
        None => anstream::println!("watcher  off"),
    }
    for u in &s.untrusted {
        let why = if u.state == "changed" {
            "what it runs changed since it was trusted (`bgtask trust --diff`)"
        } else {
            "this worktree is not trusted (`bgtask trust`)"
        };
        anstream::println!("trust    {} does not run by itself: {why}", u.task);
    }
}

pub fn status(ctx: &Ctx, json: bool) -> anyhow::Result<u8> {
    let (workspace, paths) = paths(ctx)?;
    let status = Client::connect(&paths.socket, Duration::from_secs(5))
        .and_then(|mut c| c.call(Request::Status));
    let Ok(Response::Status(s)) = status else {
        print_not_running(&workspace.root, json);
        return Ok(exit::DAEMON_DOWN);
    };
    if json {
        let mut v = serde_json::to_value(&*s)?;
        v["running"] = serde_json::Value::Bool(true);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    anstream::println!("running (pid {}, up {}s) for {}", s.pid, s.uptime_s, s.root);
    if let Some(a) = &s.automation {
        anstream::println!("{}", super::pause_cmd::status_line(a));
    }
    print_config_and_queue(&s);
    print_triggers(&s);
    print_health(&s);
    print_runs(&s);
    Ok(exit::OK)
}

/// `status` when no daemon answers: that, and a failed autostart if one is
/// on record.
fn print_not_running(root: &std::path::Path, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "running": false,
                "root": root,
                "autostart_failure": autostart_failure(root),
            })
        );
    } else {
        anstream::println!("not running ({}); `bgtask start` starts it", root.display());
        if let Some(why) = autostart_failure(root) {
            anstream::println!("a hook could not start it at {why}");
        }
    }
}

/// The config and queue side of `status`: the config in use, the queue,
/// the jobs running.
fn print_config_and_queue(s: &crate::ipc::Status) {
    let config = if s.config.files.is_empty() {
        "built-in tasks".to_owned()
    } else {
        s.config.files.join(" + ")
    };
    if s.config.stale {
        anstream::println!(
            "config   {config}: STALE, the file on disk is invalid, the last good one is in use"
        );
        for p in &s.config.problems {
            anstream::println!("           {p}");
        }
    } else {
        anstream::println!("config   {config}");
    }
    anstream::println!(
        "queue    {} waiting, {} of {} workers busy",
        s.queue_depth,
        s.running_jobs.len(),
        s.workers
    );
    for r in &s.running_jobs {
        anstream::println!(
            "  running job {} ({}, run {}, attempt {}) for {:.1}s",
            r.job_id,
            r.task,
            r.run_id,
            r.attempt + 1,
            r.running_s
        );
    }
}

/// The health side of `status`: a degraded store, held jobs, quarantined
/// tasks, the health checks that are not ok.
fn print_health(s: &crate::ipc::Status) {
    if let Some(why) = &s.degraded {
        anstream::println!("DEGRADED {why}; work goes on in memory until writes succeed");
    }
    if let Some(why) = &s.holding {
        anstream::println!("holding  new jobs wait: {why}");
    }
    if !s.quarantined.is_empty() {
        anstream::println!("quarantined  {}", s.quarantined.join(", "));
    }
    let level = match s.health.level {
        Level::Ok => "ok",
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    };
    anstream::println!("health   {level}");
    for c in s.health.checks.iter().filter(|c| c.level != Level::Ok) {
        anstream::println!("  {}: {}", c.name, c.message);
    }
}

pub fn service(ctx: &Ctx, cmd: &ServiceCommand) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let name = service::unit_name(&workspace.root);
    let path = service::unit_dir().join(&name);
    match cmd {
        ServiceCommand::Install { print } => {
            let text = service::unit(&workspace.root, &std::env::current_exe()?);
            if *print {
                print!("{text}");
                return Ok(exit::OK);
            }
            std::fs::create_dir_all(service::unit_dir())?;
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            anstream::println!("wrote {}", path.display());
            anstream::println!(
                "enable it with: systemctl --user daemon-reload && systemctl --user enable --now {name}"
            );
        }
        ServiceCommand::Uninstall => {
            match std::fs::remove_file(&path) {
                Ok(()) => anstream::println!("removed {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    anstream::println!("no unit at {}", path.display());
                }
                Err(e) => return Err(e).with_context(|| format!("remove {}", path.display())),
            }
            anstream::println!("if it was enabled: systemctl --user disable --now {name}");
        }
    }
    Ok(exit::OK)
}
