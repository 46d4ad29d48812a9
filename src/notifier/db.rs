//! The notifier's own connection to `.bgtask/state.db` (WAL lets it sit
//! beside the scheduler's): the delivery log (`notify_deliveries`, what
//! went where, every failure included) and, read-only, the earlier runs of
//! a task and their findings for "new only". The outbox and the digest are
//! in `outbox.rs`. The tables come from migration 3 (`store/schema.rs`);
//! this module never migrates, it checks.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::event::Level;
use super::novelty::{Known, PriorFinding, PriorRun};

/// The first schema version with the notification tables.
const SCHEMA_WITH_NOTIFICATIONS: u32 = 3;

/// The first schema version whose findings keep their identity.
const SCHEMA_WITH_IDENTITY: u32 = 6;
/// The first schema with each run's HEAD (`runs.head`).
const SCHEMA_WITH_HEAD: u32 = 7;

/// Earlier runs looked at for "new only", at most.
const PRIOR_RUNS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum NotifierDbError {
    #[error("open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{} has no notification tables (schema {found}); open it with this bgtask first", path.display())]
    Schema { path: PathBuf, found: u32 },
    #[error("make {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("prepare the state database")]
    Store(#[source] Box<crate::store::StoreError>),
    #[error("state database")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored notification JSON")]
    Json(#[from] serde_json::Error),
}

/// What became of one notification on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
    /// Stored for email (digest window or outbox).
    Queued,
    /// An email attempt failed; it is tried again later.
    Retrying,
    /// An email given up on (permanent error or a day of failures).
    Dead,
    /// The channel turned itself off (no desktop bus).
    Disabled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Queued => "queued",
            Outcome::Retrying => "retrying",
            Outcome::Dead => "dead",
            Outcome::Disabled => "disabled",
        }
    }
}

/// A row for the delivery log.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub at_ms: i64,
    pub event: &'a str,
    pub severity: Level,
    pub task: Option<&'a str>,
    pub run_id: Option<i64>,
    pub channel: &'a str,
    pub outcome: Outcome,
    pub title: &'a str,
    pub error: Option<&'a str>,
    pub outbox_id: Option<i64>,
}

/// A row of the delivery log, as `bgtask notifications` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub time: String,
    pub at_ms: i64,
    pub event: String,
    pub severity: String,
    pub task: Option<String>,
    pub run_id: Option<i64>,
    pub channel: String,
    pub outcome: String,
    pub title: String,
    pub error: Option<String>,
    pub outbox_id: Option<i64>,
}

