//! Routine work: cron schedules, the idle trigger and `start`. Pure logic;
//! the caller passes the times in.
//!
//! - A task with a `schedule` and the `schedule` trigger runs at each of its
//!   cron times (local time). Cron times are wall-clock times, so they are
//!   checked against the wall clock each time the loop wakes, and the loop
//!   never sleeps longer than [`MAX_SLEEP`] while one is pending: a machine
//!   that slept through a time, or a clock that jumped, is noticed within
//!   that. A time missed while the daemon was down is not made up.
//! - A task with the `idle` trigger runs once the worktree has been quiet
//!   for its `idle_minutes` after some activity (a save, a commit): one run
//!   per spell of activity, and never twice within `idle_cooldown`. Idle
//!   time is measured on the monotonic clock.
//! - A task with the `start` trigger runs once when the daemon starts.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;

use super::job::Millis;
use crate::config::{Config, TriggerKind};

/// Longest the loop sleeps while a cron time is pending.
pub const MAX_SLEEP: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct CronEntry {
    task: String,
    expr: String,
    cron: Arc<croner::Cron>,
    /// The next time it fires (wall-clock ms), if it ever does.
    next: Option<Millis>,
}

#[derive(Debug)]
struct IdleEntry {
    task: String,
    quiet: Millis,
    /// Activity happened since its last run.
    armed: bool,
    last_run: Option<Millis>,
}

/// Something a timer wants to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub task: String,
    pub kind: TriggerKind,
    /// The cron expression, for a scheduled run.
    pub cron: Option<String>,
}

#[derive(Debug)]
pub struct Timers {
    crons: Vec<CronEntry>,
    idle: Vec<IdleEntry>,
    cooldown: Millis,
    last_activity: Millis,
}

/// The first cron time strictly after `after` (wall-clock ms), local time.
pub fn next_cron(cron: &croner::Cron, after: Millis) -> Option<Millis> {
    let start = chrono::Local.timestamp_millis_opt(after).single()?;
    let next = cron.find_next_occurrence(&start, false).ok()?;
    Some(next.timestamp_millis())
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX / 4)
}

impl Timers {
    /// Timers for `config`; `wall` is the wall clock now, `now` the
    /// monotonic one.
    pub fn new(config: &Config, wall: Millis, now: Millis) -> Timers {
        let on = config.triggers.scheduled.enabled;
        let wants =
            |t: &crate::config::Task, k: TriggerKind| on && t.enabled && t.triggers.contains(&k);
        let crons = config
            .tasks
            .values()
            .filter(|t| wants(t, TriggerKind::Schedule))
            .filter_map(|t| {
                let s = t.schedule.as_ref()?;
                Some(CronEntry {
                    task: t.name.clone(),
                    expr: s.expr.clone(),
                    next: next_cron(&s.cron, wall),
                    cron: s.cron.clone(),
                })
            })
            .collect();
        let idle = config
            .tasks
            .values()
            .filter(|t| wants(t, TriggerKind::Idle))
            .map(|t| IdleEntry {
                task: t.name.clone(),
                quiet: Millis::from(t.idle_minutes) * 60_000,
                armed: false,
                last_run: None,
            })
            .collect();
        Timers {
            crons,
            idle,
            cooldown: ms(config.triggers.scheduled.idle_cooldown),
            last_activity: now,
        }
    }

    /// Takes over the idle state of the timers this one replaces (a reload).
    pub fn carry_over(&mut self, old: &Timers) {
        self.last_activity = old.last_activity;
        for e in &mut self.idle {
            if let Some(o) = old.idle.iter().find(|o| o.task == e.task) {
                e.armed = o.armed;
                e.last_run = o.last_run;
            }
        }
    }

    /// Tasks that run when the daemon starts.
    pub fn on_start(config: &Config) -> Vec<Due> {
        config
            .tasks
            .values()
            .filter(|t| {
                config.triggers.scheduled.enabled
                    && t.enabled
                    && t.triggers.contains(&TriggerKind::Start)
            })
            .map(|t| Due {
                task: t.name.clone(),
                kind: TriggerKind::Start,
                cron: None,
            })
            .collect()
    }

    /// Something happened in the worktree.
    pub fn activity(&mut self, now: Millis) {
        self.last_activity = now;
        for e in &mut self.idle {
            e.armed = true;
        }
    }

    fn idle_at(&self, e: &IdleEntry) -> Option<Millis> {
        if !e.armed {
            return None;
        }
        let quiet = self.last_activity + e.quiet;
        Some(e.last_run.map_or(quiet, |r| quiet.max(r + self.cooldown)))
    }

