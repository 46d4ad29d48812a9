//! The daemon protocol, version [`VERSION`]: every frame is an
//! [`Envelope`] around a [`Request`] (client → daemon) or a [`Response`]
//! (daemon → client). A request gets exactly one response, except
//! `Logs { follow: true }`, which gets `LogChunk`s until `LogEnd`, and
//! `Subscribe`, which gets `Subscribed` and then an `Event` per event
//! (`events.rs`) until the daemon stops.
//! Errors are typed ([`ErrorKind`]) so clients can act on them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Priority;
use crate::event::TriggerSource;
use crate::report::Report;

pub const VERSION: u32 = 1;

/// How a run ended, as history filters it (its exit code).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing found (exit 0).
    Clean,
    /// Findings at or above the task's `fail_on` (exit 1).
    Findings,
    /// An analyzer failed, timed out or ran out of memory (exit 2 and up).
    Failed,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    pub body: T,
}

impl<T> Envelope<T> {
    pub fn new(body: T) -> Envelope<T> {
        Envelope { v: VERSION, body }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Status,
    Submit(Submit),
    /// What a git hook saw (`bgtask hook`); answered with `Accepted` once saved.
    Hook(crate::event::HookEvent),
    Queue,
    History {
        task: Option<String>,
        limit: u32,
        /// Only runs older than this one (the next page).
        #[serde(default)]
        before: Option<i64>,
        /// Only runs that ended so.
        #[serde(default)]
        outcome: Option<Outcome>,
        /// Only runs started at or after this time (ms since the epoch).
        #[serde(default)]
        since_ms: Option<i64>,
    },
    Show {
        run_id: i64,
    },
    Logs {
        run_id: i64,
        follow: bool,
    },
    Cancel {
        job_id: i64,
    },
    Retry {
        run_id: i64,
    },
    Metrics,
    Health,
    Cleanup,
    Reload,
    Stop,
    /// Someone is working here (typing in an editor that has not saved
    /// yet): the idle trigger counts from now.
    Activity,
    /// Pause automation: jobs of saves, hooks, schedules, idle spells and
    /// the start wait (held) until `resume`; work asked for still runs.
    /// Pausing again replaces the reason. Answered with `automation`.
    Pause {
        reason: String,
        /// Who pauses (a user name, `dashboard`, an agent's name).
        #[serde(default)]
        by: Option<String>,
    },
    /// Resume automation: the held jobs start as usual. Answered with
    /// `automation`.
    Resume,
    /// The event stream, from the event after `after` (when the daemon
    /// still has it) or from now. `after` counts in the numbers of daemon
    /// `epoch` when one is given: another daemon's mean "from the oldest
    /// event still kept".
    Subscribe {
        #[serde(default)]
        after: Option<u64>,
        #[serde(default)]
        epoch: Option<i64>,
    },
}

impl Request {
    /// The request a frame holds, as the daemon reads it: the protocol
    /// version first (so a newer client hears why), then the body.
    pub fn from_envelope(envelope: Envelope<serde_json::Value>) -> Result<Request, IpcError> {
        if envelope.v != VERSION {
            return Err(IpcError::new(
                ErrorKind::Version,
                format!("protocol version {} is not {VERSION}", envelope.v),
            ));
        }
        serde_json::from_value(envelope.body)
            .map_err(|e| IpcError::new(ErrorKind::Malformed, e.to_string()))
    }
}

/// Work requested from outside the daemon (`bgtask submit`, later hooks).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Submit {
    pub tasks: Vec<String>,
    /// Repo-relative files; `None` for the whole project.
    pub files: Option<Vec<PathBuf>>,
    /// Overrides the tasks' configured priority.
    pub priority: Option<Priority>,
    pub source: TriggerSource,
    /// Apply the tasks' debounce window (saves); submits run at once.
    #[serde(default)]
    pub debounce: bool,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Pong {
        pid: u32,
        version: String,
    },
    Status(Box<Status>),
    Submitted {
        jobs: Vec<Admitted>,
    },
    /// A hook event is saved; it runs once the worktree is quiet.
    Accepted,
    Queue {
        entries: Vec<QueueEntry>,
    },
    History {
        runs: Vec<RunSummary>,
    },
    Report {
        report: Box<Report>,
    },
    LogChunk {
        analyzer: String,
        data: String,
    },
    LogEnd {
        finished: bool,
    },
    Subscribed(super::events::Subscribed),
    Event(Box<super::events::Event>),
    Cancelled {
        job_id: i64,
        was: String,
    },
    Retried {
        job_id: i64,
    },
    Metrics(Metrics),
    Health(Health),
    Cleaned(CleanupCounts),
    Reloaded {
        applied: bool,
        problems: Vec<String>,
    },
    /// Whether automation is paused, after `pause` or `resume`.
    Automation(AutomationState),
    Stopping {
        pid: u32,
    },
    Error(IpcError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The peer speaks another protocol version.
    Version,
    /// Not valid protocol JSON.
    Malformed,
    /// Over the frame limit.
    TooLarge,
    /// A frame started but did not finish in time.
    Timeout,
    /// No such run, job or task.
    NotFound,
    /// The request cannot be carried out as asked.
    Invalid,
    /// The daemon is stopping and takes no new work.
    ShuttingDown,
    /// Too many requests wait for the daemon already: try again (a hook
    /// spools its event).
    Busy,
    /// The peer is another user.
    Forbidden,
    /// The daemon cannot write its state (disk full, say): work is taken
    /// and run, but not saved; a hook should keep its own copy (spool).
    Degraded,
    Internal,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    /// On the wire as `code`: `kind` is the response's tag.
    #[serde(rename = "code")]
    pub kind: ErrorKind,
    pub message: String,
}

impl IpcError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> IpcError {
        IpcError {
            kind,
            message: message.into(),
        }
    }
}

