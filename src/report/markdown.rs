//! The Markdown report, for `$GITHUB_STEP_SUMMARY` and pull-request
//! comments: the verdict, a table of new / fixed / total findings by task
//! and severity, the first new findings (worst first) linked to their line
//! in the repository's web pages, and the analyzers that did not run clean.
//! Short enough to read in ten seconds; `--format json` has everything.
//!
//! Where links point is worked out before rendering, from the environment
//! and git ([`MarkdownLinks::discover`], which the CLI calls); rendering
//! itself reads nothing.

use std::fmt::Write;
use std::path::Path;

use super::console::duration;
use super::model::{Comparison, Report};
use crate::analyze::{Finding, RunStatus, Severity};

/// New findings listed before "and N more".
const LISTED: usize = 20;
/// Characters of a finding's message kept.
const MESSAGE_CHARS: usize = 160;
/// Characters of an analyzer's reason kept.
const REASON_CHARS: usize = 200;

/// Where findings link to: a file's line at a commit in the repository's
/// web pages. Without a repository or a commit, findings are plain
/// `path:line`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkdownLinks {
    /// The repository's web page: `https://github.com/owner/repo`.
    pub repository: Option<String>,
    /// The commit links point at.
    pub commit: Option<String>,
    /// The project's directory in the repository (`services/api/`, empty
    /// at the top): finding paths are relative to the project.
    pub prefix: String,
}

impl MarkdownLinks {
    /// Links for the project at `root`: GitHub Actions' `GITHUB_SERVER_URL`
    /// and `GITHUB_REPOSITORY`, else the `origin` remote; `GITHUB_SHA`, else
    /// `HEAD`.
    pub fn discover(root: impl AsRef<Path>) -> MarkdownLinks {
        let root = root.as_ref();
        let git = |args: &[&str]| {
            crate::git::git(root, args)
                .ok()
                .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
        };
        MarkdownLinks::resolve(
            |k| std::env::var(k).ok(),
            git(&["remote", "get-url", "origin"]).as_deref(),
            git(&["rev-parse", "--verify", "--quiet", "HEAD"]),
            git(&["rev-parse", "--show-prefix"]).unwrap_or_default(),
        )
    }

    /// [`MarkdownLinks::discover`] from what it read: the environment wins
    /// over the remote and `HEAD`.
    fn resolve(
        env: impl Fn(&str) -> Option<String>,
        remote: Option<&str>,
        head: Option<String>,
        prefix: String,
    ) -> MarkdownLinks {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let actions = env("GITHUB_SERVER_URL")
            .zip(env("GITHUB_REPOSITORY"))
            .map(|(server, repo)| format!("{}/{}", server.trim_end_matches('/'), repo.trim()));
        MarkdownLinks {
            repository: actions.or_else(|| remote.and_then(crate::git::web_url)),
            commit: env("GITHUB_SHA").or(head).filter(|c| !c.is_empty()),
            prefix,
        }
    }

    /// The web address of `path`'s `line`, when there is a repository and
    /// a commit.
    fn link(&self, path: &str, line: Option<u32>) -> Option<String> {
        let repository = self.repository.as_deref()?;
        let commit = self.commit.as_deref()?;
        let path = format!("{}{path}", self.prefix);
        Some(crate::git::blob_url(repository, commit, &path, line))
    }
}

pub fn render(report: &Report, links: &MarkdownLinks) -> String {
    let mut out = String::new();
    let icon = if report.exit_code == 0 { "✅" } else { "❌" };
    let _ = writeln!(out, "### {icon} bgtask: {}\n", one_line(&report.verdict));
    summary(&mut out, report);
    table(&mut out, report);
    findings(&mut out, report, links);
    not_clean(&mut out, report);
    out
}

/// Counts, duration and scope; then what "new" means.
fn summary(out: &mut String, report: &Report) {
    let new = Comparison::new_findings(report).count();
    let analyzers = report
        .runs
        .iter()
        .filter(|r| r.status != RunStatus::NotApplicable)
        .count();
    let new = if report.baseline.is_some() {
        format!(" ({new} new)")
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "{}{new} from {} in {} · exit {}",
        plural(report.findings.len(), "finding"),
        plural(analyzers, "analyzer"),
        duration(report.duration_ms),
        report.exit_code,
    );
    if let Some(scope) = &report.scope {
        let _ = write!(out, " · scope: {}", text(scope, REASON_CHARS));
    }
    match &report.baseline {
        Some(c) => {
            let _ = writeln!(
                out,
                "\n\ncompared with {}\n",
                text(&c.against, REASON_CHARS)
            );
        }
        None => out.push_str("\n\nno baseline: every finding counts as new\n\n"),
    }
}

