//! The current findings of one file: for each task, what the latest run
//! that looked at the file (and in which no analyzer failed) found there —
//! the notifier's rule of what is known (`notifier/novelty.rs`), read for
//! one path. What editors and agents show as "the findings of this file".

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// One finding a file has now, with the run it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CurrentFinding {
    pub task: String,
    pub run_id: i64,
    pub analyzer: String,
    pub rule: String,
    pub severity: String,
    pub path: String,
    pub line: Option<i64>,
    pub message: String,
    pub fingerprint: String,
    /// The evidence matching against a baseline uses; `None` for findings
    /// recorded before identities existed.
    #[serde(skip)]
    pub identity: Option<crate::analyze::Identity>,
}

impl Store {
    /// Every task's current findings in `path` (repo-relative), by task,
    /// then line.
    pub fn current_findings(&self, path: &str) -> Result<Vec<CurrentFinding>, StoreError> {
        let tasks: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT task FROM runs ORDER BY task")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut latest = self.conn.prepare_cached(
            "SELECT r.id FROM runs r LEFT JOIN jobs j ON j.id = r.job_id
             WHERE r.task = ?1 AND r.ok = 1 AND r.verdict != 'running'
               AND (j.id IS NULL OR j.project = 1 OR EXISTS
                    (SELECT 1 FROM job_files f WHERE f.job_id = j.id AND f.path = ?2))
             ORDER BY r.id DESC LIMIT 1",
        )?;
        let mut found = self.conn.prepare_cached(
            "SELECT analyzer, rule, severity, line, message, fingerprint, identity FROM findings
             WHERE run_id = ?1 AND path = ?2 ORDER BY line, rule",
        )?;
        let mut out = Vec::new();
        for task in tasks {
            let run: Option<i64> = latest
                .query_map(params![task, path.as_bytes()], |r| r.get(0))?
                .next()
                .transpose()?;
            let Some(run_id) = run else { continue };
            let rows = found.query_map(params![run_id, path], |r| {
                Ok(CurrentFinding {
                    task: task.clone(),
                    run_id,
                    analyzer: r.get(0)?,
                    rule: r.get(1)?,
                    severity: r.get(2)?,
                    path: path.to_owned(),
                    line: r.get(3)?,
                    message: r.get(4)?,
                    fingerprint: r.get(5)?,
                    identity: r
                        .get::<_, Option<String>>(6)?
                        .and_then(|j| serde_json::from_str(&j).ok()),
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Whether a run that finished cleanly looked at `path` (its job was
    /// the whole project or named the file): a file without findings that
    /// was never analysed is not a file without problems.
    pub fn looked_at(&self, path: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM runs r LEFT JOIN jobs j ON j.id = r.job_id
                 WHERE r.ok = 1 AND r.verdict != 'running'
                   AND (j.id IS NULL OR j.project = 1 OR EXISTS
                        (SELECT 1 FROM job_files f WHERE f.job_id = j.id AND f.path = ?1))
                 LIMIT 1",
            )?
            .query_map(params![path.as_bytes()], |r| r.get(0))?
            .next()
            .transpose()?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job (`files`: `None` for the whole project) and its run, with
    /// findings (path, line, fingerprint).
    fn run(
        s: &Store,
        task: &str,
        files: Option<&[&str]>,
        ok: bool,
        found: &[(&str, i64, &str)],
    ) -> i64 {
        s.conn
            .execute(
                "INSERT INTO jobs (task, dedup_key, priority, score, state, project, trigger, attempt,
                                   enqueued_ms, not_before_ms)
                 VALUES (?1, ?1, 'medium', 0, 'done', ?2, 't', 0, 0, 0)",
                params![task, files.is_none()],
            )
            .unwrap();
        let job = s.conn.last_insert_rowid();
        for f in files.unwrap_or_default() {
            s.conn
                .execute(
                    "INSERT INTO job_files (job_id, path) VALUES (?1, ?2)",
                    params![job, f.as_bytes()],
                )
                .unwrap();
        }
        s.conn
            .execute(
                "INSERT INTO runs (job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code,
                                   verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                 VALUES (?1, ?2, 0, 't', 0, 1, 0, 0, 'done', 0, ?3, 0, 0, '')",
                params![job, task, ok],
            )
            .unwrap();
        let id = s.conn.last_insert_rowid();
        for (path, line, fp) in found {
            s.conn
                .execute(
                    "INSERT INTO findings (run_id, analyzer, rule, severity, path, line, message, fingerprint)
                     VALUES (?1, 'a', 'R', 'high', ?2, ?3, 'm', ?4)",
                    params![id, path, line, fp],
                )
                .unwrap();
        }
        id
    }

    fn fingerprints(s: &Store, path: &str) -> Vec<(String, String)> {
        s.current_findings(path)
            .unwrap()
            .into_iter()
            .map(|f| (f.task, f.fingerprint))
            .collect()
    }

    #[test]
    fn a_files_findings_come_from_the_latest_clean_run_that_looked_at_it() {
        let s = Store::in_memory().unwrap();
        run(
            &s,
            "lint",
            None,
            true,
            &[("a.py", 1, "old-a"), ("b.py", 2, "old-b")],
        );
        // A later run on b.py only says nothing new about a.py.
        run(&s, "lint", Some(&["b.py"]), true, &[]);
        assert_eq!(fingerprints(&s, "a.py"), [("lint".into(), "old-a".into())]);
        assert_eq!(fingerprints(&s, "b.py"), []);
        // A run in which an analyzer failed is no evidence.
        run(&s, "lint", Some(&["a.py"]), false, &[]);
        assert_eq!(fingerprints(&s, "a.py"), [("lint".into(), "old-a".into())]);
        // Each task answers for itself.
        run(&s, "sec", Some(&["a.py"]), true, &[("a.py", 3, "sec-a")]);
        run(&s, "lint", Some(&["a.py"]), true, &[("a.py", 5, "new-a")]);
        assert_eq!(
            fingerprints(&s, "a.py"),
            [
                ("lint".into(), "new-a".into()),
                ("sec".into(), "sec-a".into())
            ]
        );
        assert_eq!(fingerprints(&s, "c.py"), []);
    }

    #[test]
    fn a_file_was_looked_at_by_a_clean_run_of_it_or_of_the_project() {
        let s = Store::in_memory().unwrap();
        assert!(!s.looked_at("a.py").unwrap());
        run(&s, "lint", Some(&["b.py"]), true, &[]);
        run(&s, "lint", Some(&["a.py"]), false, &[]);
        assert!(s.looked_at("b.py").unwrap());
        assert!(!s.looked_at("a.py").unwrap(), "a failed run is no evidence");
        run(&s, "sec", None, true, &[]);
        assert!(s.looked_at("a.py").unwrap());
    }
}