/// What happened to one submitted task.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Admitted {
    pub task: String,
    pub job_id: i64,
    /// `queued`, `merged` (into a waiting job), `rerun_after` (a run of this
    /// task is in progress), `dropped` (queue full).
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    pub root: String,
    pub started: String,
    pub uptime_s: u64,
    pub config: ConfigState,
    pub workers: usize,
    pub queue_depth: usize,
    /// Jobs being run now (`running` in `--json` says whether the daemon is).
    pub running_jobs: Vec<RunningJob>,
    pub last_runs: Vec<RunSummary>,
    pub health: Health,
    /// Why new jobs are being held back, if they are.
    pub holding: Option<String>,
    /// Analyzers skipped after repeated crashes.
    pub quarantined: Vec<String>,
    /// Why the daemon cannot save its state, while it cannot.
    #[serde(default)]
    pub degraded: Option<String>,
    /// Hook and watcher triggers waiting for the worktree to be quiet.
    #[serde(default)]
    pub intake: usize,
    /// Hook and watcher triggers taken since the daemon started.
    #[serde(default)]
    pub arrivals: u64,
    /// A batch of triggers is being resolved (asked of git) right now.
    #[serde(default)]
    pub resolving: bool,
    /// Turns of the core's loop since start (each looks again at what is
    /// due, what holds jobs back and what can start): a tick a script (or a
    /// test) can wait on to know the daemon looked again.
    #[serde(default)]
    pub loop_turns: u64,
    /// The file watcher, when it runs.
    #[serde(default)]
    pub watcher: Option<WatcherState>,
    /// Tasks that do not run by themselves, and why (trust).
    #[serde(default)]
    pub untrusted: Vec<UntrustedTask>,
    /// Recent runs given up on after dying with the daemon twice.
    #[serde(default)]
    pub given_up: Vec<RunSummary>,
    /// Tasks paused for starting themselves (their runs write the files
    /// that trigger them).
    #[serde(default)]
    pub paused: Vec<String>,
    /// The enabled tasks, by key (`lint`, `services/api:lint`).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Automation paused by hand (`bgtask pause`), while it is.
    #[serde(default)]
    pub automation: Option<AutomationState>,
}

