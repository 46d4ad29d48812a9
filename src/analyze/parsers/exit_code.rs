//! No report: the exit code alone says pass or fail (a project's `npm test`
//! script, a custom check). A failing exit becomes one finding quoting the
//! end of the output, so the failure is reported and not lost.

use super::{Parsed, ToolOutput, summary};
use crate::analyze::{ExitClass, Finding};

pub fn parse(out: &ToolOutput<'_>) -> Parsed {
    let mut parsed = Parsed::default();
    if out.exit_class == ExitClass::Findings {
        let tail = summary(out.stdout)
            .into_iter()
            .chain(summary(out.stderr))
            .collect::<Vec<_>>()
            .join(" | ");
        let mut message = format!("{} failed (exit code {})", out.name(), out.exit_code);
        if !tail.is_empty() {
            message.push_str(": ");
            message.push_str(&tail);
        }
        parsed.findings.push(Finding::new(
            out.name(),
            "failed",
            out.def.default_severity,
            message,
        ));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use crate::analyze::RunStatus;
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::Case;

    #[test]
    fn exit_code_decides() {
        let rows = [
            (0, RunStatus::Clean),
            (1, RunStatus::Findings),
            (7, RunStatus::ToolError),
        ];
        for (code, want) in rows {
            let case = Case::new("npm-test", code).stdout(b"> test\n> node --test\n# fail 1\n");
            let run = classify(&case.def(), code, case.parse(), b"");
            assert_eq!(run.status, want, "exit {code}");
        }
        let case = Case::new("npm-test", 1).stdout(b"# fail 1\n");
        let parsed = case.parse().unwrap();
        assert_eq!(
            parsed.findings[0].message,
            "npm-test failed (exit code 1): # fail 1"
        );
    }
}
