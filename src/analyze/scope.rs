//! The scope a line sits in (`Class.method`, `outer.inner`, `Type.fmt`
//! for a function in `impl Display for Type`), one piece of the evidence
//! that tells findings apart across edits (`identity.rs`).
//!
//! Python by indentation: a `def` or `class` opens a scope that lasts while
//! the lines after it are indented deeper (blank lines, comments and lines
//! inside triple-quoted strings do not close it). Brace languages by the
//! profile analyzer's lexer (`profile/functions.rs`): functions, and the
//! blocks that hold them (classes, interfaces, Rust's `impl`, `trait` and
//! `mod`), each from its first line to its closing brace. A block's own
//! first line belongs to the scope around it, so a flagged `def` line's
//! scope does not change with the function's name. Heuristics, not a
//! parser: what they cannot tell is `None`, and matching then relies on
//! the line's own evidence.

use std::sync::LazyLock;

use regex::Regex;

use super::profile::{Lang, containers, functions};

/// A named block and its 1-based first and last lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    name: String,
    start: u32,
    end: u32,
}

/// The scopes of one file.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    /// Sorted by first line, outer blocks before the blocks they hold.
    blocks: Vec<Block>,
}

impl Scopes {
    /// The scopes of the file at `path` (its extension tells the
    /// language), whose text is `lines`.
    pub fn of(path: &str, lines: &[&str]) -> Scopes {
        let mut blocks = match Lang::of(path) {
            Lang::Python => python(lines),
            Lang::Other => Vec::new(),
            lang => containers(lang, lines)
                .into_iter()
                .chain(functions(lang, lines))
                .map(|f| Block {
                    name: f.name,
                    start: f.start,
                    end: f.end,
                })
                .collect(),
        };
        blocks.sort_by_key(|b| (b.start, std::cmp::Reverse(b.end)));
        Scopes { blocks }
    }

    /// The scope of 1-based `line`: the names of the blocks around it,
    /// outermost first, joined with `.`; `None` at the top level.
    pub fn at(&self, line: u32) -> Option<String> {
        let names: Vec<&str> = self
            .blocks
            .iter()
            .take_while(|b| b.start < line)
            .filter(|b| line <= b.end)
            .map(|b| b.name.as_str())
            .collect();
        (!names.is_empty()).then(|| names.join("."))
    }
}

fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 8 } else { 1 })
        .sum()
}

/// Python's `def` and `class` blocks, by indentation.
fn python(lines: &[&str]) -> Vec<Block> {
    static OPENS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)")
            .expect("built-in pattern is valid")
    });
    let mut out = Vec::new();
    // Open blocks: indentation, name, first line.
    let mut open: Vec<(usize, String, u32)> = Vec::new();
    let mut last_code = 0;
    let mut in_string = false;
    for (i, line) in lines.iter().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let inside = in_string;
        let quotes = line.matches("\"\"\"").count() + line.matches("'''").count();
        if quotes % 2 == 1 {
            in_string = !in_string;
        }
        let trimmed = line.trim();
        if inside || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        while open.last().is_some_and(|(at, _, _)| *at >= indent) {
            let (_, name, start) = open.pop().expect("checked above");
            out.push(Block {
                name,
                start,
                end: last_code,
            });
        }
        if let Some(c) = OPENS.captures(line) {
            open.push((indent, c[1].to_owned(), n));
        }
        last_code = n;
    }
    out.extend(open.into_iter().map(|(_, name, start)| Block {
        name,
        start,
        end: last_code,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scope of every line of `src`, 1-based.
    fn scopes(path: &str, src: &str) -> Vec<(u32, Option<String>)> {
        let lines: Vec<&str> = src.lines().collect();
        let s = Scopes::of(path, &lines);
        (1..=u32::try_from(lines.len()).unwrap())
            .map(|n| (n, s.at(n)))
            .collect()
    }

    fn at(rows: &[(u32, Option<String>)], line: u32) -> Option<&str> {
        rows[line as usize - 1].1.as_deref()
    }

    #[test]
    fn python_classes_methods_and_nested_functions() {
        let src = "import os\n\nclass A(Base):\n    x = 1\n\n    @property\n    def m(self):\n        \"\"\"Doc.\n\nnot code\n\"\"\"\n        def inner():\n            return eval(s)\n        # a comment\n\n        return inner\n\n    async def n(self):\n\tpass\n\ndef top():\n    y = 2\ny = 3\n";
        let rows = scopes("a.py", src);
        let want = [
            (1, None),
            (3, None),
            (4, Some("A")),
            (6, Some("A")),
            (7, Some("A")),
            (8, Some("A.m")),
            (10, Some("A.m")),
            (12, Some("A.m")),
            (13, Some("A.m.inner")),
            (16, Some("A.m")),
            (18, Some("A")),
            (19, Some("A.n")),
            (21, None),
            (22, Some("top")),
            (23, None),
        ];
        for (line, scope) in want {
            assert_eq!(at(&rows, line), scope, "line {line}");
        }
    }

    #[test]
    fn brace_languages_through_the_profile_lexer() {
        let rust = "impl fmt::Display for Wrap {\n    fn fmt(&self) -> String {\n        let s = \"}\";\n        s.into()\n    }\n}\nfn free() {\n    let x = 1;\n}\nconst C: u8 = 1;\n";
        let rows = scopes("src/lib.rs", rust);
        assert_eq!(at(&rows, 1), None);
        assert_eq!(at(&rows, 2), Some("Wrap"));
        assert_eq!(at(&rows, 3), Some("Wrap.fmt"));
        assert_eq!(at(&rows, 5), Some("Wrap.fmt"));
        assert_eq!(at(&rows, 6), Some("Wrap"));
        assert_eq!(at(&rows, 8), Some("free"));
        assert_eq!(at(&rows, 10), None);
        let js = "class Api {\n  get(url) {\n    return fetch(url);\n  }\n}\nconst run = (code) => {\n  return eval(code);\n};\n";
        let rows = scopes("web/app.ts", js);
        assert_eq!(at(&rows, 3), Some("Api.get"));
        assert_eq!(at(&rows, 7), Some("run"));
        assert_eq!(scopes("notes.txt", "def a():\n    x\n")[1].1, None);
    }
}
