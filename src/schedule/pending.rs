//! Queue effects that could not be written yet (the disk was full, say).
//!
//! The store applies a batch in one transaction, so a failed batch left no
//! trace and can be replayed as is, in order, with the next write. While
//! writes keep failing the buffer is compacted: a job's successive updates
//! collapse into one (folded into its insert when that is unsaved too), so
//! the buffer grows with jobs and files, not with triggers.

use std::collections::HashMap;

use super::{Effect, JobId};

#[derive(Debug, Default)]
pub struct Pending {
    effects: Vec<Effect>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    pub fn len(&self) -> usize {
        self.effects.len()
    }

    /// The buffered effects followed by `more`, to write in one go.
    pub fn take_with(&mut self, more: &[Effect]) -> Vec<Effect> {
        let mut all = std::mem::take(&mut self.effects);
        all.extend_from_slice(more);
        all
    }

    /// Puts back effects whose write failed, compacted.
    pub fn put_back(&mut self, effects: Vec<Effect>) {
        self.effects = compact(effects);
    }
}

/// Collapses each job's updates into the effect that first wrote it (its
/// insert or first update), in place; file additions, drops and finishes
/// stay in order after it.
fn compact(effects: Vec<Effect>) -> Vec<Effect> {
    let mut out: Vec<Effect> = Vec::with_capacity(effects.len());
    let mut slot: HashMap<JobId, usize> = HashMap::new();
    for e in effects {
        match e {
            Effect::Update(h) => match slot.get(&h.id).map(|&i| &mut out[i]) {
                Some(Effect::Insert(w)) => w.apply(&h),
                Some(Effect::Update(old)) => *old = h,
                _ => {
                    slot.insert(h.id, out.len());
                    out.push(Effect::Update(h));
                }
            },
            Effect::Insert(w) => {
                slot.insert(w.id, out.len());
                out.push(Effect::Insert(w));
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::config::Priority;
    use crate::event::{Trigger, TriggerSource};
    use crate::schedule::{FinalState, WaitKind, Waiting};

    fn job(id: JobId, attempt: u32) -> Waiting {
        Waiting {
            id,
            key: format!("k{id}"),
            task: "t".to_owned(),
            priority: Priority::Medium,
            score: 200,
            why: None,
            files: None,
            trigger: Trigger {
                source: TriggerSource::Manual {
                    command: "test".to_owned(),
                },
                at: SystemTime::UNIX_EPOCH,
            },
            enqueued: 0,
            not_before: 0,
            kind: WaitKind::Queued,
            attempt,
            recovered: false,
        }
    }

    fn shape(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Insert(w) => format!("insert {} a{}", w.id, w.attempt),
                Effect::Update(h) => format!("update {} a{}", h.id, h.attempt),
                Effect::AddFiles { id, files } => format!("add {id} {}", files.len()),
                Effect::Drop { id, .. } => format!("drop {id}"),
                Effect::Finish { id, .. } => format!("finish {id}"),
                Effect::Arrived { id, .. } => format!("arrived {id}"),
                Effect::Consumed(ids) => format!("consumed {}", ids.len()),
                Effect::Automation(p) => format!("automation {}", p.is_some()),
            })
            .collect()
    }

    #[test]
    fn snapshots_collapse_in_place_and_order_is_kept() {
        let mut p = Pending::default();
        p.put_back(vec![
            Effect::Insert(job(1, 0)),
            Effect::Update(job(2, 0).head()),
            Effect::Update(job(1, 1).head()),
            Effect::AddFiles {
                id: 1,
                files: vec!["a.py".into()],
            },
            Effect::Update(job(1, 2).head()),
            Effect::Finish {
                id: 2,
                state: FinalState::Done,
                note: None,
            },
        ]);
        let more = [
            Effect::Update(job(1, 3).head()),
            Effect::Drop {
                id: 1,
                task: "t".to_owned(),
                reason: "overflow".to_owned(),
            },
        ];
        let all = p.take_with(&more);
        assert!(p.is_empty());
        p.put_back(all);
        assert_eq!(
            shape(&p.take_with(&[])),
            [
                "insert 1 a3",
                "update 2 a0",
                "add 1 1",
                "finish 2",
                "drop 1"
            ]
        );
    }
}
