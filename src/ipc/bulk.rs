//! Bulk actions over what a filter selects: cancel every waiting job (of a
//! task), retry every failed run (of a task) since a time. Each is the
//! daemon's own single cancel or retry, one request per job, so a bulk
//! action does exactly what clicking each one would; `bgtask cancel
//! --waiting`, `bgtask retry --failed` and the dashboard's bulk buttons
//! all call these.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Client, ClientError, Request, Response};

/// What a bulk action did: the jobs it cancelled or queued again, and
/// those the daemon refused (a job that started or ended meanwhile).
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
pub struct BulkOutcome {
    /// How many jobs or runs the filter selected.
    pub selected: usize,
    /// The jobs cancelled, or the new jobs queued.
    pub done: Vec<i64>,
    pub refused: Vec<Refused>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Refused {
    /// The job (cancel) or run (retry) id.
    pub id: i64,
    pub reason: String,
}

/// A "failed" run: an analyzer failed, timed out or ran out of memory
/// (exit 2 and up). Findings are results, not failures.
fn failed(exit_code: u8) -> bool {
    exit_code >= 2
}

fn matches(task: Option<&str>, t: &str) -> bool {
    task.is_none_or(|want| want == t)
}

/// Cancels every job of `task` (every task: `None`) that waits in the
/// queue; running jobs are left alone.
pub fn cancel_waiting(client: &mut Client, task: Option<&str>) -> Result<BulkOutcome, ClientError> {
    let Response::Queue { entries } = client.call(Request::Queue)? else {
        return Err(ClientError::Unexpected("queue"));
    };
    let mut out = BulkOutcome::default();
    for e in entries.iter().filter(|e| matches(task, &e.task)) {
        out.selected += 1;
        match client.call(Request::Cancel { job_id: e.job_id }) {
            Ok(Response::Cancelled { job_id, .. }) => out.done.push(job_id),
            Ok(_) => return Err(ClientError::Unexpected("cancel")),
            Err(ClientError::Daemon(err)) => out.refused.push(Refused {
                id: e.job_id,
                reason: err.message,
            }),
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

/// Queues again the job of every failed run of `task` (every task:
/// `None`) that started at or after `since_ms` and is its task's latest run:
/// a task that ran clean since (a retry, a save) is not failing any more,
/// and the queue would merge a task's retries into one job anyway.
pub fn retry_failed(
    client: &mut Client,
    task: Option<&str>,
    since_ms: i64,
) -> Result<BulkOutcome, ClientError> {
    let mut out = BulkOutcome::default();
    let mut tasks = BTreeSet::new();
    let mut before = None;
    loop {
        let request = Request::History {
            task: task.map(str::to_owned),
            limit: 200,
            before,
            outcome: None,
            since_ms: Some(since_ms),
        };
        let Response::History { runs } = client.call(request)? else {
            return Err(ClientError::Unexpected("history"));
        };
        let Some(last) = runs.last() else { break };
        before = Some(last.run_id);
        for r in &runs {
            if !tasks.insert(r.task.clone()) || !failed(r.exit_code) {
                continue;
            }
            out.selected += 1;
            match client.call(Request::Retry { run_id: r.run_id }) {
                Ok(Response::Retried { job_id }) => out.done.push(job_id),
                Ok(_) => return Err(ClientError::Unexpected("retry")),
                Err(ClientError::Daemon(err)) => out.refused.push(Refused {
                    id: r.run_id,
                    reason: err.message,
                }),
                Err(err) => return Err(err),
            }
        }
    }
    Ok(out)
}
