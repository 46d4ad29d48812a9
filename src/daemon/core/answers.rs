//! Answers to client requests other than submits (which are batched).

use super::Core;
use crate::ipc::{ErrorKind, IpcError, Metrics, QueueEntry, Request, Response, RunningJob, Status};
use crate::schedule::WaitKind;

/// Most runs one `history` answer lists.
const MAX_HISTORY: u32 = 10_000;

fn err(kind: ErrorKind, msg: impl Into<String>) -> Response {
    Response::Error(IpcError::new(kind, msg))
}

#[expect(clippy::cast_precision_loss, reason = "seconds for display")]
fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Core {
    pub(super) fn answer(&mut self, request: Request) -> Response {
        match request {
            Request::Ping => Response::Pong {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            Request::Status => Response::Status(Box::new(self.status())),
            Request::Submit(_) | Request::Hook(_) => {
                unreachable!("submits and hook events are batched by the caller")
            }
            Request::Queue => Response::Queue {
                entries: self.queue_entries(),
            },
            Request::History {
                task,
                limit,
                before,
                outcome,
                since_ms,
            } => {
                let filter = crate::store::HistoryFilter {
                    task: task.as_deref(),
                    outcome,
                    since_ms,
                };
                match self
                    .persistence
                    .store()
                    .history(&filter, before, limit.min(MAX_HISTORY))
                {
                    Ok(runs) => Response::History { runs },
                    Err(e) => err(ErrorKind::Internal, e.to_string()),
                }
            }
            Request::Show { run_id } => self.show(run_id),
            Request::Logs { run_id, .. } => {
                let running = self.running.has_run(run_id);
                match self.persistence.store().job_of_run(run_id) {
                    Ok(Some(_)) => Response::LogEnd { finished: !running },
                    Ok(None) => err(ErrorKind::NotFound, format!("no run {run_id}")),
                    Err(e) => err(ErrorKind::Internal, e.to_string()),
                }
            }
            Request::Cancel { job_id } => self.cancel(job_id),
            Request::Retry { run_id } => self.retry(run_id),
            Request::Metrics => self.metrics(),
            Request::Health => Response::Health(self.run_health(false)),
            Request::Cleanup => Response::Cleaned(self.cleanup()),
            Request::Reload => {
                self.reload_now();
                Response::Reloaded {
                    applied: !self.config_state.stale,
                    problems: self.config_state.problems.clone(),
                }
            }
            Request::Stop => {
                tracing::info!("stop requested");
                self.stopping.cancel();
                Response::Stopping {
                    pid: std::process::id(),
                }
            }
            Request::Activity => {
                self.note_activity();
                Response::Accepted
            }
            Request::Pause { reason, by } => self.pause_automation(&reason, by.as_deref()),
            Request::Resume => self.resume_automation(),
            Request::Subscribe { .. } => err(
                ErrorKind::Invalid,
                "subscribe is served by the connection, not the core".to_owned(),
            ),
        }
    }

    fn metrics(&mut self) -> Response {
        match self.persistence.store().task_metrics() {
            Ok(tasks) => Response::Metrics(Metrics {
                tasks,
                queue_length: self.queue.waiting_len(),
                running: self.running.len(),
                workers: self.workers.count(),
            }),
            Err(e) => err(ErrorKind::Internal, e.to_string()),
        }
    }

    /// A run's report, or why there is none.
    fn show(&mut self, run_id: i64) -> Response {
        match self.persistence.store().report(run_id) {
            Ok(Some(Some(report))) => Response::Report {
                report: Box::new(report),
            },
            Ok(Some(None)) if self.running.has_run(run_id) => err(
                ErrorKind::Invalid,
                format!(
                    "run {run_id} is still running; `bgtask logs {run_id} --follow` shows its output"
                ),
            ),
            Ok(Some(None)) => err(
                ErrorKind::NotFound,
                format!("the report of run {run_id} was removed by retention"),
            ),
            Ok(None) => err(ErrorKind::NotFound, format!("no run {run_id}")),
            Err(e) => err(ErrorKind::Internal, e.to_string()),
        }
    }

    fn status(&mut self) -> Status {
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            root: self.workspace.root.display().to_string(),
            started: humantime::format_rfc3339_seconds(self.started).to_string(),
            uptime_s: self.started_at.elapsed().as_secs(),
            config: self.config_state.clone(),
            workers: self.workers.count(),
            queue_depth: self.queue.waiting_len(),
            running_jobs: {
                let mut r: Vec<RunningJob> = self
                    .running
                    .iter()
                    .map(|(id, a)| RunningJob {
                        job_id: *id,
                        run_id: a.run_id,
                        task: a.waiting.task.clone(),
                        attempt: a.waiting.attempt,
                        running_s: a.started.elapsed().as_secs_f64(),
                    })
                    .collect();
                r.sort_by_key(|j| j.job_id);
                r
            },
            last_runs: self
                .persistence
                .store()
                .history(&crate::store::HistoryFilter::default(), None, 5)
                .unwrap_or_default(),
            health: self.health.clone(),
            holding: self.holding.clone(),
            quarantined: self.quarantine.names().map(str::to_owned).collect(),
            degraded: self.persistence.degraded().map(str::to_owned),
            intake: self.incoming.pending(),
            arrivals: self.incoming.arrivals(),
            resolving: self.incoming.resolving(),
            loop_turns: self.loop_turns,
            watcher: self.watching.state().cloned(),
            untrusted: self.untrusted_tasks(),
            given_up: self.persistence.store().given_up(3).unwrap_or_default(),
            tasks: self
                .config
                .tasks
                .iter()
                .filter(|(_, t)| t.enabled)
                .map(|(key, _)| key.clone())
                .collect(),
            paused: self.self_writes.paused().cloned().collect(),
            automation: self.automation_paused(),
        }
    }

    fn queue_entries(&self) -> Vec<QueueEntry> {
        let now = self.clock.now();
        let because = self.held_because();
        let mut entries: Vec<QueueEntry> = self
            .queue
            .waiting()
            .map(|w| {
                let behind = self.queue.is_running(&w.key);
                let held = self.queue.is_held(w);
                let state = match w.kind {
                    _ if held => "held",
                    WaitKind::RetryWait => "retry_wait",
                    WaitKind::Queued if w.not_before > now => "debouncing",
                    WaitKind::Queued if behind => "after_running",
                    WaitKind::Queued => "queued",
                };
                QueueEntry {
                    job_id: w.id,
                    task: w.task.clone(),
                    dedup_key: w.key.clone(),
                    priority: w.priority,
                    score: w.score,
                    why: w.why.clone(),
                    state: state.to_owned(),
                    waiting_s: secs(now - w.enqueued),
                    ready_in_s: (!held && w.not_before > now).then(|| secs(w.not_before - now)),
                    attempt: w.attempt,
                    files: w.files.as_ref().map(std::collections::BTreeSet::len),
                    held: because.clone().filter(|_| held),
                }
            })
            .collect();
        entries.sort_by(|a, b| b.score.cmp(&a.score).then(a.job_id.cmp(&b.job_id)));
        entries
    }
}
