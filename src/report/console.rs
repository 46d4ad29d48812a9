//! The human report: findings grouped by file and coloured by severity, one
//! summary line per analyzer (status, count, duration, cached), reasons for
//! anything that did not run cleanly (with the install hint for missing
//! tools), and a last line with the exit code and why.
//!
//! Renders ANSI styles into a string; the caller prints it through
//! `anstream`, which drops them for `NO_COLOR`, pipes and files.

use std::fmt::Write;

use anstyle::{AnsiColor, Effects, Style};

use super::model::Report;
use crate::analyze::{Finding, RunStatus, Severity};
use crate::event::AnalyzerRun;

fn sev_style(s: Severity) -> Style {
    match s {
        Severity::Critical => AnsiColor::Red.on_default().effects(Effects::BOLD),
        Severity::High => AnsiColor::Red.on_default(),
        Severity::Medium => AnsiColor::Yellow.on_default(),
        Severity::Low => AnsiColor::Cyan.on_default(),
        Severity::Info => Style::new().effects(Effects::DIMMED),
    }
}

fn status_style(s: RunStatus) -> Style {
    match s {
        RunStatus::Clean => AnsiColor::Green.on_default(),
        RunStatus::Findings => AnsiColor::Yellow.on_default(),
        RunStatus::Partial => AnsiColor::Magenta.on_default(),
        RunStatus::ToolError | RunStatus::Timeout | RunStatus::Oom => {
            AnsiColor::Red.on_default().effects(Effects::BOLD)
        }
        RunStatus::NotInstalled | RunStatus::NotApplicable | RunStatus::Cancelled => {
            Style::new().effects(Effects::DIMMED)
        }
    }
}

const BOLD: Style = Style::new().effects(Effects::BOLD);
const DIM: Style = Style::new().effects(Effects::DIMMED);

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

#[derive(Debug, Default)]
pub struct ConsoleOptions {
    /// Show every analyzer line (also not-applicable ones) and stderr tails.
    pub verbose: bool,
    /// Only the per-analyzer summary and the verdict, not each finding.
    pub summary_only: bool,
    /// Show at most this many findings, worst first, after the summary
    /// (a person at a terminal); `None`: every one, by file.
    pub max_findings: Option<usize>,
}

pub fn render(report: &Report, opts: &ConsoleOptions) -> String {
    let mut out = String::new();
    match opts.max_findings {
        _ if opts.summary_only => analyzers(&mut out, report, opts),
        Some(max) if report.findings.len() > max => {
            // Too many to read: what ran first, then the worst ones.
            analyzers(&mut out, report, opts);
            out.push('\n');
            let mut worst: Vec<&Finding> = report.findings.iter().collect();
            worst.sort_by_key(|f| std::cmp::Reverse(f.severity));
            let mut shown: Vec<Finding> = worst.into_iter().take(max).cloned().collect();
            crate::analyze::sort_findings(&mut shown);
            let _ = writeln!(
                out,
                "{}",
                paint(BOLD, &format!("the {max} worst findings:"))
            );
            findings(&mut out, &shown);
            let _ = writeln!(
                out,
                "{} more — `bgtask run … --all` (or -v) prints every one, `--format json|sarif|junit` for tools\n",
                report.findings.len() - max
            );
        }
        _ => {
            findings(&mut out, &report.findings);
            analyzers(&mut out, report, opts);
        }
    }
    verdict(&mut out, report);
    out
}

fn findings(out: &mut String, findings: &[Finding]) {
    let mut current: Option<Option<&str>> = None;
    for f in findings {
        let path = f.path();
        if current != Some(path) {
            if current.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", paint(BOLD, path.unwrap_or("(no file)")));
            current = Some(path);
        }
        let pos = match f.location.as_ref().and_then(|l| l.line) {
            Some(line) => match f.location.as_ref().and_then(|l| l.column) {
                Some(col) => format!("{line}:{col}"),
                None => line.to_string(),
            },
            None => "-".to_owned(),
        };
        let rule = match &f.rule_name {
            Some(name) if *name != f.rule => format!("{} {name}", f.rule),
            _ => f.rule.clone(),
        };
        // A message of several lines (pylint's duplicate-code quotes the
        // code) keeps the rule on its first line and the rest indented
        // under it, so the next finding never runs into it.
        let mut lines = f.message.trim_end().lines();
        let _ = writeln!(
            out,
            "  {pos:>8}  {}  {}  {}  {}",
            paint(
                sev_style(f.severity),
                &format!("{:<8}", f.severity.as_str())
            ),
            lines.next().unwrap_or(""),
            paint(DIM, &rule),
            paint(DIM, &f.analyzer),
        );
        for line in lines {
            let _ = writeln!(out, "{:22}{}", "", paint(DIM, &format!("│ {line}")));
        }
    }
    if !findings.is_empty() {
        out.push('\n');
    }
}

