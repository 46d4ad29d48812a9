//! Property tests: the queue against a tiny reference model written the
//! naive way (vectors, linear scans), over random sequences of offers,
//! starts and completions. Both must admit, start and finish the same jobs;
//! the queue's invariants must hold after every step.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::SystemTime;

use proptest::prelude::*;

use super::{Admission, Completion, Effect, Millis, Offer, Queue};
use crate::config::Priority;
use crate::event::{Trigger, TriggerSource};

#[derive(Debug, Clone)]
enum Op {
    Offer {
        key: u8,
        score: i32,
        files: Option<Vec<u8>>,
        debounce: bool,
    },
    Pop,
    Complete {
        key: u8,
        outcome: u8,
    },
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..5, prop_oneof![Just(100), Just(200), Just(300)], proptest::option::of(proptest::collection::vec(0u8..6, 0..3)), any::<bool>())
            .prop_map(|(key, score, files, debounce)| Op::Offer { key, score, files, debounce }),
        3 => Just(Op::Pop),
        2 => (0u8..5, 0u8..3).prop_map(|(key, outcome)| Op::Complete { key, outcome }),
        1 => (0u16..3000).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct MJob {
    id: i64,
    key: String,
    score: i32,
    files: Option<BTreeSet<u8>>,
    enqueued: Millis,
    not_before: Millis,
    attempt: u32,
    retry: bool,
}

#[derive(Default)]
struct Model {
    waiting: Vec<MJob>,
    running: Vec<MJob>,
    next_id: i64,
    max: usize,
}

fn merge(a: &mut Option<BTreeSet<u8>>, b: Option<BTreeSet<u8>>) {
    match (a.as_mut(), b) {
        (Some(s), Some(m)) => s.extend(m),
        (Some(_), None) => *a = None,
        (None, _) => {}
    }
}

const DEBOUNCE: Millis = 100;
const MAX_RETRIES: u32 = 2;

impl Model {
    fn offer(
        &mut self,
        key: &str,
        score: i32,
        files: Option<BTreeSet<u8>>,
        debounce: bool,
        now: Millis,
    ) -> (&'static str, i64) {
        let d = if debounce { DEBOUNCE } else { 0 };
        if let Some(j) = self.waiting.iter_mut().find(|j| j.key == key) {
            merge(&mut j.files, files);
            j.score = j.score.max(score);
            if j.retry {
                j.retry = false;
                j.attempt = 0;
                j.not_before = now + d;
            } else if d > 0 {
                j.not_before = j.not_before.max(now + d).min(j.enqueued + 10 * d);
            }
            return ("merged", j.id);
        }
        let id = self.next_id;
        self.next_id += 1;
        let new = MJob {
            id,
            key: key.into(),
            score,
            files,
            enqueued: now,
            not_before: now + d,
            attempt: 0,
            retry: false,
        };
        if self.waiting.len() >= self.max {
            let mut all: Vec<&MJob> = self.waiting.iter().collect();
            all.push(&new);
            all.sort_by(|a, b| {
                a.score
                    .cmp(&b.score)
                    .then(a.enqueued.cmp(&b.enqueued))
                    .then(a.id.cmp(&b.id))
            });
            let victim = all[0].id;
            if victim == id {
                return ("dropped", id);
            }
            self.waiting.retain(|j| j.id != victim);
        }
        let behind = self.running.iter().any(|r| r.key == key);
        self.waiting.push(new);
        (if behind { "rerun_after" } else { "queued" }, id)
    }

