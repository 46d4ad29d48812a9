//! The email task: closes digest windows and works the outbox, on the
//! notifier's thread, beside the worker that routes events. It sleeps until
//! the next digest deadline or retry is due, or until the worker pokes it
//! (a new event stored) or the config changes; a send that hangs holds up
//! only this task, never a job or another channel.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::db::{Db, Delivery, Outcome};
use super::email::SendError;
use super::outbox::{AfterFailure, Backoff, OutboxRow, after_failure};
use super::router::digest_deadline;
use crate::clock::Clock;
use crate::config::{Config, EmailChannel};

/// Sends one outbox message; `Ok` carries the server's reply. The real one
/// is [`smtp`]; tests script it.
pub type SendMail = Arc<
    dyn Fn(Arc<EmailChannel>, OutboxRow) -> Pin<Box<dyn Future<Output = Result<String, SendError>>>>
        + Send
        + Sync,
>;

/// SMTP, with a relative `ca_file` taken from the worktree `root`.
pub fn smtp(root: PathBuf) -> SendMail {
    Arc::new(move |channel, row| {
        let root = root.clone();
        Box::pin(async move {
            super::email::send(&channel, &root, row.id, row.created_ms, &row.email).await
        })
    })
}

pub struct Mailer {
    pub db: Db,
    pub config: watch::Receiver<Arc<Config>>,
    pub poke: Arc<Notify>,
    pub send: SendMail,
    pub backoff: Backoff,
    pub rng: fastrand::Rng,
    pub clock: Clock,
}

