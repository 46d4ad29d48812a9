//! `bgtask events`: the daemon's event stream, live — one line per event,
//! or one JSON object per line (`--json`, a script's `tail -f`). Ends when
//! the daemon stops (exit 0) or after `--count` events.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::Ctx;
use crate::exit;
use crate::ipc::events::{Event, What};
use crate::ipc::{Client, ClientError, Request, Response};
use crate::state::Paths;

pub const EXAMPLES: &str = "Examples:
  bgtask events                      # what the daemon does, as it happens
  bgtask events --json | jq -c 'select(.event == \"job_finished\")'
  bgtask events --task lint --count 1   # wait for lint's next event
  bgtask events --after 120          # from event 121, if the daemon still has it";

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// One JSON object per line (the wire format: `seq`, `at_ms`, `event` and its fields).
    #[arg(long)]
    pub json: bool,
    /// Only events about this task (job, analyzer, trust and notification events).
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Start after this event number (the daemon keeps its last 4096).
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// Stop after this many events (those shown).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

pub fn events(ctx: &Ctx, args: &EventsArgs) -> anyhow::Result<u8> {
    let task = args.task.as_deref();
    follow(ctx, args.after, args.json, args.count, &|what: &What| {
        task.is_none() || what.task() == task
    })
}

/// What `bgtask watch` shows of a daemon that already runs: each result,
/// and what changes whether tasks run (config, trust, health, watcher).
pub fn follow_results(ctx: &Ctx) -> anyhow::Result<u8> {
    follow(ctx, None, false, None, &|what: &What| {
        !matches!(
            what,
            What::TriggerArrived { .. }
                | What::JobQueued { .. }
                | What::JobUpdated { .. }
                | What::JobStarted { .. }
                | What::AnalyzerStarted { .. }
                | What::AnalyzerFinished { .. }
                | What::NotificationDelivered { .. }
        )
    })
}

/// Subscribes to this worktree's daemon and prints what `show` keeps, to
/// `count` events, until the daemon stops.
fn follow(
    ctx: &Ctx,
    after: Option<u64>,
    json: bool,
    count: Option<u64>,
    show: &dyn Fn(&What) -> bool,
) -> anyhow::Result<u8> {
    let workspace = crate::engine::Workspace::worktree(&ctx.cwd)?;
    let paths = Paths::for_root(&workspace.root)?;
    let mut client = match Client::connect(&paths.socket, Duration::from_secs(10)) {
        Ok(client) => client,
        Err(e @ ClientError::NotRunning { .. }) => {
            anstream::eprintln!("error: {e}; `bgtask start` starts it");
            return Ok(exit::DAEMON_DOWN);
        }
        Err(e) => return Err(e.into()),
    };
    client.send(Request::Subscribe { after, epoch: None })?;
    match client.receive()? {
        Response::Subscribed(s) => {
            if s.missed > 0 {
                ctx.note(&format!(
                    "note: {} events after {} are no longer kept by the daemon",
                    s.missed,
                    after.unwrap_or(0)
                ));
            }
            if !json {
                ctx.note(&format!(
                    "following the daemon (pid {}) of {}; Ctrl-C stops",
                    s.pid,
                    workspace.root.display()
                ));
            }
        }
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
    client.no_read_timeout()?;
    let mut shown = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        if count.is_some_and(|n| shown >= n) {
            return Ok(exit::OK);
        }
        let event = match client.receive() {
            Ok(Response::Event(e)) => e,
            Ok(other) => anyhow::bail!("unexpected answer: {other:?}"),
            // The daemon went without a word (killed): the stream is over.
            Err(ClientError::Frame(crate::ipc::frame::FrameError::Closed)) => {
                ctx.note("the daemon went away");
                return Ok(exit::DAEMON_DOWN);
            }
            Err(e) => return Err(e.into()),
        };
        let last = event.what == What::Stopped;
        if show(&event.what) {
            if json {
                writeln!(out, "{}", serde_json::to_string(&event)?)?;
            } else {
                writeln!(out, "{}", line(&event))?;
            }
            out.flush()?;
            shown += 1;
        }
        if last {
            return Ok(exit::OK);
        }
    }
}

/// `12:03:04.120  job 17 started      lint (run 40, attempt 1)`.
pub fn line(e: &Event) -> String {
    let (what, detail) = describe(&e.what);
    format!(
        "{}  {what:<20} {detail}",
        crate::clock::time_of_day(e.at_ms, true)
    )
    .trim_end()
    .to_owned()
}

