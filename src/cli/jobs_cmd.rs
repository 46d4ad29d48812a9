//! Commands that talk to a running daemon: `submit`, `queue`, `history`,
//! `show`, `logs`, `cancel`, `retry`, `metrics`, `health`, `cleanup`,
//! `reload` (and the helpers `pause_cmd.rs` shares).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::{Ctx, UsageError};
use crate::config::Priority;
use crate::engine::{Selection, Workspace};
use crate::event::{Targets, TriggerSource};
use crate::exit;
use crate::ipc::{Client, ClientError, Level, Request, Response, Submit};
use crate::report::{self, ConsoleOptions, Format, MarkdownLinks};
use crate::state::Paths;

pub const SUBMIT_EXAMPLES: &str = "Examples:
  bgtask submit security                         queue the security task for the whole project
  bgtask submit code --files src/app.py          only these files
  bgtask submit tests --priority high";

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Task names, or `all`.
    #[arg(required = true, value_name = "TASK")]
    pub tasks: Vec<String>,
    /// Only these files.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Override the task's priority.
    #[arg(long, value_enum)]
    pub priority: Option<Priority>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Connects to the daemon of the current worktree; "not running" is said
/// once here and becomes exit code 4.
fn connect(ctx: &Ctx) -> anyhow::Result<Result<Client, u8>> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let paths = Paths::for_root(&workspace.root)?;
    match Client::connect(&paths.socket, Duration::from_secs(10)) {
        Ok(client) => Ok(Ok(client)),
        Err(e @ ClientError::NotRunning { .. }) => {
            anstream::eprintln!("error: {e}; `bgtask start` starts it");
            Ok(Err(exit::DAEMON_DOWN))
        }
        Err(e) => Err(e.into()),
    }
}

/// One request, one answer.
pub(super) fn call(ctx: &Ctx, request: Request) -> anyhow::Result<Result<Response, u8>> {
    Ok(match connect(ctx)? {
        Ok(mut client) => Ok(client.call(request)?),
        Err(code) => Err(code),
    })
}

pub(super) fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Task names as the daemon knows them: in a project below the worktree's
/// top, a plain name (or `all`) is that project's.
fn task_keys(ctx: &Ctx, top: &Workspace, tasks: &[String]) -> anyhow::Result<Vec<String>> {
    let here = Workspace::discover(&ctx.cwd)?;
    let dir = here
        .canonical_root
        .strip_prefix(&top.canonical_root)
        .unwrap_or(std::path::Path::new(""));
    if dir.as_os_str().is_empty() {
        return Ok(tasks.to_vec());
    }
    Ok(tasks
        .iter()
        .map(|t| {
            if t.contains(':') {
                t.clone()
            } else {
                format!("{}:{t}", dir.display())
            }
        })
        .collect())
}

pub fn submit(ctx: &Ctx, args: &SubmitArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let files = if args.files.is_empty() {
        None
    } else {
        match workspace.select(&Selection::Files(args.files.clone()), &ctx.cwd)? {
            Targets::Files(f) if f.is_empty() => {
                return Err(UsageError(
                    "none of the given files exist in this worktree".to_owned(),
                )
                .into());
            }
            Targets::Files(f) => Some(f),
            Targets::Project => None,
        }
    };
    let request = Request::Submit(Submit {
        tasks: task_keys(ctx, &workspace, &args.tasks)?,
        files,
        priority: args.priority,
        source: TriggerSource::Manual {
            command: std::iter::once("bgtask".to_owned())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" "),
        },
        debounce: false,
    });
    let response = match call(ctx, request)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Response::Submitted { jobs } = response else {
        bail!("unexpected answer: {response:?}")
    };
    if args.json {
        print_json(&jobs)?;
    } else {
        for j in &jobs {
            let how = match j.outcome.as_str() {
                "queued" => "queued",
                "merged" => "merged into the waiting job",
                "rerun_after" => "queued to run after the current run",
                _ => "DROPPED: the queue is full",
            };
            anstream::println!("{}: job {} {how}", j.task, j.job_id);
        }
    }
    Ok(if jobs.iter().any(|j| j.outcome == "dropped") {
        exit::INTERNAL
    } else {
        exit::OK
    })
}

