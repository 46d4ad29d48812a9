//! The daemon's event stream, as it goes over the socket: a `subscribe`
//! request is answered [`Response::Subscribed`](super::Response) and then
//! one `event` frame per [`Event`] as it happens, until the daemon stops
//! or the client goes. Every front end (`bgtask events`, `bgtask watch`,
//! the dashboard's SSE, MCP, LSP) is a subscriber of this one stream.
//!
//! Events carry a sequence number that grows by one per event of a daemon
//! (from 1); a subscriber that reconnects asks for what came after the
//! last one it saw and gets it from the daemon's recent events, or is told
//! how many it missed. A daemon restarted is a new `epoch`.

use serde::{Deserialize, Serialize};

/// One thing that happened in a daemon.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Event {
    /// 1, 2, 3… for this daemon (its `epoch`).
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    #[serde(flatten)]
    pub what: What,
}

/// What happened. On the wire, `"event": "job_started"` beside its fields.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum What {
    /// A trigger was taken in: a save, a git hook, HEAD moving, a timer.
    TriggerArrived {
        /// `save`, `hook: post-commit`, `head moved`, `schedule: …`.
        trigger: String,
        /// Files it names (0: none, or the whole project).
        files: usize,
    },
    /// A job entered the queue.
    JobQueued {
        job_id: i64,
        task: String,
        priority: i32,
        trigger: String,
        /// Files it covers; `None`: the whole project.
        files: Option<usize>,
    },
    /// A waiting job changed as a front end shows it: another trigger
    /// brought more files (or the whole project), a higher priority, held
    /// it for a debounce again or superseded its retry. A trigger that
    /// changed none of that is not told.
    JobUpdated { job_id: i64, task: String },
    /// A waiting job was dropped (a full queue).
    JobDropped {
        job_id: i64,
        task: String,
        reason: String,
    },
    JobStarted {
        job_id: i64,
        run_id: i64,
        task: String,
        attempt: u32,
    },
    AnalyzerStarted {
        job_id: i64,
        run_id: i64,
        task: String,
        analyzer: String,
    },
    AnalyzerFinished {
        job_id: i64,
        run_id: i64,
        task: String,
        analyzer: String,
        /// `clean`, `findings`, `tool_error`, `timeout`…
        status: String,
        cached: bool,
    },
    /// A job's run ended and was recorded.
    JobFinished {
        job_id: i64,
        run_id: i64,
        task: String,
        /// `done`, `retrying`, `dead`, `cancelled`, `interrupted`.
        state: String,
        /// The run's verdict (`3 new findings`, `no findings`…), when it
        /// produced a report.
        verdict: Option<String>,
        findings: usize,
        /// The worst severity found, if any.
        worst: Option<String>,
        duration_ms: u64,
    },
    /// The config was read again: applied, or kept the last good one
    /// (`stale`) with the problems found.
    ConfigReloaded { stale: bool, problems: Vec<String> },
    /// The daemon's health level changed (`ok`, `warning`, `error`), with
    /// what is not ok.
    HealthChanged {
        level: super::Level,
        summary: String,
    },
    /// A task will not run by itself until the worktree is trusted again
    /// (`untrusted`, `changed`).
    TrustChanged {
        task: String,
        state: String,
        diff: Vec<String>,
    },
    /// The file watcher's state changed (`watching`, `polling`,
    /// `degraded`…).
    WatcherChanged {
        state: String,
        message: Option<String>,
    },
    /// New jobs wait (`holding`: why) or no longer do (`None`).
    Holding { reason: Option<String> },
    /// Automation was paused by hand (or paused again with another
    /// reason): jobs of saves, hooks, schedules, idle spells and the start
    /// wait until it resumes; `held` wait already.
    AutomationPaused {
        reason: String,
        by: Option<String>,
        held: usize,
    },
    /// Automation resumed: the `held` jobs start as usual.
    AutomationResumed { held: usize },
    /// A notification's delivery on one channel was recorded in the
    /// delivery log (`bgtask notifications`).
    NotificationDelivered {
        /// `console`, `desktop`, `file` or `email`.
        channel: String,
        /// `delivered`, `failed`, `queued` (an email waiting for its
        /// digest or the outbox), `retrying`, `dead` or `disabled`.
        outcome: String,
        /// What it told: `issues_found`, `task_failed`, `health_alert`…
        notification: String,
        /// `info`, `warning`, `error` or `critical`.
        severity: String,
        title: String,
        /// The task and run it is about, if any.
        task: Option<String>,
        run_id: Option<i64>,
        /// Why it failed (or was turned off, or is retried).
        error: Option<String>,
    },
    /// The daemon is stopping: it takes no new work, and running jobs
    /// are being stopped (their ends follow).
    Stopping,
    /// The daemon stopped; the stream ends with this.
    Stopped,
    /// This subscriber fell behind and `missed` events were not sent.
    Lagged { missed: u64 },
}

impl What {
    /// The task an event is about, if any (to filter a stream by task).
    pub fn task(&self) -> Option<&str> {
        match self {
            What::JobQueued { task, .. }
            | What::JobUpdated { task, .. }
            | What::JobDropped { task, .. }
            | What::JobStarted { task, .. }
            | What::AnalyzerStarted { task, .. }
            | What::AnalyzerFinished { task, .. }
            | What::JobFinished { task, .. }
            | What::TrustChanged { task, .. }
            | What::NotificationDelivered {
                task: Some(task), ..
            } => Some(task),
            _ => None,
        }
    }
}

/// The answer to `subscribe`, before the events.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Subscribed {
    /// Which daemon (its start, in ms since the Unix epoch): sequence
    /// numbers of another epoch mean nothing here.
    pub epoch: i64,
    pub pid: u32,
    /// The last event published before this subscription.
    pub last_seq: u64,
    /// Events after the asked-for one that are no longer kept (the
    /// subscriber should reload what it shows).
    pub missed: u64,
}
