//! The daemon's core: the single owner of the queue, the store, the config
//! and the running jobs. Everything else talks to it with [`Command`]s.
//!
//! The loop is a thin `select!` around the pure queue: it starts ready jobs
//! while workers and resources allow, and otherwise waits for a command, the
//! next debounce/backoff deadline, or a maintenance tick. Commands arriving
//! together are handled as one batch and their queue changes committed in
//! one transaction before any reply is sent, so an accepted job is on disk
//! (it survives `kill -9`) and a burst of triggers costs one commit.
//!
//! Layout: this directory is the core and its verbs, and only its files
//! extend [`Core`] (its fields are private to it): `triggers.rs` (intake,
//! routing, timers), `jobs.rs` (admitting, starting, cancelling, winding
//! down), `finish.rs` (recording a run, retries, quarantine, notifying),
//! `answers.rs` (requests), `automation.rs` (automation paused by hand),
//! `health.rs` (checks, retention), `healing.rs`
//! (a failing or deleted store), `reload.rs` (config), `watcher.rs`,
//! `drain.rs` (the spool). The parts it owns live beside it in `daemon/`,
//! each with private state and none of them seeing the core:
//! `persistence.rs`, `incoming.rs`, `running.rs`, `workers.rs`,
//! `trust_gate.rs`, `watching.rs`, `memory.rs`, `selfwrites.rs`. What the
//! rest of the daemon tells the core is `command.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::Workspace;
use crate::ipc::{ConfigState, ErrorKind, Health, IpcError, Level, Request, Response};
use crate::notifier::Notifier;
use crate::schedule::intake::Intake;
use crate::schedule::timers::Timers;
use crate::schedule::wake::{Waits, next_wake};
use crate::schedule::{Backoff, Effect, Millis, Queue};
use crate::state::Paths;
use crate::store::Store;

use super::command::Command;
use super::events::Events;
use super::execute::Execute;
use super::persistence::Saved;
use crate::clock::Clock;

mod answers;
mod automation;
mod drain;
mod finish;
mod healing;
mod health;
mod jobs;
mod publish;
mod reload;
mod triggers;
mod watcher;

pub struct Core {
    persistence: super::persistence::Persistence,
    queue: Queue,
    /// The worktree's config with every project's tasks, by key
    /// (`Projects::combined`).
    config: Arc<Config>,
    /// The worktree's projects, each with its own config.
    projects: Arc<crate::config::Projects>,
    config_state: ConfigState,
    workspace: Workspace,
    paths: Paths,
    running: super::running::Running,
    /// Jobs and analyzer processes at once (`workers.rs`).
    workers: super::workers::Workers,
    /// The machine's boot, recorded with running jobs for recovery.
    boot_id: String,
    started: SystemTime,
    started_at: Instant,
    rng: fastrand::Rng,
    tx: mpsc::UnboundedSender<Command>,
    /// Set when the daemon is stopping: no new work is taken.
    stopping: CancellationToken,
    health: Health,
    holding: Option<String>,
    /// Quarantined analyzers and why (skipped by jobs).
    quarantine: super::running::Quarantine,
    /// Runs that write the files that start them (`selfwrites.rs`).
    self_writes: super::selfwrites::SelfWrites,
    /// When a config that read as invalid is read again (`reload.rs`).
    config_settle: Option<Millis>,
    clock: Clock,
    execute: Execute,
    /// Adaptive priority per task, until its next run finishes.
    adaptive: HashMap<String, (i32, Option<String>)>,
    /// Each task's trust, and what was said about it (`trust_gate.rs`).
    trust: super::trust_gate::TrustGate,
    /// Triggers on their way in: intake, timers, git dirs, the kept file
    /// list (`incoming.rs`).
    incoming: super::incoming::Incoming,
    /// Which directory the worktree is (a path made again is not it).
    root_id: Option<(u64, u64)>,
    /// Turns of the loop since start (`status --json`): each looks again
    /// at what is due, what holds jobs back and what can start.
    loop_turns: u64,
    /// When memory is given back after the last job (`memory.rs`).
    releases: super::memory::Releases,
    /// The file watcher and what it says about itself (`watching.rs`).
    watching: super::watching::Watching,
    /// Where notifications go (fire-and-forget).
    notifier: Notifier,
    /// What happens, for subscribers (`events.rs`).
    events: Events,
}

pub struct CoreParts {
    pub store: Store,
    pub projects: crate::config::Projects,
    pub workspace: Workspace,
    pub paths: Paths,
    /// Jobs (and analyzer processes) at once, whatever the config says
    /// (`--dev`: 1).
    pub workers_override: Option<usize>,
    pub tx: mpsc::UnboundedSender<Command>,
    pub stopping: CancellationToken,
    /// How jobs run: [`super::execute::engine`] but in tests.
    pub execute: Execute,
    /// Backoff jitter.
    pub rng: fastrand::Rng,
    /// Skip the trust check (`--trust`, `CI=true`).
    pub trust_bypass: bool,
    pub notifier: Notifier,
    pub events: Events,
}

