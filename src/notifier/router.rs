//! Routing, as plain functions and small state with no I/O and no tokio:
//! which event a finished run makes under its task's policy (with which
//! findings are new from `novelty.rs`), which channels an event goes to
//! (`min_severity`), what is said only once per daemon start, what is
//! rate-limited, and when an email digest window closes.
//!
//! One run makes at most one event, so a developer is never told the same
//! run twice: `task_failed` (an analyzer errored, timed out or ran out of
//! memory, with `on_failure`), else `issues_found` (findings to report, with
//! `on_issues`), else `task_completed` (findings that ended, with
//! `on_issues`; any run, with `on_complete`). Missing
//! analyzers are a separate `analyzers_unavailable` event, once per daemon
//! start for each analyzer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::event::{
    Counts, EventKind, Level, NotificationEvent, RunFinding, RunFinished, TOP_FINDINGS, TopFinding,
};
use super::novelty::{Known, diff};
use crate::analyze::Severity;
use crate::config::Notifications;

/// A channel, by name (`console`, `desktop`, `file`, `email` in JSON, as
/// on the command line).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChannelName {
    Console,
    Desktop,
    File,
    Email,
}

impl ChannelName {
    pub const ALL: [ChannelName; 4] = [
        ChannelName::Console,
        ChannelName::Desktop,
        ChannelName::File,
        ChannelName::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelName::Console => "console",
            ChannelName::Desktop => "desktop",
            ChannelName::File => "file",
            ChannelName::Email => "email",
        }
    }

    /// Whether the config turns the channel on, and from which level.
    pub fn threshold(self, n: &Notifications) -> Option<Level> {
        match self {
            ChannelName::Console => n.console.enabled.then(|| n.console.min_severity.into()),
            ChannelName::Desktop => n.desktop.enabled.then(|| n.desktop.min_severity.into()),
            ChannelName::File => n.file.enabled.then(|| n.file.min_severity.into()),
            ChannelName::Email => n.email.as_ref().map(|e| e.min_severity.into()),
        }
    }
}

/// The enabled channels whose `min_severity` the level reaches.
pub fn channels_for(n: &Notifications, level: Level) -> Vec<ChannelName> {
    ChannelName::ALL
        .into_iter()
        .filter(|c| c.threshold(n).is_some_and(|min| level >= min))
        .collect()
}

/// "1 critical, 2 high", worst first.
pub fn severity_counts(by: &BTreeMap<Severity, usize>) -> String {
    by.iter()
        .rev()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn top(findings: &[&RunFinding]) -> Vec<TopFinding> {
    let mut sorted: Vec<&&RunFinding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.cmp(&b.location))
    });
    sorted
        .into_iter()
        .take(TOP_FINDINGS)
        .map(|f| TopFinding {
            severity: f.severity,
            analyzer: f.analyzer.clone(),
            rule: f.rule.clone(),
            message: f.message.clone(),
            location: f.location.clone(),
        })
        .collect()
}

/// The event a finished run makes under its task's policy, if any.
pub fn run_event(run: &RunFinished, known: Option<&Known>) -> Option<NotificationEvent> {
    let d = diff(run, known);
    let reported: Vec<&RunFinding> = if run.policy.new_only {
        d.new.iter().map(|i| &run.findings[*i]).collect()
    } else {
        run.findings.iter().collect()
    };
    let mut by_severity = BTreeMap::new();
    for f in &reported {
        *by_severity.entry(f.severity).or_insert(0) += 1;
    }
    let counts = Counts {
        findings: run.findings.len(),
        new: d.new.len(),
        fixed: d.fixed,
        by_severity,
    };
    let worst = reported.iter().map(|f| Level::of_finding(f.severity)).max();
    let issues = if reported.is_empty() {
        None
    } else {
        Some(issues_summary(run.policy.new_only, &counts))
    };
    let (kind, level, title) = headline(run, &counts, issues.as_deref(), worst)?;
    let mut event = NotificationEvent::new(kind, level, title);
    event.task = Some(run.task.clone());
    event.run_id = Some(run.run_id);
    event.details = run
        .failures
        .iter()
        .map(|p| format!("{}: {}", p.analyzer, p.reason))
        .collect();
    event.top = top(&reported);
    event.counts = Some(counts);
    Some(event)
}

/// ", 2 fixed" when findings ended, else nothing.
fn fixed_suffix(counts: &Counts) -> String {
    if counts.fixed > 0 {
        format!(", {} fixed", counts.fixed)
    } else {
        String::new()
    }
}

