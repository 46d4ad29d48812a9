//! The daemon's event bus: the core (and the job tasks, and the notifier
//! for each delivery it records: [`on_delivery`]) publish, each
//! subscriber (a connection that sent `subscribe`) receives. The last
//! [`KEPT`] events are kept so a subscriber that reconnects gets what it
//! missed (`after`), and one that falls behind is told how many it lost
//! instead of slowing the core: publishing never waits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use crate::ipc::events::{Event, Subscribed, What};

/// Recent events kept for subscribers that reconnect.
pub const KEPT: usize = 4096;
/// Events a subscriber may fall behind by before it is told it lagged.
const BEHIND: usize = 1024;

#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    epoch: i64,
    recent: Mutex<Recent>,
    tx: broadcast::Sender<Arc<Event>>,
}

struct Recent {
    last_seq: u64,
    kept: VecDeque<Arc<Event>>,
}

/// A new subscriber's start: what it missed and is still kept, then the
/// live events.
pub struct Subscription {
    pub subscribed: Subscribed,
    pub backlog: Vec<Arc<Event>>,
    pub live: broadcast::Receiver<Arc<Event>>,
}

impl Events {
    /// A bus for the daemon started at `epoch` (ms since the Unix epoch).
    pub fn new(epoch: i64) -> Events {
        let (tx, _) = broadcast::channel(BEHIND);
        Events {
            inner: Arc::new(Inner {
                epoch,
                recent: Mutex::new(Recent {
                    last_seq: 0,
                    kept: VecDeque::with_capacity(64),
                }),
                tx,
            }),
        }
    }

    /// Publishes `what`, now.
    pub fn publish(&self, what: What) {
        let mut recent = self.recent();
        recent.last_seq += 1;
        let event = Arc::new(Event {
            seq: recent.last_seq,
            at_ms: crate::clock::now_ms(),
            what,
        });
        if recent.kept.len() == KEPT {
            recent.kept.pop_front();
        }
        recent.kept.push_back(event.clone());
        // Sent under the lock: a subscriber taken meanwhile gets every
        // event once, from its backlog or live. No subscriber is fine.
        let _ = self.inner.tx.send(event);
    }