impl Core {
    pub fn new(parts: CoreParts) -> Result<Core, crate::store::StoreError> {
        let mut config = parts.projects.combined();
        let max_queue = config.execution.max_queue_size;
        let workers =
            super::workers::Workers::new(parts.workers_override, config.execution.max_concurrent);
        config.execution.max_concurrent = workers.count();
        let (arrivals, next_intake) = parts.store.intake()?;
        let clock = Clock::start();
        let git_dirs = crate::git::GitDirs::find(&parts.workspace.root);
        let mut core = Core {
            incoming: super::incoming::Incoming::new(
                Intake::new(
                    next_intake,
                    super::incoming::window(&config, &parts.workspace.root),
                ),
                git_dirs,
                Timers::new(&config, clock.wall(), clock.now()),
            ),
            trust: super::trust_gate::TrustGate::new(parts.trust_bypass),
            root_id: healing::root_id(&parts.workspace.root),
            loop_turns: 0,
            releases: super::memory::Releases::default(),
            watching: super::watching::Watching::default(),
            queue: Queue::new(parts.store.next_job_id()?, max_queue),
            config_state: ConfigState {
                files: config
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect(),
                stale: false,
                problems: Vec::new(),
            },
            config: Arc::new(config),
            projects: Arc::new(parts.projects),
            persistence: super::persistence::Persistence::new(parts.store),
            workspace: parts.workspace,
            paths: parts.paths,
            running: super::running::Running::default(),
            workers,
            boot_id: crate::run::boot_id().unwrap_or_default(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            rng: parts.rng,
            tx: parts.tx,
            stopping: parts.stopping,
            health: Health {
                level: Level::Ok,
                checks: Vec::new(),
            },
            holding: None,
            quarantine: super::running::Quarantine::default(),
            config_settle: None,
            self_writes: super::selfwrites::SelfWrites::default(),
            clock,
            execute: parts.execute,
            adaptive: HashMap::new(),
            notifier: parts.notifier,
            events: parts.events,
        };
        let mut effects = Vec::new();
        for w in core.persistence.store().waiting_jobs()? {
            effects.extend(core.queue.restore(w));
        }
        if let Some(pause) = core.persistence.store().automation_pause()? {
            core.queue.restore_pause(pause);
        }
        core.persistence.store().apply(&effects, core.clock.now())?;
        let now = core.clock.now();
        for (id, arrival) in arrivals {
            core.incoming.restore(id, arrival, now);
        }
        core.refresh_quarantine();
        Ok(core)
    }

    /// Runs the core on a simulated wall clock that follows tokio's
    /// (paused) one, from `wall_ms`.
    #[cfg(test)]
    pub(in crate::daemon) fn simulate_clock(&mut self, wall_ms: i64) {
        self.clock = Clock::simulated(wall_ms);
        self.reset_timers();
    }

    pub(super) fn backoff(&self) -> Backoff {
        Backoff {
            base: self.config.execution.retry_delay,
            cap: Duration::from_secs(600),
        }
    }

    /// Commits queue effects (after any left unsaved by an earlier failure).
    /// On failure the daemon goes on in memory, reports itself degraded, and
    /// writes them with the next change.
    pub(super) fn persist(&mut self, effects: &[Effect]) -> Saved {
        let now = self.clock.now();
        self.persistence.persist(effects, now)
    }

    /// Notes a failed store write: the daemon is degraded until one succeeds.
    pub(super) fn store_failed(&mut self, what: &str, e: &crate::store::StoreError) {
        self.persistence.failed(what, e);
    }

    pub(super) fn refresh_quarantine(&mut self) {
        match self.persistence.store().quarantined() {
            Ok(rows) => self.quarantine.refresh(rows, &self.config),
            Err(e) => tracing::error!(error = %e, "could not read quarantined analyzers"),
        }
    }

    /// The daemon's loop; returns when `stop` is cancelled and running jobs
    /// have wound down.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, stop: CancellationToken) {
        // An interval's first tick is immediate: both run once at start.
        let mut health_tick = self
            .config
            .daemon
            .health_interval
            .map(tokio::time::interval);
        let mut cleanup_tick = self
            .config
            .daemon
            .cleanup_interval
            .map(tokio::time::interval);
        let watchdog = super::service::watchdog_interval();
        let mut watchdog_tick = watchdog.map(tokio::time::interval);
        // A hook that found no socket just before the daemon bound it
        // spools its event after the first drain: look once more.
        let spool_again = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(spool_again);
        let mut spool_checked = false;
        self.sync_watcher();
        self.run_start_tasks();
        loop {
            self.loop_turns += 1;
            self.retry_store();
            self.settle_config();
            self.release_intake();
            self.run_timers();
            self.dispatch();
            self.release_when_idle();
            let wake = self.next_wake();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        self.handle_batch(cmd, &mut rx);
                        // A hook that gave up waiting spooled its event:
                        // take it now, not at the next health check.
                        if self.persistence.degraded().is_none()
                            && std::fs::metadata(&self.paths.spool).is_ok_and(|m| m.len() > 0)
                        {
                            self.drain_spool();
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep(wake) => {}
                () = tick(&mut health_tick) => {
                    self.run_health(true);
                    self.drain_spool();
                }
                () = &mut spool_again, if !spool_checked => {
                    spool_checked = true;
                    self.drain_spool();
                }
                () = tick(&mut cleanup_tick) => {
                    self.cleanup();
                }
                () = tick(&mut watchdog_tick) => super::service::notify("WATCHDOG=1"),
                () = stop.cancelled() => break,
            }
        }
        self.wind_down(&mut rx).await;
    }

