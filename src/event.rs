//! The messages that pass between pipeline stages: a [`Trigger`] says why
//! work should happen, a [`Job`] is one unit of work for a worker, and a
//! [`RunResult`] (one [`AnalyzerRun`] per analyzer) is what comes back.
//!
//! These are plain data: serializable (the JSON report, the result cache and,
//! later, the store and IPC all carry them), with no behaviour beyond small
//! derived facts.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::analyze::{Finding, RunStatus, Severity, TestCounts};
use crate::config::raw::Category;

/// Where a request for work came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerSource {
    /// `bgtask run …` on the command line (or in CI).
    Manual { command: String },
    /// A git hook (`post-commit`, …), with the commit it saw.
    Hook {
        hook: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head: Option<String>,
    },
    /// Files saved in the worktree (the watcher).
    Save,
    /// HEAD moved without a hook (a client that runs none), seen by the watcher.
    HeadMoved,
    /// The task's cron schedule.
    Schedule { cron: String },
    /// The worktree went quiet.
    Idle,
    /// The daemon started.
    Start,
}

impl TriggerSource {
    /// Work the user did not ask for in that moment: it needs trust.
    pub fn is_automatic(&self) -> bool {
        !matches!(self, TriggerSource::Manual { .. })
    }
}

/// Not a git hook: an editor opened files no run has looked at (`bgtask
/// lsp`), delivered as a hook naming them in `args`; a save of them.
pub const EDITOR_OPEN: &str = "editor-open";

/// What a git hook saw, as `bgtask hook` captures it: no config read, no
/// git process started. The daemon works out the files and tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct HookEvent {
    pub hook: String,
    pub args: Vec<String>,
    /// What git wrote to the hook's stdin (pre-push refs, post-rewrite
    /// mappings); empty for the others.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdin: String,
    /// HEAD's commit when the hook ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// `ORIG_HEAD` when the hook ran (where a merge or reset started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_head: Option<String>,
    /// A rebase, merge, cherry-pick, revert or bisect in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Tasks named in `BGTASK_SKIP`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
}

/// A trigger as it arrives, before the daemon works out which tasks and
/// files it concerns (and while it waits for the worktree to go quiet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arrival {
    Hook(HookEvent),
    /// Repo-relative paths that changed; `rescan`: events were lost (the
    /// kernel queue overflowed), so anything may have changed.
    Saved {
        files: Vec<PathBuf>,
        #[serde(default)]
        rescan: bool,
        /// Of `files`, those that were no regular file (gone, or a link)
        /// when the watcher handed them on (it looks at each then, and
        /// names no directory that is there); `None` when nobody looked,
        /// so each is looked at when the batch is resolved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_files: Option<Vec<PathBuf>>,
    },
    /// HEAD moved from one commit to another with no hook telling us.
    HeadMoved {
        from: Option<String>,
        to: Option<String>,
        /// What moved it, as HEAD's reflog says (`checkout: moving from
        /// main to x`, `commit: …`, `merge x: Fast-forward`).
        #[serde(default)]
        how: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Trigger {
    pub source: TriggerSource,
    pub at: SystemTime,
}

impl Trigger {
    /// A short label for history (`manual: bgtask submit`).
    pub fn label(&self) -> String {
        self.source.label()
    }
}

impl TriggerSource {
    /// A short label for history and events (`manual: bgtask submit`).
    pub fn label(&self) -> String {
        match self {
            Self::Manual { command } => {
                let short: String = command.chars().take(60).collect();
                format!("manual: {short}")
            }
            Self::Hook { hook, head } => match head {
                Some(h) => format!("hook: {hook} {}", &h[..h.len().min(10)]),
                None => format!("hook: {hook}"),
            },
            Self::Save => "save".to_owned(),
            Self::HeadMoved => "head moved".to_owned(),
            Self::Schedule { cron } => format!("schedule: {cron}"),
            Self::Idle => "idle".to_owned(),
            Self::Start => "start".to_owned(),
        }
    }
}

/// Which files a job looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(tag = "kind", content = "files", rename_all = "snake_case")]
pub enum Targets {
    /// Every file of the project the analyzers care about.
    Project,
    /// Only these repo-relative files (a save, a commit, `--changed`).
    Files(Vec<PathBuf>),
}

/// One task (or set of tasks) to run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Job {
    /// Task names; `bgtask run all` lists every enabled task.
    pub tasks: Vec<String>,
    /// Analyzer names requested directly (`bgtask run bandit`).
    pub analyzers: Vec<String>,
    pub targets: Targets,
    pub trigger: Trigger,
}

/// The tool that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct ToolInfo {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What one analyzer's run amounted to.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct AnalyzerRun {
    pub analyzer: String,
    pub category: Category,
    /// The tasks that asked for this analyzer.
    pub tasks: Vec<String>,
    pub status: RunStatus,
    /// Why, for every status but `clean` and `findings`: the install hint,
    /// the tool's error, what was not analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolInfo>,
    /// Exit code of the last invocation, when the tool exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Processes started (batches of files); 0 when cached or skipped.
    pub invocations: u32,
    /// Files analysed (batch mode) or considered (project mode).
    pub files: usize,
    /// Served from the result cache: no process was started.
    #[serde(default)]
    pub cached: bool,
    /// Of `files`, those whose results came from the cache's per-file
    /// entries (the tool ran on the others only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_files: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    /// The end of the tool's stderr, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tail: Option<String>,
    #[serde(default)]
    pub network: bool,
    /// A failure that retrying cannot fix (could not start, out of memory).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub permanent: bool,
}

/// For `skip_serializing_if` on counts.
#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's signature")]
pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl AnalyzerRun {
    /// A run that never started a process.
    pub fn skipped(
        analyzer: &str,
        category: Category,
        tasks: Vec<String>,
        status: RunStatus,
        reason: String,
    ) -> AnalyzerRun {
        AnalyzerRun {
            analyzer: analyzer.to_owned(),
            category,
            tasks,
            status,
            reason: Some(reason),
            findings: Vec::new(),
            tool: None,
            exit_code: None,
            duration_ms: 0,
            peak_rss_kb: None,
            cpu_ms: None,
            invocations: 0,
            files: 0,
            cached: false,
            cached_files: 0,
            tests: None,
            output_tail: None,
            network: false,
            permanent: false,
        }
    }

    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Everything a job produced.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct RunResult {
    pub job: Job,
    pub started: SystemTime,
    pub duration_ms: u64,
    pub runs: Vec<AnalyzerRun>,
}
