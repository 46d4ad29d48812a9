//! The exit code of a run and the one sentence that explains it.
//!
//! Precedence (see `exit.rs`): an analyzer errored, timed out or ran out of
//! memory → 2; a required analyzer is missing → 3; a finding at or above
//! its threshold → 1; else 0. A finding's threshold is `--fail-on` when
//! given, else the strictest `fail_on` among the tasks that ran its analyzer
//! and whose `paths` include its file; an analyzer named directly (not
//! through a task) uses `high`. The policy a report carries (which task
//! fails on what) is defined here, with the rules that read it.

use serde::{Deserialize, Serialize};

use crate::analyze::{Finding, RunStatus, Severity};
use crate::config::FailOn;
use crate::event::AnalyzerRun;
use crate::exit;
use crate::globs::Globs;

/// A task's part of the exit-code policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct TaskPolicy {
    pub name: String,
    /// `None`: findings never fail this task.
    pub fail_on: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_paths: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Policy {
    /// `--fail-on`, overriding every task's `fail_on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<FailOn>,
    pub strict_tools: bool,
    pub tasks: Vec<TaskPolicy>,
    /// Analyzers named directly; their absence is an error.
    pub explicit: Vec<String>,
}

pub struct Verdict {
    pub code: u8,
    pub explanation: String,
}

const DEFAULT_THRESHOLD: Severity = Severity::High;

fn task_allows(t: &TaskPolicy, path: Option<&str>) -> bool {
    let Some(path) = path else { return true };
    let inc = t
        .paths
        .as_ref()
        .is_none_or(|p| Globs::new(p).is_ok_and(|g| g.is_match(path)));
    let exc = t
        .exclude_paths
        .as_ref()
        .is_some_and(|p| Globs::new(p).is_ok_and(|g| g.is_match(path)));
    inc && !exc
}

/// The threshold for one finding, and the task it comes from.
fn threshold(
    policy: &Policy,
    run: Option<&AnalyzerRun>,
    f: &Finding,
) -> (Option<Severity>, Option<String>) {
    if let Some(o) = policy.fail_on {
        return (o.threshold(), None);
    }
    let tasks: Vec<&TaskPolicy> = run
        .map(|r| {
            policy
                .tasks
                .iter()
                .filter(|t| r.tasks.contains(&t.name) && task_allows(t, f.path()))
                .collect()
        })
        .unwrap_or_default();
    if tasks.is_empty() {
        return (Some(DEFAULT_THRESHOLD), None);
    }
    // The strictest threshold wins; `never` only if every task says never.
    tasks
        .iter()
        .filter_map(|t| t.fail_on.map(|s| (s, &t.name)))
        .min_by_key(|(s, _)| *s)
        .map_or((None, None), |(s, n)| (Some(s), Some(n.clone())))
}

/// Whether a finding reaches its threshold (for per-finding displays).
pub fn over_threshold(policy: &Policy, runs: &[AnalyzerRun], f: &Finding) -> bool {
    let run = runs.iter().find(|r| r.analyzer == f.analyzer);
    threshold(policy, run, f).0.is_some_and(|l| f.severity >= l)
}

