//! Line-oriented output read with a user's regex (`file:line:col: message`
//! linters, compilers, anything). Named groups: `file`, `line`, `column`,
//! `end_line`, `end_column`, `rule`, `severity`, `message`.

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::vocabulary::RegexStream;
use crate::analyze::{Finding, Location};

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let spec = out
        .spec
        .regex
        .as_ref()
        .ok_or_else(|| ParseError::malformed("regex", "no regex in the definition"))?;
    let stdout = if out.reports.is_empty() {
        out.stdout
    } else {
        out.document()?
    };
    let text = match spec.stream {
        RegexStream::Stdout => String::from_utf8_lossy(stdout).into_owned(),
        RegexStream::Stderr => String::from_utf8_lossy(out.stderr).into_owned(),
        RegexStream::Both => format!(
            "{}\n{}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(out.stderr)
        ),
    };
    let mut parsed = Parsed::default();
    for line in text.lines() {
        let Some(c) = spec.pattern.captures(line) else {
            continue;
        };
        let get = |n: &str| c.name(n).map(|m| m.as_str());
        let num = |n: &str| get(n).and_then(|s| s.parse::<u32>().ok());
        let severity =
            get("severity").map_or(out.def.default_severity, |s| out.def.severity_for(s));
        let rule = get("rule")
            .map(str::to_owned)
            .or_else(|| spec.rule.clone())
            .unwrap_or_else(|| out.name().to_owned());
        let mut f = Finding::new(
            out.name(),
            rule,
            severity,
            get("message").unwrap_or("").trim(),
        );
        if let Some(file) = get("file") {
            f.location = Some(
                Location::at(out.rel_path(file), num("line").unwrap_or(0), num("column"))
                    .with_end(num("end_line"), num("end_column")),
            );
        }
        parsed.findings.push(f);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::analyze::parsers::testing::{Case, builtin};
    use crate::analyze::vocabulary::{ParserKind, RegexStream};
    use crate::analyze::{Engine, RegexSpec, Severity};

    #[test]
    fn gcc_style_lines() {
        let mut def = (*builtin("eslint")).clone();
        if let Engine::External(spec) = &mut def.engine {
            spec.parser = ParserKind::Regex;
            spec.regex = Some(RegexSpec {
                pattern: regex::Regex::new(
                    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>\w+): (?P<message>.*?)(?: \[(?P<rule>[\w-]+)\])?$",
                )
                .unwrap(),
                stream: RegexStream::Both,
                rule: None,
            });
        }
        def.severity_map = [("error".to_owned(), Severity::High)].into();
        def.default_severity = Severity::Low;
        let out = b"src/a.c:3:5: error: unused variable 'x' [unused-variable]\nnoise\n";
        let err = b"./b.c:10:1: note: declared here\n";
        let parsed = Case::new("eslint", 1)
            .stdout(out)
            .stderr(err)
            .parse_with(&def)
            .unwrap();
        let got: Vec<(&str, Severity, Option<&str>, Option<u32>)> = parsed
            .findings
            .iter()
            .map(|f| (f.rule.as_str(), f.severity, f.path(), f.line()))
            .collect();
        assert_eq!(
            got,
            [
                ("unused-variable", Severity::High, Some("src/a.c"), Some(3)),
                ("eslint", Severity::Low, Some("b.c"), Some(10)),
            ]
        );
    }
}