    /// How long the loop may sleep before one of the timers is due.
    pub fn next_wakeup(&self, wall: Millis, now: Millis) -> Option<Duration> {
        let cron =
            self.crons.iter().filter_map(|c| c.next).min().map(|at| {
                Duration::from_millis(u64::try_from(at - wall).unwrap_or(0)).min(MAX_SLEEP)
            });
        let idle = self
            .idle
            .iter()
            .filter_map(|e| self.idle_at(e))
            .min()
            .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)));
        match (cron, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is due now; each is then scheduled anew.
    pub fn due(&mut self, wall: Millis, now: Millis) -> Vec<Due> {
        let mut out = Vec::new();
        for c in &mut self.crons {
            if c.next.is_some_and(|at| at <= wall) {
                out.push(Due {
                    task: c.task.clone(),
                    kind: TriggerKind::Schedule,
                    cron: Some(c.expr.clone()),
                });
                c.next = next_cron(&c.cron, wall);
            }
        }
        let ready: Vec<usize> = (0..self.idle.len())
            .filter(|&i| self.idle_at(&self.idle[i]).is_some_and(|at| at <= now))
            .collect();
        for i in ready {
            let e = &mut self.idle[i];
            e.armed = false;
            e.last_run = Some(now);
            out.push(Due {
                task: e.task.clone(),
                kind: TriggerKind::Idle,
                cron: None,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::from_text(std::path::Path::new(".background-tasks.json"), text).unwrap()
    }

    const TEXT: &str = r#"{
      "tasks": {
        "nightly": {"analyzers": ["bandit"], "triggers": ["schedule"], "schedule": "*/10 * * * *"},
        "quiet": {"analyzers": ["radon"], "triggers": ["idle"], "idle_minutes": 2},
        "boot": {"analyzers": ["profile"], "triggers": ["start"]},
        "off": {"analyzers": ["profile"], "triggers": ["start", "idle"], "enabled": false}
      },
      "triggers": {"scheduled": {"idle_cooldown": "5m"}}
    }"#;

    #[test]
    fn cron_fires_at_each_time_and_sleeps_are_capped() {
        let c = config(TEXT);
        // A wall time on a 10-minute boundary.
        let t0: Millis = 1_800_000_000_000;
        assert_eq!(t0 % 600_000, 0);
        let mut timers = Timers::new(&c, t0, 0);
        assert_eq!(timers.next_wakeup(t0, 0), Some(MAX_SLEEP));
        assert!(timers.due(t0 + 599_999, 0).is_empty());
        let due = timers.due(t0 + 600_000, 0);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].task, "nightly");
        assert_eq!(due[0].cron.as_deref(), Some("*/10 * * * *"));
        assert!(timers.due(t0 + 600_001, 0).is_empty(), "once per time");
        // A clock that jumped past several times fires once.
        assert_eq!(timers.due(t0 + 10 * 600_000, 0).len(), 1);
        assert_eq!(
            timers.next_wakeup(t0 + 10 * 600_000 + 300_000, 0),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn idle_runs_once_per_spell_of_activity_with_a_cooldown() {
        let c = config(TEXT);
        let mut t = Timers::new(&c, 0, 0);
        assert!(t.due(0, 10 * 60_000).is_empty(), "no activity, no idle run");
        t.activity(1_000);
        assert_eq!(t.next_wakeup(0, 1_000), Some(Duration::from_secs(120)));
        t.activity(60_000);
        assert!(t.due(0, 60_000 + 119_999).is_empty());
        let due = t.due(0, 180_000);
        assert_eq!(
            due,
            [Due {
                task: "quiet".into(),
                kind: TriggerKind::Idle,
                cron: None
            }]
        );
        assert!(t.due(0, 10_000_000).is_empty(), "once per spell");
        // New activity right away: the cooldown (5 min after the last run) wins.
        t.activity(200_000);
        assert!(t.due(0, 320_000).is_empty());
        assert!(t.due(0, 479_999).is_empty());
        assert_eq!(t.due(0, 480_000).len(), 1);
    }

    #[test]
    fn start_tasks_and_switches() {
        let c = config(TEXT);
        let start = Timers::on_start(&c);
        assert_eq!(start.len(), 1);
        assert_eq!(start[0].task, "boot");
        let off = config(&TEXT.replace(
            r#""scheduled": {"idle_cooldown": "5m"}"#,
            r#""scheduled": {"enabled": false}"#,
        ));
        assert!(Timers::on_start(&off).is_empty());
        let mut t = Timers::new(&off, 0, 0);
        t.activity(0);
        assert!(t.next_wakeup(0, 0).is_none());
    }
}
