//! The built-in `profile` analyzer: the "performance profile" of a code base.
//!
//! Reports oversized files (bytes and lines), long functions, deeply nested
//! functions and, outside Python (radon covers it there), functions with many
//! decision points, each with a refactoring recommendation. Function extents
//! come from light per-language heuristics (`functions.rs`), not a parser;
//! they also tell a finding's enclosing scope (`analyze/scope.rs`).
//! It reads files, never runs anything, and costs milliseconds.

mod functions;

pub(crate) use functions::{Function, Lang, containers, functions};

use super::definition::{AnalyzerDef, Thresholds};
use super::finding::{Finding, Location, Severity};

pub fn profile_file(def: &AnalyzerDef, path: &str, bytes: &[u8]) -> Vec<Finding> {
    let t = &def.thresholds;
    let mut out = Vec::new();
    let sniff = &bytes[..bytes.len().min(8192)];
    if sniff.contains(&0) {
        return out; // binary
    }
    let kb = u32::try_from(bytes.len() / 1024).unwrap_or(u32::MAX);
    if t.file_kb > 0 && kb > t.file_kb {
        out.push(finding(
            def,
            "large-file",
            bump(def.default_severity, kb, t.file_kb),
            format!(
                "file is {kb} KB (limit {} KB): large source files slow editors, analyzers and review; move generated code and data out of the source tree or split the file",
                t.file_kb
            ),
            Location::file(path),
        ));
    }
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let n = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    if t.file_lines > 0 && n > t.file_lines {
        out.push(finding(
            def,
            "long-file",
            bump(def.default_severity, n, t.file_lines),
            format!(
                "file has {n} lines (limit {}): split it by concern into smaller modules",
                t.file_lines
            ),
            Location::file(path),
        ));
    }
    let lang = Lang::of(path);
    for f in functions(lang, &lines) {
        function_findings(def, t, path, lang, &f, &mut out);
    }
    out
}

fn function_findings(
    def: &AnalyzerDef,
    t: &Thresholds,
    path: &str,
    lang: Lang,
    f: &Function,
    out: &mut Vec<Finding>,
) {
    let len = f.end - f.start + 1;
    let loc = || Location::at(path, f.start, None).with_end(Some(f.end), None);
    if t.function_lines > 0 && len > t.function_lines {
        out.push(finding(
            def,
            "long-function",
            bump(def.default_severity, len, t.function_lines),
            format!(
                "function `{}` is {len} lines long (limit {}): extract helpers so each function does one thing",
                f.name, t.function_lines
            ),
            loc(),
        ));
    }
    if t.nesting > 0 && f.nesting > t.nesting {
        out.push(finding(
            def,
            "deep-nesting",
            bump(def.default_severity, f.nesting, t.nesting),
            format!(
                "function `{}` nests {} levels deep (limit {}): return early or extract the inner blocks",
                f.name, f.nesting, t.nesting
            ),
            loc(),
        ));
    }
    let complexity = f.decisions + 1;
    if lang != Lang::Python
        && let Some(sev) = t.complexity(complexity)
    {
        out.push(finding(
            def,
            "complex-function",
            sev,
            format!(
                "function `{}` has about {complexity} decision paths (reported from {}): split it or replace branching with data",
                f.name, t.complexity_low
            ),
            loc(),
        ));
    }
}

fn finding(
    def: &AnalyzerDef,
    rule: &str,
    severity: Severity,
    message: String,
    loc: Location,
) -> Finding {
    Finding::new(&def.name, rule, severity, message).at(loc)
}

/// One level worse at twice the limit.
fn bump(base: Severity, value: u32, limit: u32) -> Severity {
    if value >= limit.saturating_mul(2) {
        match base {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;
    use crate::analyze::parsers::testing::builtin;

    fn def_with(t: Thresholds) -> AnalyzerDef {
        let mut d = (*builtin("profile")).clone();
        d.thresholds = t;
        d
    }

    #[test]
    fn findings_with_recommendations_and_bumped_severity() {
        let t = Thresholds {
            function_lines: 5,
            file_lines: 10,
            file_kb: 1,
            nesting: 1,
            ..Thresholds::default()
        };
        let def = def_with(t);
        let mut src = String::from("def long(x):\n");
        for i in 0..12 {
            let _ = writeln!(src, "    y{i} = x");
        }
        src.push_str("    if x:\n        if x:\n            pass\n");
        src.push_str(&"# padding\n".repeat(250));
        let got = profile_file(&def, "a.py", src.as_bytes());
        let rules: Vec<(&str, Severity)> =
            got.iter().map(|f| (f.rule.as_str(), f.severity)).collect();
        assert_eq!(
            rules,
            [
                ("large-file", Severity::Medium),
                ("long-file", Severity::Medium),
                ("long-function", Severity::Medium),
                ("deep-nesting", Severity::Medium),
            ]
        );
        assert!(
            got[2]
                .message
                .contains("function `long` is 16 lines long (limit 5)"),
            "{}",
            got[2].message
        );
        assert_eq!(got[2].line(), Some(1));
    }

    #[test]
    fn branchy_rust_function_is_reported_with_advice() {
        let def = def_with(Thresholds::default());
        let mut src = String::from("fn branchy(x: u32) -> u32 {\n");
        for i in 0..12 {
            let _ = writeln!(src, "    if x == {i} {{ return {i}; }}");
        }
        src.push_str("    0\n}\n");
        let got = profile_file(&def, "src/lib.rs", src.as_bytes());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].rule, "complex-function");
        assert_eq!(got[0].severity, Severity::Low);
        assert!(
            got[0]
                .message
                .contains("`branchy` has about 13 decision paths"),
            "{}",
            got[0].message
        );
    }

    #[test]
    fn binary_and_small_files_are_quiet() {
        let def = def_with(Thresholds::default());
        assert!(profile_file(&def, "a.py", b"\0\x01\x02").is_empty());
        assert!(profile_file(&def, "a.rs", b"fn a() {}\n").is_empty());
    }
}
