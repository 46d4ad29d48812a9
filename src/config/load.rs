//! Phase 1: files → merged JSON → [`RawConfig`], collecting every problem.
//!
//! Owns which files are read (the repo config, or the built-in default when
//! there is none, with `.background-tasks.local.json` merged over it), the
//! merge rule (objects merge key by key, anything else is replaced), and
//! attributing a problem at a JSON pointer to the file that spelled it out.
//! Each section, task and analyzer is deserialized on its own so one typo does
//! not hide the next.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ConfigError, Problem};
use super::raw::{RawAnalyzer, RawConfig, RawTask, SECTIONS};
use super::source::{Source, escape};

pub const CONFIG_FILE: &str = ".background-tasks.json";
pub const LOCAL_CONFIG_FILE: &str = ".background-tasks.local.json";
/// Name shown for problems in the embedded default config.
pub const DEFAULT_CONFIG_NAME: &str = "<built-in default config>";
pub const DEFAULT_CONFIG: &str = include_str!("default-config.json");

/// The sources a config was merged from, kept to locate later problems.
#[derive(Debug)]
pub struct Layers {
    /// The repo config, or the built-in default when the repo has none.
    pub base: Source,
    pub base_is_default: bool,
    pub local: Option<Source>,
}

impl Layers {
    /// Reads the config files under `root`. Syntax problems of both files are
    /// reported together.
    pub fn read(root: &Path) -> Result<Layers, ConfigError> {
        Self::read_with(root, None)
    }

    /// The config files under `root`, with `local` as the text of the
    /// local file: an edit checked before it is written.
    pub fn with_local(root: &Path, local: String) -> Result<Layers, ConfigError> {
        Self::read_with(root, Some(local))
    }

    fn read_with(root: &Path, local_text: Option<String>) -> Result<Layers, ConfigError> {
        let repo_path = root.join(CONFIG_FILE);
        let local_path = root.join(LOCAL_CONFIG_FILE);
        let mut problems = Vec::new();
        let repo = read_optional(root, &repo_path).unwrap_or_else(|p| {
            problems.push(*p);
            None
        });
        let local = match local_text {
            Some(text) => Some(text),
            None => read_optional(root, &local_path).unwrap_or_else(|p| {
                problems.push(*p);
                None
            }),
        };
        let base_is_default = repo.is_none();
        let base = match repo {
            Some(text) => Source::parse(&repo_path, text),
            None => Source::parse(Path::new(DEFAULT_CONFIG_NAME), DEFAULT_CONFIG.to_owned()),
        };
        let local = local.map(|text| Source::parse(&local_path, text));
        let base = base.map_err(|p| problems.extend(p)).ok();
        let local = match local {
            Some(Ok(src)) => Some(src),
            Some(Err(p)) => {
                problems.extend(p);
                None
            }
            None => None,
        };
        match base {
            Some(base) if problems.is_empty() => Ok(Layers {
                base,
                base_is_default,
                local,
            }),
            _ => Err(ConfigError::Invalid { problems }),
        }
    }

    /// Layers from in-memory text (tests, `config validate --stdin`).
    pub fn from_text(path: &Path, text: &str) -> Result<Layers, ConfigError> {
        let base = Source::parse(path, text.to_owned())
            .map_err(|problems| ConfigError::Invalid { problems })?;
        Ok(Layers {
            base,
            base_is_default: false,
            local: None,
        })
    }

    /// Files that were actually read, for messages.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if !self.base_is_default {
            files.push(self.base.path.clone());
        }
        files.extend(self.local.iter().map(|s| s.path.clone()));
        files
    }

    /// A problem at `pointer`, placed in the file that defines it most
    /// specifically (the local file wins ties: it is merged over the base).
    pub fn problem(&self, pointer: &str, at_key: bool, message: impl Into<String>) -> Problem {
        let src = match &self.local {
            Some(local) if local.depth_defined(pointer) >= self.base.depth_defined(pointer) => {
                local
            }
            _ => &self.base,
        };
        src.problem(pointer, at_key, message)
    }

    pub fn merged(&self) -> Value {
        let mut value = self.base.value.clone();
        if let Some(local) = &self.local {
            merge(&mut value, local.value.clone());
        }
        value
    }
}

/// Config files are read only up to this size: a repository can hold
/// anything under the name (RELIABILITY 26).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A config file of the worktree at `root`, if there is one: a regular
/// file inside the worktree, at most [`MAX_CONFIG_BYTES`]. Anything else
/// is a problem at the top of the file, never read.
fn read_optional(root: &Path, path: &Path) -> Result<Option<String>, Box<Problem>> {
    crate::repofile::read_to_string(Some(root), path, MAX_CONFIG_BYTES)
        .map_err(|e| Box::new(refused(path, &e)))
}

/// The problem for a config file that was not read.
pub fn refused(path: &Path, e: &crate::repofile::RepoFileError) -> Problem {
    Problem {
        file: path.to_owned(),
        line: 1,
        column: 1,
        pointer: String::new(),
        message: format!(
            "not read: {e} (a config file must be a regular file of at most {})",
            crate::repofile::human(MAX_CONFIG_BYTES)
        ),
    }
}

