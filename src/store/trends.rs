//! Trends over time for the dashboard's plots: per time bucket and task,
//! the runs, their success rate, duration and queue wait (p50, p95), the
//! findings known after the bucket's last run by severity, and how many
//! were new and how many fixed (`known.rs`).
//!
//! One pass over the window's runs in id order (`window.rs`: by a rowid
//! range from the window's first run, found with the `runs_started`
//! index), their findings and the files of file-scoped jobs read by range
//! scans of their own keys as the runs go, what each task knew before the
//! window from its runs just before it; the buckets and their percentiles
//! in `buckets.rs`.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::buckets::{Buckets, Seen};
use super::findings::{Findings, Knowing, Scopes};
use super::known::{Counts, Interner};
use super::window::Run;
use super::{Store, StoreError};
use crate::clock::Millis;

/// Which runs, and how they are bucketed.
#[derive(Debug, Clone)]
pub struct TrendQuery<'a> {
    /// One task (all when `None`).
    pub task: Option<&'a str>,
    /// Runs started in `from_ms..to_ms`.
    pub from_ms: Millis,
    pub to_ms: Millis,
    /// An hour or a day.
    pub bucket_ms: Millis,
    /// Buckets start on the hour (or at midnight) at this offset from UTC.
    pub offset_ms: Millis,
}

/// Findings by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BySeverity {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl From<Counts> for BySeverity {
    fn from([critical, high, medium, low, info]: Counts) -> BySeverity {
        BySeverity {
            critical,
            high,
            medium,
            low,
            info,
        }
    }
}

/// One time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TrendPoint {
    /// The bucket's start, in ms since the Unix epoch.
    pub start_ms: i64,
    /// Runs started in it (finished ones).
    pub runs: u64,
    /// The share of them in which no analyzer failed (0 to 1).
    pub ok_rate: f64,
    pub duration_p50_ms: u64,
    pub duration_p95_ms: u64,
    /// Time from queued to started (`runs.wait_ms`).
    pub wait_p50_ms: u64,
    pub wait_p95_ms: u64,
    /// The findings known after the bucket's last run, by severity (for
    /// every file, from the latest run that looked at it).
    pub findings: BySeverity,
    /// Findings not known before their run (summed over the bucket's runs).
    pub new: u64,
    /// Known findings gone in a run that looked at their file.
    pub fixed: u64,
    /// Runs whose findings retention removed (`retention.results_days`):
    /// they count in neither `findings`, `new` nor `fixed`.
    pub findings_removed: u64,
}

/// One task's buckets (only those it ran in).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TaskTrend {
    pub task: String,
    pub points: Vec<TrendPoint>,
}

/// Trends over a window.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Trends {
    pub from_ms: i64,
    pub to_ms: i64,
    pub bucket_ms: i64,
    /// Each task that ran in the window.
    pub tasks: Vec<TaskTrend>,
    /// All of them together: percentiles over all their runs, findings
    /// summed over the tasks.
    pub total: Vec<TrendPoint>,
}

/// The pass over the window's runs in id order: what each task knows,
/// run by run, and the buckets they fall in.
struct Pass<'s, 'q> {
    store: &'s Store,
    first: i64,
    names: Vec<String>,
    known: Vec<Knowing>,
    /// What each task knew at the window's start.
    before: Vec<Counts>,
    buckets: Buckets<'q>,
    /// The part being read, and its task indices to the pass's.
    part: (usize, Vec<usize>),
    findings: Findings<'s>,
    /// The file-scoped jobs from a job id on, loaded when first needed.
    scopes: Option<(i64, Scopes)>,
    /// Fingerprints and paths.
    strings: Interner,
}