/// The reported findings in a title: "2 new findings (1 high)" when only new
/// ones are reported, else "5 findings (1 high, 4 low), 2 new".
fn issues_summary(new_only: bool, counts: &Counts) -> String {
    let fixed = fixed_suffix(counts);
    if new_only {
        format!(
            "{} ({}){fixed}",
            plural(counts.new, "new finding"),
            severity_counts(&counts.by_severity)
        )
    } else {
        format!(
            "{} ({}), {} new{fixed}",
            plural(counts.findings, "finding"),
            severity_counts(&counts.by_severity),
            counts.new
        )
    }
}

/// Which event the run makes, at which level and with which title: a
/// failure, else issues, else findings that ended, else completion; `None`
/// when the policy asks for none of those.
fn headline(
    run: &RunFinished,
    counts: &Counts,
    issues: Option<&str>,
    worst: Option<Level>,
) -> Option<(EventKind, Level, String)> {
    let policy = run.policy;
    let task = &run.task;
    let fixed = fixed_suffix(counts);
    let headline = if !run.failures.is_empty() && policy.on_failure {
        let failed: Vec<String> = run
            .failures
            .iter()
            .map(|p| format!("{} ({})", p.analyzer, p.status.label()))
            .collect();
        let mut title = format!("{task} failed: {}", failed.join(", "));
        if let Some(i) = issues {
            title = format!("{title}; {i}");
        }
        (
            EventKind::TaskFailed,
            worst.map_or(Level::Error, |w| w.max(Level::Error)),
            title,
        )
    } else if let (Some(i), true, Some(w)) = (issues, policy.on_issues, worst) {
        (EventKind::IssuesFound, w, format!("{task}: {i}"))
    } else if counts.fixed > 0 && policy.on_issues {
        // Findings that ended (fixed, or their file deleted) are news too.
        let rest = if run.findings.is_empty() {
            "clean now".to_owned()
        } else {
            format!("{} known remain", plural(counts.findings, "finding"))
        };
        (
            EventKind::TaskCompleted,
            Level::Info,
            format!("{task}: {} fixed, {rest}", counts.fixed),
        )
    } else if policy.on_complete {
        let what = if run.findings.is_empty() {
            format!("clean{fixed}")
        } else if counts.new == 0 {
            format!("no new findings ({} known){fixed}", counts.findings)
        } else {
            format!(
                "{}, {} new{fixed}",
                plural(counts.findings, "finding"),
                counts.new
            )
        };
        (
            EventKind::TaskCompleted,
            Level::Info,
            format!("{task}: {what}"),
        )
    } else {
        return None;
    };
    Some(headline)
}

/// What is told once per daemon start.
#[derive(Debug, Default)]
pub struct Once {
    unavailable: BTreeSet<String>,
}

impl Once {
    /// The analyzers of this run that are not installed and not yet told.
    pub fn unavailable(&mut self, run: &RunFinished) -> Option<NotificationEvent> {
        let fresh: Vec<_> = run
            .not_installed
            .iter()
            .filter(|p| self.unavailable.insert(p.analyzer.clone()))
            .collect();
        if fresh.is_empty() {
            return None;
        }
        let names: Vec<&str> = fresh.iter().map(|p| p.analyzer.as_str()).collect();
        let mut e = NotificationEvent::new(
            EventKind::AnalyzersUnavailable,
            Level::Warning,
            format!(
                "not installed, skipped by {}: {}",
                run.task,
                names.join(", ")
            ),
        )
        .with_details(
            fresh
                .iter()
                .map(|p| format!("{}: {}", p.analyzer, p.reason))
                .collect(),
        );
        e.task = Some(run.task.clone());
        e.run_id = Some(run.run_id);
        Some(e)
    }
}

/// Events of a kind at most once per window (resource alerts while the
/// machine stays busy).
#[derive(Debug)]
pub struct Cooldown {
    window_ms: i64,
    last: HashMap<EventKind, i64>,
}

impl Cooldown {
    pub fn new(window_ms: i64) -> Cooldown {
        Cooldown {
            window_ms,
            last: HashMap::new(),
        }
    }

    /// Whether an event of `kind` may go out at `now_ms` (and notes it).
    pub fn allow(&mut self, kind: EventKind, now_ms: i64) -> bool {
        if kind != EventKind::HighResourceUsage {
            return true;
        }
        match self.last.get(&kind) {
            Some(at) if now_ms - at < self.window_ms => false,
            _ => {
                self.last.insert(kind, now_ms);
                true
            }
        }
    }
}