/// New, fixed and total findings of one task at one severity.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    new: usize,
    fixed: usize,
    total: usize,
}

/// Per task, counts by severity (worst first, as [`Severity::ALL`]). A
/// finding counts for every task of the analyzer that produced it; an
/// analyzer named directly is its own row.
fn counts(report: &Report) -> Vec<(String, [Counts; 5])> {
    let groups = |analyzer: &str| -> Vec<String> {
        match report.runs.iter().find(|r| r.analyzer == analyzer) {
            Some(r) if !r.tasks.is_empty() => r.tasks.clone(),
            _ => vec![analyzer.to_owned()],
        }
    };
    let mut rows: Vec<(String, [Counts; 5])> = Vec::new();
    for r in &report.runs {
        if r.status == RunStatus::NotApplicable {
            continue;
        }
        for group in groups(&r.analyzer) {
            if !rows.iter().any(|(g, _)| *g == group) {
                rows.push((group, [Counts::default(); 5]));
            }
        }
    }
    let mut add = |f: &Finding, bump: fn(&mut Counts)| {
        let at = Severity::ALL
            .iter()
            .position(|s| *s == f.severity)
            .unwrap_or(0);
        for group in groups(&f.analyzer) {
            let i = rows
                .iter()
                .position(|(g, _)| *g == group)
                .unwrap_or_else(|| {
                    rows.push((group, [Counts::default(); 5]));
                    rows.len() - 1
                });
            bump(&mut rows[i].1[at]);
        }
    };
    for f in &report.findings {
        add(f, |c| c.total += 1);
    }
    for f in Comparison::new_findings(report) {
        add(f, |c| c.new += 1);
    }
    for f in report.baseline.iter().flat_map(|c| &c.absent) {
        add(f, |c| c.fixed += 1);
    }
    // Tasks as the config orders them; analyzers named directly after.
    rows.sort_by_key(|(g, _)| {
        report
            .policy
            .tasks
            .iter()
            .position(|t| t.name == *g)
            .unwrap_or(usize::MAX)
    });
    rows
}

fn table(out: &mut String, report: &Report) {
    let rows = counts(report);
    if rows.is_empty() {
        return;
    }
    let compared = report.baseline.is_some();
    out.push_str("| task | severity | new | fixed | total |\n|:--|:--|--:|--:|--:|\n");
    for (task, by_severity) in rows {
        // GitHub splits table cells on a pipe, even in code.
        let task = code(&task).replace('|', "\\|");
        let mut any = false;
        for (severity, c) in Severity::ALL.iter().zip(by_severity) {
            if c.total == 0 && c.fixed == 0 {
                continue;
            }
            any = true;
            let fixed = if compared {
                c.fixed.to_string()
            } else {
                "—".to_owned()
            };
            let _ = writeln!(
                out,
                "| {task} | {severity} | {} | {fixed} | {} |",
                c.new, c.total
            );
        }
        if !any {
            let fixed = if compared { "0" } else { "—" };
            let _ = writeln!(out, "| {task} | — | 0 | {fixed} | 0 |");
        }
    }
    out.push('\n');
}

/// The first new findings, worst first (by path within a severity).
fn findings(out: &mut String, report: &Report, links: &MarkdownLinks) {
    let mut new: Vec<&Finding> = Comparison::new_findings(report).collect();
    if new.is_empty() {
        out.push_str("**No new findings.**\n");
        return;
    }
    new.sort_by_key(|f| std::cmp::Reverse(f.severity));
    if new.len() > LISTED {
        let _ = writeln!(
            out,
            "**New findings** (the {LISTED} worst of {}):\n",
            new.len()
        );
    } else {
        out.push_str("**New findings:**\n\n");
    }
    for f in new.iter().take(LISTED) {
        let _ = writeln!(
            out,
            "- **{}** {} {} {}: {}",
            f.severity,
            place(f, links),
            text(&f.analyzer, MESSAGE_CHARS),
            code(&f.rule),
            text(&f.message, MESSAGE_CHARS)
        );
    }
    if new.len() > LISTED {
        let _ = writeln!(out, "- and {} more", new.len() - LISTED);
    }
}

