//! A recorded run's findings marked new, and the findings it fixed, by
//! the notifier's own rule (`novelty.rs`: against the latest earlier runs
//! of the task that looked at each file) — what the dashboard's run page
//! shows, computed as the notification about that run was.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::db::{Db, NotifierDbError};
use super::event::RunFinished;
use super::novelty::{Known, diff, fixed};
use crate::config::NotifyPolicy;
use crate::report::Report;

/// A run's task and the files its job looked at (`None`: the project).
type RunOf = (String, Option<Vec<String>>);

/// A finding an earlier run had that this run no longer has.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FixedFinding {
    pub analyzer: String,
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub path: Option<String>,
    pub line: Option<i64>,
}

/// Which of a run's findings are new, and what it fixed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Marks {
    /// No earlier run of the task to compare with: everything is new.
    pub first_run: bool,
    /// Indices into the report's findings.
    pub new: Vec<usize>,
    pub fixed: Vec<FixedFinding>,
}

impl Db {
    /// The task of `run_id` and the files its job looked at (`None`: the
    /// project); `None` for an unknown run.
    fn run_of(&self, run_id: i64) -> Result<Option<RunOf>, NotifierDbError> {
        let row: Option<(String, i64)> = self
            .conn
            .prepare_cached("SELECT task, job_id FROM runs WHERE id = ?1")?
            .query_row(params![run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((task, job)) => Ok(Some((task, self.job_scope(job)?))),
            None => Ok(None),
        }
    }

    /// The newest earlier row of a finding, for what a fixed one was.
    fn earlier(
        &self,
        run_id: i64,
        fingerprint: &str,
    ) -> Result<Option<FixedFinding>, NotifierDbError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT analyzer, rule, severity, message, path, line FROM findings
                 WHERE run_id < ?1 AND fingerprint = ?2 ORDER BY run_id DESC LIMIT 1",
            )?
            .query_row(params![run_id, fingerprint], |r| {
                Ok(FixedFinding {
                    analyzer: r.get(0)?,
                    rule: r.get(1)?,
                    severity: r.get(2)?,
                    message: r.get(3)?,
                    path: r.get(4)?,
                    line: r.get(5)?,
                })
            })
            .optional()?)
    }

    /// Run `run_id`, recorded as `report`: its new and fixed (`None` for
    /// a run this database does not have).
    pub fn marks(&self, run_id: i64, report: &Report) -> Result<Option<Marks>, NotifierDbError> {
        let Some((task, scope)) = self.run_of(run_id)? else {
            return Ok(None);
        };
        let run = RunFinished::from_report(&task, run_id, NotifyPolicy::default(), scope, report);
        let known = self.known(&task, run_id)?;
        let new = diff(&run, known.as_ref()).new;
        let mut gone = Vec::new();
        for f in known.as_ref().map(|k| fixed(&run, k)).unwrap_or_default() {
            gone.extend(self.earlier(run_id, &f.fingerprint)?);
        }
        Ok(Some(Marks {
            first_run: known.is_none(),
            new,
            fixed: gone,
        }))
    }
}

impl Db {
    /// What every task knows now, by the same rule (each file's findings
    /// from the latest run that looked at it): what a change is compared
    /// with to tell what it introduced. `None` before any run.
    pub fn known_now(&self) -> Result<Option<Vec<Known>>, NotifierDbError> {
        let tasks: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT task FROM runs")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut known = Vec::new();
        for task in tasks {
            known.extend(self.known(&task, 0)?);
        }
        Ok((!known.is_empty()).then_some(known))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime};

    use crate::analyze::identity::{Source, identify};
    use crate::analyze::{Finding, Location, RunStatus, Severity};
    use crate::config::raw::Category;
    use crate::event::AnalyzerRun;
    use crate::notifier::db::tests::temp_db;
    use crate::report::{Policy, Report};
    use crate::store::{RunStart, Store};

    /// bandit's report of `text` in `a.py`: B307 on every line with `eval(`.
    fn report(text: &str) -> Report {
        let mut run = AnalyzerRun::skipped(
            "bandit",
            Category::Security,
            vec!["security".into()],
            RunStatus::Findings,
            String::new(),
        );
        for (i, line) in text.lines().enumerate() {
            if line.contains("eval(") {
                let n = u32::try_from(i + 1).unwrap();
                run.findings.push(
                    Finding::new("bandit", "B307", Severity::Medium, format!("eval on {n}"))
                        .at(Location::at("a.py", n, None)),
                );
            }
        }
        let sources = HashMap::from([("a.py".to_owned(), Source::new("a.py", text))]);
        identify(&mut run.findings, &sources);
        let policy = Policy {
            fail_on: None,
            strict_tools: false,
            tasks: Vec::new(),
            explicit: Vec::new(),
        };
        Report::new(
            String::new(),
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
            None,
            policy,
            vec![run],
        )
    }

    fn record(store: &mut Store, report: &Report) -> i64 {
        let id = store
            .begin_run(&RunStart {
                job_id: 1,
                task: "security",
                attempt: 0,
                trigger: "manual",
                started_ms: 0,
                wait_ms: 0,
                head: None,
            })
            .unwrap();
        store.finish_run(id, report).unwrap();
        id
    }

    #[test]
    fn new_and_fixed_by_identity_not_by_fingerprint_sets() {
        let (_dir, db, mut store) = temp_db();
        let first = report("def f(s):\n    return eval(s)\n");
        let id = record(&mut store, &first);
        assert!(db.marks(id, &first).unwrap().unwrap().first_run);
        // Lines above and the same call once more, first in the file: the
        // copy is new, and it is the copy (line 3) that is, though its
        // fingerprint is the one the first run's finding had.
        let second =
            report("import os\n\ndef g(s):\n    return eval(s)\n\ndef f(s):\n    return eval(s)\n");
        assert_eq!(
            second.findings[0].fingerprint,
            first.findings[0].fingerprint
        );
        let id = record(&mut store, &second);
        let marks = db.marks(id, &second).unwrap().unwrap();
        assert_eq!((marks.new, marks.fixed.len()), (vec![0], 0));
        // The original edited: new, and the one it was fixed.
        let third =
            report("def g(s):\n    return eval(s)\n\ndef f(s):\n    return eval(s.strip())\n");
        let id = record(&mut store, &third);
        let marks = db.marks(id, &third).unwrap().unwrap();
        assert_eq!(marks.new, [1]);
        assert_eq!(marks.fixed.len(), 1);
        assert_eq!(marks.fixed[0].line, Some(7));
    }

    #[test]
    fn findings_recorded_before_identities_are_matched_by_message() {
        let (_dir, db, mut store) = temp_db();
        let mut old = report("x = eval(s)\n");
        old.findings[0].identity = None;
        old.findings[0].fingerprint = "0123456789abcdef:0".into();
        record(&mut store, &old);
        let now = report("\n\nx = eval(s)\n");
        let id = record(&mut store, &now);
        let marks = db.marks(id, &now).unwrap().unwrap();
        assert!(marks.new.is_empty() && marks.fixed.is_empty(), "{marks:?}");
    }
}
