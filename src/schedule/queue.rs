//! The job queue: pure logic, no I/O, no clock (time is a parameter).
//!
//! Rules (RELIABILITY 5–7):
//! - At most one *waiting* and one *running* job per dedup key. A trigger
//!   for a key that is waiting merges into it (file sets union, higher
//!   priority wins); a trigger for a key that is running becomes the waiting
//!   job, which starts only when the running one ends ("run again after").
//! - Order: highest score first, then oldest, then lowest id; a job starts
//!   only once its `not_before` (debounce, retry backoff) has passed.
//! - Overflow: past `max_size` waiting jobs, the lowest-score, oldest waiting
//!   job is dropped (possibly the newcomer); running jobs are never dropped.
//! - A transient failure waits and retries with the backoff the caller
//!   computes, up to `max_retries`; a newer trigger for the same key
//!   supersedes a pending retry (its files are kept).
//! - While automation is paused (`pause.rs`), jobs of automatic triggers
//!   wait and do not start; a merge keeps a job someone asked for theirs.
//!
//! Every change is returned as an [`Effect`] for the caller to persist; an
//! update also says whether it changed what a front end shows of the job
//! (`JobHead::shown_changed`), so a storm of identical triggers is not a
//! storm of events.

use std::collections::{BTreeMap, HashMap};

use super::job::{
    Admission, Completion, Effect, FinalState, JobId, Millis, Offer, Shown, WaitKind, Waiting,
    merge_files, merged,
};
use super::pause::{Pause, holds};

#[derive(Debug, Clone)]
struct Running {
    id: JobId,
    waiting: Waiting,
}

#[derive(Debug)]
pub struct Queue {
    waiting: BTreeMap<JobId, Waiting>,
    by_key: HashMap<String, JobId>,
    running: HashMap<String, Running>,
    next_id: JobId,
    max_size: usize,
    /// Automation paused by hand: automatic jobs are held.
    pause: Option<Pause>,
}

