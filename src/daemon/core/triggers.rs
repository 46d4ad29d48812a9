//! Triggers nobody asked for in that moment — git hooks, the watcher,
//! cron times, idle spells, the start — in the core: saved to the intake
//! on arrival (before a hook gets its answer), held until the worktree is
//! quiet (`schedule/intake.rs`), resolved to kinds and files off the loop
//! (`resolve.rs`), and routed (`schedule/route.rs`) to jobs for the tasks
//! that subscribe to that kind, whose files they touch, and that are
//! trusted (`trust/`). The jobs and the intake's release are one
//! transaction. The timers (`schedule/timers.rs`) are fed here with the
//! daemon's clocks; their due tasks are routed like any other trigger.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::Core;
use crate::config::TriggerKind;
use crate::daemon::command::{Command, ResolvedBatch};
use crate::daemon::resolve::{Resolved, resolve};
use crate::daemon::selfwrites::Guarded;
use crate::event::Arrival;
use crate::event::TriggerSource;
use crate::ipc::Response;
use crate::ipc::events::What;
use crate::schedule::intake::IntakeId;
use crate::schedule::route::Routed;
use crate::schedule::timers::{Due, Timers};
use crate::schedule::{Effect, Millis};
use crate::trust::TaskTrust;

/// The batch's saves as one (a checkout is a few hundred of the watcher's
/// arrivals, each of which would be resolved and routed on its own),
/// first, then the git events in their order. A file's last arrival says
/// whether it is a regular file; when one arrival was not looked at, none
/// is taken as known.
fn one_save(arrivals: impl Iterator<Item = Arrival>) -> Vec<Arrival> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut not_files: Option<BTreeSet<PathBuf>> = Some(BTreeSet::new());
    let mut rescan = false;
    let mut saved = false;
    let mut rest = Vec::new();
    for a in arrivals {
        match a {
            Arrival::Saved {
                files: f,
                rescan: r,
                not_files: n,
            } => {
                saved = true;
                rescan |= r;
                match (&mut not_files, n) {
                    // Mostly empty: a file's last word is only looked up
                    // when some arrival says one is no file.
                    (Some(all), Some(n)) if !n.is_empty() || !all.is_empty() => {
                        let n: std::collections::HashSet<&PathBuf> = n.iter().collect();
                        for p in &f {
                            if n.contains(p) {
                                all.insert(p.clone());
                            } else {
                                all.remove(p);
                            }
                        }
                    }
                    (Some(_), Some(_)) => {}
                    _ => not_files = None,
                }
                files.extend(f);
            }
            other => rest.push(other),
        }
    }
    let mut out = Vec::with_capacity(rest.len() + 1);
    if saved {
        // Each arrival's files come sorted: a merge of runs.
        files.sort();
        files.dedup();
        out.push(Arrival::Saved {
            files,
            rescan,
            not_files: not_files.map(|n| n.into_iter().collect()),
        });
    }
    out.extend(rest);
    out
}

/// How long git's lists of a checkout wait once its analysis is offered
/// (they only add what the watcher did not see): the job's start goes
/// first.
const LATER_LISTS: Duration = Duration::from_millis(100);

/// Whether a job on `a` does all a job on `b` would (`None`: the whole
/// project).
fn covers(a: &crate::schedule::Files, b: &crate::schedule::Files) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.is_subset(a),
    }
}

/// What the watcher saw, told to the file list before any job of this
/// batch plans with it; a directory that went away stands for the files
/// that were in it (its tasks must learn they are gone, and so are they).
fn update_index(
    index: &crate::engine::FileIndex,
    root: &std::path::Path,
    arrivals: &mut [Arrival],
) {
    for a in arrivals {
        match a {
            Arrival::Saved { rescan: true, .. } => index.invalidate(),
            Arrival::Saved {
                files, not_files, ..
            } => {
                let went = match not_files.as_ref() {
                    Some(n) => {
                        let n: std::collections::HashSet<&std::path::Path> =
                            n.iter().map(PathBuf::as_path).collect();
                        index.update(files.iter(), |p| !n.contains(p))
                    }
                    None => index.update(files.iter(), |p| {
                        std::fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.is_file())
                    }),
                };
                if !went.is_empty() {
                    if let Some(n) = not_files.as_mut() {
                        n.extend(went.iter().cloned());
                    }
                    files.extend(went);
                    files.sort();
                    files.dedup();
                }
            }
            Arrival::Hook(_) | Arrival::HeadMoved { .. } => {}
        }
    }
}

impl Core {
    /// Takes an arrival into the intake; its saving goes into `effects`.
    pub(super) fn arrive(&mut self, arrival: Arrival, effects: &mut Vec<Effect>) -> Response {
        let now = self.clock.now();
        self.arrive_at(arrival, now, effects)
    }

