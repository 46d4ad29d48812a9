//! JUnit XML for CI dashboards: one `<testsuite>` per analyzer. A finding at
//! or above its threshold is a failed test case; a finding below it is a
//! passing case (listed in `<system-out>`); a clean analyzer is one passing
//! case; a failed analyzer is an `<error>`; a missing or not applicable one
//! is `<skipped>`.

use std::fmt::Write;

use super::model::Report;
use super::verdict;
use crate::analyze::{Finding, RunStatus};

/// Escapes text for XML and drops characters XML 1.0 cannot carry.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn case_name(f: &Finding) -> String {
    let place = match (f.path(), f.line()) {
        (Some(p), Some(l)) => format!("{p}:{l}"),
        (Some(p), None) => p.to_owned(),
        _ => f
            .package
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.name.clone()),
    };
    format!("{place} {}", f.rule)
}

pub fn render(report: &Report) -> String {
    let mut suites = String::new();
    let (mut t_tests, mut t_fail, mut t_err, mut t_skip) = (0, 0, 0, 0);
    for r in &report.runs {
        let findings: Vec<&Finding> = report.findings_of(&r.analyzer).collect();
        let mut cases = String::new();
        let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
        let secs = format!(
            "{:.3}",
            std::time::Duration::from_millis(r.duration_ms).as_secs_f64()
        );
        match r.status {
            RunStatus::ToolError | RunStatus::Timeout | RunStatus::Oom | RunStatus::Cancelled => {
                tests += 1;
                errors += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{a}\" name=\"{a}\" time=\"{secs}\">\n      <error type=\"{}\" message=\"{}\">{}</error>\n    </testcase>",
                    r.status.as_str(),
                    esc(r.reason.as_deref().unwrap_or("")),
                    esc(r.output_tail.as_deref().unwrap_or("")),
                    a = esc(&r.analyzer),
                );
            }
            RunStatus::NotInstalled | RunStatus::NotApplicable => {
                tests += 1;
                skipped += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{a}\" name=\"{a}\" time=\"0\">\n      <skipped message=\"{} {}\"/>\n    </testcase>",
                    r.status.label(),
                    esc(r.reason.as_deref().unwrap_or("")),
                    a = esc(&r.analyzer),
                );
            }
            RunStatus::Clean | RunStatus::Findings | RunStatus::Partial => {
                if findings.is_empty() {
                    tests += 1;
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{a}\" name=\"{a}\" time=\"{secs}\"/>",
                        a = esc(&r.analyzer)
                    );
                }
                for f in &findings {
                    tests += 1;
                    let over = verdict::over_threshold(&report.policy, &report.runs, f);
                    let class = format!("{}.{}", r.analyzer, f.rule);
                    if over {
                        failures += 1;
                        let _ = writeln!(
                            cases,
                            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n      <failure type=\"{}\" message=\"{}\">{} {}</failure>\n    </testcase>",
                            esc(&class),
                            esc(&case_name(f)),
                            f.severity,
                            esc(&f.message),
                            f.severity,
                            esc(&f.message),
                        );
                    } else {
                        let _ = writeln!(
                            cases,
                            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n      <system-out>{} (below the threshold): {}</system-out>\n    </testcase>",
                            esc(&class),
                            esc(&case_name(f)),
                            f.severity,
                            esc(&f.message),
                        );
                    }
                }
            }
        }
        t_tests += tests;
        t_fail += failures;
        t_err += errors;
        t_skip += skipped;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{secs}\">\n{cases}  </testsuite>\n",
            esc(&r.analyzer)
        );
    }
    let total = format!(
        "{:.3}",
        std::time::Duration::from_millis(report.duration_ms).as_secs_f64()
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bgtask\" tests=\"{t_tests}\" failures=\"{t_fail}\" errors=\"{t_err}\" skipped=\"{t_skip}\" time=\"{total}\">\n{suites}</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_drops_invalid_characters() {
        assert_eq!(
            super::esc("a<b & \"c\" \u{1}\td"),
            "a&lt;b &amp; &quot;c&quot; \td"
        );
    }
}
