//! Jobs in the store: the scheduler's effects applied in one transaction,
//! the running state with every process found running for it (analyzers
//! and their descendants), and recovery of jobs an earlier daemon left
//! running.

use std::collections::BTreeSet;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use crate::config::Priority;
use crate::run::{ProcessKind, Spawned};
use crate::schedule::{Effect, FinalState, JobHead, JobId, Millis, WaitKind, Waiting};

/// A job as `bgtask show`/`cancel`/`retry` see it.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: JobId,
    pub task: String,
    pub state: String,
    pub attempt: u32,
    pub note: Option<String>,
    pub last_run_id: Option<i64>,
}

/// A job found `running` at start: what was killed and whether it runs again.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub job_id: JobId,
    pub task: String,
    pub processes: Vec<Spawned>,
    /// The machine boot it ran in (process ids mean nothing in another).
    pub boot_id: Option<String>,
    /// Re-queued to run once more (false: it was already a recovery run).
    pub requeued: bool,
}

/// Why a job that died with the daemon twice is not run again.
const DEAD_TWICE: &str =
    "interrupted twice (the daemon died during its run and during the re-run); not retried";

fn state_of(kind: WaitKind) -> &'static str {
    match kind {
        WaitKind::Queued => "queued",
        WaitKind::RetryWait => "retry_wait",
    }
}

fn final_state(s: FinalState) -> &'static str {
    match s {
        FinalState::Done => "done",
        FinalState::Failed => "failed",
        FinalState::Dead => "dead",
        FinalState::Cancelled => "cancelled",
    }
}

fn add_files<'a>(
    tx: &Connection,
    id: JobId,
    files: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<(), StoreError> {
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO job_files (job_id, path) VALUES (?1, ?2)")?;
    for f in files {
        stmt.execute(params![id, f.as_os_str().as_bytes()])?;
    }
    Ok(())
}

/// Inserts a new waiting job, with its files unless it covers the project.
fn insert_job(tx: &Connection, w: &Waiting) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO jobs (id, task, dedup_key, priority, score, why, state, project, trigger,
                           attempt, enqueued_ms, not_before_ms, recovered)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        w.id,
        w.task,
        w.key,
        w.priority.as_str(),
        w.score,
        w.why,
        state_of(w.kind),
        w.files.is_none(),
        serde_json::to_string(&w.trigger)?,
        w.attempt,
        w.enqueued,
        w.not_before,
        w.recovered,
    ])?;
    if let Some(files) = &w.files {
        add_files(tx, w.id, files)?;
    }
    Ok(())
}

/// Updates a waiting job's head; a job that now covers the project loses
/// its file list.
fn update_job(tx: &Connection, h: &JobHead) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE jobs SET priority = ?2, score = ?3, why = ?4, state = ?5, project = ?6, trigger = ?7,
                         attempt = ?8, not_before_ms = ?9, recovered = ?10
         WHERE id = ?1",
    )?
    .execute(params![
        h.id,
        h.priority.as_str(),
        h.score,
        h.why,
        state_of(h.kind),
        h.project,
        serde_json::to_string(&h.trigger)?,
        h.attempt,
        h.not_before,
        h.recovered,
    ])?;
    if h.project {
        tx.execute("DELETE FROM job_files WHERE job_id = ?1", params![h.id])?;
    }
    Ok(())
}

