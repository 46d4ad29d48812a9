//! A recorded run as a tool returns it (filtered, worst first, capped),
//! and the config and task checks — plain functions over the daemon's
//! answers and the CLI's own loaders.

use std::fmt::Write as _;
use std::path::Path;

use super::daemon::{self, Failed};
use super::params::{AnalyzerStatus, ConfigCheck, GetRunParams, Indexed, Run, Tasks, Which};
use crate::ipc::{Request, Response};
use crate::notifier::Marks;
use crate::report::Report;

/// Findings returned at most, whatever `limit` asks.
const MAX_FINDINGS: usize = 1000;
/// The findings of one answer stop before this many bytes of JSON. A
/// tool's answer carries its result twice (structured, and as text for
/// older clients), so this keeps a whole message under 256 KB.
pub const MAX_BYTES: usize = 100 * 1024;

/// Run `p.run_id`'s report from the daemon, shaped as `p` asks.
pub async fn get(root: &Path, p: &GetRunParams) -> Result<Run, Failed> {
    let report = report(root, p.run_id).await?;
    let marks = marks(root, p.run_id, &report).await;
    Ok(shape(p, &report, marks.as_ref()))
}

pub async fn report(root: &Path, run_id: i64) -> Result<Report, Failed> {
    match daemon::ask(root, Request::Show { run_id }).await? {
        Response::Report { report } => Ok(*report),
        other => Err(daemon::unexpected("show", &other)),
    }
}

/// The run's new and fixed, as its notification told them; `None` when
/// the store cannot tell.
async fn marks(root: &Path, run_id: i64, report: &Report) -> Option<Marks> {
    let db = root.join(".bgtask").join(crate::store::FILE);
    let report = report.clone();
    tokio::task::spawn_blocking(move || {
        let db = crate::notifier::Db::open(&db).ok()?;
        db.marks(run_id, &report).ok().flatten()
    })
    .await
    .ok()
    .flatten()
}

/// The report filtered by `p`, worst first, capped by count and size.
pub fn shape(p: &GetRunParams, report: &Report, marks: Option<&Marks>) -> Run {
    let new: std::collections::HashSet<usize> = match marks {
        Some(m) => m.new.iter().copied().collect(),
        None => (0..report.findings.len()).collect(),
    };
    let mut kept: Vec<usize> = (0..report.findings.len())
        .filter(|&i| {
            let f = &report.findings[i];
            p.file.as_deref().is_none_or(|want| f.path() == Some(want))
                && p.min_severity.is_none_or(|s| f.severity >= s)
                && p.rule.as_deref().is_none_or(|r| f.rule == r)
                && (p.which == Which::All || new.contains(&i))
        })
        .collect();
    kept.sort_by_key(|&i| std::cmp::Reverse(report.findings[i].severity));
    let limit = p.limit.unwrap_or(100).min(MAX_FINDINGS);
    let (findings, note) = capped(
        kept.iter().map(|&i| Indexed {
            index: i,
            new: new.contains(&i),
            finding: report.findings[i].clone(),
        }),
        limit,
    );
    Run {
        run_id: p.run_id,
        verdict: report.verdict.clone(),
        exit_code: report.exit_code,
        analyzers: analyzers(report),
        total_findings: report.findings.len(),
        matching: kept.len(),
        omitted: kept.len() - findings.len(),
        findings,
        fixed: marks.map(|m| m.fixed.clone()).unwrap_or_default(),
        note,
    }
}

/// At most `limit` items and [`MAX_BYTES`] of JSON, with a note saying
/// why the rest was left out.
pub fn capped<T: serde::Serialize>(
    items: impl Iterator<Item = T>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut note = None;
    for item in items {
        if out.len() == limit {
            note = Some(format!(
                "only the first {limit} (worst first); raise `limit` or filter by file, severity or rule"
            ));
            break;
        }
        // Its JSON and the comma after it.
        bytes += serde_json::to_string(&item).map_or(0, |s| s.len()) + 1;
        if bytes > MAX_BYTES {
            note = Some(format!(
                "cut at {} KB of findings; filter by file, severity or rule for the rest",
                MAX_BYTES / 1024
            ));
            break;
        }
        out.push(item);
    }
    (out, note)
}

pub fn analyzers(report: &Report) -> Vec<AnalyzerStatus> {
    report
        .runs
        .iter()
        .map(|r| AnalyzerStatus {
            analyzer: r.analyzer.clone(),
            status: serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            // A report keeps its findings in one list, not per run.
            findings: report
                .findings
                .iter()
                .filter(|f| f.analyzer == r.analyzer)
                .count(),
            cached: r.cached,
            duration_ms: r.duration_ms,
            reason: r.reason.clone(),
        })
        .collect()
}

/// The worktree's config, checked as the daemon and `bgtask run` load it
/// (every project of a monorepo).
pub fn validate(root: &Path) -> ConfigCheck {
    let files = |c: &crate::config::Config| {
        c.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
    };
    let loaded = crate::engine::Workspace::worktree(root)
        .map_err(|e| vec![e.to_string()])
        .and_then(|w| {
            w.projects().map_err(|e| {
                let problems: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
                if problems.is_empty() {
                    vec![format!("{e:#}")]
                } else {
                    problems
                }
            })
        });
    match loaded {
        Ok(projects) => ConfigCheck {
            valid: true,
            files: projects
                .all()
                .iter()
                .flat_map(|p| files(&p.config))
                .collect(),
            problems: Vec::new(),
            default_config: projects.all().iter().all(|p| p.config.uses_default()),
        },
        Err(problems) => ConfigCheck {
            valid: false,
            files: Vec::new(),
            problems,
            default_config: false,
        },
    }
}

