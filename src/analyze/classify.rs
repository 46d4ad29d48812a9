//! Exit code + parsed output → run status. Exit codes lie on their own
//! (ANALYZERS.md), so neither decides alone.
//!
//! The order of the rules, first match wins:
//! 1. the report could not be read → `tool_error` (or `not_applicable` if the
//!    exit code says there was nothing to do);
//! 2. the parser found a fatal failure behind a plausible exit → `tool_error`;
//! 3. the exit code is an error for this tool → `tool_error`;
//! 4. nothing to do (parser or exit code) → `not_applicable`;
//! 5. something was not analysed → `partial` (findings kept);
//! 6. findings → `findings`;
//! 7. the exit code says "found problems" but none could be read →
//!    `tool_error` (never silently `clean`);
//! 8. otherwise `clean`.

use std::fmt::Write;

use super::definition::{AnalyzerDef, ExitClass};
use super::finding::Finding;
use super::parsers::{ParseError, Parsed, TestCounts, summary, truncate};
use super::status::RunStatus;

#[derive(Debug)]
pub struct Classified {
    pub status: RunStatus,
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    pub tests: Option<TestCounts>,
}

pub fn classify(
    def: &AnalyzerDef,
    exit_code: i32,
    parsed: Result<Parsed, ParseError>,
    stderr: &[u8],
) -> Classified {
    let class = def
        .external()
        .map_or(ExitClass::Ok, |s| s.exit_codes.classify(exit_code));
    let exited = || {
        let mut s = format!("{} exited with code {exit_code}", def.name);
        if let Some(why) = summary(stderr) {
            s.push_str(": ");
            s.push_str(&why);
        }
        s
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            let (status, reason) = match class {
                ExitClass::Error => (RunStatus::ToolError, exited()),
                ExitClass::NotApplicable => (
                    RunStatus::NotApplicable,
                    format!("nothing to do (exit code {exit_code})"),
                ),
                ExitClass::Ok | ExitClass::Findings => {
                    let mut s = format!("could not read {}'s report: {e}", def.name);
                    if let Some(why) = summary(stderr) {
                        s.push_str("; the tool said: ");
                        s.push_str(&why);
                    }
                    (RunStatus::ToolError, s)
                }
            };
            return Classified {
                status,
                reason: Some(reason),
                findings: Vec::new(),
                tests: None,
            };
        }
    };
    let Parsed {
        findings,
        incomplete,
        fatal,
        nothing_to_do,
        tests,
    } = parsed;
    let (status, reason) = if let Some(f) = fatal {
        (RunStatus::ToolError, Some(f))
    } else if class == ExitClass::Error {
        (RunStatus::ToolError, Some(exited()))
    } else if nothing_to_do.is_some() || class == ExitClass::NotApplicable {
        (
            RunStatus::NotApplicable,
            Some(nothing_to_do.unwrap_or_else(|| format!("nothing to do (exit code {exit_code})"))),
        )
    } else if !incomplete.is_empty() {
        (RunStatus::Partial, Some(incomplete_reason(&incomplete)))
    } else if !findings.is_empty() {
        (RunStatus::Findings, None)
    } else if class == ExitClass::Findings {
        (
            RunStatus::ToolError,
            Some(format!(
                "{} exited with code {exit_code}, which means problems were found, but its report lists none{}",
                def.name,
                summary(stderr)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            )),
        )
    } else {
        (RunStatus::Clean, None)
    };
    Classified {
        status,
        reason,
        findings,
        tests,
    }
}

fn incomplete_reason(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
    let more = items.len().saturating_sub(shown.len());
    let mut s = format!("not everything was analysed: {}", shown.join("; "));
    if more > 0 {
        let _ = write!(s, "; and {more} more");
    }
    truncate(&s, 600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::parsers::testing::builtin;
    use crate::analyze::{Finding, Severity};

    fn finding() -> Finding {
        Finding::new("bandit", "B1", Severity::Low, "x")
    }

    #[test]
    fn table() {
        type Case = (i32, Result<Parsed, ParseError>, RunStatus);
        let def = builtin("pytest"); // ok [0], findings [1], not_applicable [5]
        let rows: Vec<Case> = vec![
            (0, Ok(Parsed::default()), RunStatus::Clean),
            (
                1,
                Ok(Parsed {
                    findings: vec![finding()],
                    ..Parsed::default()
                }),
                RunStatus::Findings,
            ),
            (
                0,
                Ok(Parsed {
                    findings: vec![finding()],
                    ..Parsed::default()
                }),
                RunStatus::Findings,
            ),
            (1, Ok(Parsed::default()), RunStatus::ToolError),
            (
                2,
                Ok(Parsed {
                    findings: vec![finding()],
                    ..Parsed::default()
                }),
                RunStatus::ToolError,
            ),
            (5, Ok(Parsed::default()), RunStatus::NotApplicable),
            (5, Err(ParseError::Missing(None)), RunStatus::NotApplicable),
            (0, Err(ParseError::Missing(None)), RunStatus::ToolError),
            (4, Err(ParseError::Missing(None)), RunStatus::ToolError),
            (
                0,
                Ok(Parsed {
                    incomplete: vec!["a".into()],
                    ..Parsed::default()
                }),
                RunStatus::Partial,
            ),
            (
                1,
                Ok(Parsed {
                    findings: vec![finding()],
                    incomplete: vec!["a".into()],
                    ..Parsed::default()
                }),
                RunStatus::Partial,
            ),
            (
                0,
                Ok(Parsed {
                    fatal: Some("boom".into()),
                    ..Parsed::default()
                }),
                RunStatus::ToolError,
            ),
            (
                0,
                Ok(Parsed {
                    nothing_to_do: Some("none".into()),
                    ..Parsed::default()
                }),
                RunStatus::NotApplicable,
            ),
        ];
        for (i, (code, parsed, want)) in rows.into_iter().enumerate() {
            let got = classify(&def, code, parsed, b"");
            assert_eq!(got.status, want, "row {i} (exit {code}): {:?}", got.reason);
            if got.status != RunStatus::Clean && got.status != RunStatus::Findings {
                assert!(got.reason.is_some(), "row {i} has no reason");
            }
        }
    }

    #[test]
    fn partial_keeps_findings_and_says_what_was_missed() {
        let def = builtin("bandit");
        let items: Vec<String> = (0..5).map(|i| format!("f{i}.py: bad")).collect();
        let got = classify(
            &def,
            1,
            Ok(Parsed {
                findings: vec![finding()],
                incomplete: items,
                ..Parsed::default()
            }),
            b"",
        );
        assert_eq!(got.findings.len(), 1);
        assert_eq!(
            got.reason.unwrap(),
            "not everything was analysed: f0.py: bad; f1.py: bad; f2.py: bad; and 2 more"
        );
    }

    #[test]
    fn error_reason_quotes_the_tool() {
        let def = builtin("bandit");
        let got = classify(
            &def,
            2,
            Err(ParseError::Missing(None)),
            b"usage: bandit\nbandit: error: unrecognized arguments: --bad\n",
        );
        assert_eq!(
            got.reason.unwrap(),
            "bandit exited with code 2: bandit: error: unrecognized arguments: --bad"
        );
    }
}
