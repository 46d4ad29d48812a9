//! eslint `-f json`: one entry per file with absolute `filePath`; a message
//! with `fatal: true` (and `ruleId: null`) is a parse error in that file.
//! Exit 2 (config or internal error, stdout empty) is the definition's
//! error class, so it never gets here as findings.

use serde::Deserialize;

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::{Finding, Location};

#[derive(Deserialize)]
struct FileResult {
    #[serde(rename = "filePath")]
    file_path: String,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "ruleId")]
    rule_id: Option<String>,
    severity: u8,
    #[serde(default)]
    fatal: bool,
    message: String,
    line: Option<u32>,
    column: Option<u32>,
    #[serde(rename = "endLine")]
    end_line: Option<u32>,
    #[serde(rename = "endColumn")]
    end_column: Option<u32>,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let files: Vec<FileResult> = out.json("eslint JSON")?;
    let mut parsed = Parsed::default();
    for file in files {
        let path = out.rel_path(&file.file_path);
        for m in file.messages {
            let label = if m.fatal {
                "fatal"
            } else if m.severity >= 2 {
                "error"
            } else {
                "warning"
            };
            let rule = match (&m.rule_id, m.fatal) {
                (Some(r), _) => r.clone(),
                (None, true) => "parse-error".to_owned(),
                (None, false) => "eslint".to_owned(),
            };
            let mut f = Finding::new(out.name(), rule, out.def.severity_for(label), m.message)
                .at(Location::at(path.clone(), m.line.unwrap_or(0), m.column)
                    .with_end(m.end_line, m.end_column));
            if let Some(r) = m.rule_id.filter(|r| !r.contains('/')) {
                f.help_uri = Some(format!("https://eslint.org/docs/latest/rules/{r}"));
            }
            parsed.findings.push(f);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};
    use crate::analyze::{RunStatus, Severity};

    #[test]
    fn real_report() {
        let report = fixture("eslint.json");
        let parsed = Case::new("eslint", 1).report(&report).parse().unwrap();
        let got = rules_and_lines(&parsed);
        assert_eq!(
            got,
            [
                ("no-unused-vars", 3),
                ("eqeqeq", 6),
                ("no-undef", 9),
                ("no-eval", 13)
            ]
            .map(|(r, l)| (r.to_owned(), Some(l)))
        );
        assert_eq!(parsed.findings[0].path(), Some("src/index.js"));
        assert_eq!(parsed.findings[0].severity, Severity::High);
        assert_eq!(parsed.findings[1].severity, Severity::Medium);
        let loc = parsed.findings[0].location.clone().unwrap();
        assert_eq!((loc.column, loc.end_column), (Some(7), Some(13)));
    }

    #[test]
    fn fatal_parse_error_is_a_high_finding() {
        let report = fixture("eslint-fatal.json");
        let parsed = Case::new("eslint", 1).report(&report).parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [("parse-error".to_owned(), Some(1))]
        );
        assert_eq!(parsed.findings[0].severity, Severity::High);
    }

    #[test]
    fn exit_2_is_a_tool_error_with_the_reason() {
        let stderr = fixture("eslint-exit2.stderr");
        let case = Case::new("eslint", 2).stderr(&stderr);
        let run = classify(&case.def(), 2, case.parse(), &stderr);
        assert_eq!(run.status, RunStatus::ToolError);
        let reason = run.reason.unwrap();
        assert!(reason.contains("exited with code 2"), "{reason}");
        assert!(reason.contains("eslint.config"), "{reason}");
    }
}