/// `path:line` (linked when possible), the package of a dependency
/// finding, or a dash.
fn place(f: &Finding, links: &MarkdownLinks) -> String {
    let Some(loc) = &f.location else {
        return f.package.as_ref().map_or_else(
            || "—".to_owned(),
            |p| match &p.version {
                Some(v) => code(&format!("{} {v}", p.name)),
                None => code(&p.name),
            },
        );
    };
    let label = code(&match loc.line {
        Some(l) => format!("{}:{l}", loc.path),
        None => loc.path.clone(),
    });
    match links.link(&loc.path, loc.line) {
        Some(url) => format!("[{label}]({url})"),
        None => label,
    }
}

/// One line per analyzer that did not run clean: missing (with the install
/// hint), failed, timed out, partial, cancelled.
fn not_clean(out: &mut String, report: &Report) {
    let mut first = true;
    for r in &report.runs {
        if matches!(
            r.status,
            RunStatus::Clean | RunStatus::Findings | RunStatus::NotApplicable
        ) {
            continue;
        }
        if first {
            out.push_str("\n**Did not run clean:**\n\n");
            first = false;
        }
        let _ = write!(
            out,
            "- **{}** {}",
            text(&r.analyzer, REASON_CHARS),
            r.status.label()
        );
        match r.reason.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(reason) => {
                let _ = writeln!(out, ": {}", text(reason, REASON_CHARS));
            }
            None => out.push('\n'),
        }
    }
}

fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `s` on one line, whitespace runs collapsed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` on one line, cut to `max` characters, with everything Markdown (and
/// GitHub's math and tables) would read as markup escaped.
fn text(s: &str, max: usize) -> String {
    let line = one_line(s);
    let mut out = String::with_capacity(line.len());
    for (i, c) in line.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as inline code; escaped text when it holds a backtick.
fn code(s: &str) -> String {
    if s.contains('`') {
        text(s, MESSAGE_CHARS)
    } else {
        format!("`{}`", one_line(s))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::analyze::{Location, Package};
    use crate::config::raw::Category;
    use crate::event::AnalyzerRun;
    use crate::report::model::BaselineState;
    use crate::report::{Policy, TaskPolicy};

    fn run(analyzer: &str, tasks: &[&str], status: RunStatus, reason: &str) -> AnalyzerRun {
        let mut r = AnalyzerRun::skipped(
            analyzer,
            Category::Lint,
            tasks.iter().map(|t| (*t).to_owned()).collect(),
            status,
            reason.to_owned(),
        );
        r.reason = (!reason.is_empty()).then(|| reason.to_owned());
        r
    }

    fn finding(analyzer: &str, rule: &str, sev: Severity, path: &str, line: u32) -> Finding {
        Finding::new(analyzer, rule, sev, format!("{rule} in {path}"))
            .at(Location::at(path, line, None))
    }

    fn report(runs: Vec<AnalyzerRun>, explicit: &[&str]) -> Report {
        let policy = Policy {
            fail_on: None,
            strict_tools: false,
            tasks: ["security", "code"]
                .map(|name| TaskPolicy {
                    name: name.to_owned(),
                    fail_on: Some(Severity::High),
                    paths: None,
                    exclude_paths: None,
                })
                .to_vec(),
            explicit: explicit.iter().map(|a| (*a).to_owned()).collect(),
        };
        Report::new(
            "/repo".to_owned(),
            SystemTime::UNIX_EPOCH,
            Duration::from_millis(4200),
            None,
            policy,
            runs,
        )
    }

    fn github() -> MarkdownLinks {
        MarkdownLinks {
            repository: Some("https://github.com/example/app".to_owned()),
            commit: Some("0123abc".to_owned()),
            prefix: String::new(),
        }
    }

    /// Findings in two tasks (one analyzer in both), a baseline with an
    /// unchanged and a fixed finding, a dependency finding, markup in a
    /// message, a missing and a failed analyzer.
    #[test]
    fn report_against_a_baseline_with_links() {
        let mut bandit = run("bandit", &["security", "code"], RunStatus::Findings, "");
        bandit.findings = vec![
            finding("bandit", "B602", Severity::High, "src/shop/orders.py", 17),
            finding("bandit", "B105", Severity::Low, "src/app.py", 3),
        ];
        let mut audit = run("pip-audit", &["security"], RunStatus::Findings, "");
        let mut vuln = Finding::new(
            "pip-audit",
            "GHSA-x",
            Severity::Medium,
            "a <script> | `x` $5",
        );
        vuln.package = Some(Package {
            name: "requests".to_owned(),
            version: Some("2.19.0".to_owned()),
            fixed_in: vec![],
        });
        audit.findings = vec![vuln];
        let runs = vec![
            bandit,
            audit,
            run("pylint", &["code"], RunStatus::Clean, ""),
            run(
                "eslint",
                &["code"],
                RunStatus::NotInstalled,
                "npm install --save-dev eslint",
            ),
            run(
                "semgrep",
                &["security"],
                RunStatus::ToolError,
                "exit 2:\nrule <bad> | broken",
            ),
            run(
                "radon",
                &["code"],
                RunStatus::NotApplicable,
                "no Python files",
            ),
        ];
        let mut r = report(runs, &[]);
        let states = r
            .findings
            .iter()
            .map(|f| match f.rule.as_str() {
                "B105" => BaselineState::Unchanged,
                _ => BaselineState::New,
            })
            .collect();
        r.baseline = Some(Comparison {
            against: "origin/main (merge base 1a2b3c4)".to_owned(),
            states,
            absent: vec![finding("bandit", "B101", Severity::Low, "src/old.py", 9)],
        });
        insta::assert_snapshot!(render(&r, &github()));
    }

    /// No baseline: every finding is new; only the 20 worst are listed;
    /// an analyzer named directly is its own row; paths are plain.
    #[test]
    fn many_findings_without_baseline_or_links() {
        let mut counter = run("counter", &[], RunStatus::Findings, "");
        counter.findings = (1..=23)
            .map(|i| {
                let sev = if i == 23 {
                    Severity::High
                } else {
                    Severity::Low
                };
                finding("counter", "CR1", sev, &format!("f{i:02}.txt"), i)
            })
            .collect();
        let text = render(
            &report(vec![counter], &["counter"]),
            &MarkdownLinks::default(),
        );
        insta::assert_snapshot!(text);
        assert_eq!(text.lines().filter(|l| l.starts_with("- **")).count(), 20);
        assert!(!text.contains("](http"), "{text}");
    }

    #[test]
    fn a_clean_run() {
        let text = render(
            &report(
                vec![run("bandit", &["security"], RunStatus::Clean, "")],
                &[],
            ),
            &github(),
        );
        assert!(text.starts_with("### ✅ bgtask: no findings\n"), "{text}");
        assert!(text.contains("| `security` | — | 0 | — | 0 |"), "{text}");
        assert!(text.contains("**No new findings.**"), "{text}");
        assert!(!text.contains("Did not run clean"), "{text}");
    }

    #[test]
    fn escaping() {
        let rows = [
            ("plain words", "plain words"),
            ("a|b", "a\\|b"),
            ("`code` *em* _u_", "\\`code\\` \\*em\\* \\_u\\_"),
            ("<script>&amp;", "\\<script\\>\\&amp;"),
            ("[x](y) ~z~ $5 \\", "\\[x\\](y) \\~z\\~ \\$5 \\\\"),
            ("two\n  lines\t", "two lines"),
        ];
        for (raw, want) in rows {
            assert_eq!(text(raw, 100), want, "{raw:?}");
        }
        assert_eq!(text("abcdef", 3), "abc…");
        assert_eq!(text("abc", 3), "abc");
        assert_eq!(code("B602"), "`B602`");
        assert_eq!(code("a`b"), "a\\`b");
    }

    #[test]
    fn links_prefer_the_environment_then_the_remote_and_head() {
        let actions = |k: &str| {
            let v = match k {
                "GITHUB_SERVER_URL" => "https://github.example.com/",
                "GITHUB_REPOSITORY" => "team/app",
                "GITHUB_SHA" => "feed42",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let none = |_: &str| None;
        let blank = |_: &str| Some(String::new());
        let remote = Some("git@github.com:example/app.git");
        let head = || Some("0123abc".to_owned());
        let rows = [
            (
                MarkdownLinks::resolve(actions, remote, head(), String::new()),
                Some("https://github.example.com/team/app/blob/feed42/a.py#L3"),
            ),
            (
                MarkdownLinks::resolve(none, remote, head(), String::new()),
                Some("https://github.com/example/app/blob/0123abc/a.py#L3"),
            ),
            (
                MarkdownLinks::resolve(blank, remote, head(), "services/api/".to_owned()),
                Some("https://github.com/example/app/blob/0123abc/services/api/a.py#L3"),
            ),
            (
                MarkdownLinks::resolve(none, None, head(), String::new()),
                None,
            ),
            (
                MarkdownLinks::resolve(none, remote, None, String::new()),
                None,
            ),
            (
                MarkdownLinks::resolve(none, Some("/srv/app.git"), head(), String::new()),
                None,
            ),
        ];
        for (i, (links, want)) in rows.into_iter().enumerate() {
            assert_eq!(links.link("a.py", Some(3)).as_deref(), want, "row {i}");
        }
    }
}
