//! Runs in the store: each finished job's report, its findings, the
//! numbers metrics are computed from, analyzer health (crash counts and
//! quarantine), and retention.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::analyze::RunStatus;
use crate::ipc::{CleanupCounts, Outcome, RunSummary, TaskMetrics};
use crate::report::Report;
use crate::schedule::Millis;
use crate::schedule::adaptive::Past;

/// A run as it starts.
pub struct RunStart<'a> {
    pub job_id: i64,
    pub task: &'a str,
    pub attempt: u32,
    pub trigger: &'a str,
    pub started_ms: Millis,
    pub wait_ms: Millis,
    /// HEAD's commit then, when there is one.
    pub head: Option<&'a str>,
}

/// Which runs a history page holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct HistoryFilter<'a> {
    pub task: Option<&'a str>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<Millis>,
}

/// Consecutive crashes after which an analyzer is quarantined.
pub const QUARANTINE_AFTER: u32 = 5;

fn rfc3339(ms: Millis) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How far back `given_up` looks, in runs.
const RECENT: i64 = 1000;

/// A row of [`SUMMARY_COLUMNS`].
fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        run_id: r.get(0)?,
        job_id: r.get(1)?,
        task: r.get(2)?,
        started: rfc3339(r.get(3)?),
        duration_ms: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        exit_code: r.get(5)?,
        verdict: r.get(6)?,
        findings: usize::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
        attempt: r.get(8)?,
        trigger: r.get(9)?,
    })
}

/// The columns of a history line, in [`summary`]'s order.
const SUMMARY_COLUMNS: &str =
    "id, job_id, task, started_ms, duration_ms, exit_code, verdict, findings, attempt, trigger";

