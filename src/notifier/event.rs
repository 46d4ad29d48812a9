//! What the notifier is told and what it tells: [`RunFinished`] (a job's
//! outcome, sent by the scheduler once the run is recorded) and
//! [`NotificationEvent`] (one thing worth telling the developer), with its
//! [`Level`] and the mapping from finding severities and run statuses.
//!
//! Plain data, serializable: the file channel writes events as JSON lines
//! and the email digest keeps them in the state database until its window
//! closes. Turning a run into events (policy, new-only) is `router.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analyze::{Identity, RunStatus, Severity};
use crate::config::{NotifyLevel, NotifyPolicy};
use crate::report::Report;

/// How much a notification matters; channels filter on it (`min_severity`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    /// A finding's severity: critical → critical, high → error,
    /// medium → warning, low and info → info.
    pub fn of_finding(s: Severity) -> Level {
        match s {
            Severity::Critical => Level::Critical,
            Severity::High => Level::Error,
            Severity::Medium => Level::Warning,
            Severity::Low | Severity::Info => Level::Info,
        }
    }

    /// An analyzer's run status, when it is worth a notification by
    /// itself: a tool that broke, timed out or ran out of memory is an
    /// error; a missing tool a warning (told once per daemon start).
    pub fn of_status(s: RunStatus) -> Option<Level> {
        match s {
            RunStatus::ToolError | RunStatus::Timeout | RunStatus::Oom => Some(Level::Error),
            RunStatus::NotInstalled => Some(Level::Warning),
            RunStatus::Clean
            | RunStatus::Findings
            | RunStatus::Partial
            | RunStatus::NotApplicable
            | RunStatus::Cancelled => None,
        }
    }

    /// Parses our own lowercase names.
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Info, Level::Warning, Level::Error, Level::Critical]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

impl From<NotifyLevel> for Level {
    fn from(l: NotifyLevel) -> Level {
        match l {
            NotifyLevel::Info => Level::Info,
            NotifyLevel::Warning => Level::Warning,
            NotifyLevel::Error => Level::Error,
            NotifyLevel::Critical => Level::Critical,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    TaskCompleted,
    TaskFailed,
    IssuesFound,
    HighResourceUsage,
    HealthAlert,
    ConfigInvalid,
    ConfigUntrusted,
    AnalyzersUnavailable,
    /// `bgtask notify test`.
    Test,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCompleted => "task_completed",
            EventKind::TaskFailed => "task_failed",
            EventKind::IssuesFound => "issues_found",
            EventKind::HighResourceUsage => "high_resource_usage",
            EventKind::HealthAlert => "health_alert",
            EventKind::ConfigInvalid => "config_invalid",
            EventKind::ConfigUntrusted => "config_untrusted",
            EventKind::AnalyzersUnavailable => "analyzers_unavailable",
            EventKind::Test => "test",
        }
    }
}

/// One finding as a notification shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopFinding {
    pub severity: Severity,
    pub analyzer: String,
    pub rule: String,
    pub message: String,
    /// `path:line`, or the package for dependency audits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The numbers of a run's notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Every finding of the run.
    pub findings: usize,
    /// Not in the previous run of the task (all of them on a first run).
    pub new: usize,
    /// In the previous run, in what this run analysed, and gone now.
    pub fixed: usize,
    /// Of the findings the notification reports (the new ones, unless
    /// `new_only: false`).
    pub by_severity: BTreeMap<Severity, usize>,
}

/// One thing worth telling the developer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEvent {
    pub kind: EventKind,
    pub level: Level,
    /// Wall-clock time, ms since the epoch.
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// One line: what happened.
    pub title: String,
    /// More lines: the failures, the problems, the analyzers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// The worst reported findings first, at most [`TOP_FINDINGS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<TopFinding>,
}

/// Findings listed in a notification; the counts cover the rest.
pub const TOP_FINDINGS: usize = 5;

