//! Jobs in the core: admitting submits, starting ready jobs within the
//! worker and resource limits, recording what they did, retries and
//! quarantine, cancel and retry requests, and winding down at shutdown.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Core;
use crate::daemon::command::{Command, Finished};
use crate::daemon::execute::JobRun;
use crate::daemon::running::Active;
use crate::engine::{Options, RunOptions};
use crate::event::{Job, Targets, Trigger, TriggerSource};
use crate::ipc::events::What;
use crate::ipc::{Admitted, ErrorKind, IpcError, Response, Submit};
use crate::schedule::{Effect, FinalState, JobId, Millis, Offer, Waiting, adaptive};
use crate::store::RunStart;

/// Most task names one submit may carry (`all` counts as one).
const MAX_SUBMIT_TASKS: usize = 256;

pub(super) const CANCELLED: &str = "cancelled with `bgtask cancel`";

fn not_found(what: String) -> Response {
    Response::Error(IpcError::new(ErrorKind::NotFound, what))
}

impl Core {
    fn dedup_key(&self, task: &str) -> String {
        format!("{task}@{}", self.workspace.root.display())
    }

    /// A task's adaptive priority from its last 100 runs, cached until one
    /// of its runs finishes (a trigger storm costs no queries).
    fn adaptive_bonus(&mut self, task: &str) -> (i32, Option<String>) {
        if let Some(hit) = self.adaptive.get(task) {
            return hit.clone();
        }
        let recent = self
            .persistence
            .store()
            .recent(task, 100)
            .unwrap_or_default();
        let computed = adaptive::adjust(&recent);
        self.adaptive.insert(task.to_owned(), computed.clone());
        computed
    }

    /// Offers one task's job to the queue; returns what happened to it.
    pub(super) fn offer(
        &mut self,
        task: &str,
        priority: Option<crate::config::Priority>,
        files: crate::schedule::Files,
        source: &TriggerSource,
        debounce: Duration,
        effects: &mut Vec<Effect>,
    ) -> Admitted {
        let def = &self.config.tasks[task];
        let priority = priority.unwrap_or(def.priority);
        let (bonus, why) = self.adaptive_bonus(task);
        let offer = Offer {
            key: self.dedup_key(task),
            task: task.to_owned(),
            priority,
            score: priority.score() + bonus,
            why,
            files,
            trigger: Trigger {
                source: source.clone(),
                at: SystemTime::now(),
            },
            debounce: i64::try_from(debounce.as_millis()).unwrap_or(i64::MAX),
        };
        let (admission, e) = self.queue.offer(offer, self.clock.now());
        self.publish_offer(task, &e);
        effects.extend(e);
        tracing::debug!(task = %task, job = admission.job_id(), outcome = admission.label(), "submitted");
        Admitted {
            task: task.to_owned(),
            job_id: admission.job_id(),
            outcome: admission.label().to_owned(),
        }
    }