    /// What the watcher saw: the debounce counts from its last event, not
    /// from when the batch was handed on.
    pub(super) fn watched(
        &mut self,
        arrival: Arrival,
        last_event: std::time::Instant,
        effects: &mut Vec<Effect>,
    ) {
        let at = self.clock.at(last_event);
        if let Arrival::HeadMoved {
            from: Some(from),
            to: Some(to),
            how,
        } = &arrival
            && crate::daemon::resolve::moved_by(how.as_deref()) == TriggerKind::Commit
        {
            // Whichever of the hook and this resolves it, git's list of
            // the files is ready by the time the batch is. (A checkout's
            // or a merge's files are the ones the watcher saw git write:
            // git's list is read after, and not while the analysis starts.)
            let (root, from, to) = (self.workspace.root.clone(), from.clone(), to.clone());
            tokio::task::spawn_blocking(move || {
                crate::git::prefetch_range(&root, &from, &to);
            });
        }
        let _ = self.arrive_at(arrival, at, effects);
    }

    /// Takes an arrival that came at `at`.
    fn arrive_at(&mut self, arrival: Arrival, at: Millis, effects: &mut Vec<Effect>) -> Response {
        if self.stopping.is_cancelled() {
            return Core::shutting_down();
        }
        self.note_activity();
        if let Arrival::Saved { files, .. } = &arrival {
            self.self_writes.saved(files);
            if crate::config::names_nested_config(files) {
                let _ = self.tx.send(Command::Reload);
            }
        }
        // HEAD moving is the watcher's fallback for clients that run no
        // hooks, and comes with every commit: kept in memory only (a crash
        // loses at most that fallback for the last quiet window), which
        // saves a write per commit. Hook events and saves are saved.
        let durable = !matches!(arrival, Arrival::HeadMoved { .. });
        let id = self.incoming.add(arrival.clone(), at);
        if durable {
            effects.push(Effect::Arrived {
                id,
                arrival: Box::new(arrival),
            });
        }
        Response::Accepted
    }