/// `1 high, 4 low`
fn breakdown(findings: &[&Finding]) -> String {
    Severity::ALL
        .iter()
        .filter_map(|s| {
            let n = findings.iter().filter(|f| f.severity == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `5 (1 high, 4 low)`, or nothing for no findings.
fn count_line(findings: &[&Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    format!("{} ({})", findings.len(), breakdown(findings))
}

/// As the runner counts: `4 tests: 1 passed, 1 failed, 1 error, 1 skipped`
/// (the parts that are zero left out, but always the failures).
fn test_counts(t: crate::analyze::TestCounts) -> String {
    let passed = t.total.saturating_sub(t.failed + t.errors + t.skipped);
    let mut parts = vec![format!("{passed} passed"), format!("{} failed", t.failed)];
    if t.errors > 0 {
        parts.push(format!(
            "{} error{}",
            t.errors,
            if t.errors == 1 { "" } else { "s" }
        ));
    }
    if t.skipped > 0 {
        parts.push(format!("{} skipped", t.skipped));
    }
    format!(
        "{} test{}: {}",
        t.total,
        if t.total == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

pub(super) fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        #[expect(clippy::cast_precision_loss, reason = "a display value in seconds")]
        let s = ms as f64 / 1000.0;
        format!("{s:.1}s")
    }
}

fn analyzers(out: &mut String, report: &Report, opts: &ConsoleOptions) {
    let shown: Vec<&AnalyzerRun> = report
        .runs
        .iter()
        .filter(|r| opts.verbose || r.status != RunStatus::NotApplicable)
        .collect();
    let name_w = shown.iter().map(|r| r.analyzer.len()).max().unwrap_or(8);
    let ver_w = shown
        .iter()
        .map(|r| {
            r.tool
                .as_ref()
                .and_then(|t| t.version.as_deref())
                .map_or(1, str::len)
        })
        .max()
        .unwrap_or(1);
    for r in &shown {
        let fs: Vec<&Finding> = report.findings_of(&r.analyzer).collect();
        let version = r
            .tool
            .as_ref()
            .and_then(|t| t.version.as_deref())
            .unwrap_or("-");
        let _ = writeln!(
            out,
            "  {:<name_w$}  {}  {}  {}  {}",
            r.analyzer,
            paint(DIM, &format!("{version:<ver_w$}")),
            paint(status_style(r.status), &format!("{:<13}", r.status.label())),
            run_detail(r, &fs),
            paint(DIM, &run_timing(r)),
        );
        run_notes(out, r, name_w, opts.verbose);
    }
    let hidden = report.runs.len() - shown.len();
    if hidden > 0 {
        let _ = writeln!(
            out,
            "  {}",
            paint(
                DIM,
                &format!(
                    "({hidden} analyzer{} not applicable here; -v lists them)",
                    if hidden == 1 { "" } else { "s" }
                )
            )
        );
    }
}

/// An analyzer's findings count and, for a test runner, its test counts.
fn run_detail(r: &AnalyzerRun, fs: &[&Finding]) -> String {
    let mut detail = count_line(fs);
    if let Some(t) = r.tests {
        let tests = test_counts(t);
        detail = if detail.is_empty() {
            tests
        } else {
            format!("{detail}; {tests}")
        };
    }
    detail
}

/// How long an analyzer took, over how many runs and whether from the
/// cache; nothing for one that did not run.
fn run_timing(r: &AnalyzerRun) -> String {
    let ran = !matches!(r.status, RunStatus::NotApplicable | RunStatus::NotInstalled);
    if !ran {
        return String::new();
    }
    let mut t = duration(r.duration_ms);
    if r.invocations > 1 {
        let _ = write!(t, " in {} runs", r.invocations);
    }
    if r.cached {
        t.push_str(", cached");
    } else if r.cached_files > 0 {
        let _ = write!(t, ", {} of {} files cached", r.cached_files, r.files);
    }
    t
}

/// The lines under an analyzer's summary: why it did not run cleanly (the
/// install hint for a missing tool), and with `verbose` its output's tail.
fn run_notes(out: &mut String, r: &AnalyzerRun, name_w: usize, verbose: bool) {
    if let Some(reason) = &r.reason {
        let prefix = if r.status == RunStatus::NotInstalled {
            "install: "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<name_w$}  {}",
            "",
            paint(DIM, &format!("↳ {prefix}{reason}"))
        );
    }
    if verbose && let Some(tail) = &r.output_tail {
        for line in tail
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let _ = writeln!(out, "  {:<name_w$}    {}", "", paint(DIM, line));
        }
    }
}

fn verdict(out: &mut String, report: &Report) {
    let (mark, style) = match report.exit_code {
        0 => ("✓", AnsiColor::Green.on_default().effects(Effects::BOLD)),
        1 => ("✗", AnsiColor::Red.on_default().effects(Effects::BOLD)),
        _ => ("!", AnsiColor::Red.on_default().effects(Effects::BOLD)),
    };
    let all: Vec<&Finding> = report.findings.iter().collect();
    let counts = match all.len() {
        0 => "no findings".to_owned(),
        1 => format!("1 finding ({})", breakdown(&all)),
        n => format!("{n} findings ({})", breakdown(&all)),
    };
    let mut extras = Vec::new();
    for (status, word) in [
        (RunStatus::Partial, "partial"),
        (RunStatus::NotInstalled, "not installed"),
        (RunStatus::ToolError, "failed"),
        (RunStatus::Timeout, "timed out"),
        (RunStatus::Oom, "out of memory"),
        (RunStatus::Cancelled, "cancelled"),
    ] {
        let n = report.summary.by_status.get(&status).copied().unwrap_or(0);
        if n > 0 {
            extras.push(format!("{n} {word}"));
        }
    }
    let cached = report.runs.iter().filter(|r| r.cached).count();
    let team = report.team_cache.as_ref();
    // Team cache hits count entries: a whole run's, or one file's.
    let hits = match team.map_or(0, |t| t.hits) {
        0 => String::new(),
        1 => "1 team cache hit".to_owned(),
        n => format!("{n} team cache hits"),
    };
    match (cached, hits.is_empty()) {
        (0, true) => {}
        (0, false) => extras.push(hits),
        (n, true) => extras.push(format!("{n} cached")),
        (n, false) => extras.push(format!("{n} cached ({hits})")),
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!(" · {}", extras.join(" · "))
    };
    let _ = writeln!(
        out,
        "\n{} {counts}{extras} · {} — exit {}: {}",
        paint(style, mark),
        duration(report.duration_ms),
        report.exit_code,
        report.verdict
    );
    if let Some(t) = team {
        if let Some(problem) = &t.problem {
            let _ = writeln!(out, "team cache {}: {problem}", t.url);
        } else if t.rejected > 0 {
            let _ = writeln!(
                out,
                "team cache {}: {} entries did not verify (another secret, or tampered with) and were ignored",
                t.url, t.rejected
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Location;

    #[test]
    fn a_message_of_several_lines_stays_under_its_finding() {
        let dup = Finding::new(
            "pylint",
            "R0801",
            Severity::Low,
            "Similar lines in 2 files\n==a:[1:3]\n==b:[1:3]\n    x = 1\n",
        )
        .at(Location::at("a.py", 1, Some(1)));
        let next = Finding::new("pylint", "C0114", Severity::Low, "Missing module docstring")
            .at(Location::at("a.py", 2, Some(1)));
        let mut out = String::new();
        findings(&mut out, &[dup, next]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].contains("Similar lines in 2 files") && lines[1].contains("R0801"));
        assert!(lines[2].starts_with(&" ".repeat(22)), "{out}");
        assert!(lines[2].contains("│ ==a:[1:3]"), "{out}");
        assert!(lines[4].contains("│     x = 1"), "{out}");
        assert!(
            lines[5].contains("Missing module docstring") && lines[5].contains("C0114"),
            "{out}"
        );
    }

    #[test]
    fn test_counts_as_the_runner_counts() {
        let t = crate::analyze::TestCounts {
            total: 4,
            failed: 1,
            errors: 1,
            skipped: 1,
        };
        assert_eq!(
            test_counts(t),
            "4 tests: 1 passed, 1 failed, 1 error, 1 skipped"
        );
        let t = crate::analyze::TestCounts {
            total: 1,
            failed: 0,
            errors: 0,
            skipped: 0,
        };
        assert_eq!(test_counts(t), "1 test: 1 passed, 0 failed");
    }
}