impl Mailer {
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                break;
            }
            self.step().await;
            let wake = self.next_wake();
            tokio::select! {
                () = self.poke.notified() => {}
                () = tokio::time::sleep(wake) => {}
                changed = self.config.changed() => if changed.is_err() { break },
                () = stop.cancelled() => break,
            }
        }
    }

    fn channel(&self) -> Option<Arc<EmailChannel>> {
        self.config
            .borrow()
            .notifications
            .email
            .clone()
            .map(Arc::new)
    }

    /// How long until something is due (an hour when nothing is).
    fn next_wake(&self) -> Duration {
        let Some(channel) = self.channel() else {
            return Duration::from_secs(3600);
        };
        let now = self.clock.now();
        let digest = digest_deadline(
            self.db.digest_oldest().ok().flatten(),
            channel.digest_minutes,
        );
        let retry = self.db.outbox_next().ok().flatten();
        let at = [digest, retry].into_iter().flatten().min();
        at.map_or(Duration::from_secs(3600), |at| {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
        })
    }

    /// Seals the digest if its window closed, then tries what is due.
    pub async fn step(&mut self) {
        let Some(channel) = self.channel() else {
            return;
        };
        let now = self.clock.now();
        let oldest = match self.db.digest_oldest() {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "could not read the email digest");
                None
            }
        };
        if digest_deadline(oldest, channel.digest_minutes).is_some_and(|at| at <= now)
            && let Err(e) = self.db.digest_seal(now)
        {
            tracing::error!(error = %e, "could not turn the email digest into a message");
        }
        let due = match self.db.outbox_due(now) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "could not read the email outbox");
                return;
            }
        };
        for row in due {
            self.attempt(&channel, row).await;
        }
    }

    async fn attempt(&mut self, channel: &Arc<EmailChannel>, row: OutboxRow) {
        let attempts = row.attempts + 1;
        let (id, created, events) = (row.id, row.created_ms, row.events.clone());
        let result = (self.send)(channel.clone(), row).await;
        let now = self.clock.now();
        let (outcome, error) = match &result {
            Ok(reply) => {
                tracing::info!(outbox = id, attempts, reply = %reply, "email sent");
                if let Err(e) = self.db.outbox_sent(id, attempts, now) {
                    tracing::error!(outbox = id, error = %e, "could not mark an email sent");
                }
                (Outcome::Delivered, None)
            }
            Err(e) => {
                let next = after_failure(
                    &self.backoff,
                    e.is_permanent(),
                    &e.to_string(),
                    created,
                    attempts,
                    now,
                    &mut self.rng,
                );
                if let Err(db) = self
                    .db
                    .outbox_failed(id, attempts, &next, &e.to_string(), now)
                {
                    tracing::error!(outbox = id, error = %db, "could not record a failed email");
                }
                match &next {
                    AfterFailure::RetryAt(at) => {
                        tracing::warn!(outbox = id, attempts, retry_in_ms = at - now, error = %e, "email not sent; it stays in the outbox");
                        (Outcome::Retrying, Some(e.to_string()))
                    }
                    AfterFailure::Dead(why) => {
                        tracing::error!(outbox = id, attempts, error = %why, "email given up");
                        (Outcome::Dead, Some(why.clone()))
                    }
                }
            }
        };
        for e in &events {
            let _ = self.db.record(&Delivery {
                at_ms: now,
                event: e.kind.as_str(),
                severity: e.level,
                task: e.task.as_deref(),
                run_id: e.run_id,
                channel: "email",
                outcome,
                title: &e.title,
                error: error.as_deref(),
                outbox_id: Some(id),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::notifier::db::tests::temp_db;
    use crate::notifier::event::NotificationEvent;
    use crate::notifier::render::Rendered;

    /// (outbox id, events in it, when) of each attempt.
    type Attempts = Arc<Mutex<Vec<(i64, usize, i64)>>>;

    fn config(digest_minutes: u32) -> Arc<Config> {
        let text = format!(
            r#"{{"notifications": {{"email": {{"enabled": true, "smtp_host": "127.0.0.1", "smtp_port": 2525, "tls": "none",
                "from": "bgtask@example.com", "to": ["dev@example.com"], "digest_minutes": {digest_minutes}}}}}}}"#
        );
        Arc::new(crate::config::from_text(std::path::Path::new("t.json"), &text).unwrap())
    }

    /// Answers sends from `script` in turn (then `Ok`), noting each.
    fn scripted(script: Vec<Result<(), SendError>>, clock: Clock) -> (SendMail, Attempts) {
        let attempts: Attempts = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let log = attempts.clone();
        let send: SendMail = Arc::new(move |_channel, row: OutboxRow| {
            log.lock()
                .unwrap()
                .push((row.id, row.events.len(), clock.now()));
            let next = script.lock().unwrap().next().unwrap_or(Ok(()));
            Box::pin(async move { next.map(|()| "250 ok".to_owned()) })
        });
        (send, attempts)
    }

    struct Setup {
        _dir: tempfile::TempDir,
        /// The worker's side: another connection to the same database.
        db: Db,
        file: std::path::PathBuf,
        clock: Clock,
        poke: Arc<Notify>,
        stop: CancellationToken,
        attempts: Attempts,
        _config: watch::Sender<Arc<Config>>,
    }

    fn setup(digest_minutes: u32, script: Vec<Result<(), SendError>>) -> (Setup, Mailer) {
        let (dir, mailer_db, _store) = temp_db();
        let file = dir.path().join(crate::store::FILE);
        let clock = Clock::start();
        let (send, attempts) = scripted(script, clock);
        let (tx, rx) = watch::channel(config(digest_minutes));
        let poke = Arc::new(Notify::new());
        let mailer = Mailer {
            db: mailer_db,
            config: rx,
            poke: poke.clone(),
            send,
            backoff: Backoff::default(),
            rng: fastrand::Rng::with_seed(3),
            clock,
        };
        let setup = Setup {
            db: Db::open(&file).unwrap(),
            file,
            _dir: dir,
            clock,
            poke,
            stop: CancellationToken::new(),
            attempts,
            _config: tx,
        };
        (setup, mailer)
    }

    impl Setup {
        fn add(&self, title: &str) {
            let mut e = NotificationEvent::test();
            e.title = title.to_owned();
            self.db
                .digest_add(&Rendered::new(e, "demo"), self.clock.now())
                .unwrap();
            self.poke.notify_one();
        }

        fn attempts(&self) -> Vec<(i64, usize, i64)> {
            self.attempts.lock().unwrap().clone()
        }

        fn outcomes(&self) -> Vec<String> {
            let mut rows: Vec<String> = self
                .db
                .deliveries(100)
                .unwrap()
                .into_iter()
                .map(|d| d.outcome)
                .collect();
            rows.reverse();
            rows
        }
    }

    async fn minutes(m: u64) {
        tokio::time::sleep(Duration::from_secs(m * 60)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_digest_window_batches_events_into_one_email() {
        let (s, mailer) = setup(15, Vec::new());
        let stop = s.stop.clone();
        let script = async {
            let first = s.clock.now();
            s.add("first");
            minutes(1).await;
            s.add("second");
            minutes(4).await;
            s.add("third");
            minutes(9).await;
            assert!(s.attempts().is_empty(), "nothing before the window closes");
            minutes(1).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let a = s.attempts();
            assert_eq!(a.len(), 1, "{a:?}");
            assert_eq!(a[0].1, 3, "all three in one email");
            // The window opened with the first event: 15 minutes later.
            assert!((a[0].2 - first - 15 * 60_000).abs() < 1000, "{a:?}");
            // A later event opens a new window.
            s.add("fourth");
            minutes(16).await;
            assert_eq!(s.attempts().len(), 2);
            assert_eq!(s.outcomes(), ["delivered"; 4]);
            stop.cancel();
        };
        tokio::join!(mailer.run(s.stop.clone()), script);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_back_off_and_then_deliver() {
        let down = || Err(SendError::Transient("Connection refused".to_owned()));
        let (s, mailer) = setup(0, vec![down(), down()]);
        let stop = s.stop.clone();
        let script = async {
            s.add("alert");
            minutes(2).await;
            let a = s.attempts();
            assert_eq!(a.len(), 3, "{a:?}");
            let gaps = [a[1].2 - a[0].2, a[2].2 - a[1].2];
            assert!((5_000..=10_000).contains(&gaps[0]), "{gaps:?}");
            assert!((10_000..=20_000).contains(&gaps[1]), "{gaps:?}");
            assert_eq!(s.outcomes(), ["retrying", "retrying", "delivered"]);
            assert_eq!(
                s.db.outbox_state(a[0].0).unwrap(),
                Some(("sent".to_owned(), 3))
            );
            stop.cancel();
        };
        tokio::join!(mailer.run(s.stop.clone()), script);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_tried_once() {
        let (s, mailer) = setup(
            0,
            vec![Err(SendError::Permanent(
                "permanent error (535): 5.7.8 Authentication credentials invalid".to_owned(),
            ))],
        );
        let stop = s.stop.clone();
        let script = async {
            s.add("alert");
            minutes(120).await;
            assert_eq!(s.attempts().len(), 1, "no retry storm");
            let rows = s.db.deliveries(10).unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].outcome, "dead");
            assert!(
                rows[0].error.as_deref().unwrap().contains("535"),
                "{rows:?}"
            );
            stop.cancel();
        };
        tokio::join!(mailer.run(s.stop.clone()), script);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_across_a_restart_loses_nothing() {
        let down = || Err(SendError::Transient("Connection refused".to_owned()));
        let (s, mailer) = setup(0, vec![down()]);
        let first_stop = CancellationToken::new();
        let script = async {
            s.add("alert");
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(s.outcomes(), ["retrying"]);
            first_stop.cancel();
        };
        tokio::join!(mailer.run(first_stop.clone()), script);
        // A new daemon: a new mailer on the same database.
        let clock = Clock::start();
        let (send, attempts) = scripted(Vec::new(), clock);
        let (_tx, rx) = watch::channel(config(0));
        let again = Mailer {
            db: Db::open(&s.file).unwrap(),
            config: rx,
            poke: Arc::new(Notify::new()),
            send,
            backoff: Backoff::default(),
            rng: fastrand::Rng::with_seed(4),
            clock,
        };
        let stop = s.stop.clone();
        let script = async {
            minutes(1).await;
            assert_eq!(attempts.lock().unwrap().len(), 1);
            assert_eq!(s.outcomes(), ["retrying", "delivered"]);
            stop.cancel();
        };
        tokio::join!(again.run(s.stop.clone()), script);
    }
}
