//! Finding functions in source text, by language, without a parser.
//!
//! Python by indentation. Brace languages in two steps: a small lexer
//! blanks out comments and string/char literals (raw strings and template
//! literals may span lines) so that only code remains, then a per-language
//! signature pattern finds function starts and brace matching finds their
//! ends. Good enough to size functions; not a compiler.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Rust,
    Go,
    Js,
    /// C, C++, Java, C#.
    CLike,
    Kotlin,
    Swift,
    Php,
    /// File-level checks only.
    Other,
}

impl Lang {
    pub fn of(path: &str) -> Lang {
        match path.rsplit('.').next().unwrap_or("") {
            "py" => Lang::Python,
            "rs" => Lang::Rust,
            "go" => Lang::Go,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => Lang::Js,
            "c" | "h" | "cc" | "cpp" | "hpp" | "java" | "cs" => Lang::CLike,
            "kt" => Lang::Kotlin,
            "swift" => Lang::Swift,
            "php" => Lang::Php,
            _ => Lang::Other,
        }
    }

    fn signature(self) -> Option<&'static Regex> {
        static RUST: LazyLock<Regex> = LazyLock::new(|| {
            re(
                r#"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|default|extern(?:\s+"[^"]*")?)\s+)*fn\s+([A-Za-z_]\w*)"#,
            )
        });
        static GO: LazyLock<Regex> =
            LazyLock::new(|| re(r"^\s*func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)"));
        static JS: LazyLock<Regex> = LazyLock::new(|| {
            re(concat!(
                r"\bfunction\b\s*\*?\s*([A-Za-z_$][\w$]*)\s*\(",
                r"|\b([A-Za-z_$][\w$]*)\s*[=:]\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[A-Za-z_$][\w$]*\s*=>)",
                r"|^\s*(?:(?:static|async|get|set|public|private|protected|readonly|override|export|default)\s+)*\*?([A-Za-z_$][\w$]*)\s*\([^;{}]*\)\s*(?::\s*[^={;]+)?\{\s*$",
            ))
        });
        static CLIKE: LazyLock<Regex> =
            LazyLock::new(|| re(r"^\s*(?:[\w<>\[\],.*&:~?]+\s+)+\**&?([A-Za-z_~]\w*)\s*\([^;]*$"));
        static KOTLIN: LazyLock<Regex> =
            LazyLock::new(|| re(r"\bfun\s+(?:<[^>]*>\s*)?(?:[\w.]+\.)?([A-Za-z_]\w*)\s*\("));
        static SWIFT: LazyLock<Regex> = LazyLock::new(|| re(r"\bfunc\s+([A-Za-z_]\w*)"));
        static PHP: LazyLock<Regex> = LazyLock::new(|| re(r"\bfunction\s+&?([A-Za-z_]\w*)\s*\("));
        match self {
            Lang::Rust => Some(&RUST),
            Lang::Go => Some(&GO),
            Lang::Js => Some(&JS),
            Lang::CLike => Some(&CLIKE),
            Lang::Kotlin => Some(&KOTLIN),
            Lang::Swift => Some(&SWIFT),
            Lang::Php => Some(&PHP),
            Lang::Python | Lang::Other => None,
        }
    }

    /// Decision points: branches, loops, boolean operators, match arms.
    fn decisions(self) -> &'static Regex {
        static RUST: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:if|for|while)\b|=>|&&|\|\|"));
        static JS: LazyLock<Regex> =
            LazyLock::new(|| re(r"\b(?:if|for|while|case|catch)\b|&&|\|\||\?\?|\?\s*[^:?.=\s]"));
        static PYTHON: LazyLock<Regex> =
            LazyLock::new(|| re(r"\b(?:if|elif|for|while|except|and|or|case)\b"));
        static OTHER: LazyLock<Regex> = LazyLock::new(|| {
            re(r"\b(?:if|for|while|case|catch|foreach|elseif)\b|&&|\|\||\?\s*[^:?.\s]")
        });
        match self {
            Lang::Rust => &RUST,
            Lang::Js => &JS,
            Lang::Python => &PYTHON,
            _ => &OTHER,
        }
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern is valid")
}

const NOT_FUNCTIONS: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "return",
    "else",
    "new",
    "sizeof",
    "match",
    "loop",
    "do",
    "try",
    "with",
    "when",
    "elif",
    "foreach",
    "using",
    "lock",
    "fixed",
    "typeof",
    "await",
    "function",
    "throw",
    "delete",
    "synchronized",
];

