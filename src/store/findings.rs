//! What the trends read of the runs' findings: each run's, as the runs go
//! (one range scan of the `findings_run` index for the whole window), the
//! files of file-scoped jobs, and what a task knew before the window
//! (`Knowing`, folded with `known.rs`).

use rusqlite::params;

use super::buckets::Seen;
use super::known::{Counts, Found, FxMap, FxSet, Interner, Known, Scope, fold, severity_index};
use super::{Store, StoreError};

/// Runs read this far back (in runs of the task) for what was known at
/// the window's start: the notifier's bound.
const PRIOR_RUNS: u32 = 100;

/// The findings of runs in id order, read as the runs go.
pub struct Findings<'s> {
    rows: rusqlite::Rows<'s>,
    peeked: Option<(i64, Found)>,
    /// The last run's.
    found: Vec<Found>,
}

impl<'s> Findings<'s> {
    pub fn new(rows: rusqlite::Rows<'s>) -> Findings<'s> {
        Findings {
            rows,
            peeked: None,
            found: Vec::new(),
        }
    }

    /// The findings of run `id` (runs are asked for in increasing id).
    pub fn of(&mut self, id: i64, strings: &mut Interner) -> Result<&[Found], StoreError> {
        self.found.clear();
        loop {
            if self.peeked.is_none() {
                let Some(r) = self.rows.next()? else {
                    return Ok(&self.found);
                };
                let text = |i| r.get_ref(i).map(|v| v.as_bytes().ok());
                let found = Found {
                    severity: severity_index(text(1)?.unwrap_or_default()),
                    fingerprint: strings.id(text(2)?.unwrap_or_default()),
                    path: text(3)?.map(|p| strings.id(p)),
                };
                self.peeked = Some((r.get(0)?, found));
            }
            match self.peeked.take() {
                Some((run, f)) if run == id => self.found.push(f),
                Some((run, _)) if run < id => {}
                later => {
                    self.peeked = later;
                    return Ok(&self.found);
                }
            }
        }
    }
}

/// The files each file-scoped job looked at, by job id.
pub type Scopes = FxMap<i64, FxSet<u32>>;

/// What a task knows so far.
#[derive(Default)]
pub struct Knowing {
    /// `None`: it never ran (its first run's findings are all new).
    pub known: Option<Known>,
    /// Its last run's findings were removed by retention: the next one
    /// found starts afresh, neither new nor fixed.
    pub blind: bool,
}

impl Knowing {
    pub fn counts(&self) -> Counts {
        self.known.as_ref().map(Known::counts).unwrap_or_default()
    }

    /// A run of the task in which no analyzer failed, that found `found`
    /// (`None`: it found something, and retention removed it).
    pub fn fold(&mut self, scope: Scope<'_>, found: Option<&[Found]>) -> Seen {
        let Some(found) = found else {
            self.blind = true;
            return Seen {
                removed: true,
                ..Seen::default()
            };
        };
        let (new, fixed) = fold(&mut self.known, scope, found);
        if std::mem::take(&mut self.blind) {
            return Seen::default();
        }
        Seen {
            new,
            fixed,
            ..Seen::default()
        }
    }
}

impl Store {
    /// What `task` knew before run `first`: its earlier runs in which no
    /// analyzer failed, back to a whole-project one (at most
    /// [`PRIOR_RUNS`]), folded oldest first.
    pub(super) fn known_before(
        &self,
        task: &str,
        first: i64,
        strings: &mut Interner,
    ) -> Result<Knowing, StoreError> {
        let prior: Vec<(i64, i64, bool, bool)> = self
            .conn
            .prepare_cached(
                "SELECT r.id, r.job_id, coalesce(j.project, 1), r.findings > 0 FROM runs r
                 LEFT JOIN jobs j ON j.id = r.job_id
                 WHERE r.task = ?1 AND r.id < ?2 AND r.ok = 1 AND r.verdict != 'running'
                 ORDER BY r.id DESC LIMIT ?3",
            )?
            .query_map(params![task, first, PRIOR_RUNS], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        let whole = prior.iter().position(|(_, _, project, _)| *project);
        let prior = &prior[..whole.map_or(prior.len(), |i| i + 1)];
        let mut known = Knowing::default();
        let mut findings = self.conn.prepare_cached(
            "SELECT run_id, severity, fingerprint, path FROM findings WHERE run_id = ?1",
        )?;
        for &(run, job, project, found_any) in prior.iter().rev() {
            let scope = if project {
                None
            } else {
                Some(
                    self.scopes(job, job, strings)?
                        .remove(&job)
                        .unwrap_or_default(),
                )
            };
            let mut found = Findings::new(findings.query(params![run])?);
            let found = found.of(run, strings)?;
            let found = (!found_any || !found.is_empty()).then_some(found);
            known.fold(scope.as_ref(), found);
        }
        Ok(known)
    }

    /// The files of each file-scoped job with an id in `first..=last`
    /// (the others looked at the whole project, or retention removed them).
    pub(super) fn scopes(
        &self,
        first: i64,
        last: i64,
        paths: &mut Interner,
    ) -> Result<Scopes, StoreError> {
        let mut scopes = Scopes::default();
        let mut jobs = self
            .conn
            .prepare_cached("SELECT id FROM jobs WHERE id BETWEEN ?1 AND ?2 AND project = 0")?;
        for id in jobs.query_map(params![first, last], |r| r.get(0))? {
            scopes.insert(id?, FxSet::default());
        }
        if scopes.is_empty() {
            return Ok(scopes);
        }
        let mut files = self
            .conn
            .prepare_cached("SELECT job_id, path FROM job_files WHERE job_id BETWEEN ?1 AND ?2")?;
        let mut rows = files.query(params![first, last])?;
        while let Some(r) = rows.next()? {
            if let Some(files) = scopes.get_mut(&r.get::<_, i64>(0)?) {
                let path = r.get_ref(1)?.as_blob().unwrap_or_default();
                files.insert(paths.id(path));
            }
        }
        Ok(scopes)
    }
}
