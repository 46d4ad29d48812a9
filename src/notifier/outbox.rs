//! The email outbox and digest, in the state database, so an SMTP outage
//! or a daemon restart loses nothing (RELIABILITY 25).
//!
//! An event for email is stored in `notify_digest` the moment it arrives.
//! When the digest window that opened with the oldest one closes
//! (`digest_minutes`, 0: at once), all waiting events become one message in
//! `notify_outbox` in the same transaction that removes them. A message is
//! stored before it is sent and stays `pending` until the server accepts
//! it. Connection and TLS errors and 4xx replies are retried with
//! exponential backoff ([`Backoff`]); a 5xx reply (a wrong password: 535)
//! or a day of failures makes it `dead`. Every attempt is in the delivery
//! log.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::db::{Db, NotifierDbError};
use super::event::{EventKind, Level};
use super::render::{Email, Rendered};

/// An event of a message, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub kind: EventKind,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    pub title: String,
}

impl EventRef {
    pub fn of(r: &Rendered) -> EventRef {
        EventRef {
            kind: r.event.kind,
            level: r.event.level,
            task: r.event.task.clone(),
            run_id: r.event.run_id,
            title: r.event.title.clone(),
        }
    }
}

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub created_ms: i64,
    pub email: Email,
    pub events: Vec<EventRef>,
    pub attempts: u32,
}