/// Deep merge: objects key by key, everything else replaced by `over`.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Deserializes the merged value section by section, entry by entry. What
/// failed is left out of the result, so phase 2 can still check the rest.
pub fn to_raw(layers: &Layers) -> (RawConfig, Vec<Problem>) {
    let value = layers.merged();
    let mut problems = Vec::new();
    let Value::Object(top) = value else {
        let p = layers.problem("", false, "expected a JSON object at the top level");
        return (RawConfig::default(), vec![p]);
    };
    let mut raw = RawConfig::default();
    for (key, val) in top {
        let pointer = format!("/{}", escape(&key));
        let mut de = Section {
            layers,
            problems: &mut problems,
            pointer: &pointer,
        };
        match key.as_str() {
            "$schema" => raw.schema = de.typed(val),
            "version" => raw.version = de.typed(val),
            "execution" => raw.execution = de.typed(val),
            "resource_limits" => raw.resource_limits = de.typed(val),
            "tasks" => raw.tasks = de.map::<RawTask>(val),
            "analyzers" => raw.analyzers = de.map::<RawAnalyzer>(val),
            "triggers" => raw.triggers = de.typed(val),
            "notifications" => raw.notifications = de.typed(val),
            "retention" => raw.retention = de.typed(val),
            "daemon" => raw.daemon = de.typed(val),
            "cache" => raw.cache = de.typed(val),
            other => problems.push(layers.problem(
                &pointer,
                true,
                format!(
                    "unknown section `{other}`, expected one of {}",
                    SECTIONS
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    (raw, problems)
}

struct Section<'a> {
    layers: &'a Layers,
    problems: &'a mut Vec<Problem>,
    pointer: &'a str,
}

impl Section<'_> {
    fn typed<T: DeserializeOwned>(&mut self, value: Value) -> Option<T> {
        deserialize_at(self.layers, self.pointer, value, self.problems)
    }

    /// A map of named entries, each deserialized on its own.
    fn map<T: DeserializeOwned>(
        &mut self,
        value: Value,
    ) -> Option<std::collections::BTreeMap<String, T>> {
        let Value::Object(entries) = value else {
            self.problems.push(self.layers.problem(
                self.pointer,
                false,
                format!(
                    "invalid type: {}, expected a map of names to definitions",
                    kind(&value)
                ),
            ));
            return None;
        };
        let mut out = std::collections::BTreeMap::new();
        for (name, v) in entries {
            let p = format!("{}/{}", self.pointer, escape(&name));
            if let Some(t) = deserialize_at(self.layers, &p, v, self.problems) {
                out.insert(name, t);
            }
        }
        Some(out)
    }
}

/// Deserializes one value, turning a serde error into a located problem.
pub fn deserialize_at<T: DeserializeOwned>(
    layers: &Layers,
    pointer: &str,
    value: Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(t) => Some(t),
        Err(err) => {
            let mut p = pointer.to_owned();
            for seg in err.path() {
                match seg {
                    serde_path_to_error::Segment::Seq { index } => {
                        p.push('/');
                        p.push_str(&index.to_string());
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        p.push('/');
                        p.push_str(&escape(key));
                    }
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => {}
                }
            }
            let message = err.inner().to_string();
            let at_key = message.starts_with("unknown field");
            problems.push(layers.problem(&p, at_key, message));
            None
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(base: &str, local: Option<&str>) -> Layers {
        Layers {
            base: Source::parse(Path::new("repo.json"), base.to_owned()).unwrap(),
            base_is_default: false,
            local: local.map(|l| Source::parse(Path::new("local.json"), l.to_owned()).unwrap()),
        }
    }

    #[test]
    fn local_merges_over_repo_key_by_key() {
        let l = layers(
            r#"{"execution": {"max_retries": 1, "task_timeout": "1m"}, "tasks": {"a": {"analyzers": ["x"]}}}"#,
            Some(r#"{"execution": {"max_retries": 5}}"#),
        );
        let (raw, problems) = to_raw(&l);
        assert!(problems.is_empty());
        let exec = raw.execution.unwrap();
        assert_eq!(exec.max_retries, Some(5));
        assert_eq!(exec.task_timeout.as_deref(), Some("1m"));
        assert_eq!(raw.tasks.unwrap()["a"].analyzers, vec!["x"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let l = layers(
            "{\n \"tasks\": {\n  \"a\": {\"analyzers\": \"bandit\"},\n  \"b\": {\"analyzers\": [], \"priority\": \"urgent\"},\n  \"c\": {\"analyzers\": [], \"prio\": 1}\n },\n \"colour\": true\n}",
            None,
        );
        let mut problems = to_raw(&l).1;
        problems.sort_by_key(|p| (p.line, p.column));
        let got: Vec<(usize, usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.column, p.pointer.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, 22, "/tasks/a/analyzers"),
                (4, 38, "/tasks/b/priority"),
                (5, 26, "/tasks/c/prio"),
                (7, 2, "/colour"),
            ],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("expected a sequence"));
        assert!(problems[1].message.contains("expected one of `low`"));
        assert!(problems[2].message.contains("unknown field `prio`"));
        assert!(problems[3].message.contains("unknown section `colour`"));
    }

    #[test]
    fn problems_are_attributed_to_the_file_that_defines_them() {
        let l = layers(
            r#"{"tasks": {"a": {"analyzers": []}}}"#,
            Some(r#"{"tasks": {"a": {"priority": "urgent"}}}"#),
        );
        let problems = to_raw(&l).1;
        assert_eq!(problems[0].file, Path::new("local.json"));
        assert_eq!(problems[0].pointer, "/tasks/a/priority");
    }

    #[test]
    fn missing_required_field_points_at_the_entry() {
        let l = layers("{\"tasks\": {\"a\": {\"priority\": \"low\"}}}", None);
        let problems = to_raw(&l).1;
        assert_eq!(problems[0].pointer, "/tasks/a");
        assert!(problems[0].message.contains("missing field `analyzers`"));
    }

    #[test]
    fn the_default_config_parses() {
        let l = Layers::from_text(Path::new(DEFAULT_CONFIG_NAME), DEFAULT_CONFIG).unwrap();
        assert!(to_raw(&l).1.is_empty());
    }
}