impl Store {
    /// A run row for a job that is starting (`verdict` is `running` until
    /// [`Store::finish_run`]), so its id can be followed at once.
    pub fn begin_run(&mut self, start: &RunStart<'_>) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO runs (job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code, verdict,
                               findings, ok, peak_rss_kb, cpu_ms, report, head)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 0, 'running', 0, 1, 0, 0, '', ?7)",
            params![start.job_id, start.task, start.attempt, start.trigger, start.started_ms, start.wait_ms.max(0), start.head],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Stores a finished run's report and findings.
    pub fn finish_run(&mut self, run_id: i64, report: &Report) -> Result<(), StoreError> {
        let ok = !report.runs.iter().any(|r| r.status.is_failure());
        let peak = report
            .runs
            .iter()
            .filter_map(|r| r.peak_rss_kb)
            .max()
            .unwrap_or(0);
        let cpu: u64 = report.runs.iter().filter_map(|r| r.cpu_ms).sum();
        let tx = self.conn.savepoint()?;
        tx.execute(
            "UPDATE runs SET duration_ms = ?2, exit_code = ?3, verdict = ?4, findings = ?5, ok = ?6,
                             peak_rss_kb = ?7, cpu_ms = ?8, report = ?9
             WHERE id = ?1",
            params![
                run_id,
                i64::try_from(report.duration_ms).unwrap_or(i64::MAX),
                report.exit_code,
                report.verdict,
                i64::try_from(report.findings.len()).unwrap_or(i64::MAX),
                ok,
                i64::try_from(peak).unwrap_or(i64::MAX),
                i64::try_from(cpu).unwrap_or(i64::MAX),
                serde_json::to_string(report)?,
            ],
        )?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO findings (run_id, analyzer, rule, severity, path, line, message, fingerprint, identity)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for f in &report.findings {
                let identity = f.identity.as_ref().map(serde_json::to_string).transpose()?;
                stmt.execute(params![
                    run_id,
                    f.analyzer,
                    f.rule,
                    f.severity.as_str(),
                    f.path(),
                    f.line(),
                    f.message,
                    f.fingerprint,
                    identity
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A run that ended without a report (interrupted by shutdown).
    pub fn abandon_run(&self, run_id: i64, why: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET verdict = ?2, ok = 0 WHERE id = ?1",
            params![run_id, why],
        )?;
        Ok(())
    }

    /// The newest `limit` runs (of `task`), older than run `before` when
    /// given: a page of history read by key, never by offset.
    pub fn history(
        &self,
        filter: &HistoryFilter<'_>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RunSummary>, StoreError> {
        // Keyset on the id; with a task, the (task, id) index serves it.
        let mut conditions = vec!["id < :before"];
        if filter.task.is_some() {
            conditions.push("task = :task");
        }
        conditions.push(match filter.outcome {
            None => "1",
            Some(Outcome::Clean) => "exit_code = 0",
            Some(Outcome::Findings) => "exit_code = 1",
            Some(Outcome::Failed) => "exit_code >= 2",
        });
        if filter.since_ms.is_some() {
            // Ids grow with time: below the first run of the window, none is in it.
            conditions.push(
                "started_ms >= :since AND id >= (SELECT coalesce(min(id), 0) FROM runs WHERE started_ms >= :since)",
            );
        }
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE {} ORDER BY id DESC LIMIT :limit",
            conditions.join(" AND ")
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let before = before.unwrap_or(i64::MAX);
        let mut named: Vec<(&str, &dyn rusqlite::ToSql)> =
            vec![(":before", &before), (":limit", &limit)];
        if let Some(task) = &filter.task {
            named.push((":task", task));
        }
        if let Some(since) = &filter.since_ms {
            named.push((":since", since));
        }
        let rows = stmt.query_map(named.as_slice(), summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest runs whose jobs were given up on after dying with the
    /// daemon twice (`recover`), among the last [`RECENT`] runs: `status`
    /// asks on every call, and a scan of a long history would cost it
    /// milliseconds.
    pub fn given_up(&self, limit: u32) -> Result<Vec<RunSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs
             WHERE id > (SELECT coalesce(max(id), 0) FROM runs) - {RECENT}
               AND verdict LIKE 'dead: interrupted twice%' ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map(params![limit], summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored report of a run: `None` for an unknown run,
    /// `Some(None)` when retention already removed it.
    pub fn report(&self, run_id: i64) -> Result<Option<Option<Report>>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT report FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()?;
        match text {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(Some(None)),
            Some(t) => Ok(Some(Some(serde_json::from_str(&t)?))),
        }
    }

    /// The job a run belongs to.
    pub fn job_of_run(&self, run_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT job_id FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The last `n` runs of a task, newest first (adaptive priority).
    pub fn recent(&self, task: &str, n: u32) -> Result<Vec<Past>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT ok, duration_ms FROM runs WHERE task = ?1 AND verdict != 'running' ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![task, n], |r| {
            Ok(Past {
                ok: r.get(0)?,
                duration_ms: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs and failed runs among the last `n` (health).
    pub fn failure_rate(&self, n: u32) -> Result<(u64, u64), StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*), coalesce(sum(1 - ok), 0) FROM (SELECT ok FROM runs WHERE verdict != 'running' ORDER BY id DESC LIMIT ?1)",
            params![n],
            |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                Ok((n(0)?, n(1)?))
            },
        )?)
    }

    pub fn task_metrics(&self) -> Result<Vec<TaskMetrics>, StoreError> {
        let tasks: Vec<String> = self
            .conn
            .prepare("SELECT DISTINCT task FROM runs ORDER BY task")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for task in tasks {
            let u = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
            let (n, ok, mean, wait, peak, cpu): (i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
                self.conn.prepare_cached(
                    "SELECT count(*), coalesce(sum(ok), 0), CAST(avg(duration_ms) AS INTEGER), CAST(avg(wait_ms) AS INTEGER),
                            max(peak_rss_kb), sum(cpu_ms)
                     FROM runs WHERE task = ?1 AND verdict != 'running'",
                )?
                .query_row(params![task], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?;
            if n == 0 {
                continue;
            }
            // The 95th percentile: the ceil(0.95 n)-th shortest run.
            let rank = (n * 95 + 99) / 100 - 1;
            let p95: i64 = self
                .conn
                .prepare_cached(
                    "SELECT duration_ms FROM runs WHERE task = ?1 AND verdict != 'running'
                     ORDER BY duration_ms LIMIT 1 OFFSET ?2",
                )?
                .query_row(params![task, rank], |r| r.get(0))?;
            #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
            let success_rate = ok as f64 / n as f64;
            out.push(TaskMetrics {
                task,
                runs: u(Some(n)),
                success_rate,
                mean_ms: u(mean),
                p95_ms: u(Some(p95)),
                mean_wait_ms: u(wait),
                peak_rss_kb: u(peak),
                cpu_ms: u(cpu),
            });
        }
        Ok(out)
    }

    /// Retention: reports and findings older than `results_days` are
    /// removed (the run's numbers stay for metrics); runs older than
    /// `metrics_days`, finished jobs and events are deleted.
    pub fn cleanup(
        &mut self,
        results_days: u32,
        metrics_days: u32,
        now: Millis,
    ) -> Result<CleanupCounts, StoreError> {
        let day = 86_400_000;
        let results_before = now - i64::from(results_days) * day;
        let metrics_before = now - i64::from(metrics_days.max(results_days)) * day;
        let tx = self.conn.savepoint()?;
        let findings = tx.execute(
            "DELETE FROM findings WHERE run_id IN (SELECT id FROM runs WHERE started_ms < ?1)",
            params![results_before],
        )?;
        tx.execute(
            "UPDATE runs SET report = '' WHERE started_ms < ?1 AND report != ''",
            params![results_before],
        )?;
        let runs = tx.execute(
            "DELETE FROM runs WHERE started_ms < ?1",
            params![metrics_before],
        )?;
        tx.execute(
            "DELETE FROM jobs WHERE finished_ms < ?1 AND state NOT IN ('queued', 'retry_wait', 'running')",
            params![metrics_before],
        )?;
        let events = tx.execute(
            "DELETE FROM events WHERE at_ms < ?1",
            params![metrics_before],
        )?;
        tx.commit()?;
        Ok(CleanupCounts {
            runs: runs as u64,
            findings: findings as u64,
            metrics: runs as u64,
            events: events as u64,
            log_files: 0,
        })
    }

    /// Records an analyzer's outcome in a job. Consecutive crashes of the
    /// same definition count up; at [`QUARANTINE_AFTER`] it is quarantined.
    /// Returns true when this call quarantined it.
    pub fn analyzer_outcome(
        &mut self,
        analyzer: &str,
        digest: &str,
        status: RunStatus,
        error: Option<&str>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let is_crash = matches!(status, RunStatus::ToolError | RunStatus::Timeout);
        if !is_crash {
            self.conn.execute(
                "INSERT INTO analyzer_health (analyzer, digest, crashes) VALUES (?1, ?2, 0)
                 ON CONFLICT (analyzer) DO UPDATE SET digest = excluded.digest, crashes = 0, quarantined_ms = NULL, last_error = NULL",
                params![analyzer, digest],
            )?;
            return Ok(false);
        }
        let tx = self.conn.savepoint()?;
        let prev: Option<(String, u32, Option<i64>)> = tx
            .query_row(
                "SELECT digest, crashes, quarantined_ms FROM analyzer_health WHERE analyzer = ?1",
                params![analyzer],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (crashes, already) = match prev {
            Some((d, c, q)) if d == digest => (c + 1, q.is_some()),
            _ => (1, false),
        };
        let quarantine = crashes >= QUARANTINE_AFTER && !already;
        tx.execute(
            "INSERT INTO analyzer_health (analyzer, digest, crashes, quarantined_ms, last_error) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (analyzer) DO UPDATE SET digest = excluded.digest, crashes = excluded.crashes,
                 quarantined_ms = CASE WHEN analyzer_health.digest = excluded.digest
                                       THEN coalesce(analyzer_health.quarantined_ms, excluded.quarantined_ms)
                                       ELSE excluded.quarantined_ms END,
                 last_error = excluded.last_error",
            params![analyzer, digest, crashes, quarantine.then_some(now), error],
        )?;
        tx.commit()?;
        Ok(quarantine)
    }

    /// Quarantined analyzers: (name, definition digest, last error).
    pub fn quarantined(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT analyzer, digest, coalesce(last_error, '') FROM analyzer_health WHERE quarantined_ms IS NOT NULL ORDER BY analyzer",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Lifts quarantine (of one analyzer, or all): `bgtask retry`.
    pub fn lift_quarantine(&self, analyzer: Option<&str>) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE analyzer_health SET quarantined_ms = NULL, crashes = 0 WHERE quarantined_ms IS NOT NULL AND (?1 IS NULL OR analyzer = ?1)",
            params![analyzer],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_run(s: &Store, task: &str, duration_ms: i64, ok: bool) {
        s.conn
            .execute(
                "INSERT INTO runs (job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code,
                                   verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                 VALUES (1, ?1, 0, 't', 0, ?2, 10, 0, 'done', 0, ?3, ?2, 1, '')",
                params![task, duration_ms, ok],
            )
            .unwrap();
    }

    #[test]
    fn metrics_per_task() {
        let s = Store::in_memory().unwrap();
        for d in 1..=100 {
            add_run(&s, "a", d, d % 4 != 0);
        }
        add_run(&s, "b", 7, true);
        let m = s.task_metrics().unwrap();
        assert_eq!(m.len(), 2);
        let a = &m[0];
        assert_eq!((a.task.as_str(), a.runs), ("a", 100));
        assert!((a.success_rate - 0.75).abs() < 1e-9);
        assert_eq!((a.mean_ms, a.p95_ms, a.mean_wait_ms), (50, 95, 10));
        assert_eq!((a.peak_rss_kb, a.cpu_ms), (100, 100));
        assert_eq!((m[1].runs, m[1].p95_ms), (1, 7));
    }

    #[test]
    fn history_filters_by_task_outcome_and_time_a_page_at_a_time() {
        let s = Store::in_memory().unwrap();
        // Run i (1-based) of task a/b alternately, started at i s, exit i % 3.
        for i in 1..=30_i64 {
            s.conn
                .execute(
                    "INSERT INTO runs (job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code,
                                       verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                     VALUES (?1, ?2, 0, 't', ?3, 1, 1, ?4, 'v', 0, 1, 1, 1, '')",
                    params![i, if i % 2 == 0 { "a" } else { "b" }, i * 1000, i % 3],
                )
                .unwrap();
        }
        let ids = |filter: HistoryFilter<'_>, before: Option<i64>, limit: u32| -> Vec<i64> {
            s.history(&filter, before, limit)
                .unwrap()
                .iter()
                .map(|r| r.run_id)
                .collect()
        };
        let all = HistoryFilter::default();
        assert_eq!(ids(all, None, 3), [30, 29, 28]);
        assert_eq!(ids(all, Some(28), 2), [27, 26]);
        let failed_a = HistoryFilter {
            task: Some("a"),
            outcome: Some(Outcome::Failed),
            ..all
        };
        assert_eq!(ids(failed_a, None, 3), [26, 20, 14]);
        assert_eq!(ids(failed_a, Some(14), 10), [8, 2]);
        let recent_clean = HistoryFilter {
            outcome: Some(Outcome::Clean),
            since_ms: Some(20_000),
            ..all
        };
        assert_eq!(ids(recent_clean, None, 10), [30, 27, 24, 21]);
        let findings = HistoryFilter {
            outcome: Some(Outcome::Findings),
            since_ms: Some(31_000),
            ..all
        };
        assert!(ids(findings, None, 10).is_empty());
    }

    #[test]
    fn history_and_retention_use_indexes() {
        let s = Store::in_memory().unwrap();
        let plan = |sql: &str| s.query_plan(sql);
        for (sql, index) in [
            (
                "SELECT id FROM runs WHERE task = 'a' ORDER BY id DESC LIMIT 5",
                "runs_task",
            ),
            ("SELECT id FROM runs WHERE job_id = 3", "runs_job"),
            ("DELETE FROM runs WHERE started_ms < 5", "runs_started"),
            ("DELETE FROM jobs WHERE finished_ms < 5", "jobs_finished"),
        ] {
            let p = plan(sql);
            assert!(p.contains(index), "{sql}: {p}");
        }
    }

    #[test]
    fn quarantine_after_consecutive_crashes_and_reset_on_success_or_new_definition() {
        let mut s = Store::in_memory().unwrap();
        for i in 1..QUARANTINE_AFTER {
            assert!(
                !s.analyzer_outcome("x", "d1", RunStatus::ToolError, Some("boom"), i64::from(i))
                    .unwrap()
            );
        }
        assert!(
            s.analyzer_outcome("x", "d1", RunStatus::Timeout, Some("slow"), 9)
                .unwrap()
        );
        assert!(
            !s.analyzer_outcome("x", "d1", RunStatus::ToolError, None, 10)
                .unwrap(),
            "quarantined once"
        );
        assert_eq!(s.quarantined().unwrap()[0].0, "x");
        // A changed definition starts counting afresh.
        s.analyzer_outcome("x", "d2", RunStatus::ToolError, None, 11)
            .unwrap();
        assert!(
            s.quarantined().unwrap().is_empty(),
            "a new definition lifts the quarantine"
        );
        s.analyzer_outcome("x", "d2", RunStatus::Clean, None, 12)
            .unwrap();
        assert!(s.quarantined().unwrap().is_empty());
        // A not-installed tool is not a crash.
        for i in 0..10 {
            s.analyzer_outcome("y", "d", RunStatus::NotInstalled, None, i)
                .unwrap();
        }
        assert!(s.quarantined().unwrap().is_empty());
    }
}