pub fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Told of each delivery once it is in the log (the daemon publishes it
/// on its event stream). It runs on the notifier's thread: it must not
/// block.
pub type OnDelivery = std::sync::Arc<dyn Fn(&Delivery<'_>) + Send + Sync>;

pub struct Db {
    pub(super) conn: Connection,
    on_delivery: Option<OnDelivery>,
    /// The findings table has the `identity` column (a database an older
    /// daemon keeps has not).
    identities: bool,
    /// The runs table has the `head` column.
    heads: bool,
    /// The worktree the database is in (`ROOT/.bgtask/…`), for renames.
    root: Option<std::path::PathBuf>,
}

impl Db {
    /// Opens the state database the store has already created and
    /// migrated (the daemon, or `Store::open` first in the CLI).
    pub fn open(file: &Path) -> Result<Db, NotifierDbError> {
        let open = |source| NotifierDbError::Open {
            path: file.to_owned(),
            source,
        };
        let conn = Connection::open(file).map_err(open)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open)?;
        conn.pragma_update(None, "cache_size", -256).map_err(open)?;
        let found: u32 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(open)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if found < SCHEMA_WITH_NOTIFICATIONS {
            return Err(NotifierDbError::Schema {
                path: file.to_owned(),
                found,
            });
        }
        Ok(Db {
            conn,
            on_delivery: None,
            identities: found >= SCHEMA_WITH_IDENTITY,
            heads: found >= SCHEMA_WITH_HEAD,
            root: file.parent().and_then(Path::parent).map(Path::to_owned),
        })
    }

    /// The delivery log of the worktree at `root`, its state database
    /// created or migrated first (a command run before any daemon).
    pub fn open_worktree(root: &Path) -> Result<Db, NotifierDbError> {
        let dir = crate::state::state_dir(root).map_err(|source| NotifierDbError::StateDir {
            path: root.join(".bgtask"),
            source,
        })?;
        drop(crate::store::Store::open(&dir).map_err(|e| NotifierDbError::Store(Box::new(e)))?);
        Db::open(&dir.join(crate::store::FILE))
    }

    /// This connection tells `on` of each delivery it records.
    #[must_use]
    pub fn telling(mut self, on: Option<OnDelivery>) -> Db {
        self.on_delivery = on;
        self
    }

    pub fn record(&self, d: &Delivery<'_>) -> Result<(), NotifierDbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO notify_deliveries (at_ms, event, severity, task, run_id, channel, outcome, title, error, outbox_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                d.at_ms,
                d.event,
                d.severity.as_str(),
                d.task,
                d.run_id,
                d.channel,
                d.outcome.as_str(),
                d.title,
                d.error,
                d.outbox_id
            ])?;
        if let Some(on) = &self.on_delivery {
            on(d);
        }
        Ok(())
    }

    /// The newest `limit` deliveries, newest first.
    pub fn deliveries(&self, limit: u32) -> Result<Vec<DeliveryRow>, NotifierDbError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at_ms, event, severity, task, run_id, channel, outcome, title, error, outbox_id
             FROM notify_deliveries ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit], |r| {
            let at_ms: i64 = r.get(1)?;
            Ok(DeliveryRow {
                id: r.get(0)?,
                time: rfc3339(at_ms),
                at_ms,
                event: r.get(2)?,
                severity: r.get(3)?,
                task: r.get(4)?,
                run_id: r.get(5)?,
                channel: r.get(6)?,
                outcome: r.get(7)?,
                title: r.get(8)?,
                error: r.get(9)?,
                outbox_id: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The task's earlier runs in which no analyzer failed, newest first,
    /// each with its scope and findings (for "new only").
    pub fn prior_runs(
        &self,
        task: &str,
        before_run: i64,
    ) -> Result<Vec<PriorRun>, NotifierDbError> {
        let before = if before_run > 0 { before_run } else { i64::MAX };
        let mut runs = self.conn.prepare_cached(if self.heads {
            "SELECT id, job_id, head FROM runs
             WHERE task = ?1 AND id < ?2 AND ok = 1 AND verdict != 'running'
             ORDER BY id DESC LIMIT ?3"
        } else {
            "SELECT id, job_id, NULL FROM runs
             WHERE task = ?1 AND id < ?2 AND ok = 1 AND verdict != 'running'
             ORDER BY id DESC LIMIT ?3"
        })?;
        let ids: Vec<(i64, i64, Option<String>)> = runs
            .query_map(params![task, before, PRIOR_RUNS], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (run_id, job_id, head) in ids {
            let scope = self.job_scope(job_id)?;
            let findings = self.prior_findings(run_id)?;
            let whole = scope.is_none();
            out.push(PriorRun {
                scope,
                findings,
                head,
            });
            if whole {
                break;
            }
        }
        Ok(out)
    }

    /// What was known before run `before_run` of `task` (`0`: now), with
    /// the files renamed since followed (`Known::follow_renames`).
    pub fn known(&self, task: &str, before_run: i64) -> Result<Option<Known>, NotifierDbError> {
        let mut known = Known::from_prior(self.prior_runs(task, before_run)?);
        if let (Some(k), Some(root)) = (&mut known, &self.root) {
            k.follow_renames(root);
        }
        Ok(known)
    }

    /// What run `run_id` found, as matching needs it.
    fn prior_findings(&self, run_id: i64) -> Result<Vec<PriorFinding>, NotifierDbError> {
        let mut stmt = self.conn.prepare_cached(if self.identities {
            "SELECT fingerprint, path, analyzer, rule, message, line, identity
             FROM findings WHERE run_id = ?1"
        } else {
            "SELECT fingerprint, path, analyzer, rule, message, line, NULL
             FROM findings WHERE run_id = ?1"
        })?;
        let rows = stmt.query_map(params![run_id], |r| {
            let identity: Option<String> = r.get(6)?;
            Ok(PriorFinding {
                fingerprint: r.get(0)?,
                path: r.get(1)?,
                analyzer: r.get(2)?,
                rule: r.get(3)?,
                message: r.get(4)?,
                line: r.get(5)?,
                // Unreadable evidence is no evidence: matched by fingerprint.
                identity: identity.and_then(|j| serde_json::from_str(&j).ok()),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The files a job looked at; `None` for the whole project (or a job
    /// retention removed).
    pub(super) fn job_scope(&self, job_id: i64) -> Result<Option<Vec<String>>, NotifierDbError> {
        let project: Option<bool> = self
            .conn
            .prepare_cached("SELECT project FROM jobs WHERE id = ?1")?
            .query_row(params![job_id], |r| r.get(0))
            .optional()?;
        if project != Some(false) {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM job_files WHERE job_id = ?1")?;
        let files = stmt
            .query_map(params![job_id], |r| r.get::<_, Vec<u8>>(0))?
            .map(|p| p.map(|p| String::from_utf8_lossy(&p).into_owned()))
            .collect::<Result<_, _>>()?;
        Ok(Some(files))
    }

    /// Retention: deliveries, and sent or dead emails, older than `before_ms`.
    pub fn prune(&self, before_ms: i64) -> Result<usize, NotifierDbError> {
        let n = self.conn.execute(
            "DELETE FROM notify_deliveries WHERE at_ms < ?1",
            params![before_ms],
        )?;
        let m = self.conn.execute(
            "DELETE FROM notify_outbox WHERE state != 'pending' AND done_ms < ?1",
            params![before_ms],
        )?;
        Ok(n + m)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A migrated state database in a temp dir, and the notifier's
    /// connection to it.
    pub fn temp_db() -> (tempfile::TempDir, Db, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap().store;
        let db = Db::open(&dir.path().join(crate::store::FILE)).unwrap();
        (dir, db, store)
    }

    #[test]
    fn records_and_lists_deliveries_newest_first() {
        let (_dir, db, _store) = temp_db();
        for (i, outcome) in [Outcome::Delivered, Outcome::Failed]
            .into_iter()
            .enumerate()
        {
            db.record(&Delivery {
                at_ms: 1000 * i64::try_from(i).unwrap(),
                event: "issues_found",
                severity: Level::Error,
                task: Some("security"),
                run_id: Some(3),
                channel: "desktop",
                outcome,
                title: "t",
                error: (outcome == Outcome::Failed).then_some("no server"),
                outbox_id: None,
            })
            .unwrap();
        }
        let rows = db.deliveries(10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].outcome, "failed");
        assert_eq!(rows[0].error.as_deref(), Some("no server"));
        assert_eq!(rows[1].time, "1970-01-01T00:00:00Z");
        assert_eq!(db.deliveries(1).unwrap().len(), 1);
        assert_eq!(db.prune(500).unwrap(), 1);
    }

    #[test]
    fn each_recorded_delivery_is_told() {
        let (_dir, db, _store) = temp_db();
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = told.clone();
        let db = db.telling(Some(std::sync::Arc::new(move |d: &Delivery<'_>| {
            seen.lock()
                .unwrap()
                .push(format!("{} {} {}", d.channel, d.outcome.as_str(), d.title));
        })));
        for (channel, outcome) in [("file", Outcome::Delivered), ("email", Outcome::Queued)] {
            db.record(&Delivery {
                at_ms: 1,
                event: "test",
                severity: Level::Info,
                task: None,
                run_id: None,
                channel,
                outcome,
                title: "works",
                error: None,
                outbox_id: None,
            })
            .unwrap();
        }
        assert_eq!(
            *told.lock().unwrap(),
            ["file delivered works", "email queued works"]
        );
    }

    #[test]
    fn prior_runs_stop_at_a_whole_project_run_and_skip_failed_ones() {
        let (_dir, db, _store) = temp_db();
        // Jobs: 1 the project, 2 only x.py. Runs, oldest first: 1 (job 1,
        // ok), 2 (job 1, an analyzer failed), 3 (job 2, ok), 4 (running).
        db.conn
            .execute_batch(
                "INSERT INTO jobs (id, task, dedup_key, priority, score, state, project, trigger, attempt, enqueued_ms, not_before_ms)
                 VALUES (1, 't', 'k', 'medium', 0, 'done', 1, 'manual', 0, 0, 0),
                        (2, 't', 'k', 'medium', 0, 'done', 0, 'manual', 0, 0, 0);
                 INSERT INTO job_files VALUES (2, CAST('x.py' AS BLOB));
                 INSERT INTO runs (id, job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code, verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                 VALUES (1, 1, 't', 0, 'm', 0, 0, 0, 0, 'ok', 0, 1, 0, 0, ''),
                        (2, 1, 't', 0, 'm', 0, 0, 0, 2, 'failed', 0, 0, 0, 0, ''),
                        (3, 2, 't', 0, 'm', 0, 0, 0, 0, 'ok', 0, 1, 0, 0, ''),
                        (4, 1, 't', 0, 'm', 0, 0, 0, 0, 'running', 0, 1, 0, 0, '');
                 INSERT INTO findings (run_id, analyzer, rule, severity, path, line, message, fingerprint)
                 VALUES (1, 'a', 'R', 'high', 'y.py', 1, 'm', 'fp-old'),
                        (2, 'a', 'R', 'high', 'y.py', 1, 'm', 'fp-failed'),
                        (3, 'a', 'R', 'high', 'x.py', 1, 'm', 'fp-x');",
            )
            .unwrap();
        let prior = db.prior_runs("t", 5).unwrap();
        let summary: Vec<(Option<Vec<String>>, Vec<String>)> = prior
            .iter()
            .map(|p| {
                (
                    p.scope.clone(),
                    p.findings.iter().map(|f| f.fingerprint.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some(vec!["x.py".to_owned()]), vec!["fp-x".to_owned()]),
                (None, vec!["fp-old".to_owned()]),
            ],
            "newest first, the failed and the running run left out"
        );
        assert_eq!(db.prior_runs("t", 3).unwrap().len(), 1, "only runs before");
        assert!(db.prior_runs("other", 5).unwrap().is_empty());
        // An unsaved run (negative id) looks at everything stored.
        assert_eq!(db.prior_runs("t", -7).unwrap().len(), 2);
    }

    #[test]
    fn findings_of_a_database_from_before_identities_are_read_without() {
        let (dir, db, _store) = temp_db();
        db.conn
            .execute_batch(
                "INSERT INTO runs (id, job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code, verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                 VALUES (1, 1, 't', 0, 'm', 0, 0, 0, 0, 'ok', 0, 1, 0, 0, '');
                 INSERT INTO findings (run_id, analyzer, rule, severity, path, line, message, fingerprint, identity)
                 VALUES (1, 'a', 'R', 'high', 'y.py', 1, 'm', 'fp', '{\"message\": \"h\", \"occurrence\": 0}');",
            )
            .unwrap();
        let read = |db: &Db| {
            let prior = db.prior_runs("t", 0).unwrap();
            (
                prior[0].findings[0].fingerprint.clone(),
                prior[0].findings[0].identity.is_some(),
            )
        };
        assert_eq!(read(&db), ("fp".to_owned(), true));
        // The schema an older daemon keeps: no identity column.
        db.conn
            .execute_batch(
                "ALTER TABLE findings DROP COLUMN identity;
                 UPDATE meta SET value = '5' WHERE key = 'schema_version';",
            )
            .unwrap();
        let old = Db::open(&dir.path().join(crate::store::FILE)).unwrap();
        assert_eq!(read(&old), ("fp".to_owned(), false));
    }

    #[test]
    fn an_unmigrated_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '2');",
        )
        .unwrap();
        drop(conn);
        let Err(e) = Db::open(&path) else {
            panic!("schema 2 accepted")
        };
        assert!(e.to_string().contains("schema 2"), "{e}");
    }
}