impl Queue {
    pub fn new(next_id: JobId, max_size: usize) -> Queue {
        Queue {
            waiting: BTreeMap::new(),
            by_key: HashMap::new(),
            running: HashMap::new(),
            next_id,
            max_size: max_size.max(1),
            pause: None,
        }
    }

    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size.max(1);
    }

    /// Puts back a waiting job read from the store at start. A second job
    /// for the same key (which the rules never produce) is merged into the
    /// first.
    pub fn restore(&mut self, w: Waiting) -> Vec<Effect> {
        self.next_id = self.next_id.max(w.id + 1);
        if let Some(&first) = self.by_key.get(&w.key) {
            let existing = self
                .waiting
                .get_mut(&first)
                .expect("by_key points at a waiting job");
            let added = merge_files(&mut existing.files, w.files);
            let mut effects = merged(existing, added, true);
            effects.push(Effect::Finish {
                id: w.id,
                state: FinalState::Failed,
                note: Some(format!("merged into job {first}")),
            });
            return effects;
        }
        self.by_key.insert(w.key.clone(), w.id);
        self.waiting.insert(w.id, w);
        Vec::new()
    }

    pub fn waiting(&self) -> impl Iterator<Item = &Waiting> {
        self.waiting.values()
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    pub fn is_running(&self, key: &str) -> bool {
        self.running.contains_key(key)
    }

    pub fn offer(&mut self, offer: Offer, now: Millis) -> (Admission, Vec<Effect>) {
        let ready_at = now + offer.debounce;
        if let Some(&id) = self.by_key.get(&offer.key) {
            let w = self
                .waiting
                .get_mut(&id)
                .expect("by_key points at a waiting job");
            let before = Shown::of(w, now);
            let added = merge_files(&mut w.files, offer.files);
            if offer.score > w.score {
                w.score = offer.score;
                w.priority = offer.priority;
                w.why = offer.why;
            }
            // A job someone asked for stays theirs: a save merged into it
            // does not make it automatic (a pause would hold it).
            let asked = !w.trigger.source.is_automatic();
            if !(asked && offer.trigger.source.is_automatic()) {
                w.trigger = offer.trigger;
            }
            if w.kind == WaitKind::RetryWait {
                // A newer trigger supersedes the pending retry.
                w.kind = WaitKind::Queued;
                w.attempt = 0;
                w.not_before = ready_at;
            } else if offer.debounce > 0 {
                // Trailing debounce, capped at ten windows after the first trigger.
                let cap = w.enqueued + 10 * offer.debounce;
                w.not_before = w.not_before.max(ready_at).min(cap);
            }
            let changed = Shown::of(w, now) != before;
            return (Admission::Merged(id), merged(w, added, changed));
        }
        let id = self.next_id;
        self.next_id += 1;
        let w = Waiting {
            id,
            task: offer.task,
            key: offer.key.clone(),
            priority: offer.priority,
            score: offer.score,
            why: offer.why,
            files: offer.files,
            trigger: offer.trigger,
            attempt: 0,
            enqueued: now,
            not_before: ready_at,
            kind: WaitKind::Queued,
            recovered: false,
        };
        let behind_running = self.running.contains_key(&offer.key);
        let mut effects = vec![Effect::Insert(w.clone())];
        if !self.insert(w, &mut effects) {
            return (Admission::Dropped(id), effects);
        }
        let admission = if behind_running {
            Admission::RerunAfter(id)
        } else {
            Admission::Queued(id)
        };
        (admission, effects)
    }

    /// Adds a waiting job, first dropping the lowest-score, oldest waiting
    /// job (possibly this one) when the queue is full. Returns whether `w`
    /// stayed.
    fn insert(&mut self, w: Waiting, effects: &mut Vec<Effect>) -> bool {
        if self.waiting.len() >= self.max_size {
            let (victim, task) = self
                .waiting
                .values()
                .chain(std::iter::once(&w))
                .min_by_key(|c| (c.score, c.enqueued, c.id))
                .map(|c| (c.id, c.task.clone()))
                .expect("at least the newcomer");
            let reason = format!(
                "overflow (the queue was full at {} waiting jobs)",
                self.max_size
            );
            effects.push(Effect::Drop {
                id: victim,
                task,
                reason,
            });
            if victim == w.id {
                return false;
            }
            let dropped = self.waiting.remove(&victim).expect("victim is waiting");
            self.by_key.remove(&dropped.key);
        }
        self.by_key.insert(w.key.clone(), w.id);
        self.waiting.insert(w.id, w);
        true
    }

    /// The best job that may start now, which becomes running.
    pub fn pop_ready(&mut self, now: Millis) -> Option<Waiting> {
        let id = self
            .waiting
            .values()
            .filter(|w| w.not_before <= now && self.may_start(w))
            .max_by_key(|w| {
                (
                    w.score,
                    std::cmp::Reverse(w.enqueued),
                    std::cmp::Reverse(w.id),
                )
            })
            .map(|w| w.id)?;
        let w = self.waiting.remove(&id).expect("found above");
        self.by_key.remove(&w.key);
        self.running.insert(
            w.key.clone(),
            Running {
                id,
                waiting: w.clone(),
            },
        );
        Some(w)
    }

    /// When the next waiting job becomes ready, if one is waiting on time.
    pub fn next_wakeup(&self) -> Option<Millis> {
        self.waiting
            .values()
            .filter(|w| self.may_start(w))
            .map(|w| w.not_before)
            .min()
    }

    /// Whether `w` may start once due: no job of its key runs, and no
    /// pause holds it.
    fn may_start(&self, w: &Waiting) -> bool {
        !self.running.contains_key(&w.key) && !self.is_held(w)
    }

    /// Pauses automation; a second pause replaces the reason and who,
    /// keeping since when.
    pub fn pause(&mut self, mut pause: Pause) -> Vec<Effect> {
        if let Some(old) = &self.pause {
            pause.since = old.since;
        }
        self.pause = Some(pause.clone());
        vec![Effect::Automation(Some(pause))]
    }

    /// Resumes automation: the pause that ended and how many jobs it held
    /// (they may start now), or `None` when it was not paused.
    pub fn resume(&mut self) -> Option<(Pause, usize, Vec<Effect>)> {
        let held = self.held();
        let pause = self.pause.take()?;
        Some((pause, held, vec![Effect::Automation(None)]))
    }

    /// Puts back the pause read from the store at start.
    pub fn restore_pause(&mut self, pause: Pause) {
        self.pause = Some(pause);
    }

    pub fn paused(&self) -> Option<&Pause> {
        self.pause.as_ref()
    }

    /// Whether `w` waits because automation is paused.
    pub fn is_held(&self, w: &Waiting) -> bool {
        holds(self.pause.as_ref(), w)
    }

    /// Waiting jobs held by the pause.
    pub fn held(&self) -> usize {
        self.waiting.values().filter(|w| self.is_held(w)).count()
    }

    /// Removes a waiting job (`bgtask cancel`).
    pub fn cancel(&mut self, id: JobId) -> Option<Waiting> {
        let w = self.waiting.remove(&id)?;
        self.by_key.remove(&w.key);
        Some(w)
    }

    /// The running job of `key` ended. `backoff(attempt)` is the wait before
    /// retry number `attempt + 1`.
    pub fn complete(
        &mut self,
        key: &str,
        outcome: &Completion,
        now: Millis,
        max_retries: u32,
        backoff: &mut dyn FnMut(u32) -> Millis,
    ) -> Vec<Effect> {
        let Some(Running {
            id,
            waiting: mut job,
        }) = self.running.remove(key)
        else {
            return Vec::new();
        };
        match outcome {
            Completion::Succeeded => vec![Effect::Finish {
                id,
                state: FinalState::Done,
                note: None,
            }],
            Completion::Failed {
                permanent: true,
                error,
            } => {
                vec![Effect::Finish {
                    id,
                    state: FinalState::Failed,
                    note: Some(error.clone()),
                }]
            }
            Completion::Failed {
                permanent: false,
                error,
            } => {
                if let Some(&next) = self.by_key.get(key) {
                    // A newer trigger is already waiting: it supersedes the retry.
                    let newer = self
                        .waiting
                        .get_mut(&next)
                        .expect("by_key points at a waiting job");
                    let before = Shown::of(newer, now);
                    let added = merge_files(&mut newer.files, job.files);
                    let changed = Shown::of(newer, now) != before;
                    let mut effects = merged(newer, added, changed);
                    effects.push(Effect::Finish {
                        id,
                        state: FinalState::Failed,
                        note: Some(format!("{error} (superseded by job {next})")),
                    });
                    return effects;
                }
                if job.attempt >= max_retries {
                    return vec![Effect::Finish {
                        id,
                        state: FinalState::Dead,
                        note: Some(format!(
                            "{error} (gave up after {} attempts)",
                            job.attempt + 1
                        )),
                    }];
                }
                job.not_before = now + backoff(job.attempt);
                job.attempt += 1;
                job.kind = WaitKind::RetryWait;
                job.recovered = false;
                let mut effects = vec![Effect::Update(job.head())];
                self.insert(job, &mut effects);
                effects
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::SystemTime;

    use super::*;
    use crate::config::Priority;
    use crate::event::{Trigger, TriggerSource};

    fn trigger() -> Trigger {
        Trigger {
            source: TriggerSource::Manual {
                command: "t".into(),
            },
            at: SystemTime::UNIX_EPOCH,
        }
    }

    fn offer(key: &str, score: i32, files: &[&str]) -> Offer {
        Offer {
            task: key.to_owned(),
            key: key.to_owned(),
            priority: Priority::Medium,
            score,
            why: None,
            files: (!files.is_empty()).then(|| files.iter().map(PathBuf::from).collect()),
            trigger: trigger(),
            debounce: 0,
        }
    }

    #[test]
    fn priority_then_age_orders_the_queue() {
        let mut q = Queue::new(1, 10);
        q.offer(offer("low", 100, &[]), 0);
        q.offer(offer("high", 300, &[]), 1);
        q.offer(offer("high2", 300, &[]), 2);
        let order: Vec<String> = std::iter::from_fn(|| q.pop_ready(10).map(|w| w.task)).collect();
        assert_eq!(order, ["high", "high2", "low"]);
    }

    #[test]
    fn coalescing_merges_files_and_runs_again_after() {
        let mut q = Queue::new(1, 10);
        let (first, _) = q.offer(offer("sec", 200, &["a.py"]), 0);
        let (second, _) = q.offer(offer("sec", 300, &["b.py"]), 1);
        assert_eq!(first, Admission::Queued(1));
        assert_eq!(second, Admission::Merged(1));
        let job = q.pop_ready(2).unwrap();
        assert_eq!(job.score, 300);
        assert_eq!(job.files.unwrap().len(), 2);
        // A trigger while it runs waits behind it.
        let (third, _) = q.offer(offer("sec", 200, &["c.py"]), 3);
        assert_eq!(third, Admission::RerunAfter(2));
        assert!(q.pop_ready(4).is_none(), "same key is running");
        let (fourth, _) = q.offer(offer("sec", 200, &[]), 5);
        assert_eq!(fourth, Admission::Merged(2));
        q.complete("sec", &Completion::Succeeded, 6, 3, &mut |_| 0);
        let next = q.pop_ready(7).unwrap();
        assert_eq!(
            (next.id, next.files),
            (2, None),
            "project absorbs file sets"
        );
    }

    #[test]
    fn debounce_is_trailing_and_capped() {
        let mut q = Queue::new(1, 10);
        let mut o = offer("save", 200, &["a"]);
        o.debounce = 100;
        q.offer(o.clone(), 0);
        assert!(q.pop_ready(99).is_none());
        q.offer(o.clone(), 90);
        assert_eq!(q.next_wakeup(), Some(190));
        for t in (100..2000).step_by(50) {
            q.offer(o.clone(), t);
        }
        assert_eq!(q.next_wakeup(), Some(1000), "capped at ten windows");
        assert!(q.pop_ready(1000).is_some());
    }

    #[test]
    fn overflow_drops_the_lowest_oldest_waiting_job_never_a_running_one() {
        let mut q = Queue::new(1, 2);
        q.offer(offer("run", 100, &[]), 0);
        q.pop_ready(0);
        q.offer(offer("a", 100, &[]), 1);
        q.offer(offer("b", 100, &[]), 2);
        let (adm, eff) = q.offer(offer("c", 200, &[]), 3);
        assert_eq!(adm, Admission::Queued(4));
        assert!(eff.contains(&Effect::Drop {
            id: 2,
            task: "a".into(),
            reason: "overflow (the queue was full at 2 waiting jobs)".into()
        }));
        let (adm, _) = q.offer(offer("d", 50, &[]), 4);
        assert_eq!(adm, Admission::Dropped(5), "the newcomer is the lowest");
        assert_eq!(q.waiting_len(), 2);
        assert_eq!(q.running_len(), 1);
    }

    #[test]
    fn transient_failures_retry_with_backoff_then_die() {
        let mut q = Queue::new(1, 10);
        q.offer(offer("t", 100, &[]), 0);
        let fail = Completion::Failed {
            permanent: false,
            error: "boom".into(),
        };
        let mut waits = Vec::new();
        let mut now = 0;
        loop {
            let job = q.pop_ready(now).expect("ready");
            let effects = q.complete(&job.key, &fail, now, 2, &mut |a| 1000 << a);
            if let [Effect::Finish { state, note, .. }] = effects.as_slice() {
                assert_eq!(*state, FinalState::Dead);
                assert_eq!(note.as_deref(), Some("boom (gave up after 3 attempts)"));
                break;
            }
            let w = q.waiting().next().unwrap();
            assert_eq!(w.kind, WaitKind::RetryWait);
            waits.push(w.not_before - now);
            now = w.not_before;
        }
        assert_eq!(waits, [1000, 2000]);
    }

    #[test]
    fn permanent_failures_do_not_retry_and_newer_triggers_supersede_retries() {
        let mut q = Queue::new(1, 10);
        q.offer(offer("t", 100, &["a"]), 0);
        let job = q.pop_ready(0).unwrap();
        let eff = q.complete(
            &job.key,
            &Completion::Failed {
                permanent: true,
                error: "exit 127".into(),
            },
            1,
            5,
            &mut |_| 10,
        );
        assert!(matches!(
            eff.as_slice(),
            [Effect::Finish {
                state: FinalState::Failed,
                ..
            }]
        ));
        assert_eq!(q.waiting_len(), 0);

        q.offer(offer("t", 100, &["a"]), 2);
        let job = q.pop_ready(2).unwrap();
        q.complete(
            &job.key,
            &Completion::Failed {
                permanent: false,
                error: "x".into(),
            },
            3,
            5,
            &mut |_| 10_000,
        );
        let (adm, _) = q.offer(offer("t", 100, &["b"]), 4);
        assert_eq!(adm, Admission::Merged(job.id));
        let w = q
            .pop_ready(4)
            .expect("the newer trigger runs at once, not after the backoff");
        assert_eq!(w.attempt, 0);
        assert_eq!(w.files.unwrap().len(), 2);
    }

    /// Whether the update of each merge changed what is shown.
    fn shown(effects: &[Effect]) -> Vec<bool> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Update(h) => Some(h.shown_changed),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_merge_says_whether_it_changed_what_is_shown() {
        let debounced = |files: &[&str]| Offer {
            debounce: 100,
            ..offer("t", 200, files)
        };
        // (offer, at, changed?): against a job first queued at 0 with
        // a.py, a 100 ms debounce, capped at 1000.
        let rows: [(Offer, Millis, bool); 8] = [
            (debounced(&["a.py"]), 10, false), // the same again: the deadline only moves
            (debounced(&["a.py", "b.py"]), 20, true), // a file more
            (debounced(&["b.py"]), 30, false), // files it has
            (debounced(&["a.py"]), 500, true), // the debounce had passed: held again
            (offer("t", 300, &["a.py"]), 510, true), // a higher score
            (offer("t", 250, &["a.py"]), 520, false), // a lower one does not win
            (offer("t", 300, &[]), 530, true), // the whole project now
            (offer("t", 300, &["c.py"]), 540, false), // absorbed
        ];
        let mut q = Queue::new(1, 10);
        q.offer(debounced(&["a.py"]), 0);
        for (i, (o, at, want)) in rows.into_iter().enumerate() {
            let (adm, effects) = q.offer(o, at);
            assert_eq!(adm, Admission::Merged(1), "row {i}");
            assert_eq!(shown(&effects), [want], "row {i}: {effects:?}");
        }
        // A newer trigger superseding a retry changes its state.
        let mut q = Queue::new(1, 10);
        q.offer(offer("t", 100, &[]), 0);
        let job = q.pop_ready(0).unwrap();
        let failed = Completion::Failed {
            permanent: false,
            error: "x".into(),
        };
        let retry = q.complete(&job.key, &failed, 1, 5, &mut |_| 10_000);
        assert_eq!(shown(&retry), [true]);
        let (_, effects) = q.offer(offer("t", 100, &[]), 2);
        assert_eq!(shown(&effects), [true]);
    }
}
