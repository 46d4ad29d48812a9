//! `cargo test` text output (JSON needs nightly). Failed tests come from
//! `test NAME ... FAILED` lines; their panic location and message from the
//! `---- NAME stdout ----` sections. No `test result:` line means the tests
//! never ran (a build failure) → tool error with cargo's message.

use std::collections::BTreeMap;

use super::{ParseError, Parsed, TestCounts, ToolOutput, summary, truncate};
use crate::analyze::{Finding, Location};

/// Where a test panicked (file, line, column) and its first message line.
type Panic = (Option<(String, u32, u32)>, String);

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let text = String::from_utf8_lossy(out.document()?);
    let mut parsed = Parsed::default();
    let mut counts = TestCounts::default();
    let mut saw_result = false;
    let mut failed: Vec<String> = Vec::new();
    let mut panics: BTreeMap<String, Panic> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            saw_result = true;
            counts.add(result_counts(rest));
            section = None;
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            failed.push(name.to_owned());
        } else if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            section = Some(name.to_owned());
        } else if line == "failures:" {
            section = None;
        } else if let Some(name) = &section {
            let entry = panics.entry(name.clone()).or_default();
            if let Some(loc) = line.split(" panicked at ").nth(1) {
                entry.0 = panic_location(loc.trim_end_matches(':'));
            } else if entry.0.is_some() && entry.1.is_empty() && !line.trim().is_empty() {
                line.trim().clone_into(&mut entry.1);
            }
        }
    }
    if !saw_result {
        if out.exit_code == 0 {
            parsed.nothing_to_do = Some("no tests ran".to_owned());
        } else {
            parsed.fatal = Some(format!(
                "the tests did not run (build failed?): {}",
                summary(out.stderr)
                    .unwrap_or_else(|| format!("cargo exited with code {}", out.exit_code))
            ));
        }
        return Ok(parsed);
    }
    for name in failed {
        let (loc, msg) = panics.remove(&name).unwrap_or_default();
        let message = if msg.is_empty() {
            format!("{name} failed")
        } else {
            format!("{name} failed: {}", truncate(&msg, 300))
        };
        let mut f = Finding::new(
            out.name(),
            "test-failure",
            out.def.severity_for("failure"),
            message,
        );
        if let Some((file, line, col)) = loc {
            f.location = Some(Location::at(out.rel_path(&file), line, Some(col)));
        }
        parsed.findings.push(f);
    }
    parsed.tests = Some(counts);
    Ok(parsed)
}

/// `ok. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s`
fn result_counts(rest: &str) -> TestCounts {
    let mut c = TestCounts::default();
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let n: u32 = n.parse().unwrap_or(0);
        match label {
            "passed" => c.total += n,
            "failed" => {
                c.total += n;
                c.failed += n;
            }
            "ignored" => {
                c.total += n;
                c.skipped += n;
            }
            _ => {}
        }
    }
    c
}

/// `src/lib.rs:29:9` → (file, line, column).
fn panic_location(s: &str) -> Option<(String, u32, u32)> {
    let mut parts = s.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?.to_owned(), line, col))
}

#[cfg(test)]
mod tests {
    use super::super::TestCounts;
    use crate::analyze::RunStatus;
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};

    #[test]
    fn real_failed_run() {
        let doc = fixture("cargo-test-failed.stdout");
        let parsed = Case::new("cargo-test", 101).stdout(&doc).parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [("test-failure".to_owned(), Some(29))]
        );
        let f = &parsed.findings[0];
        assert_eq!(f.path(), Some("src/lib.rs"));
        assert_eq!(
            f.message,
            "tests::adds_wrong failed: assertion `left == right` failed: deliberately failing"
        );
        assert_eq!(
            parsed.tests,
            Some(TestCounts {
                total: 2,
                failed: 1,
                errors: 0,
                skipped: 0
            })
        );
    }

    #[test]
    fn build_failure_is_a_tool_error() {
        let stderr = b"error[E0425]: cannot find value `x` in this scope\n --> src/lib.rs:3:5\nerror: could not compile `c` (lib test) due to 1 previous error\n";
        let case = Case::new("cargo-test", 101).stdout(b"").stderr(stderr);
        let run = classify(&case.def(), 101, case.parse(), stderr);
        assert_eq!(run.status, RunStatus::ToolError);
        assert!(run.reason.unwrap().contains("cannot find value"));
    }

    #[test]
    fn passing_run_is_clean() {
        let doc = b"\nrunning 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let case = Case::new("cargo-test", 0).stdout(doc);
        let run = classify(&case.def(), 0, case.parse(), b"");
        assert_eq!(run.status, RunStatus::Clean);
        assert_eq!(run.tests.unwrap().total, 1);
    }
}
