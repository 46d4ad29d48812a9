//! Recording a finished job in one transaction: its run and findings, the
//! analyzers' health (quarantine), and what the queue does next (done,
//! retry, dead, cancelled), so a crash leaves either all of it or none and
//! the job is never half-finished (RELIABILITY 1–2). A run cut short by
//! shutdown is recorded as interrupted and runs again at the next start.
//! Once recorded, the run goes to the notifier (not a cancelled one).

use super::Core;
use super::jobs::CANCELLED;
use crate::analyze::RunStatus;
use crate::daemon::command::Finished;
use crate::daemon::running::Active;
use crate::daemon::unsaved::{UnsavedRun, record_run};
use crate::notifier::RunFinished;
use crate::report::Report;
use crate::schedule::{Completion, Effect, FinalState, Millis};
use crate::store::{QUARANTINE_AFTER, Store, StoreError};

impl Core {
    pub(super) fn finish(&mut self, f: &Finished) {
        let Some(active) = self.running.remove(f.job_id) else {
            return;
        };
        self.self_writes.finished(f.job_id, &self.workspace.root);
        let now = self.clock.now();
        self.adaptive.remove(&active.waiting.task);
        // Only a run that shutdown actually cut short is interrupted; one
        // that completed while the daemon was stopping counts as it is.
        let cut_short = f
            .report
            .as_ref()
            .is_none_or(|r| r.runs.iter().any(|a| a.status == RunStatus::Cancelled));
        if self.stopping.is_cancelled() && !active.cancelled_by_user && cut_short {
            self.record_interrupted(&active, now);
            self.publish_finished(&active, f.report.as_ref(), None);
            return;
        }
        let completion = match (&f.report, active.cancelled_by_user) {
            (Some(report), false) => completion_of(report),
            (_, true) => Completion::Failed {
                permanent: true,
                error: CANCELLED.to_owned(),
            },
            (None, false) => Completion::Failed {
                permanent: true,
                error: "the job could not be planned".to_owned(),
            },
        };
        tracing::info!(job = f.job_id, run = active.run_id, task = %active.waiting.task, ?completion, "job finished");
        let backoff = self.backoff();
        let rng = &mut self.rng;
        let mut effects = self.queue.complete(
            &active.waiting.key,
            &completion,
            now,
            self.config.execution.max_retries,
            &mut |attempt| {
                i64::try_from(backoff.delay(attempt, rng).as_millis()).unwrap_or(i64::MAX)
            },
        );
        if active.cancelled_by_user {
            for e in &mut effects {
                if let Effect::Finish { id, state, .. } = e
                    && *id == f.job_id
                {
                    *state = FinalState::Cancelled;
                }
            }
        }
        self.record_finished(&active, f, &effects, now);
        self.publish_finished(&active, f.report.as_ref(), Some(&effects));
        // A rerun waiting behind this run enters the queue now.
        let reruns: Vec<Effect> = effects
            .iter()
            .filter(|e| matches!(e, Effect::Insert(_)))
            .cloned()
            .collect();
        self.publish_offer(&active.waiting.task, &reruns);
        // A worktree deleted under the job: notifying would write the
        // notification log back into it.
        if !active.cancelled_by_user && !self.worktree_gone() {
            self.notify_run(&active, f.report.as_ref());
        }
    }