/// Automation paused by hand, or not: jobs of automatic triggers (saves,
/// hooks, schedules, idle spells, the start) wait while it is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct AutomationState {
    pub paused: bool,
    /// Why, as given when it was paused (may be empty).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who paused it.
    #[serde(default)]
    pub by: Option<String>,
    /// Since when it is paused (ms since the Unix epoch).
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Automatic jobs waiting because of the pause; after `resume`, the
    /// jobs it let go.
    #[serde(default)]
    pub held: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct WatcherState {
    /// `starting`, `watching`, `degraded` (some directories polled), `polling`, `failed`.
    pub state: String,
    /// Directories watched with inotify.
    pub watched: usize,
    /// Directories polled instead (watch limit, network filesystem).
    pub polled: usize,
    /// Milliseconds from start to the first complete watch.
    #[serde(default)]
    pub ready_ms: Option<u64>,
    /// What is wrong, and how to fix it.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct UntrustedTask {
    pub task: String,
    /// `untrusted` (never trusted) or `changed` (what it runs changed).
    pub state: String,
    #[serde(default)]
    pub diff: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct ConfigState {
    pub files: Vec<String>,
    /// The config on disk is invalid; the last good one is in use.
    pub stale: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct RunningJob {
    pub job_id: i64,
    pub run_id: i64,
    pub task: String,
    pub attempt: u32,
    pub running_s: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct QueueEntry {
    pub job_id: i64,
    pub task: String,
    pub dedup_key: String,
    pub priority: Priority,
    /// Effective ordering score (priority level × 100 + adaptive bonus).
    pub score: i32,
    /// Why the score differs from the configured priority.
    pub why: Option<String>,
    /// `queued`, `debouncing`, `retry_wait`, `after_running` or `held`
    /// (automation is paused: see `held`).
    pub state: String,
    pub waiting_s: f64,
    /// Seconds until it may start (debounce or retry backoff).
    pub ready_in_s: Option<f64>,
    pub attempt: u32,
    /// Files to analyse; `None` for the whole project.
    pub files: Option<usize>,
    /// Why it does not start: automation is paused (the pause's reason).
    #[serde(default)]
    pub held: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub job_id: i64,
    pub task: String,
    pub started: String,
    pub duration_ms: u64,
    pub exit_code: u8,
    pub verdict: String,
    pub findings: usize,
    pub attempt: u32,
    pub trigger: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct TaskMetrics {
    pub task: String,
    pub runs: u64,
    pub success_rate: f64,
    pub mean_ms: u64,
    pub p95_ms: u64,
    pub mean_wait_ms: u64,
    pub peak_rss_kb: u64,
    pub cpu_ms: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Metrics {
    pub tasks: Vec<TaskMetrics>,
    pub queue_length: usize,
    pub running: usize,
    pub workers: usize,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Health {
    pub level: Level,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema, Deserialize)]
pub struct CleanupCounts {
    pub runs: u64,
    pub findings: u64,
    pub metrics: u64,
    pub events: u64,
    pub log_files: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_a_stable_wire_form_and_round_trip() {
        let e = Envelope::new(Response::Error(IpcError::new(ErrorKind::TooLarge, "big")));
        let wire = serde_json::to_string(&e).unwrap();
        assert_eq!(
            wire,
            r#"{"v":1,"body":{"kind":"error","code":"too_large","message":"big"}}"#
        );
        let back: Envelope<Response> = serde_json::from_str(&wire).unwrap();
        assert!(
            matches!(back.body, Response::Error(IpcError { kind: ErrorKind::TooLarge, ref message }) if message == "big")
        );
    }

    #[test]
    fn requests_are_tagged_by_op() {
        let wire = serde_json::to_string(&Envelope::new(Request::Logs {
            run_id: 3,
            follow: true,
        }))
        .unwrap();
        assert_eq!(
            wire,
            r#"{"v":1,"body":{"op":"logs","run_id":3,"follow":true}}"#
        );
    }
}
