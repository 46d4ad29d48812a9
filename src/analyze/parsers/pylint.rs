//! pylint `json2` (and the older `json` array). `fatal` messages (F0001 file
//! not found, F0002 astroid crash) mean a module was not analysed → partial.
//! The exit code is a bitmask whose bit 32 (usage error) is the only failure;
//! that is the definition's `error_bits`.
//!
//! `E0401 import-error` says pylint could not find a module, which almost
//! always means the project's dependencies are not installed where pylint
//! looks (no project environment): an environment problem, not a finding.
//! Those are said once, as `partial`, naming the modules.

use serde::Deserialize;

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::{Finding, Location};

#[derive(Deserialize)]
#[serde(untagged)]
enum Report {
    Json2 { messages: Vec<Message> },
    Json1(Vec<Message>),
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    symbol: Option<String>,
    message: String,
    #[serde(alias = "message-id")]
    #[serde(rename = "messageId")]
    message_id: String,
    path: String,
    line: Option<u32>,
    column: Option<u32>,
    #[serde(rename = "endLine")]
    end_line: Option<u32>,
    #[serde(rename = "endColumn")]
    end_column: Option<u32>,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let messages = match out.json::<Report>("pylint JSON")? {
        Report::Json2 { messages } | Report::Json1(messages) => messages,
    };
    let mut parsed = Parsed::default();
    let mut unimportable = std::collections::BTreeSet::new();
    for m in messages {
        let path = out.rel_path(&m.path);
        if m.message_id == "E0401" {
            unimportable.insert(imported_package(&m.message));
            continue;
        }
        if m.kind == "fatal" {
            parsed
                .incomplete
                .push(format!("{path}: {} ({})", m.message, m.message_id));
            continue;
        }
        let mut f = Finding::new(
            out.name(),
            m.message_id,
            out.def.severity_for(&m.kind),
            m.message,
        )
        .at(
            Location::at(path, m.line.unwrap_or(0), m.column.map(|c| c + 1))
                .with_end(m.end_line, m.end_column.map(|c| c + 1)),
        );
        f.rule_name = m.symbol;
        parsed.findings.push(f);
    }
    if !unimportable.is_empty() {
        let n = unimportable.len();
        let mut names: Vec<&str> = unimportable.iter().map(String::as_str).take(5).collect();
        if n > 5 {
            names.push("…");
        }
        parsed.incomplete.push(format!(
            "pylint could not import {n} module{} ({}): this project's dependencies are not installed where pylint looks — create .venv and install them (`python -m venv .venv && .venv/bin/pip install -r requirements.txt`), or activate the project's environment ($VIRTUAL_ENV)",
            if n == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    Ok(parsed)
}

/// `Unable to import 'django.db.models'` → `django`.
fn imported_package(message: &str) -> String {
    message
        .split('\'')
        .nth(1)
        .unwrap_or(message)
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use crate::analyze::RunStatus;
    use crate::analyze::Severity;
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};

    #[test]
    fn import_errors_are_an_environment_problem_said_once() {
        let report = br#"{"messages": [
          {"type": "error", "symbol": "import-error", "message": "Unable to import 'django.db'", "messageId": "E0401", "path": "a.py", "line": 1, "column": 0},
          {"type": "error", "symbol": "import-error", "message": "Unable to import 'django.conf'", "messageId": "E0401", "path": "b.py", "line": 1, "column": 0},
          {"type": "error", "symbol": "import-error", "message": "Unable to import 'requests'", "messageId": "E0401", "path": "b.py", "line": 2, "column": 0},
          {"type": "warning", "symbol": "unused-import", "message": "Unused import os", "messageId": "W0611", "path": "b.py", "line": 3, "column": 0}
        ], "statistics": {}}"#;
        let case = Case::new("pylint", 6).report(report);
        let run = classify(&case.def(), 6, case.parse(), b"");
        assert_eq!(run.status, RunStatus::Partial);
        assert_eq!(run.findings.len(), 1, "only the real finding");
        let reason = run.reason.unwrap();
        assert!(
            reason.contains("pylint could not import 2 modules (django, requests)")
                && reason.contains("dependencies are not installed"),
            "{reason}"
        );
    }

    #[test]
    fn real_json2_report() {
        let report = fixture("pylint-json2.json");
        let parsed = Case::new("pylint", 20).report(&report).parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [("C0116", 48), ("W0611", 2), ("W0611", 5)].map(|(r, l)| (r.to_owned(), Some(l)))
        );
        let f = &parsed.findings[1];
        assert_eq!(f.rule_name.as_deref(), Some("unused-import"));
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!(f.location.as_ref().unwrap().column, Some(1));
        assert_eq!(parsed.findings[0].severity, Severity::Low);
    }

    #[test]
    fn fatal_messages_make_it_partial_and_syntax_errors_are_findings() {
        let report = fixture("pylint-fatal.json");
        let parsed = Case::new("pylint", 3).report(&report).parse().unwrap();
        assert_eq!(
            parsed.incomplete,
            ["missing.py: No module named missing.py (F0001)"]
        );
        assert_eq!(parsed.findings[0].rule, "E0001");
        assert_eq!(parsed.findings[0].severity, Severity::High);
    }

    #[test]
    fn bit_32_is_a_usage_error_not_findings() {
        let stderr = fixture("pylint-usage-error.stderr");
        let case = Case::new("pylint", 32).stderr(&stderr);
        let run = classify(&case.def(), 32, case.parse(), &stderr);
        assert_eq!(run.status, RunStatus::ToolError);
        assert!(run.reason.unwrap().contains("Unrecognized option"));
    }

    #[test]
    fn old_json_array_format() {
        let report = br#"[{"type":"warning","module":"a","obj":"","line":3,"column":0,"path":"a.py","symbol":"unused-import","message":"Unused import os","message-id":"W0611"}]"#;
        let parsed = Case::new("pylint", 4).report(report).parse().unwrap();
        assert_eq!(rules_and_lines(&parsed), [("W0611".to_owned(), Some(3))]);
    }
}