/// One function as found by the heuristics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// 1-based first and last line.
    pub start: u32,
    pub end: u32,
    /// Blocks nested inside the body (the body itself is 0).
    pub nesting: u32,
    pub decisions: u32,
}

fn line_no(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn count(re: &Regex, s: &str) -> u32 {
    u32::try_from(re.find_iter(s).count()).unwrap_or(u32::MAX)
}

pub fn functions(lang: Lang, lines: &[&str]) -> Vec<Function> {
    match lang {
        Lang::Python => python(lines),
        Lang::Other => Vec::new(),
        _ => braces(lang, &strip(lang, lines)),
    }
}

/// Lexer state carried from line to line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    BlockComment,
    /// Inside a string that may span lines: its closing quote.
    Str(char),
    /// Inside a Rust raw string with this many `#`.
    Raw(usize),
}

/// The code of each line with comments and literals blanked out (literals
/// become `""`), so braces and keywords inside them do not count.
fn strip(lang: Lang, lines: &[&str]) -> Vec<String> {
    let mut lexer = Lexer {
        lang,
        state: State::Code,
    };
    lines.iter().map(|line| lexer.line(line)).collect()
}

/// The lexer behind [`strip`]: the language and the state carried from line
/// to line.
struct Lexer {
    lang: Lang,
    state: State,
}

impl Lexer {
    /// One line's code with comments and literals blanked out.
    fn line(&mut self, line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let mut code = String::with_capacity(line.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match self.state {
                State::BlockComment => {
                    if c == '*' && next == Some('/') {
                        self.state = State::Code;
                        i += 1;
                    }
                }
                State::Str(q) => {
                    if c == '\\' {
                        i += 1;
                    } else if c == q {
                        self.state = State::Code;
                        code.push_str("\"\"");
                    }
                }
                State::Raw(hashes) => {
                    if c == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|h| **h == '#')
                            .count()
                            == hashes
                    {
                        self.state = State::Code;
                        code.push_str("\"\"");
                        i += hashes;
                    }
                }
                State::Code => match self.code_char(&chars, i, &mut code) {
                    Some(last) => i = last,
                    None => break,
                },
            }
            i += 1;
        }
        // Plain strings do not span lines (except template literals).
        if matches!(self.state, State::Str('"' | '\'')) {
            self.state = State::Code;
        }
        code
    }

    /// Lexes the character at `i` in code: keeps it in `code` unless it opens
    /// a comment or literal, and returns the index of the last character it
    /// consumed, or `None` at a line comment (the rest of the line is
    /// dropped).
    fn code_char(&mut self, chars: &[char], i: usize, code: &mut String) -> Option<usize> {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => return None,
            '/' if next == Some('*') => {
                self.state = State::BlockComment;
                return Some(i + 1);
            }
            'r' if self.lang == Lang::Rust
                && matches!(next, Some('"' | '#'))
                && !chars
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p.is_alphanumeric() || *p == '_') =>
            {
                let hashes = chars[i + 1..].iter().take_while(|h| **h == '#').count();
                if chars.get(i + 1 + hashes) == Some(&'"') {
                    self.state = State::Raw(hashes);
                    return Some(i + 1 + hashes);
                }
                code.push(c);
            }
            '"' => self.state = State::Str('"'),
            '`' if matches!(self.lang, Lang::Js | Lang::Go) => self.state = State::Str('`'),
            '\'' if self.lang == Lang::Rust => match char_literal_end(chars, i) {
                Some(end) => {
                    code.push_str("''");
                    return Some(end);
                }
                None => code.push(c),
            },
            '\'' => self.state = State::Str('\''),
            _ => code.push(c),
        }
        Some(i)
    }
}

/// Where the Rust char literal opening at `i` closes ('x', '\n',
/// '\u{1F600}'), or `None` when the quote starts a lifetime.
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    if chars.get(i + 1) == Some(&'\\') {
        chars[i + 2..]
            .iter()
            .take(10)
            .position(|ch| *ch == '\'')
            .map(|p| i + 2 + p)
    } else if chars.get(i + 2) == Some(&'\'') {
        Some(i + 2)
    } else {
        None
    }
}

fn braces(lang: Lang, code: &[String]) -> Vec<Function> {
    match lang.signature() {
        Some(signature) => blocks(lang, code, signature),
        None => Vec::new(),
    }
}