    /// Records a finished job's run, its analyzers' health and the queue's
    /// changes in one transaction; kept in memory when the store fails.
    fn record_finished(&mut self, active: &Active, f: &Finished, effects: &[Effect], now: Millis) {
        let config = self
            .projects
            .task(&active.waiting.task)
            .map_or_else(|| self.config.clone(), |(p, _)| p.config.clone());
        let job_id = f.job_id;
        self.check_state_file();
        let run = UnsavedRun::of(active, None);
        let written = self.persistence.write_with(effects, now, |store| {
            store.clear_processes(job_id)?;
            let mut quarantined = Vec::new();
            if let Some(report) = &f.report {
                record_run(store, &run, Some(report))?;
                quarantined = analyzer_health(store, &config, report, now)?;
            }
            Ok(quarantined)
        });
        match written {
            Ok(quarantined) => {
                for (analyzer, reason) in &quarantined {
                    let msg = format!(
                        "analyzer `{analyzer}` quarantined after {QUARANTINE_AFTER} crashes in a row: {reason}"
                    );
                    tracing::warn!(analyzer = %analyzer, "{msg}");
                    let _ = self
                        .persistence
                        .store()
                        .event("warning", "quarantine", &msg);
                }
                if !quarantined.is_empty() {
                    self.refresh_quarantine();
                }
            }
            Err(e) => {
                // Kept in memory, written once the store takes writes again.
                if f.report.is_some() {
                    self.persistence
                        .keep_run(UnsavedRun::of(active, f.report.clone()));
                }
                self.store_failed("record a finished job", &e);
            }
        }
    }

    fn record_interrupted(&mut self, active: &Active, now: Millis) {
        let (job_id, run_id) = (active.waiting.id, active.run_id);
        let written = self.persistence.store().batch(|store| {
            store.abandon_run(run_id, "interrupted by shutdown")?;
            store.interrupt(job_id, now)
        });
        if let Err(e) = written {
            self.store_failed("record an interrupted job", &e);
        }
        // Out of the queue in memory; the store says it runs again.
        let _ = self.queue.complete(
            &active.waiting.key,
            &Completion::Succeeded,
            now,
            0,
            &mut |_| 0,
        );
    }
}

/// Records each analyzer's outcome; returns those newly quarantined, with
/// why.
fn analyzer_health(
    store: &mut Store,
    config: &crate::config::Config,
    report: &Report,
    now: Millis,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut newly = Vec::new();
    for r in &report.runs {
        let Some(def) = config.analyzers.get(&r.analyzer) else {
            continue;
        };
        if matches!(
            r.status,
            RunStatus::NotApplicable | RunStatus::NotInstalled | RunStatus::Cancelled
        ) {
            continue;
        }
        let reason = r.reason.as_deref();
        if store.analyzer_outcome(&r.analyzer, &def.digest, r.status, reason, now)? {
            newly.push((r.analyzer.clone(), reason.unwrap_or_default().to_owned()));
        }
    }
    Ok(newly)
}

fn completion_of(report: &Report) -> Completion {
    let failures: Vec<_> = report
        .runs
        .iter()
        .filter(|r| r.status.is_failure())
        .collect();
    if failures.is_empty() {
        return Completion::Succeeded;
    }
    let permanent = failures.iter().all(|r| r.permanent);
    let error = failures
        .iter()
        .map(|r| {
            format!(
                "{}: {}",
                r.analyzer,
                r.reason.as_deref().unwrap_or(r.status.label())
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let tail = failures
        .iter()
        .find_map(|r| r.output_tail.as_deref())
        .map(|t| {
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(10)..].join("\n")
        });
    let error = match tail {
        Some(t) if !t.is_empty() => format!("{error}\n{t}"),
        _ => error,
    };
    Completion::Failed { permanent, error }
}

impl Core {
    /// Tells the notifier about a recorded run (or one that could not be
    /// planned: `report` is `None`).
    pub(super) fn notify_run(&self, active: &Active, report: Option<&Report>) {
        let task = &active.waiting.task;
        let policy = self
            .config
            .tasks
            .get(task)
            .map(|t| t.notify)
            .unwrap_or_default();
        let run = match report {
            Some(report) => {
                let scope = active.waiting.files.as_ref().map(|files| {
                    files
                        .iter()
                        .map(|f| f.to_string_lossy().into_owned())
                        .collect()
                });
                RunFinished::from_report(task, active.run_id, policy, scope, report)
            }
            None => RunFinished::without_report(
                task,
                active.run_id,
                policy,
                "the job could not be planned",
            ),
        };
        self.notifier.run_finished(run);
    }
}