impl Pass<'_, '_> {
    /// The pass's index of task `name`, first seen: what it knew before.
    fn task(&mut self, name: &str) -> Result<usize, StoreError> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Ok(i);
        }
        let known = self
            .store
            .known_before(name, self.first, &mut self.strings)?;
        self.before.push(known.counts());
        self.known.push(known);
        self.names.push(name.to_owned());
        Ok(self.names.len() - 1)
    }

    /// Makes sure the scope of `job` is loaded: at the first run that
    /// needs one, every file-scoped job from its job on; a job older than
    /// those (a retry) loads the ones before.
    fn load_scope(&mut self, job: i64) -> Result<(), StoreError> {
        let from = self.scopes.as_ref().map(|(from, _)| *from);
        if from.is_some_and(|from| job >= from) {
            return Ok(());
        }
        let last = from.map_or(i64::MAX, |f| f - 1);
        let more = self.store.scopes(job, last, &mut self.strings)?;
        let (start, scopes) = self.scopes.get_or_insert_with(|| (job, Scopes::default()));
        *start = job;
        scopes.extend(more);
        Ok(())
    }

    fn add(&mut self, part: usize, names: &[String], run: &Run) -> Result<(), StoreError> {
        if self.part.0 != part {
            self.part = (part, Vec::new());
        }
        while self.part.1.len() <= run.task as usize {
            let i = self.task(&names[self.part.1.len()])?;
            self.part.1.push(i);
        }
        let task = self.part.1[run.task as usize];
        let knowing = &self.known[task];
        let knows = knowing.known.as_ref().is_some_and(|k| !k.is_empty());
        let mut seen = Seen::default();
        if run.ok && (run.found || knows || knowing.blind) {
            self.load_scope(run.job_id)?;
            let found = if run.found {
                self.findings.of(run.id, &mut self.strings)?
            } else {
                &[]
            };
            // It found something, and nothing of it is left.
            let found = (!run.found || !found.is_empty()).then_some(found);
            let scope = self.scopes.as_ref().and_then(|(_, s)| s.get(&run.job_id));
            seen = self.known[task].fold(scope, found);
        } else if run.ok {
            // Nothing found, nothing known: nothing new, nothing fixed.
            self.known[task].fold(None, Some(&[]));
        }
        seen.found = self.known[task].counts();
        self.buckets.add(task, run, seen);
        Ok(())
    }
}

impl Store {
    /// Trends of the runs started in the query's window.
    pub fn trends(&self, q: &TrendQuery<'_>) -> Result<Trends, StoreError> {
        // The window's first run by start time is its first by id while
        // the clock goes forward (the exact min(id) reads the whole range
        // of the index: 3 ms for 100 000 runs).
        let first: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM runs WHERE started_ms >= ?1 AND started_ms < ?2 ORDER BY started_ms LIMIT 1",
                params![q.from_ms, q.to_ms],
                |r| r.get(0),
            )
            .optional()?;
        let Some(first) = first else {
            return Ok(Buckets::new(q).finish(Vec::new(), Vec::new()));
        };
        // The findings of the runs as they go (read only for runs that
        // found something).
        let mut findings = self.conn.prepare(
            "SELECT run_id, severity, fingerprint, path FROM findings WHERE run_id >= ?1 ORDER BY run_id",
        )?;
        let mut pass = Pass {
            store: self,
            first,
            names: Vec::new(),
            known: Vec::new(),
            before: Vec::new(),
            buckets: Buckets::new(q),
            part: (0, Vec::new()),
            findings: Findings::new(findings.query(params![first])?),
            scopes: None,
            strings: Interner::default(),
        };
        self.each_run(q.task, first, |part, names, run| pass.add(part, names, run))?;
        Ok(pass.buckets.finish(pass.names, pass.before))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    /// A finished run of `task` (job `job`) with its findings
    /// (fingerprint, severity, path); its id.
    fn run(
        s: &Store,
        task: &str,
        (started_ms, duration_ms, ok): (i64, i64, bool),
        job: i64,
        findings: &[(&str, &str, Option<&str>)],
    ) -> i64 {
        s.conn
            .execute(
                "INSERT INTO runs (job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code,
                                   verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                 VALUES (?1, ?2, 0, 't', ?3, ?4, ?4 / 10, 0, 'done', ?5, ?6, 0, 0, '')",
                params![job, task, started_ms, duration_ms, i64::try_from(findings.len()).unwrap(), ok],
            )
            .unwrap();
        let id = s.conn.last_insert_rowid();
        for (fp, severity, path) in findings {
            s.conn
                .execute(
                    "INSERT INTO findings (run_id, analyzer, rule, severity, path, line, message, fingerprint)
                     VALUES (?1, 'a', 'R', ?2, ?3, 1, 'm', ?4)",
                    params![id, severity, path, fp],
                )
                .unwrap();
        }
        id
    }