/// The blocks that hold functions: classes, interfaces, Rust's `impl`,
/// `trait` and `mod`, as [`Function`]s (their nesting and decisions
/// are not meaningful). Python's classes are found by indentation
/// elsewhere; Go has none.
pub fn containers(lang: Lang, lines: &[&str]) -> Vec<Function> {
    static RUST: LazyLock<Regex> = LazyLock::new(|| {
        re(concat!(
            r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?",
            r"(?:impl\b(?:\s*<[^{]*?>)?\s+(?:[^{]*?\s+for\s+)?(?:\w+::)*([A-Za-z_]\w*)|(?:trait|mod)\s+([A-Za-z_]\w*))",
        ))
    });
    static JS: LazyLock<Regex> = LazyLock::new(|| re(r"\bclass\s+([A-Za-z_$][\w$]*)"));
    static OTHER: LazyLock<Regex> = LazyLock::new(|| {
        re(r"\b(?:class|struct|interface|enum|namespace|object|trait|extension)\s+([A-Za-z_]\w*)")
    });
    let pattern: &Regex = match lang {
        Lang::Rust => &RUST,
        Lang::Js => &JS,
        Lang::CLike | Lang::Kotlin | Lang::Swift | Lang::Php => &OTHER,
        Lang::Python | Lang::Go | Lang::Other => return Vec::new(),
    };
    blocks(lang, &strip(lang, lines), pattern)
}

/// The blocks whose first lines match `signature` (its first matching
/// group is the name), each to its closing brace.
fn blocks(lang: Lang, code: &[String], signature: &Regex) -> Vec<Function> {
    let mut out = Vec::new();
    for (i, line) in code.iter().enumerate() {
        let Some(c) = signature.captures(line) else {
            continue;
        };
        let Some(name) = c.iter().skip(1).flatten().next().map(|m| m.as_str()) else {
            continue;
        };
        if NOT_FUNCTIONS.contains(&name) {
            continue;
        }
        if let Some(f) = body(lang, code, i, name) {
            out.push(f);
        }
    }
    out
}

/// Follows braces from the signature at `start` (the body must open within
/// three lines, before any `;`) to its closing brace.
fn body(lang: Lang, code: &[String], start: usize, name: &str) -> Option<Function> {
    let decisions = lang.decisions();
    let mut depth: u32 = 0;
    let mut max_depth = 0;
    let mut opened = false;
    let mut count_from = 0;
    let mut total = 0;
    for (j, line) in code.iter().enumerate().skip(start) {
        if !opened && j > start + 3 {
            return None;
        }
        for (pos, ch) in line.char_indices() {
            match ch {
                ';' if !opened => return None,
                '{' => {
                    if !opened {
                        count_from = pos;
                    }
                    opened = true;
                    depth += 1;
                    max_depth = max_depth.max(depth);
                }
                '}' if opened => {
                    depth -= 1;
                    if depth == 0 {
                        let from = if j == start { count_from } else { 0 };
                        total += count(decisions, &line[from.min(pos)..pos]);
                        return Some(Function {
                            name: name.to_owned(),
                            start: line_no(start),
                            end: line_no(j),
                            nesting: max_depth.saturating_sub(1),
                            decisions: total,
                        });
                    }
                }
                _ => {}
            }
        }
        if opened {
            let from = if j == start { count_from } else { 0 };
            total += count(decisions, &line[from..]);
        }
    }
    None
}

fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

