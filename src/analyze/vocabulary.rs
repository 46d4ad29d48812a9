//! The words analyzer definitions are made of — their category, mode, how
//! their tool is found, where their output is and how it is parsed — as
//! both the config files (`config::raw`, which re-exports them) and the
//! engine read them. Defined here so that `analyze` never depends on
//! `config`: config builds analyze's definitions, not the other way round.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Security,
    Audit,
    Lint,
    Complexity,
    Test,
    Custom,
}

/// Where to look for an analyzer's executable, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    /// The project's `.venv/bin`, `venv/bin`.
    Venv,
    /// The project's `node_modules/.bin`.
    NodeModules,
    /// bgtask's managed installs (`bgtask tools install`).
    Managed,
    /// `PATH`.
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Runs on the target files (`{files}` in `args`), split into batches.
    Batch,
    /// Runs once over the whole project.
    Project,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputSource {
    /// The report is the tool's standard output.
    Stdout,
    /// The report is written to `{output}` (a private temp file).
    File,
    /// The reports are the files matching `output_glob` under the project
    /// root written during the run (maven, gradle).
    Glob,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParserKind {
    BanditJson,
    Pylint2Json,
    EslintJson,
    NpmAuditV2,
    PipAuditJson,
    SafetyJson,
    RadonCcJson,
    JunitXml,
    CargoJson,
    CargoTestText,
    Sarif,
    Regex,
    /// No report: the exit code alone says pass (ok) or fail (findings).
    ExitCode,
}

/// A built-in analyzer implemented inside bgtask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// File sizes, long functions, deep nesting: the performance profile.
    Profile,
}

/// Which kind of project environment a tool runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectEnv {
    Python,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegexStream {
    Stdout,
    Stderr,
    Both,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    /// Cyclomatic complexity at which a function is reported, per severity.
    pub complexity_low: Option<u32>,
    pub complexity_medium: Option<u32>,
    pub complexity_high: Option<u32>,
    /// `profile`: lines per function before it is reported.
    pub function_lines: Option<u32>,
    /// `profile`: lines per file before it is reported.
    pub file_lines: Option<u32>,
    /// `profile`: kilobytes per source file before it is reported.
    pub file_kb: Option<u32>,
    /// `profile`: nesting depth (indent levels) before a function is reported.
    pub nesting: Option<u32>,
}
