//! The raw serde mirror of `.background-tasks.json` and of analyzer
//! definitions (`analyzers/*.json`).
//!
//! Owns the on-disk shape and nothing else: every field is optional or
//! defaulted, unknown keys are rejected, and no value is interpreted here
//! (durations stay strings, globs stay strings). `validate.rs` turns these into
//! the typed [`super::Config`]; nothing outside `config/` sees these types.
//! The JSON schema (`bgtask config schema`) is generated from them. The
//! analyzer vocabulary (category, mode, lookup, parser, output source…) is
//! `analyze::vocabulary`'s, re-exported here: analyze never reads config.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::analyze::Severity;
pub use crate::analyze::vocabulary::{
    Builtin, Category, Lookup, Mode, OutputSource, ParserKind, ProjectEnv, RawThresholds,
    RegexStream,
};

/// `.background-tasks.json`: what bgtask runs, when, and whom it tells.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Editor hint; ignored by bgtask.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// Config format version; only `1` exists.
    pub version: Option<u32>,
    pub execution: Option<RawExecution>,
    pub resource_limits: Option<RawResourceLimits>,
    /// Named groups of analyzers: `bgtask run <task>`.
    pub tasks: Option<BTreeMap<String, RawTask>>,
    /// New analyzers, or fields overriding a built-in one of the same name.
    pub analyzers: Option<BTreeMap<String, RawAnalyzer>>,
    pub triggers: Option<RawTriggers>,
    pub notifications: Option<RawNotifications>,
    pub retention: Option<RawRetention>,
    pub daemon: Option<RawDaemon>,
    /// The result cache: a team's shared one besides the local one.
    pub cache: Option<RawCache>,
}

/// The top-level keys, in file order of a generated config.
pub const SECTIONS: &[&str] = &[
    "$schema",
    "version",
    "execution",
    "resource_limits",
    "tasks",
    "analyzers",
    "triggers",
    "notifications",
    "retention",
    "daemon",
    "cache",
];

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExecution {
    /// Analyzers (and, in the daemon, jobs) running at once. Default: CPU count.
    pub max_concurrent_tasks: Option<u32>,
    /// Wall-clock limit per analyzer run, e.g. `"10m"`. Default `"10m"`.
    pub task_timeout: Option<String>,
    /// Retries of a transiently failed job (daemon). Default 4 (five attempts),
    /// with full-jitter exponential backoff capped at 10 minutes.
    pub max_retries: Option<u32>,
    /// Base delay of the exponential retry backoff, e.g. `"5s"` (the default).
    pub retry_delay: Option<String>,
    /// Queued jobs kept before the lowest-priority, oldest one is dropped. Default 100.
    pub max_queue_size: Option<u32>,
    /// Time between SIGTERM and SIGKILL when stopping an analyzer. Default `"5s"`.
    pub kill_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResourceLimits {
    /// Resident memory of an analyzer's whole process group; over it the
    /// group is killed and the run is `oom`. Default 4096; 0 disables.
    pub max_memory_mb: Option<u64>,
    /// Machine CPU use above which the daemon holds new jobs. Foreground runs ignore it.
    pub max_cpu_percent: Option<u32>,
    /// CPU seconds an analyzer process may use (the CPU-time rlimit). Default: none.
    pub max_cpu_seconds: Option<u64>,
    /// Scheduling niceness of analyzers (0–19). Default 10; bgtask itself is never niced.
    pub nice: Option<i32>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Deserialize,
    serde::Serialize,
    JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Critical,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// The queue's ordering score before adaptive adjustments: level × 100.
    pub fn score(self) -> i32 {
        match self {
            Priority::Low => 100,
            Priority::Medium => 200,
            Priority::High => 300,
            Priority::Critical => 400,
        }
    }
}

/// What may start a task without anyone asking (`bgtask run` always can).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A watched file was saved.
    Save,
    /// `post-commit`.
    Commit,
    /// `pre-push`.
    Push,
    /// `post-merge`.
    Merge,
    /// `post-checkout` of a branch.
    Checkout,
    /// The task's cron `schedule`.
    Schedule,
    /// The worktree went quiet for `idle_minutes`.
    Idle,
    /// The daemon started.
    Start,
}

/// The severity at or above which a run counts as failed (exit code 1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
    /// Findings never fail the run.
    Never,
}