impl NotificationEvent {
    pub fn new(kind: EventKind, level: Level, title: impl Into<String>) -> NotificationEvent {
        NotificationEvent {
            kind,
            level,
            at_ms: crate::clock::now_ms(),
            task: None,
            run_id: None,
            title: title.into(),
            details: Vec::new(),
            counts: None,
            top: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_details(mut self, details: Vec<String>) -> NotificationEvent {
        self.details = details;
        self
    }

    /// A health check got worse (`warning` or `error`).
    pub fn health_alert(error: bool, message: &str) -> NotificationEvent {
        let level = if error { Level::Error } else { Level::Warning };
        NotificationEvent::new(
            EventKind::HealthAlert,
            level,
            format!("daemon health is {level}"),
        )
        .with_details(vec![message.to_owned()])
    }

    /// The config on disk is invalid; the daemon keeps the last good one.
    pub fn config_invalid(problems: &[String]) -> NotificationEvent {
        NotificationEvent::new(
            EventKind::ConfigInvalid,
            Level::Error,
            "the config is invalid; the last good one stays in use",
        )
        .with_details(problems.to_vec())
    }

    /// The config's executable parts changed and need `bgtask trust`
    /// before the tasks touching them run automatically again.
    pub fn config_untrusted(tasks: &[String], why: &str) -> NotificationEvent {
        let title = if tasks.is_empty() {
            "the config is not trusted; run `bgtask trust` to let tasks run automatically"
                .to_owned()
        } else {
            format!(
                "the config changed; {} will not run automatically until `bgtask trust`",
                tasks.join(", ")
            )
        };
        NotificationEvent::new(EventKind::ConfigUntrusted, Level::Warning, title)
            .with_details(vec![why.to_owned()])
    }

    /// New jobs are held back (machine load, the daemon's own memory).
    pub fn high_resource_usage(why: &str) -> NotificationEvent {
        NotificationEvent::new(
            EventKind::HighResourceUsage,
            Level::Warning,
            "new jobs wait: resources are short",
        )
        .with_details(vec![why.to_owned()])
    }

    /// `bgtask notify test`.
    pub fn test() -> NotificationEvent {
        NotificationEvent::new(
            EventKind::Test,
            Level::Info,
            "test notification: this channel works",
        )
        .with_details(vec![
            "sent by `bgtask notify test`; nothing to do".to_owned(),
        ])
    }
}

/// One finding of a finished run, as much as notifications need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFinding {
    pub fingerprint: String,
    pub severity: Severity,
    pub analyzer: String,
    pub rule: String,
    pub message: String,
    pub path: Option<String>,
    pub location: Option<String>,
    /// 1-based.
    pub line: Option<u32>,
    /// What matching against earlier runs uses (`analyze/identity.rs`).
    pub identity: Option<Identity>,
}

/// An analyzer of the run that did not do its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProblem {
    pub analyzer: String,
    pub status: RunStatus,
    pub reason: String,
}

/// A finished job, as the scheduler tells the notifier once its run is
/// recorded.
#[derive(Debug, Clone)]
pub struct RunFinished {
    pub task: String,
    pub run_id: i64,
    pub policy: NotifyPolicy,
    /// The repo-relative files the run looked at; `None`: the project.
    pub scope: Option<Vec<String>>,
    pub findings: Vec<RunFinding>,
    /// Analyzers that errored, timed out or ran out of memory.
    pub failures: Vec<RunProblem>,
    /// Analyzers that are not installed, with the install hint.
    pub not_installed: Vec<RunProblem>,
    /// The report's one-line verdict.
    pub verdict: String,
    pub duration_ms: u64,
}