    /// A job that looked at `files` only.
    fn scoped_job(s: &Store, id: i64, files: &[&str]) {
        s.conn
            .execute(
                "INSERT INTO jobs (id, task, dedup_key, priority, score, state, project, trigger, attempt,
                                   enqueued_ms, not_before_ms)
                 VALUES (?1, 't', 'k', 'normal', 0, 'done', 0, 't', 0, 0, 0)",
                params![id],
            )
            .unwrap();
        for f in files {
            s.conn
                .execute(
                    "INSERT INTO job_files (job_id, path) VALUES (?1, CAST(?2 AS BLOB))",
                    params![id, f],
                )
                .unwrap();
        }
    }

    fn query(task: Option<&str>, from_ms: i64, to_ms: i64, bucket_ms: i64) -> TrendQuery<'_> {
        TrendQuery {
            task,
            from_ms,
            to_ms,
            bucket_ms,
            offset_ms: 0,
        }
    }

    #[test]
    fn buckets_percentiles_success_and_wait() {
        let store = Store::in_memory().unwrap();
        // Before the window: not counted.
        run(&store, "a", (DAY - 1, 5000, true), 1, &[]);
        for d in 1..=20 {
            run(&store, "a", (DAY + d * 1000, d * 100, d % 4 != 0), 1, &[]);
        }
        run(&store, "a", (3 * DAY + 5, 700, false), 1, &[]);
        run(&store, "b", (3 * DAY + 9, 300, true), 2, &[]);
        // After the window: not counted.
        run(&store, "b", (5 * DAY, 300, true), 2, &[]);
        let all = store.trends(&query(None, DAY, 5 * DAY, DAY)).unwrap();
        let names: Vec<&str> = all.tasks.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &all.tasks[0].points;
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].start_ms, a[0].runs), (DAY, 20));
        assert!((a[0].ok_rate - 0.75).abs() < 1e-9);
        assert_eq!((a[0].duration_p50_ms, a[0].duration_p95_ms), (1000, 1900));
        assert_eq!((a[0].wait_p50_ms, a[0].wait_p95_ms), (100, 190));
        assert_eq!((a[1].start_ms, a[1].runs, a[1].ok_rate), (3 * DAY, 1, 0.0));
        // The total pools both tasks' runs of a bucket.
        assert_eq!(all.total.len(), 2);
        assert_eq!((all.total[1].runs, all.total[1].ok_rate), (2, 0.5));
        assert_eq!(all.total[1].duration_p50_ms, 300);
        assert_eq!(all.total[1].duration_p95_ms, 700);
        // One task; hourly buckets starting at a 30-minute offset.
        let mut hourly = query(Some("b"), DAY, 5 * DAY, HOUR);
        hourly.offset_ms = HOUR / 2;
        let b = store.trends(&hourly).unwrap();
        assert_eq!(b.tasks.len(), 1);
        assert_eq!(b.tasks[0].points[0].start_ms, 3 * DAY - HOUR / 2);
        assert_eq!(b.total, b.tasks[0].points);
        // Nothing in the window.
        let none = store.trends(&query(None, 10 * DAY, 11 * DAY, DAY)).unwrap();
        assert!(none.tasks.is_empty() && none.total.is_empty());
    }

    #[test]
    fn new_and_fixed_from_consecutive_runs_with_the_run_before_the_window() {
        let store = Store::in_memory().unwrap();
        let (x, y) = (Some("x.py"), Some("y.py"));
        // Before the window: what is known at its start.
        run(
            &store,
            "a",
            (DAY - 10, 1, true),
            1,
            &[("a1", "high", x), ("b1", "low", y)],
        );
        // Day 1: a1 fixed, c1 new; a failed run finds nothing and counts
        // for nothing; a run on y.py only fixes b1 and leaves x.py alone.
        run(
            &store,
            "a",
            (DAY + 1, 1, true),
            2,
            &[("b1", "low", y), ("c1", "critical", x)],
        );
        run(&store, "a", (DAY + 2, 1, false), 3, &[]);
        scoped_job(&store, 4, &["y.py"]);
        run(&store, "a", (DAY + 3, 1, true), 4, &[]);
        // Day 2: a whole-project run: c1 fixed, d1 and d2 new.
        run(
            &store,
            "a",
            (2 * DAY + 1, 1, true),
            5,
            &[("d1", "medium", x), ("d2", "info", None)],
        );
        // Task b's first run ever: all new.
        run(&store, "b", (2 * DAY + 2, 1, true), 6, &[("e1", "high", x)]);
        let all = store.trends(&query(None, DAY, 3 * DAY, DAY)).unwrap();
        let a = &all.tasks[0].points;
        assert_eq!((a[0].new, a[0].fixed), (1, 2));
        assert_eq!(
            a[0].findings,
            BySeverity {
                critical: 1,
                ..BySeverity::default()
            }
        );
        assert_eq!((a[1].new, a[1].fixed), (2, 1));
        assert_eq!((a[1].findings.medium, a[1].findings.info), (1, 1));
        let b = &all.tasks[1].points;
        assert_eq!((b[0].new, b[0].fixed, b[0].findings.high), (1, 0, 1));
        // The total sums the tasks' findings, each as it last stood.
        assert_eq!(all.total[0].findings.critical, 1);
        assert_eq!((all.total[1].new, all.total[1].fixed), (3, 1));
        let sum = &all.total[1].findings;
        assert_eq!((sum.critical, sum.high, sum.medium, sum.info), (0, 1, 1, 1));
        // A task's own query knows the same from before the window.
        let only_a = store.trends(&query(Some("a"), DAY, 3 * DAY, DAY)).unwrap();
        assert_eq!(only_a.tasks[0].points, *a);
        // A window starting after a scoped run folds it in from before.
        let later = store
            .trends(&query(Some("a"), DAY + 3, 3 * DAY, DAY))
            .unwrap();
        assert_eq!(later.tasks[0].points[0].findings, a[0].findings);
    }

    #[test]
    fn runs_whose_findings_retention_removed_tell_nothing() {
        let mut store = Store::in_memory().unwrap();
        let x = Some("x.py");
        for at in [DAY + 1, DAY + 2] {
            run(
                &store,
                "a",
                (at, 1, true),
                1,
                &[("f1", "high", x), ("f2", "high", x)],
            );
        }
        // A day of results kept, at 3 days: the first day's go.
        store.cleanup(1, 30, 3 * DAY).unwrap();
        run(
            &store,
            "a",
            (3 * DAY + 1, 1, true),
            2,
            &[("f1", "high", x), ("f3", "low", x)],
        );
        run(&store, "a", (3 * DAY + 2, 1, true), 3, &[("f3", "low", x)]);
        let all = store.trends(&query(None, 0, 4 * DAY, DAY)).unwrap();
        let a = &all.tasks[0].points;
        assert_eq!((a[0].runs, a[0].findings_removed), (2, 2));
        assert_eq!((a[0].new, a[0].fixed), (0, 0));
        // The first run whose findings are kept starts afresh: f1 and f3
        // are not new; the next run fixes f1.
        assert_eq!((a[1].runs, a[1].findings_removed), (2, 0));
        assert_eq!((a[1].new, a[1].fixed, a[1].findings.low), (0, 1, 1));
        // Seen from a window that starts after them, the same.
        let later = store.trends(&query(None, 3 * DAY, 4 * DAY, DAY)).unwrap();
        assert_eq!(later.tasks[0].points[0], a[1]);
    }

    #[test]
    fn the_window_is_read_by_index_and_rowid() {
        let s = Store::in_memory().unwrap();
        let plan = |sql: &str| s.query_plan(sql);
        for (sql, uses) in [
            (
                "SELECT id FROM runs WHERE started_ms >= 1 AND started_ms < 2 ORDER BY started_ms LIMIT 1",
                "runs_started",
            ),
            (
                "SELECT id FROM runs WHERE NULL IS NULL AND id >= 5 AND verdict != 'running' ORDER BY id",
                "rowid>?",
            ),
            (
                "SELECT id FROM runs WHERE task = 'a' AND id >= 5 AND verdict != 'running' ORDER BY id",
                "runs_task",
            ),
            (
                "SELECT run_id FROM findings WHERE run_id >= 5 ORDER BY run_id",
                "findings_run",
            ),
            (
                "SELECT path FROM job_files WHERE job_id BETWEEN 1 AND 5",
                "PRIMARY KEY",
            ),
        ] {
            let p = plan(sql);
            assert!(p.contains(uses) && !p.contains("TEMP B-TREE"), "{sql}: {p}");
        }
    }

    #[test]
    fn a_long_window_read_in_parts_counts_as_one_read_at_once() {
        // The same runs in a file (read in parts) and in memory (at once).
        let dir = tempfile::tempdir().unwrap();
        let mut file = Store::open(dir.path()).unwrap().store;
        let mut memory = Store::in_memory().unwrap();
        let n = super::super::window::SPLIT_OVER + 5000;
        for s in [&mut file, &mut memory] {
            s.batch(|s| {
                scoped_job(s, 7, &["x.py"]);
                for i in 0..n {
                    let task = ["a", "b", "c"][usize::try_from(i % 3).unwrap()];
                    let fp = format!("f{}", i / 300);
                    let found = [(fp.as_str(), "low", Some("x.py"))];
                    let found = if i % 7 == 0 { &found[..0] } else { &found[..] };
                    run(s, task, (i * 60_000, i % 97, i % 11 != 0), i % 13, found);
                }
                Ok(())
            })
            .unwrap();
        }
        let q = query(None, 0, n * 60_000, DAY);
        let reader = Store::open_read_only(&dir.path().join(super::super::FILE)).unwrap();
        let (parts, whole) = (reader.trends(&q).unwrap(), memory.trends(&q).unwrap());
        assert!(parts == whole, "{parts:#?}");
        let new: u64 = whole.total.iter().map(|p| p.new).sum();
        assert!(new > 100 && whole.total.iter().map(|p| p.fixed).sum::<u64>() > 100);
    }

    #[test]
    fn a_read_only_store_reads_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::FILE);
        assert!(Store::open_read_only(&path).is_err(), "no file");
        let writer = Store::open(dir.path()).unwrap().store;
        run(&writer, "a", (DAY, 10, true), 1, &[("f", "high", None)]);
        let reader = Store::open_read_only(&path).unwrap();
        let t = reader.trends(&query(None, 0, 2 * DAY, DAY)).unwrap();
        assert_eq!(t.total[0].findings.high, 1);
        assert!(reader.event("info", "x", "y").is_err(), "read only");
        drop((reader, writer));
        // The daemon gone (its WAL checkpointed away): still readable.
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.trends(&query(None, 0, 2 * DAY, DAY)).unwrap(), t);
        std::fs::write(dir.path().join("empty.db"), b"").unwrap();
        let Err(e) = Store::open_read_only(&dir.path().join("empty.db")) else {
            panic!("an empty file is no store")
        };
        assert!(e.to_string().contains("no tables yet"), "{e}");
    }
}
