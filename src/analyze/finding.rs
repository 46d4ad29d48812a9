//! The normalised finding model every parser produces and every report reads.
//!
//! Owns: [`Severity`], [`Finding`], [`Location`], [`Package`]. Paths are
//! repo-relative with `/`, lines and columns 1-based. Does not own how a tool's
//! own labels map onto severities (that is each analyzer definition's
//! `severity` table) nor what a finding's identity and fingerprint are made
//! of (`identity.rs`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::identity::{self, Identity};

/// How bad a finding is, lowest first so `Ord` compares by badness.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses our own lowercase names (`"high"`), used by CLI flags.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|sev| sev.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where in the tree a finding points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Location {
    /// Repo-relative path with `/` separators.
    pub path: String,
    /// 1-based; `None` when the tool only names the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    /// 1-based, exclusive of nothing: as the tool reports it, but never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
}

impl Location {
    pub fn file(path: impl Into<String>) -> Location {
        Location {
            path: path.into(),
            line: None,
            column: None,
            end_line: None,
            end_column: None,
        }
    }

    pub fn at(path: impl Into<String>, line: u32, column: Option<u32>) -> Location {
        Location {
            line: (line > 0).then_some(line),
            column: column.filter(|c| *c > 0),
            ..Location::file(path)
        }
    }

    #[must_use]
    pub fn with_end(mut self, end_line: Option<u32>, end_column: Option<u32>) -> Location {
        self.end_line = end_line.filter(|l| *l > 0);
        self.end_column = end_column.filter(|c| *c > 0);
        self
    }
}

/// The dependency a vulnerability finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Package {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Versions that fix it, when the tool says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_in: Vec<String>,
}

/// One problem reported by one analyzer, normalised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Finding {
    pub analyzer: String,
    /// The tool's rule id (`B105`, `W0611`, `no-unused-vars`, `clippy::needless_return`).
    pub rule: String,
    /// A readable rule name when the tool has one besides the id (`unused-import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
    /// `hash:occurrence`, stable across edits that do not touch the flagged
    /// line (see `identity.rs`); filled in by the engine once the file is read.
    #[serde(default)]
    pub fingerprint: String,
    /// The evidence the fingerprint and matching against a baseline use;
    /// filled in with the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

impl Finding {
    pub fn new(
        analyzer: &str,
        rule: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            analyzer: analyzer.to_owned(),
            rule: rule.into(),
            rule_name: None,
            severity,
            message: message.into(),
            location: None,
            package: None,
            help_uri: None,
            fingerprint: String::new(),
            identity: None,
        }
    }

    #[must_use]
    pub fn at(mut self, location: Location) -> Finding {
        self.location = Some(location);
        self
    }

    pub fn path(&self) -> Option<&str> {
        self.location.as_ref().map(|l| l.path.as_str())
    }

    pub fn line(&self) -> Option<u32> {
        self.location.as_ref().and_then(|l| l.line)
    }

    /// The fingerprint this finding has when its flagged line reads
    /// `line_text` (`None`: no line) and it is the `occurrence`-th finding
    /// of its kind in the file: analyzer, rule, path and the advisory of a
    /// dependency finding, else the line without whitespace, else the
    /// message without numbers (never the line number).
    pub fn compute_fingerprint(&self, line_text: Option<&str>, occurrence: u32) -> String {
        identity::fingerprint_of(self, line_text, occurrence)
    }
}

/// Sort order used by every report: path, line, column, then severity (worst first).
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.path().map(str::to_owned),
                f.line(),
                f.location.as_ref().and_then(|l| l.column),
            )
        };
        key(a)
            .cmp(&key(b))
            .then(b.severity.cmp(&a.severity))
            .then_with(|| a.analyzer.cmp(&b.analyzer))
            .then_with(|| a.rule.cmp(&b.rule))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_by_badness_and_round_trips() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse("HIGH"), None);
    }

    #[test]
    fn location_drops_zero_lines_and_columns() {
        let l = Location::at("a.py", 0, Some(0)).with_end(Some(0), Some(0));
        assert_eq!(l, Location::file("a.py"));
    }

    #[test]
    fn fingerprint_ignores_line_number_but_not_text() {
        let f1 =
            Finding::new("bandit", "B105", Severity::Low, "pw").at(Location::at("a.py", 3, None));
        let f2 =
            Finding::new("bandit", "B105", Severity::Low, "pw").at(Location::at("a.py", 9, None));
        assert_eq!(
            f1.compute_fingerprint(Some("  x = 'pw'"), 0),
            f2.compute_fingerprint(Some("x = 'pw'  "), 0)
        );
        assert_ne!(
            f1.compute_fingerprint(Some("x = 'pw'"), 0),
            f1.compute_fingerprint(Some("y = 'pw'"), 0)
        );
        assert_ne!(
            f1.compute_fingerprint(Some("x"), 0),
            f1.compute_fingerprint(Some("x"), 1)
        );
    }
}