    /// Lets a due batch go: resolved right here when it is only saves (no
    /// git needed, and saves are latency-bound), else in the blocking pool.
    pub(super) fn release_intake(&mut self) {
        if self.stopping.is_cancelled() {
            return;
        }
        let Some(batch) = self.incoming.take_due(self.clock.now()) else {
            return;
        };
        tracing::debug!(arrivals = batch.len(), "intake batch released");
        let hooks_on = self.config.triggers.git_hooks.enabled;
        let ids: Vec<IntakeId> = batch.iter().map(|(id, _)| *id).collect();
        let arrivals: Vec<Arrival> = batch
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| hooks_on || !matches!(a, Arrival::Hook(_)))
            .collect();
        let wanted: BTreeSet<TriggerKind> = self
            .config
            .tasks
            .values()
            .filter(|t| t.enabled)
            .flat_map(|t| t.triggers.iter().copied())
            .collect();
        let root = self.workspace.root.clone();
        let index = self.incoming.files().clone();
        if arrivals.iter().all(|a| matches!(a, Arrival::Saved { .. })) {
            let mut arrivals = one_save(arrivals.into_iter());
            update_index(&index, &root, &mut arrivals);
            let resolved = resolve(&root, &arrivals, &wanted).complete(&root, &arrivals);
            self.route(ResolvedBatch {
                ids,
                resolved,
                trust: None,
                partial: false,
            });
            return;
        }
        self.incoming.start_resolving();
        let tx = self.tx.clone();
        // Git's index changed (a commit, a checkout): trust asks git again,
        // on a thread of its own while the batch is resolved.
        let trust = self.trust.states_later(&self.projects, &root);
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            let mut arrivals = one_save(arrivals.into_iter());
            let (resolved, trust) = std::thread::scope(|s| {
                let trust = trust.map(|states| s.spawn(states));
                update_index(&index, &root, &mut arrivals);
                let resolved = resolve(&root, &arrivals, &wanted);
                (resolved, trust.and_then(|h| h.join().ok()))
            });
            tracing::debug!(ms = t.elapsed().as_millis(), "intake batch resolved");
            if resolved.later.is_empty() {
                let _ = tx.send(Command::Resolved(Box::new(ResolvedBatch {
                    ids,
                    resolved: resolved.now,
                    trust,
                    partial: false,
                })));
                return;
            }
            // The analysis starts on the watcher's files; the arrivals are
            // let go with git's lists, so a crash in between replays them.
            let _ = tx.send(Command::Resolved(Box::new(ResolvedBatch {
                ids: Vec::new(),
                resolved: resolved.now,
                trust,
                partial: true,
            })));
            // git's lists are read a moment later at the lowest priority,
            // on a thread of their own (a thread's priority cannot be
            // raised again): on a small machine they would slow the start
            // they need not hold.
            let (done, consumed) = (tx.clone(), ids.clone());
            let later = move || {
                // SAFETY: setpriority on the calling thread (Linux: who 0
                // with PRIO_PROCESS is the thread); failure changes nothing.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                std::thread::sleep(LATER_LISTS);
                let rest = resolved
                    .later
                    .into_iter()
                    .filter_map(|l| l.rest(&root, &arrivals))
                    .collect();
                let _ = tx.send(Command::Resolved(Box::new(ResolvedBatch {
                    ids,
                    resolved: rest,
                    trust: None,
                    partial: false,
                })));
            };
            if let Err(e) = std::thread::Builder::new()
                .name("bgtask-git-lists".into())
                .spawn(later)
            {
                tracing::warn!(error = %e, "could not start a thread for git's lists: the batch ends with the watcher's files");
                let _ = done.send(Command::Resolved(Box::new(ResolvedBatch {
                    ids: consumed,
                    resolved: Vec::new(),
                    trust: None,
                    partial: false,
                })));
            }
        });
    }

    /// Each task's trust now (all trusted when the check is off).
    fn trust_states(&mut self) -> BTreeMap<String, TaskTrust> {
        self.trust
            .states(&self.config, &self.projects, &self.workspace.root)
    }

    /// Tasks with automatic triggers that would not run by themselves.
    pub(super) fn untrusted_tasks(&mut self) -> Vec<crate::ipc::UntrustedTask> {
        let config = self.config.clone();
        self.trust_states()
            .into_iter()
            .filter(|(task, _)| {
                config
                    .tasks
                    .get(task)
                    .is_some_and(|t| t.enabled && !t.triggers.is_empty())
            })
            .filter_map(|(task, state)| match state {
                TaskTrust::Trusted => None,
                TaskTrust::Untrusted => Some(crate::ipc::UntrustedTask {
                    task,
                    state: "untrusted".into(),
                    diff: Vec::new(),
                }),
                TaskTrust::Changed { diff } => Some(crate::ipc::UntrustedTask {
                    task,
                    state: "changed".into(),
                    diff,
                }),
            })
            .collect()
    }

    /// The file list a job may plan with: only while the watcher sees every
    /// change of the whole worktree (else each job walks).
    pub(super) fn file_index(&self) -> Option<crate::engine::FileIndex> {
        let fw = &self.config.triggers.file_watch;
        // The list is the worktree project's: with projects below it, a
        // save there is not its file.
        let whole = fw.paths.is_none() && fw.exclude_paths.is_none() && !self.projects.has_nested();
        (whole && self.watching.is_watching()).then(|| self.incoming.files().clone())
    }

    /// Says once per change why a task does not run by itself.
    fn note_untrusted(&mut self, task: &str, state: &TaskTrust) {
        let Some(msg) = self.trust.note(task, state) else {
            return;
        };
        self.publish(What::TrustChanged {
            task: task.to_owned(),
            state: match state {
                TaskTrust::Trusted => "trusted",
                TaskTrust::Untrusted => "untrusted",
                TaskTrust::Changed { .. } => "changed",
            }
            .to_owned(),
            diff: match state {
                TaskTrust::Changed { diff } => diff.clone(),
                _ => Vec::new(),
            },
        });
        tracing::warn!("{msg}");
        let _ = self.persistence.store().event("warning", "trust", &msg);
        let (tasks, why) = match state {
            TaskTrust::Changed { diff } => (vec![task.to_owned()], diff.join("; ")),
            _ => (
                Vec::new(),
                format!("{task} was triggered in a worktree nobody trusted"),
            ),
        };
        self.notifier
            .send(crate::notifier::NotificationEvent::config_untrusted(
                &tasks, &why,
            ));
    }

    /// A save-triggered offer of `task` without the task's own writes
    /// (`selfwrites.rs`); `None` when nothing is left or the task is paused
    /// for starting itself (said once).
    fn guard_self_writes(
        &mut self,
        task: &str,
        files: BTreeSet<PathBuf>,
    ) -> Option<BTreeSet<PathBuf>> {
        let max = self.config.triggers.file_watch.max_self_triggers;
        match self
            .self_writes
            .guard(task, files, &self.workspace.root, max)
        {
            Guarded::Run(files) => Some(files),
            Guarded::OwnWrites => {
                tracing::info!(task, "not run again: the save was of its own run's writes");
                None
            }
            Guarded::Paused { newly, streak } => {
                if newly {
                    let msg = format!(
                        "task {task} paused: its last {streak} runs were started by files its own runs wrote (a formatter, --fix, rewritten snapshots?); a save of yours, `bgtask submit {task}` or a config change starts it again"
                    );
                    tracing::warn!("{msg}");
                    let _ = self.persistence.store().event("warning", "loop", &msg);
                    self.notifier
                        .send(crate::notifier::NotificationEvent::health_alert(
                            false, &msg,
                        ));
                }
                None
            }
        }
    }

    /// Turns a resolved batch into jobs (`schedule::route`) and forgets its
    /// arrivals, in one transaction.
    pub(super) fn route(&mut self, batch: ResolvedBatch) {
        let t = std::time::Instant::now();
        let mut effects = Vec::new();
        let projects = self.projects.clone();
        let trust = match batch.trust {
            _ if batch.resolved.is_empty() => BTreeMap::new(),
            Some(states) => states,
            None => self.trust_states(),
        };
        let mut offers: Vec<(&Resolved, String, crate::schedule::Files)> = Vec::new();
        for r in &batch.resolved {
            self.publish(What::TriggerArrived {
                trigger: r.source.label(),
                files: r.files.as_ref().map_or(0, BTreeSet::len),
            });
            for routed in crate::schedule::route::route(&projects, &trust, r) {
                match routed {
                    Routed::Untrusted { key, state } => self.note_untrusted(&key, &state),
                    Routed::Offer { key, files } => offers.push((r, key, files)),
                }
            }
        }
        // A checkout's saves and its HEAD move offer a task the same
        // files: one offer, the later trigger's.
        let covered: Vec<bool> = (0..offers.len())
            .map(|i| {
                let (_, key, files) = &offers[i];
                offers[i + 1..]
                    .iter()
                    .any(|(_, k, later)| k == key && covers(later, files))
            })
            .collect();
        for ((r, key, files), covered) in offers.into_iter().zip(covered) {
            if covered {
                continue;
            }
            let files = match files {
                Some(files) if r.kind == TriggerKind::Save => {
                    let Some(files) = self.guard_self_writes(&key, files) else {
                        continue;
                    };
                    Some(files)
                }
                other => other,
            };
            let admitted = self.offer(&key, None, files, &r.source, Duration::ZERO, &mut effects);
            tracing::info!(task = %key, kind = ?r.kind, job = admitted.job_id, outcome = %admitted.outcome, "triggered");
        }
        effects.push(Effect::Consumed(batch.ids));
        self.persist(&effects).or_later("a routed batch");
        tracing::debug!(
            triggers = batch.resolved.len(),
            ms = t.elapsed().as_millis(),
            "intake batch routed"
        );
    }
}