    /// A subscription from the event after `after` (or from now); an
    /// `after` of another daemon (`epoch`) starts at the oldest kept.
    pub fn subscribe(&self, after: Option<u64>, epoch: Option<i64>) -> Subscription {
        let after = match epoch {
            Some(e) if e != self.inner.epoch => Some(0),
            _ => after,
        };
        let recent = self.recent();
        let live = self.inner.tx.subscribe();
        let (backlog, missed) = match after {
            Some(after) if after < recent.last_seq => {
                let first_kept = recent.kept.front().map_or(recent.last_seq + 1, |e| e.seq);
                let backlog: Vec<Arc<Event>> = recent
                    .kept
                    .iter()
                    .filter(|e| e.seq > after)
                    .cloned()
                    .collect();
                (backlog, first_kept.saturating_sub(after + 1))
            }
            _ => (Vec::new(), 0),
        };
        Subscription {
            subscribed: Subscribed {
                epoch: self.inner.epoch,
                pid: std::process::id(),
                last_seq: recent.last_seq,
                missed,
            },
            backlog,
            live,
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Each delivery the notifier records, published as
/// `notification_delivered` (the notifier knows nothing of the bus).
pub fn on_delivery(bus: Events) -> crate::notifier::OnDelivery {
    Arc::new(move |d: &crate::notifier::Delivery<'_>| {
        bus.publish(What::NotificationDelivered {
            channel: d.channel.to_owned(),
            outcome: d.outcome.as_str().to_owned(),
            notification: d.event.to_owned(),
            severity: d.severity.as_str().to_owned(),
            title: d.title.to_owned(),
            task: d.task.map(str::to_owned),
            run_id: d.run_id,
            error: d.error.map(str::to_owned),
        });
    })
}

/// One run's analyzers, as the engine reports them, published with the
/// job and run they belong to.
#[derive(Clone)]
pub struct RunEvents {
    bus: Events,
    job_id: i64,
    run_id: i64,
    task: String,
}

impl RunEvents {
    pub fn new(bus: Events, job_id: i64, run_id: i64, task: &str) -> RunEvents {
        RunEvents {
            bus,
            job_id,
            run_id,
            task: task.to_owned(),
        }
    }

    pub fn progress(&self, progress: &crate::engine::Progress) {
        let (job_id, run_id, task) = (self.job_id, self.run_id, self.task.clone());
        self.bus.publish(match progress {
            crate::engine::Progress::Started { analyzer, .. } => What::AnalyzerStarted {
                job_id,
                run_id,
                task,
                analyzer: analyzer.clone(),
            },
            crate::engine::Progress::Finished {
                analyzer,
                status,
                cached,
            } => What::AnalyzerFinished {
                job_id,
                run_id,
                task,
                analyzer: analyzer.clone(),
                status: status.as_str().to_owned(),
                cached: *cached,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopping() -> What {
        What::Stopping
    }

    #[tokio::test]
    async fn a_subscriber_gets_every_event_once_in_order() {
        let bus = Events::new(1);
        bus.publish(stopping());
        let mut sub = bus.subscribe(None, None);
        assert_eq!(sub.subscribed.last_seq, 1);
        assert!(sub.backlog.is_empty(), "from now");
        bus.publish(What::Holding { reason: None });
        assert_eq!(sub.live.recv().await.unwrap().seq, 2);
    }

    #[tokio::test]
    async fn a_reconnecting_subscriber_catches_up_or_hears_what_it_missed() {
        let bus = Events::new(1);
        for _ in 0..KEPT + 10 {
            bus.publish(stopping());
        }
        let last = u64::try_from(KEPT + 10).unwrap();
        let sub = bus.subscribe(Some(last - 5), Some(1));
        let seqs: Vec<u64> = sub.backlog.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (last - 4..=last).collect::<Vec<_>>());
        assert_eq!(sub.subscribed.missed, 0);
        // Asked from event 3: events 4..=10 are no longer kept.
        let sub = bus.subscribe(Some(3), None);
        assert_eq!(sub.subscribed.missed, 7);
        assert_eq!(sub.backlog.len(), KEPT);
        assert_eq!(sub.backlog[0].seq, 11);
        // Up to date: nothing to catch up.
        let sub = bus.subscribe(Some(last), None);
        assert!(sub.backlog.is_empty());
        // A cursor of an earlier daemon: from the oldest event kept.
        let sub = bus.subscribe(Some(last), Some(2));
        assert_eq!(sub.backlog.len(), KEPT);
        assert_eq!(sub.subscribed.missed, 10);
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_and_the_publisher_never_waits() {
        let bus = Events::new(1);
        let mut sub = bus.subscribe(None, None);
        for _ in 0..BEHIND * 3 {
            bus.publish(stopping());
        }
        assert!(matches!(
            sub.live.recv().await,
            Err(broadcast::error::RecvError::Lagged(n)) if n == u64::try_from(BEHIND * 2).unwrap()
        ));
    }

    #[test]
    fn events_go_over_the_wire_as_flat_json() {
        let e = Event {
            seq: 7,
            at_ms: 1000,
            what: What::JobStarted {
                job_id: 3,
                run_id: 9,
                task: "lint".into(),
                attempt: 0,
            },
        };
        let json = serde_json::to_value(crate::ipc::Response::Event(Box::new(e.clone()))).unwrap();
        assert_eq!(json["kind"], "event");
        assert_eq!(json["event"], "job_started");
        assert_eq!(json["task"], "lint");
        let back: crate::ipc::Response = serde_json::from_value(json).unwrap();
        assert!(matches!(back, crate::ipc::Response::Event(b) if *b == e));
    }
}
