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

/// Where one value is, and the values it holds.
///
/// A tree, not a map from whole pointers: a pointer repeats every key above
/// it, so a map of them grows with depth × key length, over 500 MB for a
/// 1 MiB file of long nested keys.
#[derive(Debug)]
struct Node {
    /// Byte offset of the key (for object members).
    key: Option<usize>,
    /// Byte offset of the value.
    value: usize,
    /// Members and elements, by escaped pointer segment, as indexes into
    /// [`Source::nodes`].
    children: HashMap<String, usize>,
}

/// Duplicate keys reported per file; past this, one more problem counts
/// the rest (each repeats its pointer, which can be as long as the file).
const MAX_DUPLICATES: usize = 20;

/// A parsed JSON file with a pointer index.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub value: serde_json::Value,
    /// The root value first.
    nodes: Vec<Node>,
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
        let mut index = Index::default();
        index.add(&ast, None);
        let mut problems: Vec<Problem> = index
            .duplicates
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
        if index.more_duplicates > 0 {
            problems.push(Problem {
                file: path.to_owned(),
                line: problems.last().map_or(1, |p| p.line),
                column: problems.last().map_or(1, |p| p.column),
                pointer: String::new(),
                message: format!("{} more duplicate keys", index.more_duplicates),
            });
        }
        match serde_json::from_str(&text) {
            Ok(value) if problems.is_empty() => Ok(Source {
                path: path.to_owned(),
                text,
                value,
                nodes: index.nodes,
                line_starts,
            }),
            Ok(_) => Err(problems),
            Err(err) => {
                // jsonc-parser accepted it but serde_json did not (a number out
                // of range, a control character in a string, say): report
                // serde's own position.
                let (line, column) = serde_position(&text, &line_starts, err.line(), err.column());
                problems.push(Problem {
                    file: path.to_owned(),
                    line,
                    column,
                    pointer: String::new(),
                    message: format!("invalid JSON: {err}"),
                });
                Err(problems)
            }
        }
    }

    /// Length of the longest prefix of `pointer` this file defines.
    pub fn depth_defined(&self, pointer: &str) -> usize {
        self.deepest(pointer).1
    }

    /// The deepest value on the way to `pointer` this file defines, and the
    /// length of the pointer prefix that leads to it.
    fn deepest(&self, pointer: &str) -> (&Node, usize) {
        let mut node = &self.nodes[0];
        let mut len = 0;
        let Some(rest) = pointer.strip_prefix('/') else {
            return (node, 0);
        };
        for segment in rest.split('/') {
            let Some(&child) = node.children.get(segment) else {
                break;
            };
            node = &self.nodes[child];
            len += 1 + segment.len();
        }
        (node, len)
    }

    /// `line:column` (1-based) of the value at `pointer`, or of its key when
    /// `at_key`; falls back to the nearest enclosing value the file defines.
    pub fn locate(&self, pointer: &str, at_key: bool) -> (usize, usize) {
        let node = self.deepest(pointer).0;
        let offset = if at_key {
            node.key.unwrap_or(node.value)
        } else {
            node.value
        };
        position(&self.text, &self.line_starts, offset)
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

/// A duplicate key: its pointer, its offset, the first one's offset.
type Duplicate = (String, usize, usize);

/// Builds the [`Node`] tree of a parsed file.
#[derive(Default)]
struct Index {
    nodes: Vec<Node>,
    /// Escaped segments from the root to the value being added.
    path: Vec<String>,
    duplicates: Vec<Duplicate>,
    more_duplicates: usize,
}

impl Index {
    /// Adds `ast` and what it holds; returns its node.
    fn add(&mut self, ast: &Ast<'_>, key: Option<usize>) -> usize {
        let value = match ast {
            Ast::StringLit(v) => v.range.start,
            Ast::NumberLit(v) => v.range.start,
            Ast::BooleanLit(v) => v.range.start,
            Ast::NullKeyword(v) => v.range.start,
            Ast::Object(v) => v.range.start,
            Ast::Array(v) => v.range.start,
        };
        let id = self.nodes.len();
        self.nodes.push(Node {
            key,
            value,
            children: HashMap::new(),
        });
        match ast {
            Ast::Object(obj) => {
                for prop in &obj.properties {
                    let (segment, key_start) = match &prop.name {
                        ObjectPropName::String(s) => (escape(&s.value), s.range.start),
                        ObjectPropName::Word(w) => (escape(w.value), w.range.start),
                    };
                    if let Some(&first) = self.nodes[id].children.get(&segment) {
                        let first = self.nodes[first].key.unwrap_or(key_start);
                        self.duplicate(&segment, key_start, first);
                        continue;
                    }
                    self.child(id, segment, &prop.value, Some(key_start));
                }
            }
            Ast::Array(arr) => {
                for (i, el) in arr.elements.iter().enumerate() {
                    self.child(id, i.to_string(), el, None);
                }
            }
            _ => {}
        }
        id
    }

    fn child(&mut self, parent: usize, segment: String, ast: &Ast<'_>, key: Option<usize>) {
        self.path.push(segment);
        let child = self.add(ast, key);
        let segment = self.path.pop().expect("pushed above");
        self.nodes[parent].children.insert(segment, child);
    }

    fn duplicate(&mut self, segment: &str, offset: usize, first: usize) {
        if self.duplicates.len() == MAX_DUPLICATES {
            self.more_duplicates += 1;
            return;
        }
        let mut pointer = String::new();
        for s in self.path.iter().map(String::as_str).chain([segment]) {
            pointer.push('/');
            pointer.push_str(s);
        }
        self.duplicates.push((pointer, offset, first));
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

/// [`position`] of the character a `serde_json` error points at. serde
/// counts columns in bytes from 0, where 0 is the line break before the
/// line, so its position is not ours.
fn serde_position(text: &str, line_starts: &[usize], line: usize, column: usize) -> (usize, usize) {
    let start = line_starts
        .get(line.saturating_sub(1))
        .copied()
        .unwrap_or(text.len());
    let mut offset = (start + column).saturating_sub(1).min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    position(text, line_starts, offset)
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

    /// A file nests 120 levels deep, each under an 8 500-character key of
    /// `~` (escaped to twice that): 1 MiB, the config cap. Its index stays
    /// the size of the file (a map of whole pointers held over 120 MB), and a
    /// problem deep inside is still placed.
    #[test]
    fn long_nested_keys_cost_memory_in_proportion_to_the_file() {
        let key = "~".repeat(8500);
        let depth = 120;
        let mut text = format!("{{\"{key}\":").repeat(depth);
        text.push('1');
        text.push_str(&"}".repeat(depth));
        assert!(text.len() < 1 << 20);
        let src = parse(&text).unwrap();
        let held: usize = src
            .nodes
            .iter()
            .flat_map(|n| n.children.keys())
            .map(String::len)
            .sum();
        assert!(held <= 2 * text.len(), "{held} bytes of keys held");
        let deepest = format!("/{}", escape(&key)).repeat(depth);
        assert_eq!(src.depth_defined(&deepest), deepest.len());
        assert_eq!(
            src.locate(&format!("{deepest}/x"), false),
            (1, text.len() - depth)
        );
    }

    #[test]
    fn duplicate_keys_past_the_cap_are_counted() {
        let members: Vec<String> = (0..100).map(|i| format!("\"k\": {i}")).collect();
        let problems = parse(&format!("{{{}}}", members.join(", "))).unwrap_err();
        assert_eq!(problems.len(), MAX_DUPLICATES + 1);
        assert_eq!(
            problems.last().unwrap().message,
            format!("{} more duplicate keys", 99 - MAX_DUPLICATES)
        );
    }

    /// jsonc-parser lets a raw line break or control character into a
    /// string; `serde_json` does not, and puts it at column 0 (in bytes).
    #[test]
    fn problems_serde_finds_are_placed_on_the_character() {
        for (text, place) in [
            ("{\"a\": \"x\n\"}", (1, 9)),
            ("{\n\"é\": \"x\u{1}\"}", (2, 8)),
            ("{\"a\": 1e999}", (1, 11)),
        ] {
            let problems = parse(text).unwrap_err();
            let p = &problems[0];
            assert_eq!((p.line, p.column), place, "{text:?}: {}", p.message);
        }
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