    /// Queues the submitted tasks; queue changes go into `effects`.
    pub(super) fn submit(&mut self, s: &Submit, effects: &mut Vec<Effect>) -> Response {
        if self.stopping.is_cancelled() {
            return Core::shutting_down();
        }
        if s.tasks.len() > MAX_SUBMIT_TASKS {
            return Response::Error(IpcError::new(
                ErrorKind::Invalid,
                format!(
                    "{} task names in one submit; at most {MAX_SUBMIT_TASKS}",
                    s.tasks.len()
                ),
            ));
        }
        let mut tasks: Vec<String> = Vec::new();
        for t in &s.tasks {
            if t == "all" {
                tasks.extend(
                    self.config
                        .tasks
                        .values()
                        .filter(|t| t.enabled)
                        .map(|t| t.name.clone()),
                );
            } else if let Some(dir) = t.strip_suffix(":all")
                && let Some(project) = self
                    .projects
                    .all()
                    .iter()
                    .find(|p| p.dir.as_os_str() == dir)
            {
                tasks.extend(
                    project
                        .config
                        .tasks
                        .values()
                        .filter(|t| t.enabled)
                        .map(|t| project.key(&t.name)),
                );
            } else if self.config.tasks.contains_key(t) {
                tasks.push(t.clone());
            } else {
                let known: Vec<&str> = self.config.tasks.keys().map(String::as_str).collect();
                return not_found(format!(
                    "unknown task `{t}`{}; tasks: all, {}",
                    crate::engine::did_you_mean(t, known.iter().copied().chain(["all"])),
                    known.join(", ")
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        tasks.retain(|t| seen.insert(t.clone()));
        for t in &tasks {
            self.self_writes.resume(t);
        }
        let debounce = if s.debounce {
            self.config.triggers.file_watch.debounce
        } else {
            Duration::ZERO
        };
        let mut jobs = Vec::new();
        for task in tasks {
            let files = s.files.as_ref().map(|f| f.iter().cloned().collect());
            jobs.push(self.offer(&task, s.priority, files, &s.source, debounce, effects));
        }
        Response::Submitted { jobs }
    }

    /// Why new jobs must wait now, if they must (machine load or our own memory).
    fn resource_hold(&self) -> Option<String> {
        if let Some(pct) = self.config.limits.max_cpu_percent {
            let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            if let Some(load) = load_average() {
                #[expect(clippy::cast_precision_loss, reason = "a percentage")]
                let used = load / cpus as f64 * 100.0;
                if used > f64::from(pct) {
                    return Some(format!(
                        "machine load is {used:.0}% of {cpus} CPUs, over max_cpu_percent {pct}%"
                    ));
                }
            }
        }
        let rss_mb = own_rss_kb() / 1024;
        if rss_mb > self.config.daemon.max_rss_mb {
            return Some(format!(
                "the daemon uses {rss_mb} MiB, over daemon.max_rss_mb {}",
                self.config.daemon.max_rss_mb
            ));
        }
        None
    }

    /// Starts ready jobs while workers are free and resources allow.
    pub(super) fn dispatch(&mut self) {
        if self.stopping.is_cancelled() {
            return;
        }
        while self.running.len() < self.workers.count() {
            if self
                .queue
                .next_wakeup()
                .is_none_or(|at| at > self.clock.now())
            {
                self.hold(None);
                return;
            }
            if let Some(why) = self.resource_hold() {
                if self.holding.is_none() {
                    // Rate-limited by the notifier while it goes on.
                    self.notifier
                        .send(crate::notifier::NotificationEvent::high_resource_usage(
                            &why,
                        ));
                }
                if self.holding.as_ref() != Some(&why) {
                    tracing::info!(reason = %why, "holding new jobs");
                }
                self.hold(Some(why));
                return;
            }
            self.hold(None);
            let Some(w) = self.queue.pop_ready(self.clock.now()) else {
                return;
            };
            self.start(w);
        }
    }

    /// Whether new jobs wait, and why; subscribers hear of a change.
    fn hold(&mut self, why: Option<String>) {
        if self.holding != why {
            self.publish(What::Holding {
                reason: why.clone(),
            });
            self.holding = why;
        }
    }

    /// What a waiting job runs: a project below the top runs in its own
    /// directory, with its own config, on its files relative to it.
    fn job_for(
        &self,
        w: &Waiting,
    ) -> (
        std::sync::Arc<crate::config::Config>,
        crate::engine::Workspace,
        Job,
        Option<crate::engine::FileIndex>,
    ) {
        let (config, workspace, task, files) = match self.projects.task(&w.task) {
            Some((project, name)) if !project.is_worktree() => (
                project.config.clone(),
                self.workspace.below(&project.dir),
                name.to_owned(),
                None,
            ),
            _ => (
                self.config.clone(),
                self.workspace.clone(),
                w.task.clone(),
                self.file_index(),
            ),
        };
        let dir = workspace
            .root
            .strip_prefix(&self.workspace.root)
            .unwrap_or(Path::new(""));
        let job = Job {
            tasks: vec![task],
            analyzers: Vec::new(),
            targets: w.files.as_ref().map_or(Targets::Project, |f| {
                Targets::Files(
                    f.iter()
                        .filter_map(|f| f.strip_prefix(dir).ok().map(Path::to_owned))
                        .collect(),
                )
            }),
            trigger: w.trigger.clone(),
        };
        (config, workspace, job, files)
    }

    fn start(&mut self, w: Waiting) {
        let now = self.clock.now();
        // Committed before any analyzer process starts (RELIABILITY 1); the
        // job's own row first, if it is still unsaved.
        self.check_state_file();
        if self.stopping.is_cancelled() {
            // The worktree went: nothing runs (its log directory would
            // bring the worktree's path back), and the job stays queued.
            return;
        }
        let run_id = self.begin_run(&w, now);
        self.self_writes
            .started(w.id, &w.task, w.files.as_ref(), &self.workspace.root);
        let log_dir = self.paths.run_logs.join(run_id.to_string());
        let (config, workspace, job, files) = self.job_for(&w);
        let (spawn_tx, mut spawn_rx) = mpsc::unbounded_channel();
        let job_id = w.id;
        let opts = RunOptions {
            shard: None,
            offline: false,
            execution: Options {
                slots: Some(self.workers.slots()),
                on_spawn: Some(spawn_tx),
                log_dir: Some(log_dir.clone()),
                skip: self.quarantine.skip(),
                ..Options::default()
            },
            files,
        };
        let cancel = CancellationToken::new();
        let run = JobRun {
            config,
            workspace,
            job,
            options: opts,
            cancel: cancel.clone(),
            events: Some(self.run_events(w.id, run_id, &w.task)),
        };
        self.publish(What::JobStarted {
            job_id: w.id,
            run_id,
            task: w.task.clone(),
            attempt: w.attempt,
        });
        let (execute, tx) = (self.execute.clone(), self.tx.clone());
        tracing::info!(job = w.id, run = run_id, task = %w.task, attempt = w.attempt, "starting job");
        tokio::spawn(async move {
            // Run ids can come round again once retention removed every
            // run; an old run's logs (and its `.done`) must not pass for
            // this one's. Off the loop's thread, as all file work here.
            let _ = tokio::fs::remove_dir_all(&log_dir).await;
            // The processes the run starts go to the core as they start
            // (for recovery after a crash); the relay ends with the run.
            let relay = async {
                while let Some(spawned) = spawn_rx.recv().await {
                    let _ = tx.send(Command::Spawned { job_id, spawned });
                }
            };
            let (report, ()) = tokio::join!(execute(run), relay);
            // Never `create_dir_all`: under a deleted worktree it would
            // make the worktree's path again.
            let _ = tokio::fs::create_dir(&log_dir).await;
            let _ = tokio::fs::write(log_dir.join(".done"), b"").await;
            let _ = tx.send(Command::Finished(Box::new(Finished { job_id, report })));
        });
        self.running.insert(
            w.id,
            Active {
                waiting: w,
                run_id,
                started: Instant::now(),
                started_ms: now,
                cancel,
                cancelled_by_user: false,
            },
        );
    }

    /// Records `w` as running and its run as begun, in one transaction
    /// (after the queue changes held back); the run's id.
    fn begin_run(&mut self, w: &Waiting, now: Millis) -> i64 {
        self.persist(&[])
            .or_later("queue changes held back before a start");
        let boot_id = self.boot_id.clone();
        // Read from git's files: no process on the loop.
        let head = self.incoming.git_dirs().and_then(crate::git::GitDirs::head);
        let begun = self.persistence.store().batch(|store| {
            store.mark_running(w.id, &boot_id, now)?;
            store.begin_run(&RunStart {
                job_id: w.id,
                task: &w.task,
                attempt: w.attempt,
                trigger: &w.trigger.label(),
                started_ms: now,
                wait_ms: now - w.enqueued,
                head: head.as_deref(),
            })
        });
        match begun {
            Ok(id) => id,
            Err(e) => {
                self.store_failed("record a job as running and its run", &e);
                // Unsaved runs get negative ids: never a stored run's.
                -w.id
            }
        }
    }

    /// Once no job runs: hand the memory of the last ones (a large file
    /// set, a big report, SQLite's page cache) back to the system; the
    /// allocator would otherwise keep it for the daemon's life. `idle`:
    /// nothing ran for a while, so the executable's pages go too (right
    /// after a job the next save would fault them all back in).
    pub(super) fn release_memory(&self, idle: bool) {
        if self.running.is_empty() {
            self.persistence.store_ref().shrink_memory();
            if idle {
                crate::daemon::memory::release();
            } else {
                crate::daemon::memory::trim_heap();
            }
        }
    }

    /// The memory hand-backs due once no job ran for a while.
    pub(super) fn release_when_idle(&mut self) {
        if !self.running.is_empty() {
            return;
        }
        let (heap, code) = self.releases.take_due(self.clock.now());
        if heap {
            self.release_memory(false);
        }
        if code {
            self.release_memory(true);
        }
    }

    pub(super) fn cancel(&mut self, job_id: JobId) -> Response {
        if let Some(w) = self.queue.cancel(job_id) {
            // Through the queue's effects, so it is ordered after the job's
            // own (possibly still unsaved) insert.
            self.persist(&[Effect::Finish {
                id: w.id,
                state: FinalState::Cancelled,
                note: Some(CANCELLED.to_owned()),
            }])
            .or_later("a cancel");
            return Response::Cancelled {
                job_id,
                was: "waiting".to_owned(),
            };
        }
        if let Some(active) = self.running.get_mut(job_id) {
            active.cancelled_by_user = true;
            active.cancel.cancel();
            return Response::Cancelled {
                job_id,
                was: "running".to_owned(),
            };
        }
        match self.persistence.store().job(job_id) {
            Ok(Some(row)) => Response::Error(IpcError::new(
                ErrorKind::Invalid,
                format!(
                    "job {job_id} is not waiting or running (it is {})",
                    row.state
                ),
            )),
            _ => not_found(format!("no job {job_id}")),
        }
    }

    /// Runs a run's job again (a new job with the same task and files), and
    /// lifts any quarantine on its task's analyzers.
    pub(super) fn retry(&mut self, run_id: i64) -> Response {
        if self.stopping.is_cancelled() {
            return Core::shutting_down();
        }
        let Ok(Some(job_id)) = self.persistence.store().job_of_run(run_id) else {
            return not_found(format!("no run {run_id}"));
        };
        let Ok(Some(row)) = self.persistence.store().job(job_id) else {
            return not_found(format!("the job of run {run_id} is gone (retention)"));
        };
        let Some(task) = self.config.tasks.get(&row.task) else {
            return not_found(format!("task `{}` is no longer in the config", row.task));
        };
        let analyzers = task.analyzers.clone();
        for a in &analyzers {
            let _ = self.persistence.store().lift_quarantine(Some(a));
        }
        self.refresh_quarantine();
        let files: Option<Vec<PathBuf>> = self
            .persistence
            .store()
            .job_files(job_id)
            .ok()
            .flatten()
            .map(|f: BTreeSet<PathBuf>| f.into_iter().collect());
        let submit = Submit {
            tasks: vec![row.task.clone()],
            files,
            priority: None,
            source: TriggerSource::Manual {
                command: format!("bgtask retry {run_id}"),
            },
            debounce: false,
        };
        let mut effects = Vec::new();
        let response = self.submit(&submit, &mut effects);
        self.persist(&effects).or_later("a retry");
        match response {
            Response::Submitted { jobs } if !jobs.is_empty() => Response::Retried {
                job_id: jobs[0].job_id,
            },
            other => other,
        }
    }

    /// After `stop`: cancel running jobs, wait for them (up to the grace
    /// period and a little), record them as interrupted, and flush.
    pub(super) async fn wind_down(&mut self, rx: &mut mpsc::UnboundedReceiver<Command>) {
        self.stopping.cancel();
        self.publish(What::Stopping);
        for (_, a) in self.running.iter() {
            a.cancel.cancel();
        }
        let deadline =
            tokio::time::Instant::now() + self.config.execution.kill_grace + Duration::from_secs(5);
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Command::Finished(f))) => self.finish(&f),
                Ok(Some(Command::Request { reply, .. })) => {
                    let _ = reply.send(Core::shutting_down());
                }
                Ok(Some(Command::Spawned { job_id, spawned })) => {
                    if self.running.contains(job_id) {
                        let _ = self.persistence.store().add_process(job_id, &spawned);
                    }
                }
                // An unrouted batch stays in the intake table for the next start.
                Ok(Some(
                    Command::Reload
                    | Command::Arrived(..)
                    | Command::Resolved(_)
                    | Command::Watcher(_),
                )) => {}
                Ok(None) | Err(_) => break,
            }
        }
        // Whatever did not finish in time: kill and record.
        crate::run::kill_all_spawned();
        let now = self.clock.now();
        for (id, a) in self.running.take_all() {
            let written = self.persistence.store().batch(|store| {
                store.abandon_run(a.run_id, "interrupted by shutdown")?;
                store.interrupt(id, now)
            });
            if let Err(e) = written {
                // Recovery at the next start finds it running and runs it again.
                tracing::error!(job = id, error = %e, "could not record a job interrupted by shutdown");
            }
            self.publish_finished(&a, None, None);
        }
        // Queue changes a full disk held back: one last try.
        if !self.persist(&[]).on_disk() {
            tracing::error!(
                unsaved = self.persistence.unsaved_len(),
                "stopping with queue changes that could not be saved"
            );
        }
        self.publish(What::Stopped);
    }
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// This process's resident memory, KiB.
pub(super) fn own_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
