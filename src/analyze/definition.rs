//! A validated analyzer definition: which tool, when it applies, how to call
//! it and how to read what it says.
//!
//! Built by `config::validate` from a raw definition (a built-in JSON file in
//! `analyzers/`, optionally overridden in config). Owns exit-code
//! classification and tool-label → severity mapping; does not run anything.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use super::finding::Severity;
use super::vocabulary::{
    Builtin, Category, Lookup, Mode, OutputSource, ParserKind, RawThresholds, RegexStream,
};
use crate::globs::Globs;

#[derive(Debug, Clone)]
pub struct AnalyzerDef {
    pub name: String,
    pub description: String,
    pub category: Category,
    pub engine: Engine,
    /// Files the analyzer reads; `None` means it looks at the project as a
    /// whole (dependency audits) and only `requires` decides applicability.
    pub files: Option<Globs>,
    /// At least one file matching these must exist for the analyzer to apply.
    pub requires: Option<Globs>,
    pub mode: Mode,
    pub network: bool,
    pub config_files: Vec<String>,
    pub timeout: Option<Duration>,
    pub cache: bool,
    /// Results are also cached per file (`engine/per_file.rs`).
    pub cache_per_file: bool,
    pub batch_size: Option<usize>,
    pub severity_map: BTreeMap<String, Severity>,
    pub default_severity: Severity,
    pub thresholds: Thresholds,
    pub install: Install,
    /// Hash of the resolved definition: part of every result-cache key.
    pub digest: String,
    /// Where the definition came from, for messages (`built-in`, a config path).
    pub origin: String,
}

#[derive(Debug, Clone)]
pub enum Engine {
    External(Box<ExternalSpec>),
    Builtin(Builtin),
}

#[derive(Debug, Clone)]
pub struct ExternalSpec {
    pub command: String,
    pub alternatives: Vec<String>,
    pub lookup: Vec<Lookup>,
    pub version_args: Vec<String>,
    pub version_regex: Option<LazyRegex>,
    pub args: Vec<String>,
    pub output: OutputSource,
    pub output_glob: Option<String>,
    pub parser: ParserKind,
    pub regex: Option<RegexSpec>,
    pub exit_codes: ExitCodes,
    pub env: BTreeMap<String, String>,
    /// Runs against the project's environment (`tools::pyenv`).
    pub project_env: Option<crate::analyze::vocabulary::ProjectEnv>,
    /// Output meaning the project's setup failed, not its code.
    pub tool_errors: Vec<LazyRegex>,
}

/// A regex whose syntax is checked when the config is read but which is
/// compiled only when first used (compiling every built-in definition's
/// regexes would dominate a cached run).
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: String,
    compiled: std::sync::Arc<std::sync::OnceLock<Option<Regex>>>,
}

impl LazyRegex {
    /// Checks `pattern`; returns it with its number of capture groups.
    pub fn new(pattern: &str) -> Result<(LazyRegex, usize), String> {
        let hir = regex_syntax::Parser::new()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        let lazy = LazyRegex {
            pattern: pattern.to_owned(),
            compiled: std::sync::Arc::default(),
        };
        Ok((lazy, hir.properties().explicit_captures_len()))
    }

    /// The compiled regex; `None` only if it exceeds the regex size limits.
    pub fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Regex::new(&self.pattern).ok())
            .as_ref()
    }
}

#[derive(Debug, Clone)]
pub struct RegexSpec {
    pub pattern: Regex,
    pub stream: RegexStream,
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Install {
    pub pip: Vec<String>,
    pub npm: Vec<String>,
    pub hint: Option<String>,
}

impl Install {
    /// Whether `bgtask tools install` can install this tool.
    pub fn is_managed(&self) -> bool {
        !self.pip.is_empty() || !self.npm.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub complexity_low: u32,
    pub complexity_medium: u32,
    pub complexity_high: u32,
    pub function_lines: u32,
    pub file_lines: u32,
    pub file_kb: u32,
    pub nesting: u32,
}

impl Thresholds {
    pub fn from_raw(raw: Option<&RawThresholds>) -> Thresholds {
        let d = Thresholds::default();
        let Some(r) = raw else { return d };
        Thresholds {
            complexity_low: r.complexity_low.unwrap_or(d.complexity_low),
            complexity_medium: r.complexity_medium.unwrap_or(d.complexity_medium),
            complexity_high: r.complexity_high.unwrap_or(d.complexity_high),
            function_lines: r.function_lines.unwrap_or(d.function_lines),
            file_lines: r.file_lines.unwrap_or(d.file_lines),
            file_kb: r.file_kb.unwrap_or(d.file_kb),
            nesting: r.nesting.unwrap_or(d.nesting),
        }
    }