// Cron, idle and start: the pure timers (`schedule/timers.rs`) fed with
// the daemon's clocks, their due tasks routed like any other trigger
// (trust included), project-wide.
impl Core {
    /// A save, a hook: the worktree is not idle.
    pub(super) fn note_activity(&mut self) {
        let now = self.clock.now();
        self.incoming.timers().activity(now);
    }

    /// Rebuilds the timers after a config change, keeping the idle state.
    pub(super) fn reset_timers(&mut self) {
        let mut timers = Timers::new(&self.config, self.clock.wall(), self.clock.now());
        timers.carry_over(self.incoming.timers_ref());
        *self.incoming.timers() = timers;
    }

    /// How long until a timer is due.
    pub(super) fn timers_wake(&self) -> Option<Millis> {
        let now = self.clock.now();
        self.incoming
            .timers_ref()
            .next_wakeup(self.clock.wall(), now)
            .map(|d| now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4))
    }

    /// Runs what is due.
    pub(super) fn run_timers(&mut self) {
        if self.stopping.is_cancelled() {
            return;
        }
        let (wall, now) = (self.clock.wall(), self.clock.now());
        let due = self.incoming.timers().due(wall, now);
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
            trust: None,
            partial: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(files: &[&str], rescan: bool) -> Arrival {
        Arrival::Saved {
            files: files.iter().map(PathBuf::from).collect(),
            rescan,
            not_files: Some(Vec::new()),
        }
    }

    #[test]
    fn a_batch_of_saves_is_resolved_as_one() {
        let moved = Arrival::HeadMoved {
            from: Some("a".into()),
            to: Some("b".into()),
            how: None,
        };
        let out = one_save(
            [
                saved(&["b.py", "a.py"], false),
                moved.clone(),
                saved(&["a.py", "c.py"], true),
            ]
            .into_iter(),
        );
        assert_eq!(out, [saved(&["a.py", "b.py", "c.py"], true), moved.clone()]);
        assert_eq!(one_save([moved.clone()].into_iter()), [moved]);
    }
}
