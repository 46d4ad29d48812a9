//! The runs of a trends window, in id order. Reading 100 000 of them is
//! most of the query's time, so a long window is read in parts at once,
//! each on its own read-only connection and thread: the first part is
//! handed on as it is read, the others (kept small in memory) once it is
//! done.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::params;

use super::{Store, StoreError};

/// A run as the pass reads it (small: a window may hold 100 000).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: i64,
    pub job_id: i64,
    pub started_ms: i64,
    /// Up to 49 days.
    pub duration_ms: u32,
    pub wait_ms: u32,
    /// Indexes the names of the part it was read in.
    pub task: u32,
    pub ok: bool,
    /// It found something.
    pub found: bool,
}

/// Windows of more runs than this are read in parts at once.
pub const SPLIT_OVER: i64 = 20_000;
/// In at most this many parts (threads).
const MAX_PARTS: usize = 4;

/// Task names, each given an index as it is first seen.
#[derive(Default)]
pub struct Names {
    pub list: Vec<String>,
    /// Once there are more than a few.
    index: HashMap<String, usize>,
}

impl Names {
    /// Tasks a look along the list finds faster than hashing the name.
    const FEW: usize = 16;

    pub fn of(&mut self, name: &str) -> u32 {
        let found = if self.list.len() <= Names::FEW {
            self.list.iter().position(|n| n == name)
        } else {
            self.index.get(name).copied()
        };
        let i = found.unwrap_or_else(|| {
            self.list.push(name.to_owned());
            if self.list.len() > Names::FEW {
                if self.index.is_empty() {
                    self.index = self.list.iter().cloned().zip(0..).collect();
                } else {
                    self.index.insert(name.to_owned(), self.list.len() - 1);
                }
            }
            self.list.len() - 1
        });
        u32::try_from(i).unwrap_or(u32::MAX)
    }
}

/// What a part of the window holds: its runs and the names they index.
type Part = (Vec<String>, Vec<Run>);