/// The tasks and the analyzer inventory, as `bgtask task list` and
/// `bgtask doctor` show them.
pub fn tasks(root: &Path) -> Result<Tasks, Failed> {
    let workspace = crate::engine::Workspace::worktree(root).map_err(|e| e.to_string())?;
    let projects = workspace.projects().map_err(|e| format!("{e:#}"))?;
    let tasks =
        crate::config::tasks::list(&workspace.root, &projects).map_err(|e| format!("{e:#}"))?;
    let config = crate::config::load(&workspace.root).map_err(|e| format!("{e:#}"))?;
    let analyzers = crate::tools::analyzers(&workspace, &config);
    Ok(Tasks { tasks, analyzers })
}

/// Current findings listed with their flagged line, read from the
/// worktree now (through `repofile`: nothing outside it).
pub fn with_code(root: &Path, findings: &[crate::store::CurrentFinding]) -> String {
    let mut out = String::new();
    let lines = findings
        .first()
        .and_then(|f| crate::repofile::read_lines(root, &f.path, 4 << 20).ok())
        .flatten()
        .unwrap_or_default();
    for f in findings {
        let at = f.line.map_or_else(String::new, |l| format!(":{l}"));
        let _ = writeln!(
            out,
            "- {}{at} [{} {} {}] {} (task {})",
            f.path, f.severity, f.analyzer, f.rule, f.message, f.task
        );
        if let Some(code) = f
            .line
            .and_then(|l| usize::try_from(l).ok())
            .and_then(|l| lines.get(l.saturating_sub(1)))
        {
            let _ = writeln!(out, "    {}", code.trim_end());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::analyze::vocabulary::Category;
    use crate::analyze::{Finding, Location, RunStatus, Severity};
    use crate::event::AnalyzerRun;

    /// A report of 10 000 findings in two files, every tenth high.
    fn big_report() -> Report {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::load(dir.path()).unwrap();
        let mut run = AnalyzerRun::skipped(
            "lint",
            Category::Custom,
            vec!["t".into()],
            RunStatus::Findings,
            String::new(),
        );
        run.findings = (0..10_000u32)
            .map(|i| {
                let severity = if i % 10 == 1 {
                    Severity::High
                } else {
                    Severity::Low
                };
                let mut location = Location::file(if i % 2 == 0 { "a.py" } else { "b.py" });
                location.line = Some(i + 1);
                let mut f = Finding::new(
                    "lint",
                    format!("R{}", i % 7),
                    severity,
                    format!("finding number {i} says something"),
                )
                .at(location);
                f.fingerprint = format!("fp{i}");
                f
            })
            .collect();
        let policy = crate::report::policy(&config, None, false, Vec::new());
        Report::new(
            String::new(),
            SystemTime::now(),
            Duration::ZERO,
            None,
            policy,
            vec![run],
        )
    }

    fn params(json: serde_json::Value) -> GetRunParams {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_huge_run_is_capped_worst_first_with_the_rest_counted() {
        let report = big_report();
        let run = shape(&params(serde_json::json!({"run_id": 1})), &report, None);
        assert_eq!((run.total_findings, run.matching), (10_000, 10_000));
        assert_eq!(run.findings.len(), 100);
        assert_eq!(run.omitted, 9_900);
        assert!(
            run.findings
                .iter()
                .all(|f| f.finding.severity == Severity::High)
        );
        assert!(run.note.as_deref().unwrap().contains("first 100"));
        assert_eq!(run.analyzers[0].findings, 10_000);

        let wide = shape(
            &params(serde_json::json!({"run_id": 1, "limit": 5000})),
            &report,
            None,
        );
        assert_eq!(wide.findings.len() + wide.omitted, 10_000);
        assert!(
            wide.findings.len() < 1000,
            "the size cap, not the count, stopped it"
        );
        assert!(serde_json::to_string(&wide.findings).unwrap().len() <= MAX_BYTES);
        assert!(wide.note.as_deref().unwrap().contains("KB"));
    }

    #[test]
    fn filters_combine_and_new_means_what_the_marks_say() {
        let report = big_report();
        let p = params(
            serde_json::json!({"run_id": 1, "file": "b.py", "min_severity": "high", "rule": "R3"}),
        );
        let run = shape(&p, &report, None);
        assert!(run.matching > 0);
        assert!(run.findings.iter().all(|f| {
            f.finding.path() == Some("b.py")
                && f.finding.severity == Severity::High
                && f.finding.rule == "R3"
        }));
        let marks = Marks {
            first_run: false,
            new: vec![4, 7],
            fixed: Vec::new(),
        };
        let new = shape(
            &params(serde_json::json!({"run_id": 1, "which": "new"})),
            &report,
            Some(&marks),
        );
        let mut got: Vec<usize> = new.findings.iter().map(|f| f.index).collect();
        got.sort_unstable();
        assert_eq!(got, [4, 7]);
        assert!(new.findings.iter().all(|f| f.new));
    }
}