fn files_label(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

fn describe(what: &What) -> (String, String) {
    job_line(what)
        .or_else(|| notification_line(what))
        .unwrap_or_else(|| state_line(what))
}

/// `notification  email delivered: scan: 2 new findings (run 4)`.
fn notification_line(what: &What) -> Option<(String, String)> {
    let What::NotificationDelivered {
        channel,
        outcome,
        title,
        run_id,
        error,
        ..
    } = what
    else {
        return None;
    };
    let run = run_id.map(|r| format!(" (run {r})")).unwrap_or_default();
    let error = error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
    Some((
        "notification".into(),
        format!("{channel} {outcome}: {title}{run}{error}"),
    ))
}

/// Jobs and their analyzers.
fn job_line(what: &What) -> Option<(String, String)> {
    Some(match what {
        What::TriggerArrived { trigger, files } => (
            "trigger".into(),
            match files {
                0 => trigger.clone(),
                n => format!("{trigger} ({})", files_label(*n)),
            },
        ),
        What::JobQueued {
            job_id,
            task,
            trigger,
            files,
            ..
        } => (
            format!("job {job_id} queued"),
            format!(
                "{task} ({trigger}, {})",
                files.map_or("whole project".to_owned(), files_label)
            ),
        ),
        What::JobUpdated { job_id, task } => (format!("job {job_id} updated"), task.clone()),
        What::JobDropped {
            job_id,
            task,
            reason,
        } => (format!("job {job_id} dropped"), format!("{task}: {reason}")),
        What::JobStarted {
            job_id,
            run_id,
            task,
            attempt,
        } => (
            format!("job {job_id} started"),
            format!("{task} (run {run_id}, attempt {})", attempt + 1),
        ),
        What::AnalyzerStarted { task, analyzer, .. } => {
            ("analyzer started".into(), format!("{task}: {analyzer}"))
        }
        What::AnalyzerFinished {
            task,
            analyzer,
            status,
            cached,
            ..
        } => (
            "analyzer finished".into(),
            format!(
                "{task}: {analyzer} {status}{}",
                if *cached { " (cached)" } else { "" }
            ),
        ),
        What::JobFinished {
            job_id,
            run_id,
            task,
            state,
            verdict,
            duration_ms,
            ..
        } => (
            format!("job {job_id} {state}"),
            format!(
                "{task}: {} (run {run_id}, {}.{} s)",
                verdict.as_deref().unwrap_or("no report"),
                duration_ms / 1000,
                duration_ms % 1000 / 100
            ),
        ),
        _ => return None,
    })
}

/// The daemon's own state.
fn state_line(what: &What) -> (String, String) {
    match what {
        What::ConfigReloaded { stale: false, .. } => ("config reloaded".into(), String::new()),
        What::ConfigReloaded { problems, .. } => (
            "config invalid".into(),
            format!("keeping the last good one: {}", problems.join("; ")),
        ),
        What::HealthChanged { level, summary } => (
            "health".into(),
            format!("{level:?}: {summary}").to_lowercase(),
        ),
        What::TrustChanged { task, state, diff } => (
            "trust".into(),
            if diff.is_empty() {
                format!("{task} {state}: it runs by itself after `bgtask trust`")
            } else {
                format!(
                    "{task} {state} ({}): it runs by itself after `bgtask trust`",
                    diff.join("; ")
                )
            },
        ),
        What::WatcherChanged { state, message } => (
            "watcher".into(),
            format!("{state} {}", message.as_deref().unwrap_or("")),
        ),
        What::Holding { reason: Some(why) } => ("holding".into(), format!("new jobs wait: {why}")),
        What::Holding { reason: None } => ("holding".into(), "new jobs start again".into()),
        What::AutomationPaused { reason, by, held } => (
            "automation paused".into(),
            format!(
                "{}{}; {held} held, automatic jobs wait for `bgtask resume`",
                if reason.is_empty() {
                    "no reason given"
                } else {
                    reason
                },
                by.as_ref()
                    .map(|b| format!(" (by {b})"))
                    .unwrap_or_default()
            ),
        ),
        What::AutomationResumed { held } => (
            "automation resumed".into(),
            format!("{held} held job(s) start"),
        ),
        What::Stopping => ("daemon stopping".into(), String::new()),
        What::Stopped => ("daemon stopped".into(), String::new()),
        What::Lagged { missed } => (
            "lagged".into(),
            format!("{missed} events were not shown: this terminal fell behind"),
        ),
        _ => (String::new(), String::new()),
    }
}
