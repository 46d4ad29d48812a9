//! GitHub Actions workflow commands: one `::error`/`::warning`/`::notice`
//! annotation per finding (critical/high → error, medium → warning,
//! low/info → notice), one per analyzer that failed or is missing, then the
//! verdict as plain text.

use std::fmt::Write;

use super::model::Report;
use crate::analyze::{RunStatus, Severity};

/// Escaping for the message part.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for property values.
fn prop(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let cmd = match f.severity {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "notice",
        };
        let mut props = Vec::new();
        if let Some(loc) = &f.location {
            props.push(format!("file={}", prop(&loc.path)));
            if let Some(l) = loc.line {
                props.push(format!("line={l}"));
                if let Some(e) = loc.end_line.filter(|e| *e >= l) {
                    props.push(format!("endLine={e}"));
                }
            }
            if let Some(c) = loc.column {
                props.push(format!("col={c}"));
                if let Some(ec) = loc
                    .end_column
                    .filter(|ec| *ec > c && loc.end_line.is_none_or(|e| Some(e) == loc.line))
                {
                    props.push(format!("endColumn={ec}"));
                }
            }
        }
        props.push(format!(
            "title={}",
            prop(&format!("{} {} ({})", f.analyzer, f.rule, f.severity))
        ));
        let _ = writeln!(out, "::{cmd} {}::{}", props.join(","), data(&f.message));
    }
    for r in &report.runs {
        let cmd = match r.status {
            RunStatus::ToolError | RunStatus::Timeout | RunStatus::Oom => "error",
            RunStatus::NotInstalled | RunStatus::Partial => "warning",
            _ => continue,
        };
        let _ = writeln!(
            out,
            "::{cmd} title={}::{}",
            prop(&format!("bgtask: {} {}", r.analyzer, r.status.label())),
            data(r.reason.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        out,
        "bgtask: {} finding(s); exit {}: {}",
        report.findings.len(),
        report.exit_code,
        report.verdict
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping() {
        assert_eq!(super::data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(super::prop("x:y,z"), "x%3Ay%2Cz");
    }
}