pub fn queue(ctx: &Ctx, json: bool) -> anyhow::Result<u8> {
    let response = match call(ctx, Request::Queue)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Response::Queue { entries } = response else {
        bail!("unexpected answer: {response:?}")
    };
    if json {
        print_json(&entries)?;
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        anstream::println!("nothing waiting");
    }
    for e in &entries {
        let files = e
            .files
            .map_or_else(|| "project".to_owned(), |n| format!("{n} files"));
        let ready = e
            .ready_in_s
            .map(|s| format!(", starts in {s:.1}s"))
            .unwrap_or_default();
        let retry = if e.attempt > 0 {
            format!(", retry {}", e.attempt)
        } else {
            String::new()
        };
        anstream::println!(
            "job {:<5} {:<12} {:<8} score {:>3}  {:<14} waiting {:.1}s{ready}{retry}  {files}  [{}]",
            e.job_id,
            e.task,
            e.priority.as_str(),
            e.score,
            e.state,
            e.waiting_s,
            e.dedup_key
        );
        if let Some(why) = &e.why {
            anstream::println!("          priority adjusted {why}");
        }
        if let Some(why) = &e.held {
            anstream::println!("          held: {why} (`bgtask resume` lets it start)");
        }
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this task.
    #[arg(long)]
    pub task: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Only runs older than this run id (the next page).
    #[arg(long, value_name = "RUN")]
    pub before: Option<i64>,
    /// Only runs that ended so: clean (exit 0), findings (1), failed (an analyzer failed, timed out or ran out of memory).
    #[arg(long, value_enum)]
    pub outcome: Option<crate::ipc::Outcome>,
    /// Only runs started within this long (e.g. 30m, 1h, 2d).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub since: Option<Duration>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn history(ctx: &Ctx, args: &HistoryArgs) -> anyhow::Result<u8> {
    let response = match call(
        ctx,
        Request::History {
            task: args.task.clone(),
            limit: args.limit,
            before: args.before,
            outcome: args.outcome,
            since_ms: args.since.map(crate::clock::ms_ago),
        },
    )? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Response::History { runs } = response else {
        bail!("unexpected answer: {response:?}")
    };
    if args.json {
        print_json(&runs)?;
        return Ok(exit::OK);
    }
    if runs.is_empty() {
        anstream::println!("no runs yet");
    }
    for r in &runs {
        anstream::println!(
            "run {:<5} job {:<5} {:<12} {}  {:>7}ms  exit {}  {} findings  {}  ({}{})",
            r.run_id,
            r.job_id,
            r.task,
            r.started,
            r.duration_ms,
            r.exit_code,
            r.findings,
            r.verdict,
            r.trigger,
            if r.attempt > 0 {
                format!(", retry {}", r.attempt)
            } else {
                String::new()
            }
        );
    }
    Ok(exit::OK)
}

pub fn show(ctx: &Ctx, run_id: i64, format: Format) -> anyhow::Result<u8> {
    let response = match call(ctx, Request::Show { run_id })? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Response::Report { report: r } = response else {
        bail!("unexpected answer: {response:?}")
    };
    let text = match format {
        Format::Markdown => report::render_markdown(&r, &MarkdownLinks::discover(&r.root)),
        format => report::render(
            &r,
            format,
            &ConsoleOptions {
                verbose: ctx.verbose,
                summary_only: false,
                max_findings: None,
            },
        ),
    };
    if format == Format::Console {
        anstream::print!("{text}");
    } else {
        std::io::stdout().lock().write_all(text.as_bytes())?;
    }
    Ok(exit::OK)
}

pub fn logs(ctx: &Ctx, run_id: i64, follow: bool) -> anyhow::Result<u8> {
    let mut client = match connect(ctx)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if follow {
        client.no_read_timeout()?;
    }
    client.send(Request::Logs { run_id, follow })?;
    let mut current: Option<String> = None;
    let mut printed = false;
    let mut out = std::io::stdout().lock();
    loop {
        match client.receive()? {
            Response::LogChunk { analyzer, data } => {
                if current.as_deref() != Some(analyzer.as_str()) {
                    writeln!(out, "==> {analyzer} <==")?;
                    current = Some(analyzer);
                }
                out.write_all(data.as_bytes())?;
                out.flush()?;
                printed |= !data.is_empty();
            }
            Response::LogEnd { finished } => {
                if !printed && finished {
                    writeln!(
                        out,
                        "(run {run_id}: the analyzers printed nothing; `bgtask show {run_id}` has its report)"
                    )?;
                }
                if !finished && !follow {
                    writeln!(
                        out,
                        "(run {run_id} is still running; --follow streams the rest)"
                    )?;
                }
                if follow {
                    drop(out);
                    run_notifications(ctx, run_id);
                }
                return Ok(exit::OK);
            }
            other => bail!("unexpected answer: {other:?}"),
        }
    }
}

/// After `logs --follow`: the console notifications of the run, once the
/// notifier has recorded them (it runs beside the scheduler; a run whose
/// policy notifies nothing shows nothing).
fn run_notifications(ctx: &Ctx, run_id: i64) {
    let Ok(workspace) = Workspace::worktree(&ctx.cwd) else {
        return;
    };
    let state = workspace.root.join(".bgtask").join(crate::store::FILE);
    let Ok(db) = crate::notifier::Db::open(&state) else {
        return;
    };
    let fancy = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let rows: Vec<_> = db
            .deliveries(200)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.run_id == Some(run_id) && r.channel == "console")
            .collect();
        if !rows.is_empty() || std::time::Instant::now() > deadline {
            for r in rows.iter().rev() {
                anstream::print!(
                    "{}",
                    crate::notifier::console::format_recorded(
                        r.at_ms,
                        &r.severity,
                        &r.title,
                        fancy
                    )
                );
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cancel`, `retry`, `metrics`, `health`, `cleanup`, `reload`.
pub fn simple(ctx: &Ctx, request: Request, json: bool) -> anyhow::Result<u8> {
    let response = match call(ctx, request)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if json {
        print_json(&response)?;
        return Ok(match &response {
            Response::Health(h) if h.level == Level::Error => exit::FINDINGS,
            _ => exit::OK,
        });
    }
    match response {
        Response::Cancelled { job_id, was } => {
            anstream::println!("cancelled job {job_id} (it was {was})");
        }
        Response::Retried { job_id } => anstream::println!("queued again as job {job_id}"),
        Response::Metrics(m) => {
            anstream::println!(
                "queue {} waiting, {} of {} workers busy",
                m.queue_length,
                m.running,
                m.workers
            );
            for t in &m.tasks {
                anstream::println!(
                    "  {:<12} {:>4} runs  {:>5.1}% ok  mean {:>6}ms  p95 {:>6}ms  wait {:>6}ms  peak {:>7} KiB  cpu {:>7}ms",
                    t.task,
                    t.runs,
                    t.success_rate * 100.0,
                    t.mean_ms,
                    t.p95_ms,
                    t.mean_wait_ms,
                    t.peak_rss_kb,
                    t.cpu_ms
                );
            }
        }
        Response::Health(h) => {
            for c in &h.checks {
                let mark = match c.level {
                    Level::Ok => "ok",
                    Level::Warning => "WARNING",
                    Level::Error => "ERROR",
                };
                anstream::println!("  {mark:<8} {:<11} {}", c.name, c.message);
            }
            return Ok(if h.level == Level::Error {
                exit::FINDINGS
            } else {
                exit::OK
            });
        }
        Response::Cleaned(c) => anstream::println!(
            "removed {} runs, findings of older runs ({}), {} events, {} log directories",
            c.runs,
            c.findings,
            c.events,
            c.log_files
        ),
        Response::Reloaded { applied: true, .. } => anstream::println!("config reloaded"),
        Response::Reloaded {
            applied: false,
            problems,
        } => {
            anstream::println!("config NOT applied (the last good one stays in use):");
            for p in problems {
                anstream::println!("  {p}");
            }
            return Ok(exit::CONFIG);
        }
        other => bail!("unexpected answer: {other:?}"),
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job to cancel (`bgtask queue` lists them).
    #[arg(required_unless_present = "waiting")]
    pub job_id: Option<i64>,
    /// Cancel every job waiting in the queue instead; running ones go on.
    #[arg(long, conflicts_with = "job_id")]
    pub waiting: bool,
    /// With --waiting: only this task's jobs.
    #[arg(long, requires = "waiting", value_name = "TASK")]
    pub task: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The run whose job to run again (`bgtask history` lists them).
    #[arg(required_unless_present = "failed")]
    pub run_id: Option<i64>,
    /// Instead: run again every task whose latest run failed (an analyzer errored, timed out or ran out of memory; findings are not failures).
    #[arg(long, conflicts_with = "run_id")]
    pub failed: bool,
    /// With --failed: runs started within this long (e.g. 30m, 1h, 2d).
    #[arg(long, requires = "failed", default_value = "1h", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// With --failed: only this task's runs.
    #[arg(long, requires = "failed", value_name = "TASK")]
    pub task: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn cancel(ctx: &Ctx, args: &CancelArgs) -> anyhow::Result<u8> {
    if let Some(job_id) = args.job_id {
        return simple(ctx, Request::Cancel { job_id }, args.json);
    }
    let mut client = match connect(ctx)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let out = crate::ipc::bulk::cancel_waiting(&mut client, args.task.as_deref())?;
    say_bulk(&out, "cancelled", "waiting jobs", args.json)
}

pub fn retry(ctx: &Ctx, args: &RetryArgs) -> anyhow::Result<u8> {
    if let Some(run_id) = args.run_id {
        return simple(ctx, Request::Retry { run_id }, args.json);
    }
    let mut client = match connect(ctx)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let since = crate::clock::ms_ago(args.since);
    let out = crate::ipc::bulk::retry_failed(&mut client, args.task.as_deref(), since)?;
    say_bulk(&out, "queued again", "failed runs", args.json)
}

fn say_bulk(
    out: &crate::ipc::bulk::BulkOutcome,
    done: &str,
    what: &str,
    json: bool,
) -> anyhow::Result<u8> {
    if json {
        print_json(out)?;
    } else if out.selected == 0 {
        anstream::println!("no {what} match");
    } else {
        let ids: Vec<String> = out.done.iter().map(ToString::to_string).collect();
        let jobs = if ids.is_empty() {
            String::new()
        } else {
            format!(": jobs {}", ids.join(", "))
        };
        anstream::println!("{done} {} of {} {what}{jobs}", out.done.len(), out.selected);
        for r in &out.refused {
            anstream::println!("  {}: {}", r.id, r.reason);
        }
    }
    Ok(exit::OK)
}
