//! The built-in `profile` analyzer: the "performance profile" of a code base.
//!
//! Reports oversized files (bytes and lines), long functions, deeply nested
//! functions and, outside Python (radon covers it there), functions with many
//! decision points, each with a refactoring recommendation. Function extents
//! are found with light heuristics, not a parser: indentation for Python,
//! brace matching (skipping strings and comments) for C-family languages. It
//! reads files, never runs anything, and costs milliseconds.

use std::sync::LazyLock;

use regex::Regex;

use super::definition::{AnalyzerDef, Thresholds};
use super::finding::{Finding, Location, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Python,
    Braces,
    /// File-level checks only.
    Other,
}

fn family(path: &str) -> Family {
    match path.rsplit('.').next().unwrap_or("") {
        "py" => Family::Python,
        "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" | "rs" | "go" | "java"
        | "kt" | "c" | "h" | "cc" | "cpp" | "hpp" | "cs" | "swift" | "php" => Family::Braces,
        _ => Family::Other,
    }
}

static PY_DEF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)").expect("valid regex"));
static BRACE_FN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:fn|func|fun|function)\s*\*?\s*(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)\s*[<(]",
        r"|^\s*(?:(?:export|default|async|static|public|private|protected|internal|override|virtual|final|abstract|synchronized|inline|get|set)\s+)*",
        r"(?:[\w<>\[\],.?*&:]+\s+)*\**([A-Za-z_$][\w$]*)\s*\([^;{}]*\)?\s*(?:(?:throws|:|->)\s*[^{;=]*)?\{?\s*$",
        r"|([A-Za-z_$][\w$]*)\s*[=:]\s*(?:async\s*)?(?:\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>\s*\{",
    ))
    .expect("valid regex")
});
static DECISIONS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:if|for|while|case|catch|match)\b|&&|\|\||\?\s*[^:?.]").expect("valid regex")
});
const NOT_FUNCTIONS: &[&str] = &[
    "if", "for", "while", "switch", "catch", "return", "else", "new", "sizeof", "match", "loop",
    "do", "try", "with", "when", "elif", "foreach", "using", "lock", "fixed", "typeof", "await",
];

/// One function as found by the heuristics.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Function {
    name: String,
    start: u32,
    end: u32,
    nesting: u32,
    decisions: u32,
}

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
    let functions = match family(path) {
        Family::Python => python_functions(&lines),
        Family::Braces => brace_functions(&lines),
        Family::Other => Vec::new(),
    };
    for f in functions {
        function_findings(def, t, path, family(path), &f, &mut out);
    }
    out
}

