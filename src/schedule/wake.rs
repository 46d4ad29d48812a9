//! When the core loop next needs to wake: the earliest of the deadlines
//! that count now. Pure, so the rules (memory is given back only while no
//! job runs; the queue's next due job only while a worker is free and no
//! resource limit holds jobs back; the intake only while no batch is being
//! resolved) are tested here, not under a daemon.

use crate::clock::Millis;

/// The longest the loop sleeps with nothing due (it also wakes for any
/// command).
pub const MAX_SLEEP: Millis = 3_600_000;
/// How often a held-back queue looks again at what holds it.
pub const HOLDING_POLL: Millis = 2_000;
/// How often a failing store is tried again.
pub const STORE_RETRY_POLL: Millis = 1_000;

/// What the core could wait for, as deadlines on its clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waits {
    /// A resource limit holds jobs back (polled).
    pub holding: bool,
    /// The store failed and is retried (polled).
    pub store_retry: bool,
    /// A config read as invalid is read again then.
    pub config_settle: Option<Millis>,
    /// The intake's next batch is due then (ignored while one is resolved).
    pub intake: Option<Millis>,
    pub resolving: bool,
    /// The next cron time or idle spell.
    pub timers: Option<Millis>,
    /// When memory is given back (heap, then code pages).
    pub memory: [Option<Millis>; 2],
    /// The queue's next job is due then.
    pub queue: Option<Millis>,
    /// No job runs.
    pub idle: bool,
    /// A worker is free and the daemon is not stopping.
    pub free: bool,
}

/// The time the loop wakes at, at most [`MAX_SLEEP`] from `now`.
pub fn next_wake(w: &Waits, now: Millis) -> Millis {
    let polls = [
        w.holding.then_some(now + HOLDING_POLL),
        w.store_retry.then_some(now + STORE_RETRY_POLL),
    ];
    let memory = w.memory.iter().map(|m| m.filter(|_| w.idle));
    let deadlines = [
        w.config_settle,
        w.intake.filter(|_| !w.resolving),
        w.timers,
        w.queue.filter(|_| w.free && !w.holding),
    ];
    polls
        .into_iter()
        .chain(memory)
        .chain(deadlines)
        .flatten()
        .fold(now + MAX_SLEEP, Millis::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_due_sleeps_an_hour() {
        assert_eq!(next_wake(&Waits::default(), 1_000), 1_000 + MAX_SLEEP);
    }

    #[test]
    fn the_earliest_deadline_that_counts_wins() {
        let w = Waits {
            intake: Some(5_050),
            timers: Some(9_000),
            queue: Some(5_010),
            free: true,
            ..Waits::default()
        };
        assert_eq!(next_wake(&w, 5_000), 5_010);
        // Without a free worker the queue cannot start anything.
        assert_eq!(
            next_wake(
                &Waits {
                    free: false,
                    ..w.clone()
                },
                5_000
            ),
            5_050
        );
        // While a batch resolves, its intake deadline waits.
        let resolving = Waits {
            free: false,
            resolving: true,
            ..w.clone()
        };
        assert_eq!(next_wake(&resolving, 5_000), 9_000);
        // Held back: polled every two seconds, the queue's time ignored.
        let held = Waits {
            holding: true,
            ..w.clone()
        };
        assert_eq!(next_wake(&held, 5_000), 5_050);
        let held = Waits {
            holding: true,
            intake: None,
            timers: None,
            ..w
        };
        assert_eq!(next_wake(&held, 5_000), 5_000 + HOLDING_POLL);
    }

    #[test]
    fn memory_is_given_back_only_while_idle_and_a_failing_store_is_polled() {
        let w = Waits {
            memory: [Some(3_000), Some(10_000)],
            ..Waits::default()
        };
        assert_eq!(next_wake(&w, 0), MAX_SLEEP, "a job runs");
        assert_eq!(
            next_wake(
                &Waits {
                    idle: true,
                    ..w.clone()
                },
                0
            ),
            3_000
        );
        let failing = Waits {
            store_retry: true,
            idle: true,
            ..w
        };
        assert_eq!(next_wake(&failing, 0), STORE_RETRY_POLL);
        let settle = Waits {
            config_settle: Some(300),
            ..Waits::default()
        };
        assert_eq!(next_wake(&settle, 0), 300);
    }
}
