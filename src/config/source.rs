//! One JSON source file: its text, its syntax check, and where every value is.
//!
//! Owns turning a JSON pointer into `line:column` so that every config
//! problem, including ones found long after parsing (an unknown analyzer
//! name, a bad glob), names the exact place. Also finds duplicate keys, which
//! `serde_json` silently collapses. Knows nothing about what the keys mean.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jsonc_parser::ast::{ObjectPropName, Value as Ast};
use jsonc_parser::{CollectOptions, ParseOptions};

use super::error::Problem;

/// Strict JSON: no comments, no trailing commas, no JSON5.
fn strict() -> ParseOptions {
    ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    /// Byte offset of the key (for object members).
    key: Option<usize>,
    /// Byte offset of the value.
    value: usize,
}

/// A parsed JSON file with a pointer index.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub value: serde_json::Value,
    spans: HashMap<String, Span>,
    line_starts: Vec<usize>,
}

impl Source {
    /// Parses `text`; on syntax errors or duplicate keys returns every
    /// problem found (a syntax error stops at the first, as any parser must).
    pub fn parse(path: &Path, text: String) -> Result<Source, Vec<Problem>> {
        let line_starts = line_starts(&text);
        let parsed = jsonc_parser::parse_to_ast(&text, &CollectOptions::default(), &strict());
        let ast = match parsed {
            Ok(result) => result.value,
            Err(err) => {
                let (line, column) = position(&text, &line_starts, err.range().start);
                return Err(vec![Problem {
                    file: path.to_owned(),
                    line,
                    column,
                    pointer: String::new(),
                    message: format!("invalid JSON: {}", lowercase_first(&err.kind().to_string())),
                }]);
            }
        };
        let Some(ast) = ast else {
            return Err(vec![Problem {
                file: path.to_owned(),
                line: 1,
                column: 1,
                pointer: String::new(),
                message: "the file is empty; expected a JSON object".to_owned(),
            }]);
        };
        let mut spans = HashMap::new();
        let mut duplicates = Vec::new();
        index(&ast, "", None, &mut spans, &mut duplicates);
        let mut problems: Vec<Problem> = duplicates
            .into_iter()
            .map(|(pointer, offset, first)| {
                let (line, column) = position(&text, &line_starts, offset);
                let (first_line, _) = position(&text, &line_starts, first);
                Problem {
                    file: path.to_owned(),
                    line,
                    column,
                    message: format!(
                        "duplicate key `{}` (first defined on line {first_line}); JSON keeps only one of them",
                        last_segment(&pointer)
                    ),
                    pointer,
                }
            })
            .collect();
        match serde_json::from_str(&text) {
            Ok(value) if problems.is_empty() => Ok(Source {
                path: path.to_owned(),
                text,
                value,
                spans,
                line_starts,
            }),
            Ok(_) => Err(problems),
            Err(err) => {
                // jsonc-parser accepted it but serde_json did not (a number out
                // of range, say): report serde's own position.
                problems.push(Problem {
                    file: path.to_owned(),
                    line: err.line(),
                    column: err.column(),
                    pointer: String::new(),
                    message: format!("invalid JSON: {err}"),
                });
                Err(problems)
            }
        }
    }

    /// Length of the longest prefix of `pointer` this file defines.
    pub fn depth_defined(&self, pointer: &str) -> usize {
        let mut p = pointer;
        loop {
            if self.spans.contains_key(p) {
                return p.len();
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 0,
            }
        }
    }

