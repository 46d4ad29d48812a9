//! bandit `-f json`: `results[]` are findings; `errors[]` are files bandit
//! could not analyse (missing, unparsable) — it still exits 0 or 1 for them,
//! so they make the run `partial` here.

use std::fmt::Write;

use serde::Deserialize;

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::{Finding, Location};

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    results: Vec<Issue>,
    #[serde(default)]
    errors: Vec<Error>,
}

#[derive(Deserialize)]
struct Issue {
    filename: String,
    line_number: u32,
    col_offset: Option<u32>,
    end_col_offset: Option<u32>,
    #[serde(default)]
    line_range: Vec<u32>,
    issue_severity: String,
    issue_confidence: Option<String>,
    test_id: String,
    test_name: Option<String>,
    issue_text: String,
    issue_cwe: Option<Cwe>,
    more_info: Option<String>,
}

#[derive(Deserialize)]
struct Cwe {
    id: u32,
}

#[derive(Deserialize)]
struct Error {
    filename: String,
    reason: String,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let report: Report = out.json("bandit JSON")?;
    let mut parsed = Parsed::default();
    for i in report.results {
        let mut message = i.issue_text;
        if let Some(cwe) = i.issue_cwe.filter(|c| c.id > 0) {
            let _ = write!(message, " (CWE-{})", cwe.id);
        }
        if let Some(conf) = i
            .issue_confidence
            .filter(|c| !c.eq_ignore_ascii_case("high"))
        {
            let _ = write!(message, " [confidence: {}]", conf.to_lowercase());
        }
        let end_line = i.line_range.iter().copied().max();
        let mut f = Finding::new(
            out.name(),
            i.test_id,
            out.def.severity_for(&i.issue_severity),
            message,
        )
        .at(Location::at(
            out.rel_path(&i.filename),
            i.line_number,
            i.col_offset.map(|c| c + 1),
        )
        .with_end(
            end_line.filter(|e| *e == i.line_number),
            i.end_col_offset.map(|c| c + 1),
        ));
        f.rule_name = i.test_name;
        f.help_uri = i.more_info;
        parsed.findings.push(f);
    }
    parsed.incomplete = report
        .errors
        .into_iter()
        .map(|e| format!("{}: {}", out.rel_path(&e.filename), e.reason))
        .collect();
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::analyze::Severity;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};

    #[test]
    fn real_report() {
        let report = fixture("bandit.json");
        let parsed = Case::new("bandit", 1).report(&report).parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [
                ("B403", 3),
                ("B404", 4),
                ("B105", 7),
                ("B301", 12),
                ("B602", 17)
            ]
            .map(|(r, l)| (r.to_owned(), Some(l)))
        );
        let f = &parsed.findings[4];
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.path(), Some("src/shop/orders.py"));
        assert_eq!(f.location.as_ref().unwrap().column, Some(5));
        assert!(f.message.contains("CWE-78"), "{}", f.message);
        assert!(parsed.incomplete.is_empty());
    }

    #[test]
    fn errors_array_means_partial_even_on_success_exit() {
        let report = fixture("bandit-errors.json");
        let parsed = Case::new("bandit", 0).report(&report).parse().unwrap();
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(
            parsed.incomplete,
            [
                "broken.py: syntax error while parsing AST from file",
                "missing.py: No such file or directory"
            ]
        );
    }
}
