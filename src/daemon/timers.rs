//! Cron, idle and start triggers in the core: the pure timers
//! (`schedule/timers.rs`) fed with the daemon's clocks, their due tasks
//! routed like any other trigger (trust included), project-wide.

use super::intake::ResolvedBatch;
use super::resolve::Resolved;
use super::scheduler::Scheduler;
use crate::event::TriggerSource;
use crate::schedule::timers::{Due, Timers};

impl Scheduler {
    /// A save, a hook: the worktree is not idle.
    pub(super) fn note_activity(&mut self) {
        self.timers.activity(self.clock.now());
    }

    /// Rebuilds the timers after a config change, keeping the idle state.
    pub(super) fn reset_timers(&mut self) {
        let mut timers = Timers::new(&self.config, self.clock.wall(), self.clock.now());
        timers.carry_over(&self.timers);
        self.timers = timers;
    }

    /// How long until a timer is due.
    pub(super) fn timers_wake(&self) -> Option<std::time::Duration> {
        self.timers.next_wakeup(self.clock.wall(), self.clock.now())
    }

    /// Runs what is due.
    pub(super) fn run_timers(&mut self) {
        if self.stopping.is_cancelled() {
            return;
        }
        let due = self.timers.due(self.clock.wall(), self.clock.now());
        self.route_due(due);
    }

    /// The `start` tasks, once.
    pub(super) fn run_start_tasks(&mut self) {
        let due = Timers::on_start(&self.config);
        self.route_due(due);
    }

    fn route_due(&mut self, due: Vec<Due>) {
        if due.is_empty() {
            return;
        }
        let resolved = due
            .into_iter()
            .map(|d| Resolved {
                kind: d.kind,
                files: None,
                source: match (d.kind, d.cron) {
                    (_, Some(cron)) => TriggerSource::Schedule { cron },
                    (crate::config::TriggerKind::Idle, None) => TriggerSource::Idle,
                    _ => TriggerSource::Start,
                },
                skip: Vec::new(),
                only: Some(d.task),
            })
            .collect();
        self.route(ResolvedBatch {
            ids: Vec::new(),
            resolved,
        });
    }
}
