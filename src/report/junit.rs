//! JUnit XML for CI dashboards: one `<testsuite>` per analyzer. A finding at
//! or above its threshold is a failed test case; a finding below it is a
//! passing case (listed in `<system-out>`); a clean analyzer is one passing
//! case; a failed analyzer is an `<error>`; a missing or not applicable one
//! is `<skipped>`.

use std::fmt::Write;

use super::model::Report;
use super::verdict;
use crate::analyze::{Finding, RunStatus};
use crate::event::AnalyzerRun;

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

/// A suite's (or all suites') counts.
#[derive(Default, Clone, Copy)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }

    fn attributes(self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", std::time::Duration::from_millis(ms).as_secs_f64())
}

pub fn render(report: &Report) -> String {
    let mut suites = String::new();
    let mut total = Counts::default();
    for r in &report.runs {
        let (cases, counts) = suite(report, r);
        total.add(counts);
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" {} time=\"{}\">\n{cases}  </testsuite>\n",
            esc(&r.analyzer),
            counts.attributes(),
            seconds(r.duration_ms),
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bgtask\" {} time=\"{}\">\n{suites}</testsuites>\n",
        total.attributes(),
        seconds(report.duration_ms),
    )
}

/// One analyzer's test cases: an error or a skip for a run that did not
/// analyse, else a case per finding (failing at or above its threshold),
/// or one passing case when there is none.
fn suite(report: &Report, r: &AnalyzerRun) -> (String, Counts) {
    let mut cases = String::new();
    let mut counts = Counts::default();
    let secs = seconds(r.duration_ms);
    let a = esc(&r.analyzer);
    match r.status {
        RunStatus::ToolError | RunStatus::Timeout | RunStatus::Oom | RunStatus::Cancelled => {
            counts.tests += 1;
            counts.errors += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{a}\" name=\"{a}\" time=\"{secs}\">\n      <error type=\"{}\" message=\"{}\">{}</error>\n    </testcase>",
                r.status.as_str(),
                esc(r.reason.as_deref().unwrap_or("")),
                esc(r.output_tail.as_deref().unwrap_or("")),
            );
        }
        RunStatus::NotInstalled | RunStatus::NotApplicable => {
            counts.tests += 1;
            counts.skipped += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{a}\" name=\"{a}\" time=\"0\">\n      <skipped message=\"{} {}\"/>\n    </testcase>",
                r.status.label(),
                esc(r.reason.as_deref().unwrap_or("")),
            );
        }
        RunStatus::Clean | RunStatus::Findings | RunStatus::Partial => {
            let findings: Vec<&Finding> = report.findings_of(&r.analyzer).collect();
            if findings.is_empty() {
                counts.tests += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{a}\" name=\"{a}\" time=\"{secs}\"/>"
                );
            }
            for f in findings {
                counts.tests += 1;
                let class = esc(&format!("{}.{}", r.analyzer, f.rule));
                let name = esc(&case_name(f));
                let message = esc(&f.message);
                if verdict::over_threshold(&report.policy, &report.runs, f) {
                    counts.failures += 1;
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <failure type=\"{s}\" message=\"{message}\">{s} {message}</failure>\n    </testcase>",
                        s = f.severity,
                    );
                } else {
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <system-out>{} (below the threshold): {message}</system-out>\n    </testcase>",
                        f.severity,
                    );
                }
            }
        }
    }
    (cases, counts)
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
