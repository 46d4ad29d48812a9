//! Reports of a run in every output format: console, JSON, SARIF, JUnit,
//! GitHub annotations and Markdown, plus merging shard reports.
//!
//! Owns the [`Report`] model, the exit-code verdict and rendering; nothing
//! here runs analyzers or prints (callers choose where text goes).

mod console;
mod github;
mod junit;
mod markdown;
mod merge;
mod model;
mod sarif;
mod verdict;

pub use console::ConsoleOptions;
pub use markdown::{MarkdownLinks, render as render_markdown};
pub use merge::{MergeError, check_shards, merge, read};
pub use model::{BaselineState, Comparison, Report, SCHEMA, Summary, TeamCacheUse, policy};
pub use verdict::over_threshold;
pub use verdict::{Policy, TaskPolicy};

/// An output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Findings grouped by file, a line per analyzer, the verdict.
    Console,
    /// The full report: runs, findings, policy, verdict (`report merge` reads it).
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).
    Sarif,
    /// JUnit XML (CI test dashboards).
    Junit,
    /// GitHub Actions workflow annotations.
    Github,
    /// A short summary for `$GITHUB_STEP_SUMMARY` and pull-request comments.
    Markdown,
}

pub fn render(report: &Report, format: Format, console: &ConsoleOptions) -> String {
    match format {
        Format::Console => console::render(&report.shown(), console),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("report serializes");
            s.push('\n');
            s
        }
        Format::Sarif => sarif::render(report),
        Format::Junit => junit::render(&report.shown()),
        Format::Github => github::render(&report.shown()),
        // Without links; `bgtask run` and `show` pass them to `render_markdown`.
        Format::Markdown => markdown::render(report, &MarkdownLinks::default()),
    }
}