impl RunFinished {
    /// From a recorded report.
    pub fn from_report(
        task: &str,
        run_id: i64,
        policy: NotifyPolicy,
        scope: Option<Vec<String>>,
        report: &Report,
    ) -> RunFinished {
        let findings = report
            .findings
            .iter()
            .map(|f| {
                let location = match (f.path(), f.line()) {
                    (Some(p), Some(l)) => Some(format!("{p}:{l}")),
                    (Some(p), None) => Some(p.to_owned()),
                    (None, _) => f.package.as_ref().map(|p| match &p.version {
                        Some(v) => format!("{} {v}", p.name),
                        None => p.name.clone(),
                    }),
                };
                RunFinding {
                    fingerprint: f.fingerprint.clone(),
                    severity: f.severity,
                    analyzer: f.analyzer.clone(),
                    rule: f.rule.clone(),
                    message: f.message.clone(),
                    path: f.path().map(str::to_owned),
                    location,
                    line: f.line(),
                    identity: f.identity.clone(),
                }
            })
            .collect();
        let problem = |r: &crate::event::AnalyzerRun| RunProblem {
            analyzer: r.analyzer.clone(),
            status: r.status,
            reason: r
                .reason
                .clone()
                .unwrap_or_else(|| r.status.label().to_owned()),
        };
        RunFinished {
            task: task.to_owned(),
            run_id,
            policy,
            scope,
            findings,
            failures: report
                .runs
                .iter()
                .filter(|r| Level::of_status(r.status) == Some(Level::Error))
                .map(problem)
                .collect(),
            not_installed: report
                .runs
                .iter()
                .filter(|r| r.status == RunStatus::NotInstalled)
                .map(problem)
                .collect(),
            verdict: report.verdict.clone(),
            duration_ms: report.duration_ms,
        }
    }

    /// A job that ended without a report (it could not be planned).
    pub fn without_report(task: &str, run_id: i64, policy: NotifyPolicy, why: &str) -> RunFinished {
        RunFinished {
            task: task.to_owned(),
            run_id,
            policy,
            scope: None,
            findings: Vec::new(),
            failures: vec![RunProblem {
                analyzer: task.to_owned(),
                status: RunStatus::ToolError,
                reason: why.to_owned(),
            }],
            not_installed: Vec::new(),
            verdict: why.to_owned(),
            duration_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_and_statuses_map_to_levels() {
        let findings = [
            (Severity::Critical, Level::Critical),
            (Severity::High, Level::Error),
            (Severity::Medium, Level::Warning),
            (Severity::Low, Level::Info),
            (Severity::Info, Level::Info),
        ];
        for (s, want) in findings {
            assert_eq!(Level::of_finding(s), want, "{s}");
        }
        let statuses = [
            (RunStatus::ToolError, Some(Level::Error)),
            (RunStatus::Timeout, Some(Level::Error)),
            (RunStatus::Oom, Some(Level::Error)),
            (RunStatus::NotInstalled, Some(Level::Warning)),
            (RunStatus::Clean, None),
            (RunStatus::Findings, None),
            (RunStatus::Partial, None),
            (RunStatus::NotApplicable, None),
            (RunStatus::Cancelled, None),
        ];
        for (s, want) in statuses {
            assert_eq!(Level::of_status(s), want, "{s:?}");
        }
    }

    #[test]
    fn levels_order_parse_and_come_from_the_config() {
        assert!(Level::Info < Level::Warning && Level::Error < Level::Critical);
        for l in [Level::Info, Level::Warning, Level::Error, Level::Critical] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("high"), None);
        assert_eq!(Level::from(NotifyLevel::Warning), Level::Warning);
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = NotificationEvent::config_invalid(&["a.json:1:2: bad".to_owned()]);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""kind":"config_invalid""#), "{json}");
        assert!(json.contains(r#""level":"error""#), "{json}");
        let back: NotificationEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn untrusted_names_the_tasks() {
        let e = NotificationEvent::config_untrusted(&["security".to_owned()], "args changed");
        assert_eq!(e.level, Level::Warning);
        assert!(e.title.contains("security will not run"), "{}", e.title);
        let e = NotificationEvent::config_untrusted(&[], "new worktree");
        assert!(e.title.contains("bgtask trust"), "{}", e.title);
    }
}