/// When the digest window that opened with the oldest waiting event
/// closes; `None` when nothing waits.
pub fn digest_deadline(oldest_ms: Option<i64>, digest_minutes: u32) -> Option<i64> {
    oldest_ms.map(|at| at + i64::from(digest_minutes) * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::RunStatus;
    use crate::config::NotifyPolicy;
    use crate::notifier::event::RunProblem;
    use crate::notifier::novelty::{Diff, PriorFinding, PriorRun};

    fn finding(fp: &str, sev: Severity, path: Option<&str>) -> RunFinding {
        RunFinding {
            fingerprint: fp.to_owned(),
            severity: sev,
            analyzer: "bandit".to_owned(),
            rule: format!("R-{fp}"),
            message: format!("problem {fp}"),
            path: path.map(str::to_owned),
            location: path.map(|p| format!("{p}:1")),
            line: path.map(|_| 1),
            identity: None,
        }
    }

    fn run(findings: Vec<RunFinding>, policy: NotifyPolicy) -> RunFinished {
        RunFinished {
            task: "security".to_owned(),
            run_id: 7,
            policy,
            scope: None,
            findings,
            failures: Vec::new(),
            not_installed: Vec::new(),
            verdict: String::new(),
            duration_ms: 10,
        }
    }

    fn prior(scope: Option<&[&str]>, findings: &[(&str, Option<&str>)]) -> PriorRun {
        PriorRun {
            scope: scope.map(|s| s.iter().map(|p| (*p).to_owned()).collect()),
            findings: findings
                .iter()
                .map(|(fp, p)| PriorFinding {
                    fingerprint: (*fp).to_owned(),
                    path: p.map(str::to_owned),
                    ..PriorFinding::default()
                })
                .collect(),
            head: None,
        }
    }

    #[test]
    fn three_new_one_fixed() {
        let known =
            Known::from_prior([prior(None, &[("a", Some("x.py")), ("gone", Some("y.py"))])])
                .unwrap();
        let r = run(
            vec![
                finding("a", Severity::High, Some("x.py")),
                finding("b", Severity::High, Some("x.py")),
                finding("c", Severity::Medium, Some("y.py")),
                finding("d", Severity::Low, None),
            ],
            NotifyPolicy::default(),
        );
        assert_eq!(
            diff(&r, Some(&known)),
            Diff {
                new: vec![1, 2, 3],
                fixed: 1
            }
        );
        let e = run_event(&r, Some(&known)).unwrap();
        assert_eq!(e.kind, EventKind::IssuesFound);
        assert_eq!(e.level, Level::Error, "the worst new finding is high");
        assert_eq!(
            e.title,
            "security: 3 new findings (1 high, 1 medium, 1 low), 1 fixed"
        );
        assert_eq!(e.top.len(), 3);
        assert_eq!(e.top[0].rule, "R-b", "worst first");
        let c = e.counts.unwrap();
        assert_eq!((c.findings, c.new, c.fixed), (4, 3, 1));
    }

    /// The event kind and level a run makes: `findings` is `old` (one
    /// known critical), `new` (that plus a new medium), `crit` (a new
    /// critical) or `none`; `policy` is `[on_complete, on_issues,
    /// on_failure, new_only]`.
    fn case(findings: &str, failed: bool, policy: [bool; 4]) -> Option<(EventKind, Level)> {
        let known = Known::from_prior([prior(None, &[("a", Some("x.py"))])]).unwrap();
        let old = finding("a", Severity::Critical, Some("x.py"));
        let findings = match findings {
            "old" => vec![old],
            "new" => vec![old, finding("n", Severity::Medium, Some("x.py"))],
            "crit" => vec![finding("z", Severity::Critical, None)],
            _ => Vec::new(),
        };
        let [on_complete, on_issues, on_failure, new_only] = policy;
        let mut r = run(
            findings,
            NotifyPolicy {
                on_complete,
                on_issues,
                on_failure,
                new_only,
            },
        );
        if failed {
            r.failures.push(RunProblem {
                analyzer: "bandit".to_owned(),
                status: RunStatus::Timeout,
                reason: "timed out after 10s".to_owned(),
            });
        }
        run_event(&r, Some(&known)).map(|e| (e.kind, e.level))
    }

    #[test]
    fn policy_table() {
        const DEFAULT: [bool; 4] = [false, true, true, true];
        use EventKind::{IssuesFound, TaskCompleted, TaskFailed};
        let rows = [
            ("nothing new: silent", case("old", false, DEFAULT), None),
            (
                "new_only false reports the known critical",
                case("old", false, [false, true, true, false]),
                Some((IssuesFound, Level::Critical)),
            ),
            (
                "a new medium is a warning",
                case("new", false, DEFAULT),
                Some((IssuesFound, Level::Warning)),
            ),
            (
                "on_issues off silences findings",
                case("new", false, [false, false, true, true]),
                None,
            ),
            (
                "on_issues off, on_complete on",
                case("new", false, [true, false, true, true]),
                Some((TaskCompleted, Level::Info)),
            ),
            (
                "clean with on_complete",
                case("none", false, [true, true, true, true]),
                Some((TaskCompleted, Level::Info)),
            ),
            (
                "clean after a known finding: said as fixed",
                case("none", false, DEFAULT),
                Some((TaskCompleted, Level::Info)),
            ),
            (
                "a failure is an error",
                case("none", true, DEFAULT),
                Some((TaskFailed, Level::Error)),
            ),
            (
                "a failure with a new critical is critical",
                case("crit", true, DEFAULT),
                Some((TaskFailed, Level::Critical)),
            ),
            (
                "on_failure off: the findings still count",
                case("new", true, [false, true, false, true]),
                Some((IssuesFound, Level::Warning)),
            ),
            (
                "on_failure off, nothing new: silent",
                case("old", true, [false, true, false, true]),
                None,
            ),
        ];
        for (name, got, want) in rows {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_failed_run_says_what_broke() {
        let mut r = run(Vec::new(), NotifyPolicy::default());
        r.failures.push(RunProblem {
            analyzer: "pylint".to_owned(),
            status: RunStatus::ToolError,
            reason: "exit 32: usage error".to_owned(),
        });
        let e = run_event(&r, None).unwrap();
        assert_eq!(e.title, "security failed: pylint (error)");
        assert_eq!(e.details, ["pylint: exit 32: usage error"]);
    }

    #[test]
    fn a_first_run_reports_everything_as_new() {
        let r = run(
            vec![finding("a", Severity::Low, Some("x.py"))],
            NotifyPolicy::default(),
        );
        let e = run_event(&r, None).unwrap();
        assert_eq!(e.title, "security: 1 new finding (1 low)");
        assert!(Known::from_prior(Vec::new()).is_none());
    }

    #[test]
    fn all_findings_when_new_only_is_off() {
        let known = Known::from_prior([prior(None, &[("a", Some("x.py"))])]).unwrap();
        let r = run(
            vec![
                finding("a", Severity::High, Some("x.py")),
                finding("b", Severity::High, Some("x.py")),
            ],
            NotifyPolicy {
                new_only: false,
                ..NotifyPolicy::default()
            },
        );
        let e = run_event(&r, Some(&known)).unwrap();
        assert_eq!(e.title, "security: 2 findings (2 high), 1 new");
    }

    #[test]
    fn channels_follow_enabled_and_min_severity() {
        let config =
            crate::config::from_text(std::path::Path::new("t.json"), r#"{"tasks": {}}"#).unwrap();
        let n = &config.notifications;
        // Defaults: console info, desktop warning, file info, email off.
        assert_eq!(
            channels_for(n, Level::Info),
            [ChannelName::Console, ChannelName::File]
        );
        assert_eq!(
            channels_for(n, Level::Warning),
            [
                ChannelName::Console,
                ChannelName::Desktop,
                ChannelName::File
            ]
        );
        let mut n = n.clone();
        n.file.enabled = false;
        n.console.min_severity = crate::config::NotifyLevel::Critical;
        assert_eq!(channels_for(&n, Level::Error), [ChannelName::Desktop]);
        assert_eq!(
            channels_for(&n, Level::Critical),
            [ChannelName::Console, ChannelName::Desktop]
        );
    }

    #[test]
    fn missing_analyzers_are_told_once() {
        let mut once = Once::default();
        let mut r = run(Vec::new(), NotifyPolicy::default());
        r.not_installed.push(RunProblem {
            analyzer: "bandit".to_owned(),
            status: RunStatus::NotInstalled,
            reason: "install with `bgtask tools install bandit`".to_owned(),
        });
        let e = once.unavailable(&r).unwrap();
        assert_eq!(e.level, Level::Warning);
        assert_eq!(e.title, "not installed, skipped by security: bandit");
        assert!(once.unavailable(&r).is_none(), "not again");
        r.not_installed.push(RunProblem {
            analyzer: "pylint".to_owned(),
            status: RunStatus::NotInstalled,
            reason: "hint".to_owned(),
        });
        let e = once.unavailable(&r).unwrap();
        assert_eq!(e.title, "not installed, skipped by security: pylint");
    }

    #[test]
    fn resource_alerts_are_rate_limited() {
        let mut c = Cooldown::new(1000);
        assert!(c.allow(EventKind::HighResourceUsage, 0));
        assert!(!c.allow(EventKind::HighResourceUsage, 999));
        assert!(c.allow(EventKind::HighResourceUsage, 1000));
        assert!(c.allow(EventKind::HealthAlert, 1000), "other kinds pass");
        assert!(c.allow(EventKind::HealthAlert, 1001));
    }

    #[test]
    fn digest_window_opens_with_the_oldest_event() {
        assert_eq!(digest_deadline(None, 15), None);
        assert_eq!(digest_deadline(Some(1000), 15), Some(1000 + 900_000));
        assert_eq!(digest_deadline(Some(1000), 0), Some(1000));
    }
}
