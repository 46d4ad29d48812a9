//! One parser per report format, behind one signature.
//!
//! A parser turns what a tool wrote into [`Parsed`]: findings, what could not
//! be analysed (→ `partial`), a fatal tool failure hidden behind a plausible
//! exit code (→ `tool_error`), or "nothing to do" (→ `not_applicable`). The
//! tool-specific traps of ANALYZERS.md live in the parser of that tool;
//! combining the result with the exit code is `classify.rs`'s job.

mod bandit;
mod cargo;
mod cargo_test;
mod eslint;
mod exit_code;
mod junit;
mod npm_audit;
mod pip_audit;
mod pylint;
mod radon;
mod regex;
mod safety;
mod sarif;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::definition::{AnalyzerDef, ExitClass, ExternalSpec};
use super::finding::Finding;
use crate::analyze::vocabulary::ParserKind;

/// Everything a finished tool left behind.
pub struct ToolOutput<'a> {
    pub def: &'a AnalyzerDef,
    pub spec: &'a ExternalSpec,
    pub exit_code: i32,
    pub exit_class: ExitClass,
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
    /// Report files (`output: file` or `glob`), in name order.
    pub reports: &'a [Report],
    /// The worktree root, and its canonical form, to relativise paths.
    pub root: &'a Path,
    pub canonical_root: &'a Path,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Test-suite totals, for test runners.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct TestCounts {
    pub total: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
}

impl TestCounts {
    pub fn add(&mut self, other: TestCounts) {
        self.total += other.total;
        self.failed += other.failed;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub findings: Vec<Finding>,
    /// Things the tool could not analyse; any entry makes the run `partial`.
    pub incomplete: Vec<String>,
    /// The tool failed although its output parsed (npm audit's endpoint
    /// error, clippy's 101 on a build failure).
    pub fatal: Option<String>,
    /// Nothing to analyse (no tests collected).
    pub nothing_to_do: Option<String>,
    pub tests: Option<TestCounts>,
}

/// The report could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the tool wrote no report{}", .0.as_deref().map(|w| format!(" ({w})")).unwrap_or_default())]
    Missing(Option<String>),
    #[error("report is not valid {format}: {detail}")]
    Malformed {
        format: &'static str,
        detail: String,
    },
}

impl ParseError {
    pub fn malformed(format: &'static str, detail: impl std::fmt::Display) -> ParseError {
        ParseError::Malformed {
            format,
            detail: detail.to_string(),
        }
    }
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    match out.spec.parser {
        ParserKind::BanditJson => bandit::parse(out),
        ParserKind::Pylint2Json => pylint::parse(out),
        ParserKind::EslintJson => eslint::parse(out),
        ParserKind::NpmAuditV2 => npm_audit::parse(out),
        ParserKind::PipAuditJson => pip_audit::parse(out),
        ParserKind::SafetyJson => safety::parse(out),
        ParserKind::RadonCcJson => radon::parse(out),
        ParserKind::JunitXml => junit::parse(out),
        ParserKind::CargoJson => cargo::parse(out),
        ParserKind::CargoTestText => cargo_test::parse(out),
        ParserKind::Sarif => sarif::parse(out),
        ParserKind::Regex => regex::parse(out),
        ParserKind::ExitCode => Ok(exit_code::parse(out)),
    }
}

impl ToolOutput<'_> {
    /// The single report document: the report file, or stdout.
    pub fn document(&self) -> Result<&[u8], ParseError> {
        match self.reports.first() {
            Some(r) => Ok(&r.bytes),
            None if self.spec.output == crate::analyze::vocabulary::OutputSource::Stdout => {
                Ok(self.stdout)
            }
            None => Err(ParseError::Missing(None)),
        }
    }

    /// Parses the report document as JSON, treating empty output as missing.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        format: &'static str,
    ) -> Result<T, ParseError> {
        let doc = self.document()?;
        if doc.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Missing(Some("it was empty".to_owned())));
        }
        serde_json::from_slice(doc).map_err(|e| ParseError::malformed(format, e))
    }

    /// A tool-reported path made repo-relative with `/`: strips `./`, and the
    /// root prefix of absolute paths (in either its given or canonical form).
    pub fn rel_path(&self, raw: &str) -> String {
        let p = Path::new(raw);
        if p.is_absolute() {
            for root in [self.root, self.canonical_root] {
                if let Ok(rel) = p.strip_prefix(root) {
                    return slashes(rel);
                }
            }
            return raw.to_owned();
        }
        let mut s = raw;
        while let Some(rest) = s.strip_prefix("./") {
            s = rest;
        }
        s.to_owned()
    }

    /// The last few meaningful lines of stderr (or stdout), for messages.
    pub fn stderr_summary(&self) -> String {
        summary(self.stderr)
            .or_else(|| summary(self.stdout))
            .unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }
}

fn slashes(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// A short reason from a tool's output: the first and last lines that look
/// like an error (a real compiler error comes first, a Python exception
/// last), else the last three lines; at most 400 characters.
pub fn summary(bytes: &[u8]) -> Option<String> {
    const KEYWORDS: &[&str] = &[
        "error",
        "couldn't",
        "could not",
        "cannot",
        "can't",
        "failed",
        "not found",
        "no such",
        "denied",
        "refused",
        "invalid",
        "unrecognized",
        "unable",
    ];
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("npm warn"))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let lower = l.to_lowercase();
            KEYWORDS.iter().any(|k| lower.contains(k))
        })
        .collect();
    let picked = match errors.as_slice() {
        [] => lines[lines.len().saturating_sub(3)..].join(" | "),
        [one] => (*one).to_owned(),
        [first, .., last] => format!("{first} | {last}"),
    };
    Some(truncate(&picked, 400))
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod testing;
