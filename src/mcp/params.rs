//! What the tools take and give back. Every input rejects fields it does
//! not know (the error names the field); every output is an object with a
//! schema (`outputSchema`), generated from these types.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::{Finding, Severity};
use crate::config::Priority;
use crate::ipc::{Admitted, Outcome, QueueEntry, RunSummary};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitParams {
    /// Task names to queue (`all`: every enabled task; `dir:task` in a monorepo).
    pub tasks: Vec<String>,
    /// Repo-relative files to analyse; omitted: the whole project.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
    /// Overrides the tasks' configured priority.
    #[serde(default)]
    pub priority: Option<Priority>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Submitted {
    /// One entry per task: its job id and whether it was queued or merged into a waiting job.
    pub jobs: Vec<Admitted>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Queue {
    /// Waiting jobs, next first.
    pub entries: Vec<QueueEntry>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only this task's runs.
    #[serde(default)]
    pub task: Option<String>,
    /// At most this many runs (default 20, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The next page: runs older than this run id.
    #[serde(default)]
    pub before: Option<i64>,
    /// Only runs that ended so.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Only runs started within this long, like `30m`, `2h` or `7d`.
    #[serde(default)]
    pub within: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct History {
    /// Runs, newest first.
    pub runs: Vec<RunSummary>,
}

/// Which of a run's findings to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// Every finding.
    #[default]
    All,
    /// Only findings earlier runs of the task did not have.
    New,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRunParams {
    /// The run's id (from `history`, `status` or a resource).
    pub run_id: i64,
    /// Only findings in this repo-relative file.
    #[serde(default)]
    pub file: Option<String>,
    /// Only findings at or above this severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Only findings of this rule id (`B105`, `W0611`, `no-unused-vars`).
    #[serde(default)]
    pub rule: Option<String>,
    /// `new`: only what earlier runs of the task did not find.
    #[serde(default)]
    pub which: Which,
    /// At most this many findings (default 100, at most 1000); the rest are counted.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A finding of a run, with its index there (for `explain_finding`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Indexed {
    pub index: usize,
    /// Not in the latest earlier run of the task that looked at its file.
    pub new: bool,
    #[serde(flatten)]
    pub finding: Finding,
}

/// Per analyzer: how it ended.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AnalyzerStatus {
    pub analyzer: String,
    /// `clean`, `findings`, `tool_error`, `timeout`, `not_installed`…
    pub status: String,
    pub findings: usize,
    pub cached: bool,
    pub duration_ms: u64,
    /// Why, for every status but clean and findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Run {
    pub run_id: i64,
    /// One line: why the run's exit code is what it is.
    pub verdict: String,
    pub exit_code: u8,
    pub analyzers: Vec<AnalyzerStatus>,
    /// Findings of the run in total, before any filter.
    pub total_findings: usize,
    /// Findings the filters kept.
    pub matching: usize,
    /// The matching findings, worst first, at most `limit`.
    pub findings: Vec<Indexed>,
    /// Matching findings not returned (over `limit` or the size cap).
    pub omitted: usize,
    /// Findings earlier runs had that this run no longer found.
    pub fixed: Vec<crate::notifier::FixedFinding>,
    /// What was left out and why, when something was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdParams {
    /// The run's id.
    pub run_id: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// The run's id.
    pub run_id: i64,
    /// The last this many lines (default 200, at most 5000).
    #[serde(default)]
    pub lines: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Log {
    pub run_id: i64,
    /// The run has ended (otherwise this is what it printed so far).
    pub finished: bool,
    /// Lines before `text` not returned.
    pub omitted_lines: usize,
    /// Each analyzer's output under a `==> analyzer <==` line.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobParams {
    /// The job's id (from `queue`, `status` or `submit`).
    pub job_id: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Cancelled {
    pub job_id: i64,
    /// What the job was doing: `queued`, `running`…
    pub was: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Retried {
    /// The new job.
    pub job_id: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ConfigCheck {
    pub valid: bool,
    /// The config files read, in the order they apply.
    pub files: Vec<String>,
    /// Every problem, as `file:line:column: what was expected`.
    pub problems: Vec<String>,
    /// No `.background-tasks.json`: the built-in tasks apply.
    pub default_config: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Tasks {
    pub tasks: Vec<crate::config::tasks::TaskInfo>,
    /// Each analyzer: the tasks that use it, whether it applies here and
    /// why not, whether its tool is installed and what to install.
    pub analyzers: Vec<crate::tools::AnalyzerRow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// The run the finding is in.
    pub run_id: i64,
    /// The finding's `index` in `get_run`'s answer.
    pub index: usize,
    /// Lines of code shown before and after the flagged ones (default 5, at most 50).
    #[serde(default)]
    pub context: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseParams {
    /// Why, shown to people in `bgtask status` and the dashboard (e.g. "large refactor in progress").
    pub reason: String,
}
