//! Editing tasks in a project's personal `.background-tasks.local.json`:
//! define (create or replace), enable, disable and delete — for the
//! dashboard's task editor and `bgtask task`, one implementation.
//!
//! The committed `.background-tasks.json` is never rewritten: an edit of a
//! committed task is written to the personal file, which is merged over it
//! key by key, and a committed task can be disabled there but not deleted.
//! Each edit is checked with the whole config, as `bgtask config validate`
//! would, before it is written (atomically), so an edit that would break
//! the config is refused with every problem and changes nothing; the daemon
//! picks the written file up as it does any edit. The file keeps its
//! layout: only the edited task's text changes.

use std::path::{Path, PathBuf};

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use serde_json::Value;

use super::load::{DEFAULT_CONFIG_NAME, Layers};
use super::source::escape;
use super::{Config, ConfigError, LOCAL_CONFIG_FILE};

/// What to do to one task.
#[derive(Debug, Clone)]
pub enum TaskEdit {
    /// Create the task, or replace what the personal file says of it
    /// (merged over the committed definition, if there is one).
    Define(Value),
    Enable(bool),
    /// Only a task the personal file defines can go.
    Delete,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no task `{0}` here")]
    NoSuchTask(String),
    #[error(
        "no project `{0}` here (a nested project is a directory with its own .background-tasks.json)"
    )]
    NoProject(String),
    #[error(
        "task `{task}` is defined in {file}, which bgtask never rewrites; disable it in {LOCAL_CONFIG_FILE} instead"
    )]
    Committed { task: String, file: String },
    #[error(
        "a task is a JSON object, e.g. {{\"analyzers\": [\"bandit\"], \"triggers\": [\"manual\"]}}"
    )]
    NotAnObject,
    #[error("invalid task name `{0}`: use lowercase letters, digits, `-` and `_`")]
    BadName(String),
    /// The edit would leave the config invalid, or the config files
    /// cannot be read as they are: nothing was written.
    #[error("not written: {0}")]
    Invalid(#[source] ConfigError),
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An edit written.
#[derive(Debug)]
pub struct Edited {
    pub file: PathBuf,
    /// The personal file did not exist before.
    pub created: bool,
    /// The new personal file was added to git's `info/exclude`, so it
    /// stays out of commits.
    pub excluded: bool,
    /// The config as it now is.
    pub config: Config,
}

/// Applies `edit` to task `task` of the project whose config is in `dir`.
pub fn edit_task(dir: &Path, task: &str, edit: TaskEdit) -> Result<Edited, EditError> {
    if !super::analyzer::valid_name(task) {
        return Err(EditError::BadName(task.to_owned()));
    }
    let layers = Layers::read(dir).map_err(EditError::Invalid)?;
    let pointer = format!("/tasks/{}", escape(task));
    let in_base = layers.base.value.pointer(&pointer).is_some();
    let in_local = layers
        .local
        .as_ref()
        .is_some_and(|l| l.value.pointer(&pointer).is_some());
    let created = layers.local.is_none();
    let text = layers.local.as_ref().map_or("{}\n", |l| l.text.as_str());
    let root = CstRootNode::parse(text, &ParseOptions::default())
        .expect("the local file was just parsed as JSON");
    let tasks = root.object_value_or_set().object_value_or_set("tasks");
    match edit {
        TaskEdit::Define(v) => {
            if !v.is_object() {
                return Err(EditError::NotAnObject);
            }
            match tasks.get(task) {
                Some(prop) => prop.set_value(input(v)),
                None => {
                    tasks.append(task, input(v));
                }
            }
        }
        TaskEdit::Enable(on) => {
            if !in_base && !in_local {
                return Err(EditError::NoSuchTask(task.to_owned()));
            }
            let entry = tasks.object_value_or_set(task);
            match entry.get("enabled") {
                Some(prop) => prop.set_value(on.into()),
                None => {
                    entry.append("enabled", on.into());
                }
            }
        }
        TaskEdit::Delete => {
            if in_base {
                let file = if layers.base_is_default {
                    DEFAULT_CONFIG_NAME.to_owned()
                } else {
                    layers.base.path.display().to_string()
                };
                return Err(EditError::Committed {
                    task: task.to_owned(),
                    file,
                });
            }
            tasks
                .get(task)
                .ok_or_else(|| EditError::NoSuchTask(task.to_owned()))?
                .remove();
        }
    }
    let mut new_text = root.to_string();
    if !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    let checked = Layers::with_local(dir, new_text.clone()).map_err(EditError::Invalid)?;
    let config = super::build(&checked).map_err(EditError::Invalid)?;
    let file = dir.join(LOCAL_CONFIG_FILE);
    write_atomically(&file, &new_text).map_err(|source| EditError::Write {
        path: file.clone(),
        source,
    })?;
    let excluded = created && keep_out_of_git(dir);
    Ok(Edited {
        file,
        created,
        excluded,
        config,
    })
}

/// Adds the personal file of the project in `dir` to git's
/// `info/exclude` unless git already ignores it; whether it did.
fn keep_out_of_git(dir: &Path) -> bool {
    use std::io::Write;
    if crate::git::git(dir, &["check-ignore", "-q", LOCAL_CONFIG_FILE]).is_ok() {
        return false;
    }
    let (Ok(prefix), Ok(exclude)) = (
        crate::git::git(dir, &["rev-parse", "--show-prefix"]),
        crate::git::git(
            dir,
            &[
                "rev-parse",
                "--path-format=absolute",
                "--git-path",
                "info/exclude",
            ],
        ),
    ) else {
        return false;
    };
    let prefix = String::from_utf8_lossy(&prefix).trim().to_owned();
    let exclude = PathBuf::from(String::from_utf8_lossy(&exclude).trim());
    let line = format!("/{prefix}{LOCAL_CONFIG_FILE}\n");
    let _ = std::fs::create_dir_all(exclude.parent().unwrap_or(Path::new(".")));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&exclude)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .is_ok()
}