pub fn decide(policy: &Policy, runs: &[AnalyzerRun], findings: &[Finding]) -> Verdict {
    let failed: Vec<&AnalyzerRun> = runs
        .iter()
        .filter(|r| r.status.is_failure() && r.status != RunStatus::Cancelled)
        .collect();
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|r| format!("{} ({})", r.analyzer, r.status.label()))
            .collect();
        return Verdict {
            code: exit::TOOL_ERROR,
            explanation: format!("analyzer failure: {}", names.join(", ")),
        };
    }
    let missing: Vec<&str> = runs
        .iter()
        .filter(|r| {
            r.status == RunStatus::NotInstalled
                && (policy.strict_tools || policy.explicit.contains(&r.analyzer))
        })
        .map(|r| r.analyzer.as_str())
        .collect();
    if !missing.is_empty() {
        let why = if policy.strict_tools {
            "--strict-tools"
        } else {
            "named explicitly"
        };
        return Verdict {
            code: exit::NOT_INSTALLED,
            explanation: format!("not installed ({why}): {}", missing.join(", ")),
        };
    }
    let mut over = 0;
    let mut worst: Option<(Severity, Option<Severity>, Option<String>)> = None;
    for f in findings {
        let run = runs.iter().find(|r| r.analyzer == f.analyzer);
        let (limit, task) = threshold(policy, run, f);
        if limit.is_some_and(|l| f.severity >= l) {
            over += 1;
            if worst.as_ref().is_none_or(|(s, _, _)| f.severity > *s) {
                worst = Some((f.severity, limit, task));
            }
        }
    }
    if let Some((_, limit, task)) = worst {
        let limit = limit.map_or("?", Severity::as_str);
        let source = match task {
            Some(t) => format!("task `{t}` fails on {limit}"),
            None if policy.fail_on.is_some() => format!("--fail-on {limit}"),
            None => format!("fails on {limit}"),
        };
        return Verdict {
            code: exit::FINDINGS,
            explanation: format!(
                "{over} finding{} at or above the threshold ({source})",
                if over == 1 { "" } else { "s" }
            ),
        };
    }
    Verdict {
        code: exit::OK,
        explanation: if findings.is_empty() {
            "no findings".to_owned()
        } else {
            "no finding at or above the threshold".to_owned()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FailOn;
    use crate::config::raw::Category;

    fn run(name: &str, status: RunStatus, tasks: &[&str]) -> AnalyzerRun {
        AnalyzerRun::skipped(
            name,
            Category::Lint,
            tasks.iter().map(|s| (*s).to_owned()).collect(),
            status,
            String::new(),
        )
    }

    fn finding(analyzer: &str, sev: Severity, path: &str) -> Finding {
        Finding::new(analyzer, "R", sev, "m").at(crate::analyze::Location::at(path, 1, None))
    }

    fn policy(tasks: Vec<TaskPolicy>) -> Policy {
        Policy {
            fail_on: None,
            strict_tools: false,
            tasks,
            explicit: vec![],
        }
    }

    fn task(name: &str, fail_on: Option<Severity>, exclude: Option<&str>) -> TaskPolicy {
        TaskPolicy {
            name: name.into(),
            fail_on,
            paths: None,
            exclude_paths: exclude.map(|e| vec![e.to_owned()]),
        }
    }

    #[test]
    fn exit_code_table() {
        let p = policy(vec![
            task("sec", Some(Severity::High), None),
            task("style", None, None),
        ]);
        let clean = run("bandit", RunStatus::Clean, &["sec"]);
        let findings = run("bandit", RunStatus::Findings, &["sec"]);
        let lint = run("pylint", RunStatus::Findings, &["style"]);
        let rows: Vec<(Vec<AnalyzerRun>, Vec<Finding>, &Policy, u8)> = vec![
            (vec![clean.clone()], vec![], &p, exit::OK),
            (
                vec![findings.clone()],
                vec![finding("bandit", Severity::Medium, "a.py")],
                &p,
                exit::OK,
            ),
            (
                vec![findings.clone()],
                vec![finding("bandit", Severity::High, "a.py")],
                &p,
                exit::FINDINGS,
            ),
            (
                vec![lint.clone()],
                vec![finding("pylint", Severity::Critical, "a.py")],
                &p,
                exit::OK,
            ),
            (
                vec![
                    findings.clone(),
                    run("pylint", RunStatus::ToolError, &["style"]),
                ],
                vec![finding("bandit", Severity::High, "a.py")],
                &p,
                exit::TOOL_ERROR,
            ),
            (
                vec![
                    clean.clone(),
                    run("eslint", RunStatus::NotInstalled, &["sec"]),
                ],
                vec![],
                &p,
                exit::OK,
            ),
            (
                vec![run("x", RunStatus::Timeout, &[])],
                vec![],
                &p,
                exit::TOOL_ERROR,
            ),
            (
                vec![run("x", RunStatus::Oom, &[])],
                vec![],
                &p,
                exit::TOOL_ERROR,
            ),
            (
                vec![run("x", RunStatus::Partial, &["sec"])],
                vec![],
                &p,
                exit::OK,
            ),
        ];
        for (i, (runs, findings, policy, want)) in rows.into_iter().enumerate() {
            let v = decide(policy, &runs, &findings);
            assert_eq!(v.code, want, "row {i}: {}", v.explanation);
        }
    }

    #[test]
    fn strict_tools_explicit_and_fail_on_override() {
        let missing = run("eslint", RunStatus::NotInstalled, &["code"]);
        let mut p = policy(vec![task("code", Some(Severity::High), None)]);
        p.strict_tools = true;
        assert_eq!(
            decide(&p, std::slice::from_ref(&missing), &[]).code,
            exit::NOT_INSTALLED
        );
        let mut p = policy(vec![]);
        p.explicit = vec!["eslint".into()];
        let v = decide(&p, &[run("eslint", RunStatus::NotInstalled, &[])], &[]);
        assert_eq!(v.code, exit::NOT_INSTALLED);
        assert_eq!(v.explanation, "not installed (named explicitly): eslint");

        let mut p = policy(vec![task("code", None, None)]);
        p.fail_on = Some(FailOn::Low);
        let r = run("pylint", RunStatus::Findings, &["code"]);
        let v = decide(
            &p,
            std::slice::from_ref(&r),
            &[finding("pylint", Severity::Low, "a.py")],
        );
        assert_eq!(
            (v.code, v.explanation.as_str()),
            (
                exit::FINDINGS,
                "1 finding at or above the threshold (--fail-on low)"
            )
        );
        p.fail_on = Some(FailOn::Never);
        assert_eq!(
            decide(&p, &[r], &[finding("pylint", Severity::Critical, "a.py")]).code,
            exit::OK
        );
    }

    #[test]
    fn strictest_task_that_covers_the_file_decides() {
        let p = policy(vec![
            task("strict", Some(Severity::Low), Some("vendor/**")),
            task("lax", Some(Severity::Critical), None),
        ]);
        let r = run("bandit", RunStatus::Findings, &["strict", "lax"]);
        let v = decide(
            &p,
            std::slice::from_ref(&r),
            &[finding("bandit", Severity::Medium, "src/a.py")],
        );
        assert_eq!(v.code, exit::FINDINGS);
        assert!(
            v.explanation.contains("task `strict` fails on low"),
            "{}",
            v.explanation
        );
        let v = decide(
            &p,
            &[r],
            &[finding("bandit", Severity::Medium, "vendor/a.py")],
        );
        assert_eq!(v.code, exit::OK, "vendor/ is only covered by the lax task");
    }
}
