//! The daemon: one per worktree, running jobs in the background.
//!
//! Owns the process lifecycle (lock, socket, signals, recovery at start,
//! detaching) and wires the parts: the IPC server (`server.rs`), the
//! config watcher (`config_watch.rs`), the file watcher and the job tasks
//! send `command::Command`s to the core (`core/`), which alone owns the
//! queue, the store and the running jobs, and runs jobs through
//! `execute.rs`. Notifications go out through a fire-and-forget handle
//! (`notifications.rs` starts it; delivery is `crate::notifier`).

mod command;
mod config_watch;
mod core;
mod events;
mod execute;
mod incoming;
mod lock;
#[cfg(test)]
mod loop_tests;
mod memory;
mod notifications;
#[cfg(test)]
mod pause_tests;
mod persistence;
mod resolve;
mod running;
mod selfwrites;
mod server;
pub mod service;
mod trust_gate;
mod unsaved;
mod watching;
mod workers;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::git::pushed_files;
pub use crate::state::Paths;
pub use lock::{LockError, read_pid};
pub use memory::one_arena;

use self::command::Command;
use self::core::{Core, CoreParts};
use crate::clock::now_ms;
use crate::config::Projects;
use crate::engine::Workspace;
use crate::ipc::Request;
use crate::store::Store;

#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Verbose logs and one worker.
    pub dev: bool,
    /// Run analyzers even as root.
    pub allow_root: bool,
    /// Write the default config when the repository has none.
    pub auto_init: bool,
    /// Run triggered work without checking trust (CI).
    pub trust: bool,
}

/// A daemon started as root refuses to run analyzers without `--allow-root`.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to run analyzers as root: they execute repository code; pass --allow-root (or set BGTASK_ALLOW_ROOT=1) if you mean it"
)]
pub struct RootRefused;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The worktree's projects at first start (a bad config is fatal); with
/// `auto_init` and no config anywhere in the worktree, the initial one is
/// written first.
fn load_or_init(workspace: &Workspace, opts: &StartOptions) -> anyhow::Result<Projects> {
    let projects = workspace.projects()?;
    let config_file = workspace.root.join(crate::config::CONFIG_FILE);
    let auto_init = opts.auto_init
        || std::env::var_os("BGTASK_AUTO_INIT").is_some_and(|v| v == "1")
        || projects.worktree().config.daemon.auto_init;
    if !auto_init || config_file.exists() || projects.has_nested() {
        return Ok(projects);
    }
    let initial = crate::engine::initial_config(workspace, false)?;
    std::fs::write(&config_file, &initial.text)
        .with_context(|| format!("write {}", config_file.display()))?;
    tracing::info!(file = %config_file.display(), tasks = %initial.summary.join(", "), "wrote the initial config (auto_init)");
    Ok(workspace.projects()?)
}

/// Says once why `$XDG_RUNTIME_DIR` was passed over, if it was.
fn note_runtime_fallback(store: &Store, paths: &Paths) {
    if let Some(why) = crate::state::paths::runtime_fallback() {
        let msg = format!(
            "{why}; the socket, lock and pid file are in the private {} instead",
            paths.dir.display()
        );
        tracing::warn!("{msg}");
        let _ = store.event("warning", "runtime", &msg);
    }
}

pub fn run_foreground(workspace: &Workspace, opts: &StartOptions) -> anyhow::Result<()> {
    let allowed =
        opts.allow_root || std::env::var_os("BGTASK_ALLOW_ROOT").is_some_and(|v| v == "1");
    if is_root() && !allowed {
        return Err(RootRefused.into());
    }
    // Started from a hook, the daemon inherits git's per-repository
    // variables; its own git calls must not follow them.
    crate::run::scrub_own_env();
    memory::one_arena();
    let paths = Paths::for_root(&workspace.root)?;
    let _lock = lock::Lock::acquire(&paths.lock, &paths.pid)?;
    make_state_dirs(workspace, &paths)?;
    // A bad config at first start is fatal; later it only goes stale.
    let projects = load_or_init(workspace, opts)?;
    let config = projects.combined();
    let opened = Store::open(&paths.state)?;
    let mut store = opened.store;
    note_runtime_fallback(&store, &paths);
    let events = events::Events::new(now_ms());
    let (notifications, notifier) =
        notifications::start(workspace, &config, store.path(), opts.dev, &events);
    if let Some(aside) = &opened.moved_aside {
        let msg = format!(
            "the state database was corrupt and was moved to {}; starting with an empty one",
            aside.display()
        );
        tracing::error!("{msg}");
        let _ = store.event("error", "store", &msg);
        notifier.send(crate::notifier::NotificationEvent::health_alert(true, &msg));
    }
    recover(&mut store)?;
    crate::run::become_subreaper();
    // Blocking-pool threads (walks, git) go soon after their work: their
    // stacks are memory an idle daemon need not keep.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_secs(2))
        .build()?;
    // Known to the dashboard from now on.
    if let Err(e) = crate::state::registry::register(&workspace.root, now_ms()) {
        tracing::warn!(error = %e, "the dashboard will not list this worktree: its registry could not be written");
    }
    let bus = events.clone();
    let parts = |tx, stopping| CoreParts {
        store,
        projects,
        workspace: workspace.clone(),
        paths: paths.clone(),
        workers_override: opts.dev.then_some(1),
        tx,
        stopping,
        execute: execute::engine(),
        rng: fastrand::Rng::new(),
        trust_bypass: opts.trust || crate::trust::skipped_by_env(),
        notifier,
        events: bus,
    };
    let result = rt.block_on(serve(workspace, &paths, events, parts));
    if let Some(n) = notifications {
        n.stop(Duration::from_secs(5));
    }
    tracing::info!("daemon stopped");
    result
}