/// A JSON value as the CST builds it.
fn input(v: Value) -> CstInputValue {
    match v {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s),
        Value::Array(a) => CstInputValue::Array(a.into_iter().map(input).collect()),
        Value::Object(o) => {
            CstInputValue::Object(o.into_iter().map(|(k, v)| (k, input(v))).collect())
        }
    }
}

/// Readers see the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const COMMITTED: &str = r#"{
  "tasks": {
    "lint": {"analyzers": ["custom-lint"], "triggers": ["save"]}
  },
  "analyzers": {
    "custom-lint": {"command": "true", "mode": "project", "parser": "exit-code"}
  }
}
"#;

    fn project(local: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(super::super::CONFIG_FILE), COMMITTED).unwrap();
        if let Some(text) = local {
            std::fs::write(dir.path().join(LOCAL_CONFIG_FILE), text).unwrap();
        }
        dir
    }

    fn local(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join(LOCAL_CONFIG_FILE)).unwrap()
    }

    #[test]
    fn disabling_a_committed_task_writes_only_the_personal_file() {
        let dir = project(None);
        let edited = edit_task(dir.path(), "lint", TaskEdit::Enable(false)).unwrap();
        assert!(edited.created);
        assert!(!edited.config.tasks["lint"].enabled);
        let v: Value = serde_json::from_str(&local(&dir)).unwrap();
        assert_eq!(v, json!({"tasks": {"lint": {"enabled": false}}}));
        let committed =
            std::fs::read_to_string(dir.path().join(super::super::CONFIG_FILE)).unwrap();
        assert_eq!(committed, COMMITTED);
        edit_task(dir.path(), "lint", TaskEdit::Enable(true)).unwrap();
        let v: Value = serde_json::from_str(&local(&dir)).unwrap();
        assert_eq!(v, json!({"tasks": {"lint": {"enabled": true}}}));
    }

    #[test]
    fn a_new_task_is_created_and_deleted_and_the_rest_of_the_file_keeps_its_layout() {
        let before = "{\n    \"daemon\": {\"max_rss_mb\": 300},\n    \"tasks\": {}\n}\n";
        let dir = project(Some(before));
        let task = json!({"analyzers": ["custom-lint"], "triggers": ["save"], "priority": "low"});
        let edited = edit_task(dir.path(), "mine", TaskEdit::Define(task)).unwrap();
        assert!(!edited.created);
        assert!(edited.config.tasks.contains_key("mine"));
        assert!(local(&dir).contains("    \"daemon\": {\"max_rss_mb\": 300},"));
        edit_task(dir.path(), "mine", TaskEdit::Delete).unwrap();
        let v: Value = serde_json::from_str(&local(&dir)).unwrap();
        assert_eq!(v, json!({"daemon": {"max_rss_mb": 300}, "tasks": {}}));
    }

    #[test]
    fn an_edit_that_would_break_the_config_is_refused_and_nothing_changes() {
        let before = "{\"tasks\": {}}\n";
        let dir = project(Some(before));
        let bad = json!({"analyzers": ["no-such-analyzer"], "triggers": ["save"]});
        let err = edit_task(dir.path(), "mine", TaskEdit::Define(bad)).unwrap_err();
        let EditError::Invalid(e) = &err else {
            panic!("{err}")
        };
        let p = &e.problems()[0];
        assert!(p.file.ends_with(LOCAL_CONFIG_FILE), "{p}");
        assert!(p.pointer.starts_with("/tasks/mine"), "{p}");
        assert_eq!(local(&dir), before);
    }

    #[test]
    fn a_committed_task_cannot_be_deleted_and_unknown_ones_are_named() {
        let dir = project(None);
        let err = edit_task(dir.path(), "lint", TaskEdit::Delete).unwrap_err();
        assert!(matches!(err, EditError::Committed { .. }), "{err}");
        assert!(err.to_string().contains("disable it"), "{err}");
        let err = edit_task(dir.path(), "nope", TaskEdit::Enable(false)).unwrap_err();
        assert!(matches!(err, EditError::NoSuchTask(_)), "{err}");
        let err = edit_task(dir.path(), "a/b", TaskEdit::Delete).unwrap_err();
        assert!(matches!(err, EditError::BadName(_)), "{err}");
        assert!(!dir.path().join(LOCAL_CONFIG_FILE).exists());
    }

    #[test]
    fn a_new_personal_file_is_kept_out_of_commits() {
        let dir = project(None);
        let git = |args: &[&str]| crate::git::git(dir.path(), args);
        git(&["init", "-q"]).unwrap();
        edit_task(dir.path(), "lint", TaskEdit::Enable(false)).unwrap();
        git(&["check-ignore", "-q", LOCAL_CONFIG_FILE]).expect("ignored now");
        let again = edit_task(dir.path(), "lint", TaskEdit::Enable(true)).unwrap();
        assert!(!again.excluded);
        let exclude = std::fs::read_to_string(dir.path().join(".git/info/exclude")).unwrap();
        assert_eq!(exclude.matches(LOCAL_CONFIG_FILE).count(), 1, "{exclude}");
    }

    #[test]
    fn a_broken_personal_file_is_not_edited() {
        let dir = project(Some("{\"tasks\": "));
        let err = edit_task(dir.path(), "lint", TaskEdit::Enable(false)).unwrap_err();
        let EditError::Invalid(e) = &err else {
            panic!("{err}")
        };
        assert_eq!(e.problems()[0].line, 1, "{err}");
        assert_eq!(local(&dir), "{\"tasks\": ");
    }
}