fn function_findings(
    def: &AnalyzerDef,
    t: &Thresholds,
    path: &str,
    fam: Family,
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
    if fam == Family::Braces
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

fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

fn python_functions(lines: &[&str]) -> Vec<Function> {
    // Lines inside triple-quoted strings belong to whatever encloses them.
    let mut in_string = vec![false; lines.len()];
    let mut open = false;
    for (i, l) in lines.iter().enumerate() {
        in_string[i] = open;
        let quotes = l.matches("\"\"\"").count() + l.matches("'''").count();
        if quotes % 2 == 1 {
            open = !open;
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if in_string[i] {
            continue;
        }
        let Some(c) = PY_DEF.captures(line) else {
            continue;
        };
        let def_indent = indent_of(line);
        let mut end = i;
        let mut body_indent = None;
        let mut nesting = 0;
        let mut decisions = 0;
        for (j, l) in lines.iter().enumerate().skip(i + 1) {
            let trimmed = l.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || in_string[j] {
                continue;
            }
            let ind = indent_of(l);
            if ind <= def_indent {
                break;
            }
            end = j;
            let base = *body_indent.get_or_insert(ind);
            let unit = base.saturating_sub(def_indent).max(1);
            let depth = u32::try_from(ind.saturating_sub(base) / unit).unwrap_or(0);
            nesting = nesting.max(depth);
            decisions += u32::try_from(DECISIONS.find_iter(trimmed).count()).unwrap_or(0);
        }
        out.push(Function {
            name: c[2].to_owned(),
            start: line_no(i),
            end: line_no(end),
            nesting,
            decisions,
        });
    }
    out
}

fn line_no(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn brace_functions(lines: &[&str]) -> Vec<Function> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") || trimmed.starts_with('*') || trimmed.starts_with("/*") {
            continue;
        }
        let Some(c) = BRACE_FN.captures(line) else {
            continue;
        };
        let Some(name) = c.iter().skip(1).flatten().next().map(|m| m.as_str()) else {
            continue;
        };
        if NOT_FUNCTIONS.contains(&name) {
            continue;
        }
        if let Some(f) = brace_body(lines, i, name) {
            out.push(f);
        }
    }
    out
}

/// Follows braces from the signature at `start` (the body must open within
/// three lines) to its closing brace.
fn brace_body(lines: &[&str], start: usize, name: &str) -> Option<Function> {
    let mut depth: u32 = 0;
    let mut max_depth = 0;
    let mut opened = false;
    let mut decisions = 0;
    let mut in_block_comment = false;
    for (j, line) in lines.iter().enumerate().skip(start) {
        if !opened && j > start + 3 {
            return None;
        }
        let mut chars = line.char_indices().peekable();
        let mut quote: Option<char> = None;
        let mut code = String::new();
        while let Some((pos, ch)) = chars.next() {
            let next = chars.peek().map(|(_, c)| *c);
            if in_block_comment {
                if ch == '*' && next == Some('/') {
                    chars.next();
                    in_block_comment = false;
                }
                continue;
            }
            if let Some(q) = quote {
                if ch == '\\' {
                    chars.next();
                } else if ch == q {
                    quote = None;
                }
                continue;
            }
            match ch {
                '"' | '`' => quote = Some(ch),
                // A lone quote is a Rust lifetime or a char literal; only treat
                // it as a string when it closes on the same line.
                '\'' if line[pos + 1..].contains('\'') => quote = Some(ch),
                '/' if next == Some('/') => break,
                '/' if next == Some('*') => {
                    chars.next();
                    in_block_comment = true;
                }
                ';' if !opened && depth == 0 => return None, // a declaration or a call
                '{' => {
                    opened = true;
                    depth += 1;
                    max_depth = max_depth.max(depth);
                }
                '}' if opened => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(Function {
                            name: name.to_owned(),
                            start: line_no(start),
                            end: line_no(j),
                            nesting: max_depth.saturating_sub(1),
                            decisions: decisions
                                + u32::try_from(DECISIONS.find_iter(&code).count()).unwrap_or(0),
                        });
                    }
                }
                _ => code.push(ch),
            }
        }
        if opened {
            decisions += u32::try_from(DECISIONS.find_iter(&code).count()).unwrap_or(0);
        }
    }
    None
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
    fn python_function_extents() {
        let src = "import os\n\ndef a(x):\n    \"\"\"Doc.\n\nstill doc\n\"\"\"\n    if x:\n        for i in x:\n            if i:\n                pass\n    return 1\n\n\nclass C:\n    async def m(self):\n        return 2\n";
        let lines: Vec<&str> = src.lines().collect();
        let fs = python_functions(&lines);
        assert_eq!(
            fs,
            vec![
                Function {
                    name: "a".into(),
                    start: 3,
                    end: 12,
                    nesting: 3,
                    decisions: 3
                },
                Function {
                    name: "m".into(),
                    start: 16,
                    end: 17,
                    nesting: 0,
                    decisions: 0
                },
            ]
        );
    }

    #[test]
    fn brace_function_extents() {
        let src = r#"// fn commented() {
pub fn add(a: i32) -> i32 {
    let s = "}{";
    if a > 0 && a < 10 {
        for i in 0..a {
            if i == 2 { return 1; }
        }
    }
    a
}

function check(value) {
  return value == null ? false : true;
}

const run = async (code) => {
  /* { */ return eval(code);
};

int main(int argc, char **argv)
{
    return 0;
}

fn decl(x: u8);
"#;
        let lines: Vec<&str> = src.lines().collect();
        let fs = brace_functions(&lines);
        let got: Vec<(&str, u32, u32, u32)> = fs
            .iter()
            .map(|f| (f.name.as_str(), f.start, f.end, f.nesting))
            .collect();
        assert_eq!(
            got,
            [
                ("add", 2, 10, 3),
                ("check", 12, 14, 0),
                ("run", 16, 18, 0),
                ("main", 20, 23, 0)
            ]
        );
        assert_eq!(fs[0].decisions, 4, "if, &&, for, if");
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
    fn binary_and_small_files_are_quiet() {
        let def = def_with(Thresholds::default());
        assert!(profile_file(&def, "a.py", b"\0\x01\x02").is_empty());
        assert!(profile_file(&def, "a.rs", b"fn a() {}\n").is_empty());
    }
}