/// Retry timing: `base`, doubling, capped, with equal jitter (half fixed,
/// half random), so retries spread out without ever coming at once; and
/// the age after which a message is given up.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base_ms: i64,
    pub cap_ms: i64,
    pub give_up_ms: i64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base_ms: 10_000,
            cap_ms: 30 * 60_000,
            give_up_ms: 24 * 3_600_000,
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempts` (1-based).
    pub fn delay_ms(&self, attempts: u32, rng: &mut fastrand::Rng) -> i64 {
        let exp = self
            .base_ms
            .saturating_mul(1_i64 << attempts.saturating_sub(1).min(30))
            .min(self.cap_ms);
        exp / 2 + rng.i64(0..=exp / 2)
    }
}

/// What to do with a message after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(i64),
    Dead(String),
}

/// Decides from the error kind, the message's age and attempts so far
/// (this one included).
pub fn after_failure(
    backoff: &Backoff,
    permanent: bool,
    error: &str,
    created_ms: i64,
    attempts: u32,
    now_ms: i64,
    rng: &mut fastrand::Rng,
) -> AfterFailure {
    if permanent {
        return AfterFailure::Dead(format!("permanent: {error}"));
    }
    let at = now_ms + backoff.delay_ms(attempts, rng);
    if at - created_ms > backoff.give_up_ms {
        AfterFailure::Dead(format!(
            "given up after {attempts} attempts over a day: {error}"
        ))
    } else {
        AfterFailure::RetryAt(at)
    }
}

impl Db {
    /// Keeps an event, rendered once as every channel saw it, for the
    /// next email; `at_ms` opens the digest window if it is the first.
    pub fn digest_add(&self, r: &Rendered, at_ms: i64) -> Result<i64, NotifierDbError> {
        self.conn.execute(
            "INSERT INTO notify_digest (at_ms, event) VALUES (?1, ?2)",
            params![at_ms, serde_json::to_string(r)?],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// When the oldest waiting event arrived.
    pub fn digest_oldest(&self) -> Result<Option<i64>, NotifierDbError> {
        Ok(self
            .conn
            .query_row("SELECT min(at_ms) FROM notify_digest", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Turns every waiting event into one outbox message (in one
    /// transaction); returns it, or `None` when nothing waited.
    pub fn digest_seal(&mut self, now_ms: i64) -> Result<Option<OutboxRow>, NotifierDbError> {
        let tx = self.conn.transaction()?;
        let entries: Vec<(i64, String)> = {
            let mut stmt = tx.prepare("SELECT id, event FROM notify_digest ORDER BY id")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        if entries.is_empty() {
            return Ok(None);
        }
        let mut rendered = Vec::new();
        for (id, json) in &entries {
            match serde_json::from_str::<Rendered>(json) {
                Ok(r) => rendered.push(r),
                Err(e) => tracing::warn!(id, error = %e, "dropping an unreadable digest entry"),
            }
        }
        let last = entries.last().map_or(0, |(id, _)| *id);
        if rendered.is_empty() {
            tx.execute("DELETE FROM notify_digest WHERE id <= ?1", params![last])?;
            tx.commit()?;
            return Ok(None);
        }
        let refs: Vec<&Rendered> = rendered.iter().collect();
        let email = super::render::email(&refs);
        let events: Vec<EventRef> = rendered.iter().map(EventRef::of).collect();
        tx.execute(
            "INSERT INTO notify_outbox (created_ms, subject, text_body, html_body, events, state, attempts, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?1)",
            params![
                now_ms,
                email.subject,
                email.text,
                email.html,
                serde_json::to_string(&events)?
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute("DELETE FROM notify_digest WHERE id <= ?1", params![last])?;
        tx.commit()?;
        Ok(Some(OutboxRow {
            id,
            created_ms: now_ms,
            email,
            events,
            attempts: 0,
        }))
    }

    /// Pending messages whose next attempt is due, oldest first.
    pub fn outbox_due(&self, now_ms: i64) -> Result<Vec<OutboxRow>, NotifierDbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, created_ms, subject, text_body, html_body, events, attempts FROM notify_outbox
             WHERE state = 'pending' AND next_attempt_ms <= ?1 ORDER BY id LIMIT 50",
        )?;
        let rows = stmt.query_map(params![now_ms], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, u32>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, created_ms, subject, text, html, events, attempts) = row?;
            out.push(OutboxRow {
                id,
                created_ms,
                email: Email {
                    subject,
                    text,
                    html,
                },
                events: serde_json::from_str(&events).unwrap_or_default(),
                attempts,
            });
        }
        Ok(out)
    }

    /// When the next pending message is due.
    pub fn outbox_next(&self) -> Result<Option<i64>, NotifierDbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT min(next_attempt_ms) FROM notify_outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    pub fn outbox_sent(&self, id: i64, attempts: u32, now_ms: i64) -> Result<(), NotifierDbError> {
        self.conn.execute(
            "UPDATE notify_outbox SET state = 'sent', attempts = ?2, done_ms = ?3, last_error = NULL WHERE id = ?1",
            params![id, attempts, now_ms],
        )?;
        Ok(())
    }

    pub fn outbox_failed(
        &self,
        id: i64,
        attempts: u32,
        next: &AfterFailure,
        error: &str,
        now_ms: i64,
    ) -> Result<(), NotifierDbError> {
        match next {
            AfterFailure::RetryAt(at) => self.conn.execute(
                "UPDATE notify_outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
                params![id, attempts, at, error],
            )?,
            AfterFailure::Dead(why) => self.conn.execute(
                "UPDATE notify_outbox SET state = 'dead', attempts = ?2, last_error = ?3, done_ms = ?4 WHERE id = ?1",
                params![id, attempts, why, now_ms],
            )?,
        };
        Ok(())
    }

    /// `(state, attempts)` of a message (tests and `notify test`).
    pub fn outbox_state(&self, id: i64) -> Result<Option<(String, u32)>, NotifierDbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT state, attempts FROM notify_outbox WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::db::tests::temp_db;
    use crate::notifier::event::NotificationEvent;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let b = Backoff::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let rows = [
            (1, 5_000, 10_000),
            (2, 10_000, 20_000),
            (3, 20_000, 40_000),
            (20, 900_000, 1_800_000),
        ];
        for (attempt, lo, hi) in rows {
            for _ in 0..50 {
                let d = b.delay_ms(attempt, &mut rng);
                assert!((lo..=hi).contains(&d), "attempt {attempt}: {d}");
            }
        }
        assert!(b.delay_ms(u32::MAX, &mut rng) <= b.cap_ms, "no overflow");
    }

    #[test]
    fn failure_decisions() {
        let b = Backoff::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut decide = |permanent, created, attempts| {
            after_failure(&b, permanent, "boom", created, attempts, 0, &mut rng)
        };
        let dead = decide(true, 0, 1);
        assert!(
            matches!(&dead, AfterFailure::Dead(w) if w.starts_with("permanent: ")),
            "5xx is dead at once: {dead:?}"
        );
        let retry = decide(false, 0, 1);
        assert!(
            matches!(retry, AfterFailure::RetryAt(at) if (5_000..=10_000).contains(&at)),
            "a connection error is retried: {retry:?}"
        );
        let many = decide(false, 0, 40);
        assert!(
            matches!(many, AfterFailure::RetryAt(_)),
            "a fresh message is retried after many attempts: {many:?}"
        );
        let old = decide(false, -b.give_up_ms, 40);
        assert!(
            matches!(&old, AfterFailure::Dead(w) if w.contains("over a day")),
            "a day old is dead: {old:?}"
        );
    }

    fn rendered(title: &str, at_ms: i64) -> Rendered {
        let mut e = NotificationEvent::test();
        e.title = title.to_owned();
        e.at_ms = at_ms;
        Rendered::new(e, "demo")
    }

    #[test]
    fn the_digest_becomes_one_message_and_is_emptied() {
        let (_dir, mut db, _store) = temp_db();
        assert_eq!(db.digest_oldest().unwrap(), None);
        assert!(db.digest_seal(0).unwrap().is_none());
        db.digest_add(&rendered("one", 0), 100).unwrap();
        db.digest_add(&rendered("two", 0), 50).unwrap();
        assert_eq!(db.digest_oldest().unwrap(), Some(50));
        let msg = db.digest_seal(200).unwrap().unwrap();
        assert_eq!(msg.events.len(), 2);
        assert!(msg.email.subject.contains("2 notifications"), "{msg:?}");
        assert_eq!(db.digest_oldest().unwrap(), None, "emptied");
        assert_eq!(db.outbox_next().unwrap(), Some(200));
        let due = db.outbox_due(200).unwrap();
        assert_eq!(due, std::slice::from_ref(&msg));
        assert!(db.outbox_due(199).unwrap().is_empty());
    }

    #[test]
    fn retries_then_sent_or_dead() {
        let (_dir, mut db, _store) = temp_db();
        db.digest_add(&rendered("a", 0), 0).unwrap();
        let a = db.digest_seal(0).unwrap().unwrap();
        db.outbox_failed(a.id, 1, &AfterFailure::RetryAt(5000), "refused", 0)
            .unwrap();
        assert!(db.outbox_due(4999).unwrap().is_empty());
        assert_eq!(db.outbox_due(5000).unwrap()[0].attempts, 1);
        db.outbox_sent(a.id, 2, 5000).unwrap();
        assert_eq!(db.outbox_state(a.id).unwrap(), Some(("sent".to_owned(), 2)));
        assert_eq!(db.outbox_next().unwrap(), None);

        db.digest_add(&rendered("b", 0), 0).unwrap();
        let b = db.digest_seal(0).unwrap().unwrap();
        db.outbox_failed(b.id, 1, &AfterFailure::Dead("535".to_owned()), "535", 0)
            .unwrap();
        assert_eq!(db.outbox_state(b.id).unwrap(), Some(("dead".to_owned(), 1)));
        assert!(db.outbox_due(i64::MAX).unwrap().is_empty());
    }
}