    /// How long the loop may sleep when no command arrives: until the next
    /// debounce/backoff deadline, but only if a worker is free to act on it
    /// (otherwise a `Finished` wakes the loop), and every 2 s while jobs are
    /// held back or writes are pending.
    pub(super) fn next_wake(&self) -> Duration {
        let now = self.clock.now();
        let waits = Waits {
            holding: self.holding.is_some(),
            store_retry: self.persistence.retry_due(),
            config_settle: self.config_settle,
            intake: self.incoming.next_wake(),
            resolving: self.incoming.resolving(),
            timers: self.timers_wake(),
            memory: self.releases.deadlines(),
            queue: self.queue.next_wakeup(),
            idle: self.running.is_empty(),
            free: self.running.len() < self.workers.count() && !self.stopping.is_cancelled(),
        };
        self.clock.until(next_wake(&waits, now))
    }

    /// Handles `first` and whatever else is already waiting, committing the
    /// queue changes of all of them before replying.
    fn handle_batch(&mut self, first: Command, rx: &mut mpsc::UnboundedReceiver<Command>) {
        let mut effects = Vec::new();
        let mut replies = Vec::new();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Request {
                    request: Request::Submit(submit),
                    reply,
                } => {
                    let response = self.submit(&submit, &mut effects);
                    replies.push((reply, response));
                }
                Command::Request {
                    request: Request::Hook(event),
                    reply,
                } => {
                    let response = self.arrive(crate::event::Arrival::Hook(event), &mut effects);
                    replies.push((reply, response));
                }
                Command::Arrived(arrival, at) => self.watched(arrival, at, &mut effects),
                Command::Resolved(batch) => {
                    self.persist(&std::mem::take(&mut effects))
                        .or_later("the triggers before a batch");
                    if !batch.partial {
                        self.incoming.resolved();
                    }
                    self.route(*batch);
                }
                Command::Watcher(state) => self.watcher_changed(state),
                Command::Request { request, reply } => {
                    // Answers must see the submits before them.
                    self.persist(&std::mem::take(&mut effects))
                        .or_later("the triggers before a request");
                    let response = self.answer(request);
                    let _ = reply.send(response);
                }
                Command::Finished(f) => {
                    self.persist(&std::mem::take(&mut effects))
                        .or_later("the triggers before a job's end");
                    self.finish(&f);
                    drop(f);
                    // Given back once no job ran for a moment: a save
                    // right after a job would fault the heap back in.
                    self.releases.job_ended(self.clock.now());
                }
                // A process found after its job finished needs no record
                // (its job's records are already cleared).
                Command::Spawned { job_id, spawned } if self.running.contains(job_id) => {
                    if let Err(e) = self.persistence.store().add_process(job_id, &spawned) {
                        tracing::error!(error = %e, "could not record an analyzer process");
                    }
                }
                Command::Spawned { .. } => {}
                Command::Reload => self.reload(),
            }
            handled += 1;
            if handled < 1024 {
                next = rx.try_recv().ok();
            }
        }
        let saved = self.persist(&effects).on_disk();
        for (reply, response) in replies {
            let response = match response {
                Response::Submitted { .. } | Response::Accepted if !saved => {
                    Response::Error(IpcError::new(
                        ErrorKind::Degraded,
                        format!(
                            "the daemon took the work but could not save it ({}); it runs, but would be lost if the daemon stopped now",
                            self.persistence.degraded().unwrap_or("the store failed")
                        ),
                    ))
                }
                other => other,
            };
            let _ = reply.send(response);
        }
    }

    pub(super) fn shutting_down() -> Response {
        Response::Error(IpcError::new(
            ErrorKind::ShuttingDown,
            "the daemon is stopping and takes no new work",
        ))
    }
}

async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
