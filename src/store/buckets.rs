//! The trends' time buckets: each task's runs by the hour or day as they
//! come, then each bucket's numbers, percentiles included (nearest rank,
//! by selection rather than sorting), and the total over the tasks.

use std::collections::BTreeMap;

use super::known::Counts;
use super::trends::{TaskTrend, TrendPoint, TrendQuery, Trends};
use super::window::Run;

/// The nearest-rank 50th and 95th percentiles of `values` (reordered).
fn p50_p95(values: &mut [u32]) -> (u64, u64) {
    if values.is_empty() {
        return (0, 0);
    }
    let rank = |p: usize| (values.len() * p).div_ceil(100).max(1) - 1;
    let (r50, r95) = (rank(50), rank(95));
    let (below, p95, _) = values.select_nth_unstable(r95);
    let p95 = *p95;
    let p50 = if r50 < r95 {
        *below.select_nth_unstable(r50).1
    } else {
        p95
    };
    (u64::from(p50), u64::from(p95))
}

/// One bucket's runs, as they come.
#[derive(Default)]
struct Cell {
    runs: u64,
    ok: u64,
    durations: Vec<u32>,
    waits: Vec<u32>,
    new: u64,
    fixed: u64,
    removed: u64,
    found: Counts,
}

/// What a run changed in what its task knows.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    pub new: u64,
    pub fixed: u64,
    /// Its findings were removed by retention: it tells nothing.
    pub removed: bool,
    /// What the task knows after it.
    pub found: Counts,
}

impl Cell {
    fn point(&mut self, start_ms: i64, found: Counts) -> TrendPoint {
        let (duration_p50_ms, duration_p95_ms) = p50_p95(&mut self.durations);
        let (wait_p50_ms, wait_p95_ms) = p50_p95(&mut self.waits);
        #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
        let ok_rate = self.ok as f64 / self.runs.max(1) as f64;
        TrendPoint {
            start_ms,
            runs: self.runs,
            ok_rate,
            duration_p50_ms,
            duration_p95_ms,
            wait_p50_ms,
            wait_p95_ms,
            findings: found.into(),
            new: self.new,
            fixed: self.fixed,
            findings_removed: self.removed,
        }
    }
}

/// Each task's buckets, in time order (runs mostly come in it).
pub struct Buckets<'q> {
    q: &'q TrendQuery<'q>,
    tasks: Vec<Vec<(i64, Cell)>>,
}

impl<'q> Buckets<'q> {
    pub fn new(q: &'q TrendQuery<'q>) -> Buckets<'q> {
        Buckets {
            q,
            tasks: Vec::new(),
        }
    }

    /// Adds a run of `task` (outside the window: nothing) with what it
    /// changed in what the task knows.
    pub fn add(&mut self, task: usize, run: &Run, seen: Seen) {
        let q = self.q;
        if run.started_ms < q.from_ms || run.started_ms >= q.to_ms {
            return;
        }
        let start =
            (run.started_ms + q.offset_ms).div_euclid(q.bucket_ms) * q.bucket_ms - q.offset_ms;
        if self.tasks.len() <= task {
            self.tasks.resize_with(task + 1, Vec::new);
        }
        let cells = &mut self.tasks[task];
        let i = match cells.last() {
            Some((last, _)) if *last == start => cells.len() - 1,
            _ => match cells.binary_search_by_key(&start, |(s, _)| *s) {
                Ok(i) => i,
                Err(i) => {
                    cells.insert(i, (start, Cell::default()));
                    i
                }
            },
        };
        let cell = &mut cells[i].1;
        cell.runs += 1;
        cell.ok += u64::from(run.ok);
        cell.durations.push(run.duration_ms);
        cell.waits.push(run.wait_ms);
        cell.new += seen.new;
        cell.fixed += seen.fixed;
        cell.removed += u64::from(seen.removed);
        cell.found = seen.found;
    }

    /// Each task's points and the total's; `before` is what each task knew
    /// at the window's start (carried into the total until it runs).
    pub fn finish(self, names: Vec<String>, before: Vec<Counts>) -> Trends {
        let mut all: BTreeMap<(i64, usize), Cell> = BTreeMap::new();
        for (task, cells) in self.tasks.into_iter().enumerate() {
            all.extend(cells.into_iter().map(|(start, cell)| ((start, task), cell)));
        }
        let mut tasks: Vec<TaskTrend> = names
            .into_iter()
            .map(|task| TaskTrend {
                task,
                points: Vec::new(),
            })
            .collect();
        let mut latest = before;
        let mut total: Vec<TrendPoint> = Vec::new();
        let mut pooled = Cell::default();
        let mut cells = all.into_iter().peekable();
        while let Some(((start, task), mut cell)) = cells.next() {
            pooled.runs += cell.runs;
            pooled.ok += cell.ok;
            pooled.durations.extend_from_slice(&cell.durations);
            pooled.waits.extend_from_slice(&cell.waits);
            pooled.new += cell.new;
            pooled.fixed += cell.fixed;
            pooled.removed += cell.removed;
            latest[task] = cell.found;
            let found = cell.found;
            tasks[task].points.push(cell.point(start, found));
            if cells.peek().is_none_or(|((next, _), _)| *next != start) {
                let mut sum = Counts::default();
                for c in &latest {
                    sum.iter_mut().zip(c).for_each(|(s, n)| *s += n);
                }
                total.push(std::mem::take(&mut pooled).point(start, sum));
            }
        }
        Trends {
            from_ms: self.q.from_ms,
            to_ms: self.q.to_ms,
            bucket_ms: self.q.bucket_ms,
            tasks,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::p50_p95;

    #[test]
    fn nearest_rank_percentiles() {
        for (values, want) in [
            (vec![], (0, 0)),
            (vec![7], (7, 7)),
            (vec![3, 1], (1, 3)),
            ((1..=20).rev().collect::<Vec<u32>>(), (10, 19)),
            ((1..=100).collect(), (50, 95)),
        ] {
            let mut v = values.clone();
            assert_eq!(p50_p95(&mut v), want, "{values:?}");
        }
    }
}
