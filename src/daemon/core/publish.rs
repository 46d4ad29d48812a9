//! What the core tells subscribers (`daemon/events.rs`): the queue's
//! changes as they are decided, a job's start and end, and the changes of
//! state a front end shows (config, health, trust, watcher, holding).

use super::Core;
use crate::daemon::events::RunEvents;
use crate::daemon::running::Active;
use crate::ipc::events::What;
use crate::report::Report;
use crate::schedule::{Effect, FinalState, JobId};

impl Core {
    pub(super) fn publish(&self, what: What) {
        self.events.publish(what);
    }

    /// The queue changes of an offer of `task` that a front end shows.
    pub(super) fn publish_offer(&self, task: &str, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::Insert(w) => self.publish(What::JobQueued {
                    job_id: w.id,
                    task: w.task.clone(),
                    priority: w.score,
                    trigger: w.trigger.label(),
                    files: w.files.as_ref().map(std::collections::BTreeSet::len),
                }),
                // A trigger that changed nothing shown (the same files
                // again, a debounce pushed out) is no news: a storm of them
                // would be a storm of events.
                Effect::Update(h) if h.shown_changed => self.publish(What::JobUpdated {
                    job_id: h.id,
                    task: task.to_owned(),
                }),
                Effect::Drop { id, task, reason } => self.publish(What::JobDropped {
                    job_id: *id,
                    task: task.clone(),
                    reason: reason.clone(),
                }),
                _ => {}
            }
        }
    }

    /// Where a job's analyzers' progress goes.
    pub(super) fn run_events(&self, job_id: JobId, run_id: i64, task: &str) -> RunEvents {
        RunEvents::new(self.events.clone(), job_id, run_id, task)
    }

    /// A job's run recorded: how it ended, as the queue's `effects` for it
    /// say (`interrupted` when shutdown cut it short).
    pub(super) fn publish_finished(
        &self,
        active: &Active,
        report: Option<&Report>,
        effects: Option<&[Effect]>,
    ) {
        let job_id = active.waiting.id;
        let state = match effects {
            None => "interrupted",
            Some(effects) => effects
                .iter()
                .find_map(|e| match e {
                    Effect::Finish { id, state, .. } if *id == job_id => Some(match state {
                        FinalState::Done => "done",
                        FinalState::Failed => "failed",
                        FinalState::Dead => "dead",
                        FinalState::Cancelled => "cancelled",
                    }),
                    Effect::Update(h) if h.id == job_id => Some("retrying"),
                    _ => None,
                })
                .unwrap_or("done"),
        };
        let worst = report.and_then(|r| {
            r.summary
                .by_severity
                .iter()
                .rev()
                .find(|(_, n)| **n > 0)
                .map(|(s, _)| s.as_str().to_owned())
        });
        self.publish(What::JobFinished {
            job_id,
            run_id: active.run_id,
            task: active.waiting.task.clone(),
            state: state.to_owned(),
            verdict: report.map(|r| r.verdict.clone()),
            findings: report.map_or(0, |r| r.summary.findings),
            worst,
            duration_ms: u64::try_from(active.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
}