    /// `line:column` (1-based) of the value at `pointer`, or of its key when
    /// `at_key`; falls back to the nearest enclosing value the file defines.
    pub fn locate(&self, pointer: &str, at_key: bool) -> (usize, usize) {
        let mut p = pointer;
        loop {
            if let Some(span) = self.spans.get(p) {
                let offset = if at_key {
                    span.key.unwrap_or(span.value)
                } else {
                    span.value
                };
                return position(&self.text, &self.line_starts, offset);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }

    pub fn problem(&self, pointer: &str, at_key: bool, message: impl Into<String>) -> Problem {
        let (line, column) = self.locate(pointer, at_key);
        Problem {
            file: self.path.clone(),
            line,
            column,
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }
}

type Duplicate = (String, usize, usize);

fn index(
    ast: &Ast<'_>,
    pointer: &str,
    key: Option<usize>,
    spans: &mut HashMap<String, Span>,
    duplicates: &mut Vec<Duplicate>,
) {
    let value_start = match ast {
        Ast::StringLit(v) => v.range.start,
        Ast::NumberLit(v) => v.range.start,
        Ast::BooleanLit(v) => v.range.start,
        Ast::NullKeyword(v) => v.range.start,
        Ast::Object(v) => v.range.start,
        Ast::Array(v) => v.range.start,
    };
    spans.insert(
        pointer.to_owned(),
        Span {
            key,
            value: value_start,
        },
    );
    match ast {
        Ast::Object(obj) => {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for prop in &obj.properties {
                let (name, key_start) = match &prop.name {
                    ObjectPropName::String(s) => (s.value.to_string(), s.range.start),
                    ObjectPropName::Word(w) => (w.value.to_owned(), w.range.start),
                };
                let child = format!("{pointer}/{}", escape(&name));
                if let Some(first) = seen.get(&name) {
                    duplicates.push((child, key_start, *first));
                    continue;
                }
                seen.insert(name, key_start);
                index(&prop.value, &child, Some(key_start), spans, duplicates);
            }
        }
        Ast::Array(arr) => {
            for (i, el) in arr.elements.iter().enumerate() {
                index(el, &format!("{pointer}/{i}"), None, spans, duplicates);
            }
        }
        _ => {}
    }
}

/// RFC 6901 escaping of one pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn last_segment(pointer: &str) -> String {
    let seg = pointer.rsplit('/').next().unwrap_or("");
    seg.replace("~1", "/").replace("~0", "~")
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, line_starts: &[usize], offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let line = line_starts.partition_point(|&s| s <= offset);
    let start = line_starts[line - 1];
    let column = text
        .get(start..offset)
        .map_or(offset - start, |s| s.chars().count())
        + 1;
    (line, column)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Source, Vec<Problem>> {
        Source::parse(Path::new("c.json"), text.to_owned())
    }

    #[test]
    fn locates_values_and_keys() {
        let src =
            parse("{\n  \"tasks\": {\n    \"sec\": { \"priority\": \"urgent\" }\n  }\n}").unwrap();
        assert_eq!(src.locate("/tasks/sec/priority", false), (3, 26));
        assert_eq!(src.locate("/tasks/sec/priority", true), (3, 14));
        // Falls back to the nearest enclosing value.
        assert_eq!(src.locate("/tasks/sec/missing", false), (3, 12));
        assert_eq!(src.depth_defined("/tasks/sec"), "/tasks/sec".len());
        assert_eq!(src.depth_defined("/tasks/other/x"), "/tasks".len());
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = parse("{\"é\": 1, \"k\": 2}").unwrap();
        assert_eq!(src.locate("/k", true), (1, 10));
    }

    #[test]
    fn trailing_comma_is_a_syntax_error_with_position() {
        let problems = parse("{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!(problems.len(), 1);
        let p = &problems[0];
        assert_eq!((p.line, p.column), (2, 9));
        assert!(p.message.contains("trailing comma"), "{}", p.message);
    }

    #[test]
    fn comments_are_rejected() {
        let problems = parse("{ // no\n}").unwrap_err();
        assert!(
            problems[0].message.contains("comments"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn duplicate_keys_are_reported_each_time() {
        let problems =
            parse("{\"tasks\": {\"a\": {}, \"b\": {}, \"a\": {}}, \"tasks\": {}}").unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].pointer, "/tasks/a");
        assert!(problems[0].message.contains("duplicate key `a`"));
        assert_eq!(problems[1].pointer, "/tasks");
    }

    #[test]
    fn empty_file_is_an_error() {
        let problems = parse("  \n").unwrap_err();
        assert!(problems[0].message.contains("empty"));
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let src = parse("{\"a/b\": {\"c~d\": 1}}").unwrap();
        assert_eq!(src.depth_defined("/a~1b/c~0d"), "/a~1b/c~0d".len());
        assert_eq!(escape("x/y~z"), "x~1y~0z");
    }
}