fn python(lines: &[&str]) -> Vec<Function> {
    static DEF: LazyLock<Regex> = LazyLock::new(|| re(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)"));
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
    let decisions = Lang::Python.decisions();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if in_string[i] {
            continue;
        }
        let Some(c) = DEF.captures(line) else {
            continue;
        };
        let def_indent = indent_of(line);
        let mut end = i;
        let mut body_indent = None;
        let mut nesting = 0;
        let mut total = 0;
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
            nesting = nesting.max(u32::try_from(ind.saturating_sub(base) / unit).unwrap_or(0));
            total += count(decisions, trimmed);
        }
        out.push(Function {
            name: c[2].to_owned(),
            start: line_no(i),
            end: line_no(end),
            nesting,
            decisions: total,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(lang: Lang, src: &str) -> Vec<(String, u32, u32, u32, u32)> {
        let lines: Vec<&str> = src.lines().collect();
        functions(lang, &lines)
            .into_iter()
            .map(|f| (f.name, f.start, f.end, f.nesting, f.decisions))
            .collect()
    }

    fn row(
        name: &str,
        start: u32,
        end: u32,
        nesting: u32,
        decisions: u32,
    ) -> (String, u32, u32, u32, u32) {
        (name.to_owned(), start, end, nesting, decisions)
    }

    #[test]
    fn python_extents_ignore_docstrings() {
        let src = "import os\n\ndef a(x):\n    \"\"\"Doc.\n\nstill doc\n\"\"\"\n    if x:\n        for i in x:\n            if i and x:\n                pass\n    return 1\n\n\nclass C:\n    async def m(self):\n        return 2\n";
        assert_eq!(
            found(Lang::Python, src),
            [row("a", 3, 12, 3, 4), row("m", 16, 17, 0, 0)]
        );
    }

    #[test]
    fn rust_raw_strings_lifetimes_chars_and_if_let_are_not_functions() {
        let src = r##"// fn commented() {
pub fn add<'a>(a: &'a str) -> usize {
    let s = "}{";
    let c = '{';
    let esc = '\'';
    if let Some(x) = a.find('}') {
        for _ in 0..x { if x == 2 { return 1; } }
    }
    match a.len() { 0 => 0, _ => a.len() }
}

fn json() -> &'static str {
    r#"{
  "tasks": { "a": { "analyzers": ["x"] } }
}"#
}

fn decl(x: u8);
pub(crate) async fn later() -> Result<(), E> { fetch().await?; Ok(()) }
"##;
        assert_eq!(
            found(Lang::Rust, src),
            [
                row("add", 2, 10, 3, 5),
                row("json", 12, 16, 0, 0),
                row("later", 19, 19, 0, 0)
            ]
        );
    }

    #[test]
    fn javascript_functions_methods_arrows_and_templates() {
        let src = "function check(value) {\n  return value == null ? false : a?.b ?? true;\n}\n\nconst run = async (code) => {\n  const t = `${code} {`;\n  return eval(code);\n};\n\nclass A {\n  method(x) {\n    if (x) { return 1; }\n  }\n}\nfoo(bar);\nif (x) {\n}\n";
        assert_eq!(
            found(Lang::Js, src),
            [
                row("check", 1, 3, 0, 2),
                row("run", 5, 8, 0, 0),
                row("method", 11, 13, 1, 1)
            ]
        );
    }

    #[test]
    fn containers_classes_impls_traits_and_modules() {
        let names = |lang, src: &str| -> Vec<(String, u32, u32)> {
            let lines: Vec<&str> = src.lines().collect();
            containers(lang, &lines)
                .into_iter()
                .map(|f| (f.name, f.start, f.end))
                .collect()
        };
        let rust = "mod outer {\n    impl<T: Clone> fmt::Display for Wrap<T> {\n        fn fmt(&self) {}\n    }\n    pub trait Shape {\n        fn area(&self) -> f64;\n    }\n}\nmod tests;\nfn f() -> impl Iterator<Item = u8> {\n}\n";
        assert_eq!(
            names(Lang::Rust, rust),
            [
                ("outer".to_owned(), 1, 8),
                ("Wrap".to_owned(), 2, 4),
                ("Shape".to_owned(), 5, 7)
            ]
        );
        let js = "export class A extends B {\n  m() {\n    const s = 'class X {';\n  }\n}\n";
        assert_eq!(names(Lang::Js, js), [("A".to_owned(), 1, 5)]);
        let java = "public class Main {\n  interface Op { int run(); }\n}\n";
        assert_eq!(
            names(Lang::CLike, java),
            [("Main".to_owned(), 1, 3), ("Op".to_owned(), 2, 2)]
        );
        assert!(names(Lang::Python, "class A:\n    pass\n").is_empty());
    }

    #[test]
    fn c_like_and_go() {
        let c = "int main(int argc, char **argv)\n{\n    int x = foo(1);\n    return 0;\n}\n\nstatic void helper(void);\n";
        assert_eq!(found(Lang::CLike, c), [row("main", 1, 5, 0, 0)]);
        let go = "func (s *Server) Serve(l net.Listener) error {\n\tfor {\n\t\tif err != nil { return err }\n\t}\n}\n";
        assert_eq!(found(Lang::Go, go), [row("Serve", 1, 5, 2, 2)]);
    }
}
