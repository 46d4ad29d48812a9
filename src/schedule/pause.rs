//! Automation paused by hand (`bgtask pause`, the dashboard): a manual
//! override of the work nobody asked for in that moment.
//!
//! While automation is paused, a waiting job whose trigger is automatic
//! (a save, a git hook, HEAD moving, a cron time, an idle spell, the
//! start) is *held*: it takes in triggers, coalesces and keeps its place
//! as ever, but does not start. Jobs someone asked for (`bgtask submit`,
//! `bgtask retry`, the dashboard's buttons) start as usual. A manual
//! trigger merged into a held job makes it manual, so it starts; an
//! automatic trigger merged into a manual job leaves it manual (see
//! `Queue::offer`). Resuming lets the held jobs start as usual.
//!
//! The queue keeps the pause and hands every change of it to its caller
//! as an [`Effect::Automation`](super::Effect) to persist, so a daemon
//! that restarts stays paused.

use serde::{Deserialize, Serialize};

use super::job::{Millis, Waiting};

/// Why and since when automation is paused, and who paused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// As given (may be empty).
    pub reason: String,
    /// Who paused it (a user name, `dashboard`, an agent's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Wall-clock milliseconds.
    pub since: Millis,
}

/// Whether `w` waits because automation is paused.
pub(super) fn holds(pause: Option<&Pause>, w: &Waiting) -> bool {
    pause.is_some() && w.trigger.source.is_automatic()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::Pause;
    use crate::config::Priority;
    use crate::event::{Trigger, TriggerSource};
    use crate::schedule::{Admission, Completion, Effect, Offer, Queue};

    fn manual() -> TriggerSource {
        TriggerSource::Manual {
            command: "bgtask submit".into(),
        }
    }

    fn offer(key: &str, source: TriggerSource) -> Offer {
        Offer {
            task: key.to_owned(),
            key: key.to_owned(),
            priority: Priority::Medium,
            score: 200,
            why: None,
            files: None,
            trigger: Trigger {
                source,
                at: SystemTime::UNIX_EPOCH,
            },
            debounce: 0,
        }
    }

    fn pause(reason: &str, since: i64) -> Pause {
        Pause {
            reason: reason.to_owned(),
            by: Some("alice".to_owned()),
            since,
        }
    }

    #[test]
    fn a_paused_queue_holds_automatic_jobs_and_starts_manual_ones() {
        let mut q = Queue::new(1, 10);
        let effects = q.pause(pause("refactor", 5));
        assert_eq!(effects, [Effect::Automation(Some(pause("refactor", 5)))]);
        let sources = [
            ("save", TriggerSource::Save),
            (
                "hook",
                TriggerSource::Hook {
                    hook: "post-commit".into(),
                    head: None,
                },
            ),
            (
                "cron",
                TriggerSource::Schedule {
                    cron: "* * * * *".into(),
                },
            ),
            ("idle", TriggerSource::Idle),
            ("start", TriggerSource::Start),
            ("head", TriggerSource::HeadMoved),
        ];
        for (key, source) in sources {
            q.offer(offer(key, source), 10);
        }
        q.offer(offer("asked", manual()), 10);
        assert_eq!(q.held(), 6);
        assert_eq!(q.next_wakeup(), Some(10), "only the manual job is due");
        assert_eq!(q.pop_ready(10).map(|w| w.task).as_deref(), Some("asked"));
        assert_eq!(q.pop_ready(1_000_000), None, "the rest are held");
        assert_eq!(q.next_wakeup(), None, "nothing to wake for");
        // Resumed: what was held starts as usual.
        let (ended, held, effects) = q.resume().expect("it was paused");
        assert_eq!((ended.reason.as_str(), held), ("refactor", 6));
        assert_eq!(effects, [Effect::Automation(None)]);
        assert_eq!(q.held(), 0);
        assert_eq!(q.next_wakeup(), Some(10));
        let started: Vec<String> = std::iter::from_fn(|| q.pop_ready(20).map(|w| w.task)).collect();
        assert_eq!(started.len(), 6);
        assert!(q.resume().is_none(), "not paused any more");
    }

    #[test]
    fn who_asked_decides_when_triggers_merge() {
        let mut q = Queue::new(1, 10);
        q.pause(pause("refactor", 5));
        // A save, then a submit of the same task: someone asked, it runs.
        q.offer(offer("lint", TriggerSource::Save), 10);
        let (merged, _) = q.offer(offer("lint", manual()), 11);
        assert_eq!(merged, Admission::Merged(1));
        assert_eq!(q.held(), 0);
        let w = q.pop_ready(12).expect("the submit lets it start");
        assert_eq!(w.trigger.source, manual());
        // A submit, then a save: it stays the submit's, and runs.
        q.offer(offer("test", manual()), 13);
        q.offer(offer("test", TriggerSource::Save), 14);
        let w = q.pop_ready(15).expect("a save does not hold a submit");
        assert_eq!(w.trigger.source, manual());
    }

    #[test]
    fn a_second_pause_keeps_its_start_and_a_held_retry_waits_too() {
        let mut q = Queue::new(1, 10);
        q.offer(offer("lint", TriggerSource::Save), 0);
        let job = q.pop_ready(0).unwrap();
        q.pause(pause("first", 5));
        q.pause(pause("second", 9));
        assert_eq!(q.paused(), Some(&pause("second", 5)));
        // Its run failed while paused: the retry is automatic work too.
        let failed = Completion::Failed {
            permanent: false,
            error: "x".into(),
        };
        q.complete(&job.key, &failed, 10, 3, &mut |_| 100);
        assert_eq!(q.held(), 1);
        assert!(q.pop_ready(1_000).is_none());
        let mut restarted = Queue::new(2, 10);
        restarted.restore_pause(pause("second", 5));
        assert_eq!(restarted.paused().map(|p| p.since), Some(5));
    }
}