    /// Severity of a function with this cyclomatic complexity, if reported.
    pub fn complexity(&self, cc: u32) -> Option<Severity> {
        if cc >= self.complexity_high {
            Some(Severity::High)
        } else if cc >= self.complexity_medium {
            Some(Severity::Medium)
        } else if cc >= self.complexity_low {
            Some(Severity::Low)
        } else {
            None
        }
    }
}

impl Default for Thresholds {
    /// Radon's ranks: C starts at 11, D at 21, E at 31.
    fn default() -> Thresholds {
        Thresholds {
            complexity_low: 11,
            complexity_medium: 21,
            complexity_high: 31,
            function_lines: 60,
            file_lines: 800,
            file_kb: 256,
            nesting: 5,
        }
    }
}

/// What an exit code says on its own (the parsed output may overrule it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    Ok,
    Findings,
    NotApplicable,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodes {
    pub ok: Vec<i32>,
    pub findings: Vec<i32>,
    pub not_applicable: Vec<i32>,
    /// Bitmask mode: any of these bits set means the tool failed.
    pub error_bits: Option<i32>,
}

impl Default for ExitCodes {
    fn default() -> ExitCodes {
        ExitCodes {
            ok: vec![0],
            findings: vec![1],
            not_applicable: Vec::new(),
            error_bits: None,
        }
    }
}

impl ExitCodes {
    pub fn classify(&self, code: i32) -> ExitClass {
        if let Some(bits) = self.error_bits {
            return match code {
                0 => ExitClass::Ok,
                c if c < 0 || c & bits != 0 => ExitClass::Error,
                _ => ExitClass::Findings,
            };
        }
        if self.ok.contains(&code) {
            ExitClass::Ok
        } else if self.findings.contains(&code) {
            ExitClass::Findings
        } else if self.not_applicable.contains(&code) {
            ExitClass::NotApplicable
        } else {
            ExitClass::Error
        }
    }
}

impl AnalyzerDef {
    pub fn external(&self) -> Option<&ExternalSpec> {
        match &self.engine {
            Engine::External(spec) => Some(spec),
            Engine::Builtin(_) => None,
        }
    }

    /// Maps a tool's own label (`HIGH`, `moderate`, `error`) to a severity:
    /// exact match first, then case-insensitive, then the default.
    pub fn severity_for(&self, label: &str) -> Severity {
        if let Some(s) = self.severity_map.get(label) {
            return *s;
        }
        self.severity_map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(label))
            .map_or(self.default_severity, |(_, s)| *s)
    }

    /// The install hint shown when the tool is missing.
    pub fn install_hint(&self) -> String {
        let managed = if self.install.is_managed() {
            format!(" (or: bgtask tools install {})", self.name)
        } else {
            String::new()
        };
        match &self.install.hint {
            Some(h) => format!("{h}{managed}"),
            None => match self.external() {
                Some(spec) => format!("install `{}` and put it on PATH{managed}", spec.command),
                None => String::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_exit_codes() {
        let codes = ExitCodes {
            not_applicable: vec![5],
            ..ExitCodes::default()
        };
        let rows = [
            (0, ExitClass::Ok),
            (1, ExitClass::Findings),
            (5, ExitClass::NotApplicable),
            (2, ExitClass::Error),
            (-1, ExitClass::Error),
        ];
        for (code, want) in rows {
            assert_eq!(codes.classify(code), want, "exit {code}");
        }
    }

    #[test]
    fn pylint_bitmask_exit_codes() {
        // fatal 1, error 2, warning 4, refactor 8, convention 16, usage 32.
        let codes = ExitCodes {
            error_bits: Some(32),
            ..ExitCodes::default()
        };
        let rows = [
            (0, ExitClass::Ok),
            (4, ExitClass::Findings),
            (20, ExitClass::Findings),
            (1, ExitClass::Findings),
            (31, ExitClass::Findings),
            (32, ExitClass::Error),
            (36, ExitClass::Error),
        ];
        for (code, want) in rows {
            assert_eq!(codes.classify(code), want, "exit {code}");
        }
    }

    #[test]
    fn complexity_thresholds() {
        let t = Thresholds::default();
        assert_eq!(t.complexity(10), None);
        assert_eq!(t.complexity(11), Some(Severity::Low));
        assert_eq!(t.complexity(21), Some(Severity::Medium));
        assert_eq!(t.complexity(45), Some(Severity::High));
    }
}