impl FailOn {
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Info => Some(Severity::Info),
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub description: Option<String>,
    /// Analyzer names (built-in or defined under `analyzers`).
    pub analyzers: Vec<String>,
    pub priority: Option<Priority>,
    /// Overrides `execution.task_timeout` for this task's analyzers.
    pub timeout: Option<String>,
    /// What starts this task in the background. Default: none (manual only).
    pub triggers: Option<Vec<TriggerKind>>,
    /// Only files matching these globs are analysed by this task.
    pub paths: Option<Vec<String>>,
    /// Files matching these globs are never analysed by this task.
    pub exclude_paths: Option<Vec<String>>,
    /// Cron expression (5 or 6 fields) for the `schedule` trigger.
    pub schedule: Option<String>,
    /// Quiet minutes before the `idle` trigger fires.
    pub idle_minutes: Option<u32>,
    pub notify: Option<RawNotifyPolicy>,
    /// Default `high`.
    pub fail_on: Option<FailOn>,
    /// A disabled task is skipped by `all` and by triggers. Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifyPolicy {
    pub on_complete: Option<bool>,
    pub on_issues: Option<bool>,
    pub on_failure: Option<bool>,
    /// Only tell about findings that were not in the previous run. Default true.
    pub new_only: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTriggers {
    pub file_watch: Option<RawFileWatch>,
    pub git_hooks: Option<RawGitHooks>,
    pub scheduled: Option<RawScheduled>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileWatch {
    pub enabled: Option<bool>,
    /// Globs of files whose saves are watched. Default: everything not ignored.
    pub paths: Option<Vec<String>>,
    pub exclude_paths: Option<Vec<String>>,
    /// Quiet time after the last save before work starts, e.g. `"2s"`.
    pub debounce: Option<String>,
    /// A task whose own runs keep changing the files that start it is
    /// paused after this many such runs in a row (default 3; 0 never).
    pub max_self_triggers: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGitHooks {
    pub enabled: Option<bool>,
    /// Hooks `bgtask install-hooks` installs.
    pub hooks: Option<Vec<String>>,
    /// Start the daemon from a hook when it is not running.
    pub autostart: Option<bool>,
    /// Hooks that run their tasks synchronously and can fail the git operation.
    pub blocking: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScheduled {
    pub enabled: Option<bool>,
    /// Minimum time between two idle-triggered runs of a task, e.g. `"1h"`.
    pub idle_cooldown: Option<String>,
}

/// Notification level, from an event's severity (see the notifier docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    Info,
    Warning,
    Error,
    Critical,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    pub console: Option<RawChannel>,
    pub desktop: Option<RawChannel>,
    pub file: Option<RawFileChannel>,
    pub email: Option<RawEmailChannel>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub enabled: Option<bool>,
    pub min_severity: Option<NotifyLevel>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileChannel {
    pub enabled: Option<bool>,
    pub min_severity: Option<NotifyLevel>,
    /// Relative to the worktree root. Default `.bgtask/logs/notifications.jsonl`.
    pub path: Option<String>,
    pub max_size_mb: Option<u64>,
    pub max_files: Option<u32>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (required, never optional).
    Starttls,
    /// Implicit TLS (SMTPS, usually port 465).
    Tls,
    /// No TLS: allowed only to a loopback host.
    None,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmailChannel {
    pub enabled: Option<bool>,
    pub min_severity: Option<NotifyLevel>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub tls: Option<TlsMode>,
    /// PEM file of an extra CA to trust (a corporate relay's private CA).
    pub ca_file: Option<String>,
    pub username: Option<String>,
    /// Environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// Command (argv) printing the SMTP password on stdout.
    pub password_command: Option<Vec<String>>,
    /// Rejected with an explanation: secrets never live in the repo config.
    #[schemars(skip)]
    pub password: Option<serde_json::Value>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    /// Batch events into one email per this many minutes. 0 sends at once.
    pub digest_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Runs and findings older than this are deleted. Default 7.
    pub results_days: Option<u32>,
    /// Metrics older than this are deleted. Default 30.
    pub metrics_days: Option<u32>,
    /// Analyzer logs older than this are deleted. Default 7.
    pub logs_days: Option<u32>,
}

/// The result cache.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// A shared cache on the team's object store: CI fills it, every
    /// machine reads it.
    pub remote: Option<RawRemoteCache>,
}

/// `cache.remote`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteCache {
    /// Where: `s3://bucket/prefix`, `gs://…`, `az://…`, `https://…`
    /// (WebDAV or HTTP PUT/GET), `file:///mnt/shared`. Credentials and
    /// endpoints come from the environment, as the store's own tools find
    /// them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, …), never from here.
    pub url: Option<String>,
    /// When this machine writes to it: `ci` (only when `CI=true`; the
    /// default), `always`, `never`.
    pub write: Option<RemoteWrite>,
    /// A command printing the team secret entries are signed with, when
    /// `BGTASK_CACHE_SECRET` is not set (`["pass", "show", "bgtask-cache"]`).
    pub secret_command: Option<Vec<String>>,
}

/// `cache.remote.write`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoteWrite {
    #[default]
    Ci,
    Always,
    Never,
}

/// The background daemon (`bgtask start`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    /// At first start in a repository without a config, write the default
    /// one (`bgtask init`). Default false.
    pub auto_init: Option<bool>,
    /// How often the health checks run, e.g. `"5m"`; `"0s"` turns them off.
    pub health_interval: Option<String>,
    /// How often the retention sweep runs, e.g. `"1h"`; `"0s"` turns it off.
    pub cleanup_interval: Option<String>,
    /// New jobs wait while the daemon's own resident memory is above this. Default 512.
    pub max_rss_mb: Option<u64>,
    /// Health: waiting jobs at which the queue is a warning (twice: an error). Default 50.
    pub queue_warning: Option<u32>,
    /// Health: share of the last 20 runs that failed at which it is a warning. Default 0.5.
    pub failure_rate_warning: Option<f64>,
    /// Health: free space left under `.bgtask` below which it is a warning (a quarter: an error). Default 500.
    pub min_free_disk_mb: Option<u64>,
    /// Health: state database size above which it is a warning (twice: an error). Default 500.
    pub max_db_mb: Option<u64>,
}

// ---------------------------------------------------------------------------
// Analyzer definitions
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnalyzer {
    pub description: Option<String>,
    pub category: Option<Category>,
    /// Implemented inside bgtask; excludes `command` and its related fields.
    pub builtin: Option<Builtin>,
    /// Executable name, or a path relative to the project root (`./gradlew`).
    pub command: Option<String>,
    /// Fallback executables tried when `command` is not found.
    pub alternatives: Option<Vec<String>>,
    pub lookup: Option<Vec<Lookup>>,
    pub version: Option<RawVersion>,
    /// Globs of the files this analyzer reads. Required for `batch` mode.
    pub files: Option<Vec<String>>,
    /// The analyzer applies only if at least one of these paths exists
    /// (a manifest or a tool config file).
    pub requires: Option<Vec<String>>,
    pub mode: Option<Mode>,
    /// argv after the command. Placeholders: `{files}` (one argument per
    /// file), `{files_file}` (a file listing them), `{output}`,
    /// `{output_dir}`, `{root}`.
    pub args: Option<Vec<String>>,
    pub output: Option<OutputSource>,
    /// For `output: glob`: reports written under the project root.
    pub output_glob: Option<String>,
    pub parser: Option<ParserKind>,
    /// For `parser: regex`.
    pub regex: Option<RawRegexParser>,
    pub exit_codes: Option<RawExitCodes>,
    /// Tool severity label (as the tool prints it) → bgtask severity.
    pub severity: Option<BTreeMap<String, Severity>>,
    /// Severity for findings whose label is not in `severity`.
    pub default_severity: Option<Severity>,
    /// Complexity thresholds for `radon-cc-json` and the `profile` builtin.
    pub thresholds: Option<RawThresholds>,
    pub install: Option<RawInstall>,
    /// Needs the network (dependency audits): not run on save by default.
    pub network: Option<bool>,
    /// Tool config files: part of the result-cache key.
    pub config_files: Option<Vec<String>>,
    pub timeout: Option<String>,
    /// Cache results by content hash. Default true for batch analyzers.
    pub cache: Option<bool>,
    /// Each file's findings depend on that file alone (and the
    /// `config_files`), as bandit's and radon's do: results are also cached
    /// per file, so a changed file re-runs the tool on that file only and
    /// a save meets the entries a whole-project run made. Not for tools
    /// that look across files (pylint's duplicate-code, type checkers).
    /// Batch analyzers only.
    pub cache_per_file: Option<bool>,
    /// At most this many files per invocation.
    pub batch_size: Option<u32>,
    /// Extra environment for the tool.
    pub env: Option<BTreeMap<String, String>>,
    /// The tool imports the project's code: run it against the project's
    /// environment (`python`: its `.venv`/`venv`, `$VIRTUAL_ENV`, or the
    /// poetry/pipenv environment), whichever install of the tool is used.
    pub project_env: Option<ProjectEnv>,
    /// Regexes for output (stdout or stderr) that means the project's
    /// setup failed, not its code (`Cannot find module`, a missing npm
    /// script): such a run is a `tool_error` with the matching line.
    pub tool_errors: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersion {
    /// Arguments that make the tool print its version, e.g. `["--version"]`.
    /// Without a `version` section the version is not probed.
    pub args: Vec<String>,
    /// First capture group is the version; default: the first `N.N[.N]` seen.
    pub regex: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegexParser {
    /// Matched against each output line. Named groups: `file`, `line`,
    /// `column`, `end_line`, `end_column`, `rule`, `severity`, `message`
    /// (`message` required).
    pub pattern: String,
    /// Read this stream; default stdout.
    pub stream: Option<RegexStream>,
    /// Rule id when the pattern has no `rule` group.
    pub rule: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawExitCodes {
    pub ok: Option<Vec<i32>>,
    pub findings: Option<Vec<i32>>,
    pub not_applicable: Option<Vec<i32>>,
    /// Bitmask mode (pylint): an exit code with any of these bits is an error.
    pub error_bits: Option<i32>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstall {
    /// Pinned PyPI requirements for `bgtask tools install`.
    pub pip: Option<Vec<String>>,
    /// Pinned npm packages for `bgtask tools install`.
    pub npm: Option<Vec<String>>,
    /// What to tell a user when the tool is missing.
    pub hint: Option<String>,
}