    fn pop(&mut self, now: Millis) -> Option<i64> {
        let mut best: Option<usize> = None;
        for (i, j) in self.waiting.iter().enumerate() {
            if j.not_before > now || self.running.iter().any(|r| r.key == j.key) {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let o = &self.waiting[b];
                    (j.score, -j.enqueued, -j.id) > (o.score, -o.enqueued, -o.id)
                }
            };
            if better {
                best = Some(i);
            }
        }
        let j = self.waiting.remove(best?);
        let id = j.id;
        self.running.push(j);
        Some(id)
    }

    fn complete(&mut self, key: &str, outcome: u8, now: Millis) -> Option<(i64, &'static str)> {
        let i = self.running.iter().position(|r| r.key == key)?;
        let mut j = self.running.remove(i);
        match outcome {
            0 => Some((j.id, "done")),
            1 => Some((j.id, "failed")),
            _ => {
                if let Some(w) = self.waiting.iter_mut().find(|w| w.key == key) {
                    merge(&mut w.files, j.files);
                    return Some((j.id, "failed"));
                }
                if j.attempt >= MAX_RETRIES {
                    return Some((j.id, "dead"));
                }
                j.not_before = now + 1000 * Millis::from(j.attempt + 1);
                j.attempt += 1;
                j.retry = true;
                let id = j.id;
                if self.waiting.len() >= self.max {
                    let mut all: Vec<&MJob> = self.waiting.iter().collect();
                    all.push(&j);
                    all.sort_by(|a, b| {
                        a.score
                            .cmp(&b.score)
                            .then(a.enqueued.cmp(&b.enqueued))
                            .then(a.id.cmp(&b.id))
                    });
                    let victim = all[0].id;
                    if victim == id {
                        return Some((id, "retry"));
                    }
                    self.waiting.retain(|w| w.id != victim);
                }
                self.waiting.push(j);
                Some((id, "retry"))
            }
        }
    }
}

fn trigger() -> Trigger {
    Trigger {
        source: TriggerSource::Manual {
            command: "p".into(),
        },
        at: SystemTime::UNIX_EPOCH,
    }
}

fn files_of(v: Option<&Vec<u8>>) -> (Option<BTreeSet<u8>>, Option<BTreeSet<PathBuf>>) {
    match v {
        None => (None, None),
        Some(v) => (
            Some(v.iter().copied().collect()),
            Some(v.iter().map(|f| PathBuf::from(format!("f{f}"))).collect()),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn queue_matches_the_reference_model(ops in proptest::collection::vec(op(), 1..120), max in 1usize..5) {
        let mut q = Queue::new(1, max);
        let mut m = Model { next_id: 1, max, ..Model::default() };
        let mut now: Millis = 0;
        for op in ops {
            match op {
                Op::Offer { key, score, files, debounce } => {
                    let key = format!("k{key}");
                    let (mfiles, qfiles) = files_of(files.as_ref());
                    let (want, want_id) = m.offer(&key, score, mfiles, debounce, now);
                    let (got, _) = q.offer(
                        Offer {
                            task: key.clone(), key, priority: Priority::Medium, score, why: None,
                            files: qfiles, trigger: trigger(), debounce: if debounce { DEBOUNCE } else { 0 },
                        },
                        now,
                    );
                    prop_assert_eq!(got.label(), want);
                    prop_assert_eq!(got.job_id(), want_id);
                    if let Admission::Dropped(_) = got {
                        prop_assert!(q.waiting().all(|w| w.id != want_id));
                    }
                }
                Op::Pop => {
                    let want = m.pop(now);
                    let got = q.pop_ready(now).map(|w| w.id);
                    prop_assert_eq!(got, want);
                }
                Op::Complete { key, outcome } => {
                    let key = format!("k{key}");
                    let want = m.complete(&key, outcome, now);
                    let completion = match outcome {
                        0 => Completion::Succeeded,
                        1 => Completion::Failed { permanent: true, error: "e".into() },
                        _ => Completion::Failed { permanent: false, error: "e".into() },
                    };
                    let effects = q.complete(&key, &completion, now, MAX_RETRIES, &mut |a| 1000 * Millis::from(a + 1));
                    let got = effects.iter().find_map(|e| match e {
                        Effect::Finish { id, state, .. } => Some((*id, match state {
                            super::FinalState::Done => "done",
                            super::FinalState::Failed => "failed",
                            super::FinalState::Dead => "dead",
                            super::FinalState::Cancelled => "cancelled",
                        })),
                        Effect::Update(w) if w.kind == super::WaitKind::RetryWait && w.attempt > 0 => Some((w.id, "retry")),
                        _ => None,
                    });
                    prop_assert_eq!(got, want);
                }
                Op::Advance(ms) => now += Millis::from(ms),
            }
            // Invariants.
            let keys: Vec<&str> = q.waiting().map(|w| w.key.as_str()).collect();
            let unique: BTreeSet<&str> = keys.iter().copied().collect();
            prop_assert_eq!(keys.len(), unique.len(), "one waiting job per key");
            prop_assert!(q.waiting_len() <= max);
            let model_waiting: BTreeSet<i64> = m.waiting.iter().map(|j| j.id).collect();
            let queue_waiting: BTreeSet<i64> = q.waiting().map(|w| w.id).collect();
            prop_assert_eq!(queue_waiting, model_waiting);
        }
    }
}