/// `.bgtask/` and its log directories, level by level: never the
/// worktree's path again.
fn make_state_dirs(workspace: &Workspace, paths: &Paths) -> anyhow::Result<()> {
    crate::state::state_dir(&workspace.root).context("create .bgtask")?;
    for dir in [paths.run_logs.parent(), Some(paths.run_logs.as_path())]
        .into_iter()
        .flatten()
    {
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).context("create the log directory");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Binds the socket, starts the core, the server, the config watcher and
/// the signal handlers, runs until stopped, and joins the server.
async fn serve(
    workspace: &Workspace,
    paths: &Paths,
    events: events::Events,
    parts: impl FnOnce(mpsc::UnboundedSender<Command>, CancellationToken) -> CoreParts,
) -> anyhow::Result<()> {
    let listener = bind(&paths.socket)?;
    let _bound = RemoveOnDrop(paths.socket.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let mut core = Core::new(parts(tx.clone(), stop.clone()))?;
    core.drain_spool();
    let _watcher = config_watch::watch(&workspace.root, tx.clone())
        .map_err(|e| tracing::warn!(error = %e, "config changes will not be noticed until SIGHUP or `bgtask reload`"))
        .ok();
    signals(tx.clone(), stop.clone());
    let server = tokio::spawn(server::serve(
        listener,
        tx.clone(),
        paths.run_logs.clone(),
        events,
        stop.clone(),
    ));
    tracing::info!(pid = std::process::id(), root = %workspace.root.display(), "daemon ready");
    service::notify("READY=1");
    core.run(rx, stop.clone()).await;
    service::notify("STOPPING=1");
    stop.cancel();
    // Every connection sees the stop and ends; a client that stopped
    // reading cannot hold the daemon up for long.
    if tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .is_err()
    {
        tracing::warn!("a client connection did not end within 5 s of the stop");
    }
    Ok(())
}

/// Jobs an earlier daemon left running: what is left of their processes
/// is killed (only processes whose start times match, and only in the same
/// boot of the machine), and each runs once more (store `recover`).
fn recover(store: &mut Store) -> anyhow::Result<()> {
    let boot = crate::run::boot_id();
    for r in store.recover(now_ms())? {
        // Process ids from another boot of the machine are someone else's.
        let same_boot = boot.is_some() && r.boot_id == boot;
        let of_kind = |kind| -> Vec<crate::run::Proc> {
            r.processes
                .iter()
                .filter(|p| same_boot && p.kind == kind)
                .map(|p| crate::run::Proc {
                    pid: p.pid,
                    start_ticks: p.start_ticks,
                })
                .collect()
        };
        let tokens: Vec<String> = r
            .processes
            .iter()
            .filter(|_| same_boot)
            .filter_map(|p| p.token.clone())
            .collect();
        let killed = crate::run::kill_recorded(
            &of_kind(crate::run::ProcessKind::Group),
            &of_kind(crate::run::ProcessKind::Process),
            &tokens,
        );
        let msg = format!(
            "job {} ({}) was left running by an earlier daemon; {} leftover process(es) killed; {}",
            r.job_id,
            r.task,
            killed,
            if r.requeued {
                "it runs again"
            } else {
                "it was already a re-run, so it is not retried"
            }
        );
        tracing::warn!("{msg}");
        let _ = store.event("warning", "recovery", &msg);
    }
    Ok(())
}

/// Removes the socket we bound (and only that) when the daemon ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds the socket: a leftover from a killed daemon is removed after a
/// connect probe is refused; a live peer is never touched (RELIABILITY 16).
fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        if meta.file_type().is_symlink() {
            bail!(
                "{} is a symlink; refusing to use it as the daemon's socket",
                socket.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            bail!(
                "another process answers on {}; not touching it",
                socket.display()
            );
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("remove the stale socket {}", socket.display()))?;
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// SIGTERM/SIGINT: first stops intake and winds down, second kills every
/// analyzer group, third exits at once (STYLE 14). SIGHUP reloads the config.
fn signals(tx: mpsc::UnboundedSender<Command>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("could not install signal handlers");
        return;
    };
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {
                    let _ = tx.send(Command::Reload);
                    continue;
                }
            }
            count += 1;
            match count {
                1 => {
                    tracing::info!(
                        "stopping: no new work, running jobs are being stopped (signal again to kill them now)"
                    );
                    stop.cancel();
                }
                2 => {
                    tracing::warn!("second signal: killing every analyzer now");
                    crate::run::kill_all_spawned();
                }
                _ => std::process::exit(1),
            }
        }
    });
}

/// True when the daemon of `paths` answers a ping.
pub fn is_running(paths: &Paths) -> Option<u32> {
    let mut client = crate::ipc::Client::connect(&paths.socket, Duration::from_secs(2)).ok()?;
    match client.call(Request::Ping) {
        Ok(crate::ipc::Response::Pong { pid, .. }) => Some(pid),
        _ => None,
    }
}
