//! The validated, typed config every other stage reads.
//!
//! Durations are `Duration`s, globs are compiled, cron expressions parsed,
//! analyzer names resolved to definitions. Built only by `validate.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::raw::{FailOn, NotifyLevel, Priority, RemoteWrite, TlsMode, TriggerKind};
use crate::analyze::AnalyzerDef;
use crate::globs::Globs;

#[derive(Debug, Clone)]
pub struct Config {
    /// Files merged into this config; empty when the built-in default is used.
    pub files: Vec<PathBuf>,
    pub execution: Execution,
    pub limits: ResourceLimits,
    pub tasks: BTreeMap<String, Task>,
    /// Every analyzer: built-ins (with config overrides) and user-defined ones.
    pub analyzers: BTreeMap<String, Arc<AnalyzerDef>>,
    pub triggers: Triggers,
    pub notifications: Notifications,
    pub retention: Retention,
    pub daemon: Daemon,
    /// `cache.remote`: the team's shared result cache, when configured.
    pub remote_cache: Option<RemoteCache>,
}

/// `cache.remote`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCache {
    pub url: String,
    pub write: RemoteWrite,
    pub secret_command: Option<Vec<String>>,
}

impl Config {
    pub fn uses_default(&self) -> bool {
        self.files.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Execution {
    pub max_concurrent: usize,
    pub task_timeout: Duration,
    pub max_retries: u32,
    pub retry_delay: Duration,
    pub max_queue_size: usize,
    pub kill_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `None`: no memory limit.
    pub max_memory_mb: Option<u64>,
    pub max_cpu_percent: Option<u32>,
    pub max_cpu_seconds: Option<u64>,
    pub nice: i32,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub description: Option<String>,
    pub analyzers: Vec<String>,
    pub priority: Priority,
    pub timeout: Option<Duration>,
    pub triggers: Vec<TriggerKind>,
    pub paths: Option<Globs>,
    pub exclude_paths: Option<Globs>,
    pub schedule: Option<Schedule>,
    pub idle_minutes: u32,
    pub notify: NotifyPolicy,
    pub fail_on: FailOn,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    pub cron: Arc<croner::Cron>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyPolicy {
    pub on_complete: bool,
    pub on_issues: bool,
    pub on_failure: bool,
    pub new_only: bool,
}

impl Default for NotifyPolicy {
    fn default() -> NotifyPolicy {
        NotifyPolicy {
            on_complete: false,
            on_issues: true,
            on_failure: true,
            new_only: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Triggers {
    pub file_watch: FileWatch,
    pub git_hooks: GitHooks,
    pub scheduled: Scheduled,
}

#[derive(Debug, Clone)]
pub struct FileWatch {
    pub enabled: bool,
    pub paths: Option<Globs>,
    pub exclude_paths: Option<Globs>,
    pub debounce: Duration,
    /// Runs in a row started only by the task's own writes before it is
    /// paused (0: never).
    pub max_self_triggers: u32,
}

#[derive(Debug, Clone)]
pub struct GitHooks {
    pub enabled: bool,
    pub hooks: Vec<String>,
    pub autostart: bool,
    pub blocking: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Scheduled {
    pub enabled: bool,
    pub idle_cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct Notifications {
    pub console: Channel,
    pub desktop: Channel,
    pub file: FileChannel,
    pub email: Option<EmailChannel>,
}

#[derive(Debug, Clone, Copy)]
pub struct Channel {
    pub enabled: bool,
    pub min_severity: NotifyLevel,
    /// `enabled` was set in the config (not the default): for the desktop
    /// channel, a desktop is then required, not merely used where there
    /// is one.
    pub explicit: bool,
}

#[derive(Debug, Clone)]
pub struct FileChannel {
    pub enabled: bool,
    pub min_severity: NotifyLevel,
    pub path: PathBuf,
    pub max_size_mb: u64,
    pub max_files: u32,
    pub retention_days: u32,
}

#[derive(Debug, Clone)]
pub struct EmailChannel {
    pub min_severity: NotifyLevel,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<PasswordSource>,
    pub from: String,
    pub to: Vec<String>,
    pub digest_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Env(String),
    Command(Vec<String>),
}

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub results_days: u32,
    pub metrics_days: u32,
    pub logs_days: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    pub auto_init: bool,
    /// `None`: off.
    pub health_interval: Option<Duration>,
    pub cleanup_interval: Option<Duration>,
    pub max_rss_mb: u64,
    pub queue_warning: u32,
    pub failure_rate_warning: f64,
    pub min_free_disk_mb: u64,
    pub max_db_mb: u64,
}

/// Git hooks bgtask knows how to install.
pub const KNOWN_HOOKS: &[&str] = &[
    "pre-commit",
    "post-commit",
    "post-merge",
    "post-checkout",
    "post-rewrite",
    "pre-push",
    "pre-rebase",
    "commit-msg",
];