impl Store {
    /// Hands `each` every finished run (of `task`) from run `first` on,
    /// in id order, with the number of the part it was read in and that
    /// part's names (which its `task` indexes; they grow as it is read).
    pub(super) fn each_run(
        &self,
        task: Option<&str>,
        first: i64,
        mut each: impl FnMut(usize, &[String], &Run) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let last: i64 = self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM runs", [], |r| r.get(0))?;
        let file = self.conn.path().filter(|p| !p.is_empty()).map(Path::new);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let parts = i64::try_from(cpus.min(MAX_PARTS)).unwrap_or(1);
        let (Some(file), true) = (file, parts > 1 && last - first > SPLIT_OVER) else {
            return self
                .scan(task, (first, i64::MAX), |names, run| each(0, names, run))
                .map(drop);
        };
        // The last part has no end: runs added meanwhile are its.
        let step = (last - first) / parts + 1;
        let bounds: Vec<(i64, i64)> = (0..parts)
            .map(|i| {
                let end = if i + 1 == parts {
                    i64::MAX
                } else {
                    first + (i + 1) * step
                };
                (first + i * step, end)
            })
            .collect();
        // Room for a part's runs made here, in this thread's malloc arena,
        // not in one of the part's thread (which would keep it).
        let room = |(from, to): (i64, i64)| match task {
            Some(_) => 0,
            None => usize::try_from(to.min(last + 1) - from).unwrap_or(0),
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = bounds[1..]
                .iter()
                .map(|&ids| {
                    let runs = Vec::with_capacity(room(ids));
                    scope.spawn(move || Store::open_read_only(file)?.part(task, ids, runs))
                })
                .collect();
            self.scan(task, bounds[0], |names, run| each(0, names, run))?;
            for (i, other) in others.into_iter().enumerate() {
                let (names, runs) = other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                for run in &runs {
                    each(i + 1, &names, run)?;
                }
            }
            Ok(())
        })
    }

    /// The finished runs (of `task`) with an id in `ids`, added to `runs`.
    pub(super) fn part(
        &self,
        task: Option<&str>,
        ids: (i64, i64),
        mut runs: Vec<Run>,
    ) -> Result<Part, StoreError> {
        let names = self.scan(task, ids, |_, run| {
            runs.push(run.clone());
            Ok(())
        })?;
        Ok((names, runs))
    }

    /// Calls `each` with the finished runs (of `task`) with an id in
    /// `from..to`, in id order, and the names they index so far; the
    /// names.
    fn scan(
        &self,
        task: Option<&str>,
        (from, to): (i64, i64),
        mut each: impl FnMut(&[String], &Run) -> Result<(), StoreError>,
    ) -> Result<Vec<String>, StoreError> {
        const COLUMNS: &str = "id, task, started_ms, duration_ms, wait_ms, ok, findings, job_id";
        // Two statements, so the one for a task uses the (task, id) index.
        let mut stmt = match task {
            Some(_) => self.conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM runs WHERE task = ?3 AND id >= ?1 AND id < ?2 AND verdict != 'running' ORDER BY id"
            ))?,
            None => self.conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM runs WHERE ?3 IS NULL AND id >= ?1 AND id < ?2 AND verdict != 'running' ORDER BY id"
            ))?,
        };
        let mut names = Names::default();
        let mut rows = stmt.query(params![from, to, task])?;
        let int = |r: &rusqlite::Row<'_>, i: usize| r.get_ref_unwrap(i).as_i64().unwrap_or(0);
        let ms =
            |r: &rusqlite::Row<'_>, i: usize| u32::try_from(int(r, i).max(0)).unwrap_or(u32::MAX);
        while let Some(r) = rows.next()? {
            let run = Run {
                id: int(r, 0),
                job_id: int(r, 7),
                started_ms: int(r, 2),
                duration_ms: ms(r, 3),
                wait_ms: ms(r, 4),
                task: names.of(r.get_ref_unwrap(1).as_str().unwrap_or("")),
                ok: int(r, 5) != 0,
                found: int(r, 6) > 0,
            };
            each(&names.list, &run)?;
        }
        Ok(names.list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_window_read_in_parts_is_the_same_as_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap().store;
        let n = SPLIT_OVER + 5000;
        s.batch(|s| {
            let mut insert = s.conn.prepare(
                "INSERT INTO runs (job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code,
                                   verdict, findings, ok, peak_rss_kb, cpu_ms, report)
                 VALUES (?1, ?2, 0, 't', ?1, ?1 % 97, 1, 0, ?3, ?1 % 3, ?1 % 5 != 0, 0, 0, '')",
            )?;
            for i in 0..n {
                let task = ["a", "b", "c"][usize::try_from(i % 3).unwrap()];
                let verdict = if i % 1000 == 7 { "running" } else { "done" };
                insert.execute(params![i, task, verdict])?;
            }
            Ok(())
        })
        .unwrap();
        let reader = Store::open_read_only(&dir.path().join(super::super::FILE)).unwrap();
        for task in [None, Some("b")] {
            let mut seen: Vec<(usize, String, Run)> = Vec::new();
            reader
                .each_run(task, 3, |part, names, run| {
                    seen.push((part, names[run.task as usize].clone(), run.clone()));
                    Ok(())
                })
                .unwrap();
            let (names, whole) = reader.part(task, (3, i64::MAX), Vec::new()).unwrap();
            let parts = seen.last().unwrap().0 + 1;
            let cpus = std::thread::available_parallelism().unwrap().get();
            assert!(parts > 1 || cpus == 1, "{parts} parts");
            assert_eq!(seen.len(), whole.len(), "{task:?}");
            for ((_, name, run), want) in seen.iter().zip(&whole) {
                assert_eq!((run.id, name), (want.id, &names[want.task as usize]));
                assert_eq!(
                    (run.duration_ms, run.ok, run.found),
                    (want.duration_ms, want.ok, want.found)
                );
            }
            assert!(whole.len() > 8000 && whole.iter().all(|r| r.id >= 3));
        }
    }
}