impl Store {
    pub fn next_job_id(&self) -> Result<JobId, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM jobs", [], |r| {
                r.get(0)
            })?)
    }

    /// Applies scheduler effects atomically.
    pub fn apply(&mut self, effects: &[Effect], now: Millis) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        for e in effects {
            match e {
                Effect::Insert(w) => insert_job(&tx, w)?,
                Effect::Update(h) => update_job(&tx, h)?,
                Effect::AddFiles { id, files } => add_files(&tx, *id, files)?,
                Effect::Drop { id, reason, .. } => {
                    tx.execute(
                        "UPDATE jobs SET state = 'dropped', note = ?2, finished_ms = ?3 WHERE id = ?1",
                        params![id, format!("dropped: {reason}"), now],
                    )?;
                }
                Effect::Finish { id, state, note } => {
                    tx.execute(
                        "UPDATE jobs SET state = ?2, note = ?3, finished_ms = ?4 WHERE id = ?1",
                        params![id, final_state(*state), note, now],
                    )?;
                }
                Effect::Arrived { id, arrival } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO intake (id, at_ms, arrival) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        id,
                        now,
                        serde_json::to_string(arrival)?
                    ])?;
                }
                Effect::Consumed(ids) => {
                    let mut stmt = tx.prepare_cached("DELETE FROM intake WHERE id = ?1")?;
                    for id in ids {
                        stmt.execute(params![id])?;
                    }
                }
                Effect::Automation(pause) => super::pause::write(&tx, pause.as_ref())?,
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Committed before any analyzer process starts.
    pub fn mark_running(
        &mut self,
        id: JobId,
        boot_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = 'running', started_ms = ?2, boot_id = ?3 WHERE id = ?1",
            params![id, now, boot_id],
        )?;
        Ok(())
    }

    /// Records a process of a running job, committed before it can
    /// outlive a crash of the daemon unnoticed.
    pub fn add_process(&self, job_id: JobId, p: &Spawned) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO processes (job_id, pid, start_ticks, kind, token) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                job_id,
                p.pid,
                i64::try_from(p.start_ticks).unwrap_or(i64::MAX),
                match p.kind {
                    ProcessKind::Group => "group",
                    ProcessKind::Process => "process",
                },
                p.token,
            ])?;
        Ok(())
    }

    pub fn clear_processes(&self, job_id: JobId) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM processes WHERE job_id = ?1", params![job_id])?;
        Ok(())
    }

    pub fn set_last_run(&self, job_id: JobId, run_id: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET last_run_id = ?2 WHERE id = ?1",
            params![job_id, run_id],
        )?;
        Ok(())
    }

    /// A job stopped by a graceful shutdown: it runs again at the next
    /// start, even if it was itself a re-run (only a crash, which might be
    /// the job's doing, limits re-runs to one).
    pub fn interrupt(&self, id: JobId, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = 'interrupted', recovered = 0, finished_ms = ?2,
                    note = 'interrupted by daemon shutdown; runs again at the next start'
             WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, task, state, attempt, note, last_run_id FROM jobs WHERE id = ?1",
                params![id],
                |r| {
                    Ok(JobRow {
                        id: r.get(0)?,
                        task: r.get(1)?,
                        state: r.get(2)?,
                        attempt: r.get(3)?,
                        note: r.get(4)?,
                        last_run_id: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    fn files_of(&self, id: JobId) -> Result<BTreeSet<PathBuf>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM job_files WHERE job_id = ?1")?;
        let rows = stmt.query_map(params![id], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = BTreeSet::new();
        for r in rows {
            out.insert(PathBuf::from(std::ffi::OsString::from_vec(r?)));
        }
        Ok(out)
    }

    /// A job's files; `None` for the whole project (or an unknown job).
    pub fn job_files(&self, id: JobId) -> Result<Option<BTreeSet<PathBuf>>, StoreError> {
        let project: Option<bool> = self
            .conn
            .query_row("SELECT project FROM jobs WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        match project {
            Some(false) => Ok(Some(self.files_of(id)?)),
            _ => Ok(None),
        }
    }

    /// Triggers still in the intake, oldest first, and the next free id. A
    /// row that no longer parses (written by another version) is dropped.
    pub fn intake(&self) -> Result<(Vec<(i64, crate::event::Arrival)>, i64), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, arrival FROM intake ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        let mut next = 1;
        for row in rows {
            let (id, text) = row?;
            next = next.max(id + 1);
            match serde_json::from_str(&text) {
                Ok(a) => out.push((id, a)),
                Err(e) => tracing::warn!(id, error = %e, "dropping an unreadable intake row"),
            }
        }
        Ok((out, next))
    }

    /// Jobs waiting to run (queued or waiting to retry), to rebuild the queue.
    pub fn waiting_jobs(&self) -> Result<Vec<Waiting>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, task, dedup_key, priority, score, why, state, project, trigger, attempt,
                    enqueued_ms, not_before_ms, recovered
             FROM jobs WHERE state IN ('queued', 'retry_wait') ORDER BY id",
        )?;
        let rows: Vec<(Waiting, bool)> = stmt
            .query_map([], |r| {
                let priority: String = r.get(3)?;
                let trigger: String = r.get(8)?;
                Ok((
                    Waiting {
                        id: r.get(0)?,
                        task: r.get(1)?,
                        key: r.get(2)?,
                        priority: Priority::parse(&priority).unwrap_or(Priority::Medium),
                        score: r.get(4)?,
                        why: r.get(5)?,
                        files: None,
                        trigger: serde_json::from_str(&trigger).map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                8,
                                rusqlite::types::Type::Text,
                                Box::new(e),
                            )
                        })?,
                        attempt: r.get(9)?,
                        enqueued: r.get(10)?,
                        not_before: r.get(11)?,
                        kind: if r.get::<_, String>(6)? == "retry_wait" {
                            WaitKind::RetryWait
                        } else {
                            WaitKind::Queued
                        },
                        recovered: r.get(12)?,
                    },
                    r.get::<_, bool>(7)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(mut w, project)| {
                if !project {
                    w.files = Some(self.files_of(w.id)?);
                }
                Ok(w)
            })
            .collect()
    }

    /// At start: a job still `running` was left by a daemon that died, and an
    /// `interrupted` one by a daemon that was stopped. Recorded process groups
    /// are returned (to be killed); each job runs once more, unless it
    /// already was such a second run.
    pub fn recover(&mut self, now: Millis) -> Result<Vec<Recovered>, StoreError> {
        let tx = self.conn.savepoint()?;
        let jobs: Vec<(JobId, String, bool, Option<String>)> = tx
            .prepare(
                "SELECT id, task, recovered, boot_id FROM jobs
                 WHERE state = 'running' OR (state = 'interrupted' AND recovered = 0) ORDER BY id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (id, task, already, boot_id) in jobs {
            let processes: Vec<Spawned> = tx
                .prepare("SELECT pid, start_ticks, kind, token FROM processes WHERE job_id = ?1")?
                .query_map(params![id], |r| {
                    Ok(Spawned {
                        pid: r.get(0)?,
                        start_ticks: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        kind: if r.get::<_, String>(2)? == "process" {
                            ProcessKind::Process
                        } else {
                            ProcessKind::Group
                        },
                        token: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            tx.execute("DELETE FROM processes WHERE job_id = ?1", params![id])?;
            tx.execute(
                "UPDATE runs SET verdict = 'interrupted: the daemon stopped', ok = 0 WHERE job_id = ?1 AND verdict = 'running'",
                params![id],
            )?;
            if already {
                // Given up: said where people look (history, status), with
                // the way back.
                tx.execute(
                    "UPDATE jobs SET state = 'dead', finished_ms = ?2, note = ?3 WHERE id = ?1",
                    params![id, now, DEAD_TWICE],
                )?;
                tx.execute(
                    "UPDATE runs SET verdict = 'dead: ' || ?2 || '; `bgtask retry ' || id || '` runs it again'
                     WHERE id = (SELECT max(id) FROM runs WHERE job_id = ?1)",
                    params![id, DEAD_TWICE],
                )?;
            } else {
                tx.execute(
                    "UPDATE jobs SET state = 'queued', recovered = 1, not_before_ms = ?2, started_ms = NULL,
                            note = 'interrupted when the daemon stopped; runs again'
                     WHERE id = ?1",
                    params![id, now],
                )?;
            }
            out.push(Recovered {
                job_id: id,
                task,
                processes,
                boot_id,
                requeued: !already,
            });
        }
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::event::{Trigger, TriggerSource};
    use crate::schedule::{Offer, Queue};

    fn offer(key: &str, files: &[&str]) -> Offer {
        Offer {
            task: key.into(),
            key: key.into(),
            priority: Priority::High,
            score: 300,
            why: Some("why".into()),
            files: (!files.is_empty()).then(|| files.iter().map(PathBuf::from).collect()),
            trigger: Trigger {
                source: TriggerSource::Manual {
                    command: "x".into(),
                },
                at: SystemTime::UNIX_EPOCH,
            },
            debounce: 0,
        }
    }

    #[test]
    fn effects_round_trip_through_the_store() {
        let mut store = Store::in_memory().unwrap();
        let mut q = Queue::new(store.next_job_id().unwrap(), 10);
        let (_, e1) = q.offer(offer("sec", &["a.py"]), 5);
        store.apply(&e1, 5).unwrap();
        let weird = PathBuf::from(std::ffi::OsString::from_vec(b"odd\xff name.py".to_vec()));
        let mut o = offer("sec", &[]);
        o.files = Some([weird.clone()].into());
        let (_, e2) = q.offer(o, 6);
        store.apply(&e2, 6).unwrap();
        let (_, e3) = q.offer(offer("lint", &[]), 7);
        store.apply(&e3, 7).unwrap();
        let mut loaded = store.waiting_jobs().unwrap();
        loaded.sort_by_key(|w| w.id);
        let mut expected: Vec<Waiting> = q.waiting().cloned().collect();
        expected.sort_by_key(|w| w.id);
        assert_eq!(loaded, expected);
        assert!(loaded[0].files.as_ref().unwrap().contains(&weird));
        assert_eq!(store.next_job_id().unwrap(), 3);
        // A project-wide trigger absorbs the file set, on disk too.
        let mut o = offer("sec", &[]);
        o.files = None;
        let (_, e4) = q.offer(o, 8);
        store.apply(&e4, 8).unwrap();
        let loaded = store.waiting_jobs().unwrap();
        let sec = loaded.iter().find(|w| w.key == "sec").unwrap();
        assert_eq!(sec.files, None);
        assert_eq!(store.files_of(sec.id).unwrap().len(), 0);
    }

    #[test]
    fn running_jobs_are_recovered_once() {
        let mut store = Store::in_memory().unwrap();
        let mut q = Queue::new(1, 10);
        let (_, e) = q.offer(offer("sec", &[]), 0);
        store.apply(&e, 0).unwrap();
        let job = q.pop_ready(0).unwrap();
        store.mark_running(job.id, "boot-1", 1).unwrap();
        let group = Spawned {
            pid: 4242,
            start_ticks: 99,
            kind: ProcessKind::Group,
            token: Some("1.2.3".to_owned()),
        };
        let escapee = Spawned {
            pid: 4250,
            start_ticks: 120,
            kind: ProcessKind::Process,
            token: None,
        };
        store.add_process(job.id, &group).unwrap();
        store.add_process(job.id, &escapee).unwrap();
        let rec = store.recover(2).unwrap();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].processes, [group, escapee]);
        assert!(rec[0].requeued);
        let waiting = store.waiting_jobs().unwrap();
        assert_eq!(waiting.len(), 1);
        assert!(waiting[0].recovered);
        // Interrupted again during the re-run: not re-run a second time.
        store.mark_running(job.id, "boot-2", 3).unwrap();
        let rec = store.recover(4).unwrap();
        assert!(!rec[0].requeued);
        assert_eq!(store.job(job.id).unwrap().unwrap().state, "dead");
        assert!(store.waiting_jobs().unwrap().is_empty());
    }
}
