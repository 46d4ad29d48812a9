//! Test support: run a parser over a captured output with a built-in
//! definition, as the engine would.
//!
//! Captured outputs live in `tests/fixtures/outputs/`; absolute paths in them
//! were rewritten to the fake root `/project`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{ParseError, Parsed, Report, ToolOutput, parse};
use crate::analyze::AnalyzerDef;
use crate::config::Config;

pub const ROOT: &str = "/project";

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        crate::config::from_text(Path::new("default.json"), crate::config::DEFAULT_CONFIG)
            .expect("default config is valid")
    })
}

pub fn builtin(name: &str) -> Arc<AnalyzerDef> {
    config().analyzers[name].clone()
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/outputs")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// What a tool left behind, for [`Case::parse`].
pub struct Case<'a> {
    pub analyzer: &'a str,
    pub exit_code: i32,
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
    pub report: Option<&'a [u8]>,
}

impl<'a> Case<'a> {
    pub fn new(analyzer: &'a str, exit_code: i32) -> Case<'a> {
        Case {
            analyzer,
            exit_code,
            stdout: b"",
            stderr: b"",
            report: None,
        }
    }

    #[must_use]
    pub fn stdout(mut self, s: &'a [u8]) -> Case<'a> {
        self.stdout = s;
        self
    }

    #[must_use]
    pub fn stderr(mut self, s: &'a [u8]) -> Case<'a> {
        self.stderr = s;
        self
    }

    #[must_use]
    pub fn report(mut self, s: &'a [u8]) -> Case<'a> {
        self.report = Some(s);
        self
    }

    pub fn def(&self) -> Arc<AnalyzerDef> {
        builtin(self.analyzer)
    }

    pub fn parse(&self) -> Result<Parsed, ParseError> {
        let def = self.def();
        self.parse_with(&def)
    }

    pub fn parse_with(&self, def: &AnalyzerDef) -> Result<Parsed, ParseError> {
        let spec = def.external().expect("external analyzer");
        let reports: Vec<Report> = self
            .report
            .map(|b| Report {
                path: PathBuf::from("report"),
                bytes: b.to_vec(),
            })
            .into_iter()
            .collect();
        let out = ToolOutput {
            def,
            spec,
            exit_code: self.exit_code,
            exit_class: spec.exit_codes.classify(self.exit_code),
            stdout: self.stdout,
            stderr: self.stderr,
            reports: &reports,
            root: Path::new(ROOT),
            canonical_root: Path::new(ROOT),
        };
        parse(&out)
    }
}

/// `(rule, line)` pairs of findings, for compact assertions.
pub fn rules_and_lines(parsed: &Parsed) -> Vec<(String, Option<u32>)> {
    parsed
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.line()))
        .collect()
}
