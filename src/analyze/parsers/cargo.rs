//! `cargo clippy --message-format=json` (also `cargo build`/`check`): one
//! JSON object per line; `reason: "compiler-message"` lines are diagnostics.
//!
//! cargo exits 101 both for deny-level lints and for build failures. A lint
//! (a diagnostic with a lint code, `clippy::…` or a rustc lint name) at error
//! level makes it findings. A compile error (code `E….` or none) means the
//! lints could not all run: the errors are kept as findings and the run is a
//! tool error ("build failed"). 101 with no error diagnostic at all (a broken
//! `Cargo.toml`, a missing linker) is a tool error with cargo's own message.

use std::collections::HashSet;

use serde::Deserialize;

use super::{ParseError, Parsed, ToolOutput, summary};
use crate::analyze::{Finding, Location};

#[derive(Deserialize)]
struct Line {
    reason: String,
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Diagnostic {
    message: String,
    level: String,
    code: Option<Code>,
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[derive(Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    line_end: u32,
    column_start: u32,
    column_end: u32,
    is_primary: bool,
}

fn is_compile_error(code: Option<&str>) -> bool {
    match code {
        None => true,
        Some(c) => c.len() == 5 && c.starts_with('E') && c[1..].bytes().all(|b| b.is_ascii_digit()),
    }
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let doc = out.document()?;
    let mut parsed = Parsed::default();
    let mut seen = HashSet::new();
    let mut compile_errors = Vec::new();
    let mut lint_errors = 0;
    for raw in doc.split(|b| *b == b'\n') {
        let raw = raw.trim_ascii();
        if raw.is_empty() || raw[0] != b'{' {
            continue;
        }
        let line: Line =
            serde_json::from_slice(raw).map_err(|e| ParseError::malformed("cargo JSON", e))?;
        if line.reason != "compiler-message" {
            continue;
        }
        let Some(d) = line.message else { continue };
        if !matches!(d.level.as_str(), "error" | "warning") {
            continue;
        }
        let code = d.code.as_ref().map(|c| c.code.as_str());
        let Some(span) = d.spans.iter().find(|s| s.is_primary) else {
            // "aborting due to …", "N warnings emitted": summaries, not findings.
            continue;
        };
        let path = out.rel_path(&span.file_name);
        if path.starts_with('/') {
            continue; // inside a dependency outside the worktree
        }
        if !seen.insert((
            code.map(str::to_owned),
            path.clone(),
            span.line_start,
            span.column_start,
            d.message.clone(),
        )) {
            continue; // the same lint seen by the lib and the test build
        }
        let compile_error = d.level == "error" && is_compile_error(code);
        if compile_error {
            compile_errors.push(format!("{path}:{}: {}", span.line_start, d.message));
        } else if d.level == "error" {
            lint_errors += 1;
        }
        let rule = match code {
            Some(c) if is_compile_error(Some(c)) => format!("rustc::{c}"),
            Some(c) => c.to_owned(),
            None => "rustc::error".to_owned(),
        };
        let mut f = Finding::new(out.name(), rule, out.def.severity_for(&d.level), d.message)
            .at(Location::at(path, span.line_start, Some(span.column_start))
                .with_end(Some(span.line_end), Some(span.column_end)));
        if let Some(lint) = code.and_then(|c| c.strip_prefix("clippy::")) {
            f.help_uri = Some(format!(
                "https://rust-lang.github.io/rust-clippy/master/index.html#{lint}"
            ));
        }
        parsed.findings.push(f);
    }
    if !compile_errors.is_empty() {
        parsed.fatal = Some(format!(
            "build failed, so not every lint ran: {}",
            compile_errors
                .into_iter()
                .take(3)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    } else if out.exit_code != 0 && lint_errors == 0 {
        parsed.fatal = Some(format!(
            "cargo exited with code {} without an error diagnostic: {}",
            out.exit_code,
            summary(out.stderr).unwrap_or_else(|| "no output".to_owned())
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};
    use crate::analyze::{RunStatus, Severity};

    #[test]
    fn deny_lint_with_101_is_findings() {
        let doc = fixture("clippy.jsonl");
        let case = Case::new("clippy", 101).stdout(&doc);
        let parsed = case.parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [
                ("clippy::needless_return", 5),
                ("clippy::approx_constant", 10)
            ]
            .map(|(r, l)| (r.to_owned(), Some(l)))
        );
        assert_eq!(parsed.findings[0].severity, Severity::Medium);
        assert_eq!(parsed.findings[1].severity, Severity::High);
        let run = classify(&case.def(), 101, case.parse(), b"");
        assert_eq!(run.status, RunStatus::Findings);
    }

    #[test]
    fn build_failure_with_101_is_a_tool_error_that_keeps_the_error() {
        let doc = fixture("clippy-build-failure.jsonl");
        let case = Case::new("clippy", 101).stdout(&doc);
        let run = classify(&case.def(), 101, case.parse(), b"error: could not compile");
        assert_eq!(run.status, RunStatus::ToolError);
        assert!(run.reason.unwrap().contains("build failed"));
        assert_eq!(run.findings.len(), 1);
        assert_eq!(run.findings[0].rule, "rustc::error");
    }

    #[test]
    fn exit_101_without_any_diagnostic_is_a_tool_error() {
        let stderr = fixture("clippy-manifest-error.stderr");
        let case = Case::new("clippy", 101).stdout(b"").stderr(&stderr);
        let run = classify(&case.def(), 101, case.parse(), &stderr);
        assert_eq!(run.status, RunStatus::ToolError);
        let reason = run.reason.unwrap();
        assert!(reason.contains("without an error diagnostic"), "{reason}");
        assert!(reason.contains("unclosed array"), "{reason}");
    }

    #[test]
    fn warnings_only_exit_0_is_findings() {
        let doc = fixture("clippy.jsonl");
        let only_warn: Vec<u8> = String::from_utf8(doc)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("approx_constant"))
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect();
        let case = Case::new("clippy", 0).stdout(&only_warn);
        let run = classify(&case.def(), 0, case.parse(), b"");
        assert_eq!(run.status, RunStatus::Findings);
        assert_eq!(run.findings.len(), 1);
    }
}
