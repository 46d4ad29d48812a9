//! Every task of a worktree as a front end lists it (what it runs, when,
//! and which file says so), the config as merged from its files, and task
//! edits addressed by task key (`lint`, `services/api:lint`).

use std::path::{Component, Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::edit::{EditError, Edited, TaskEdit, edit_task};
use super::load::Layers;
use super::raw::{Priority, TriggerKind};
use super::source::escape;
use super::{ConfigError, Projects};

/// One task, as `GET …/tasks` and `bgtask task list` show it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TaskInfo {
    /// What the daemon and `bgtask run` call it.
    pub key: String,
    /// Its project: `.` for the worktree's own, else the directory.
    pub project: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub analyzers: Vec<String>,
    pub triggers: Vec<TriggerKind>,
    /// Cron expression, when the task has a schedule.
    pub schedule: Option<String>,
    pub idle_minutes: u32,
    pub priority: Priority,
    /// Which files define it: `committed`, `personal` (the local file,
    /// which can be edited), `built-in`.
    pub defined_in: Vec<&'static str>,
}

/// Every task of every project in `root`, in key order per project.
pub fn list(root: &Path, projects: &Projects) -> Result<Vec<TaskInfo>, ConfigError> {
    let mut out = Vec::new();
    for p in projects.all() {
        let layers = Layers::read(&root.join(&p.dir))?;
        for (name, t) in &p.config.tasks {
            let pointer = format!("/tasks/{}", escape(name));
            let mut defined_in = Vec::new();
            if layers.base.value.pointer(&pointer).is_some() {
                defined_in.push(if layers.base_is_default {
                    "built-in"
                } else {
                    "committed"
                });
            }
            if layers
                .local
                .as_ref()
                .is_some_and(|l| l.value.pointer(&pointer).is_some())
            {
                defined_in.push("personal");
            }
            out.push(TaskInfo {
                key: p.key(name),
                project: p.name(),
                name: name.clone(),
                description: t.description.clone(),
                enabled: t.enabled,
                analyzers: t.analyzers.clone(),
                triggers: t.triggers.clone(),
                schedule: t.schedule.as_ref().map(|s| s.expr.clone()),
                idle_minutes: t.idle_minutes,
                priority: t.priority,
                defined_in,
            });
        }
    }
    Ok(out)
}

/// Each project's config as merged from its files (the committed one, or
/// the built-in default, with the personal file over it), by project.
pub fn effective(root: &Path, projects: &Projects) -> Result<Vec<(String, Value)>, ConfigError> {
    projects
        .all()
        .iter()
        .map(|p| Ok((p.name(), Layers::read(&root.join(&p.dir))?.merged())))
        .collect()
}

/// Applies `edit` to the task `key` names: `name` in the worktree's own
/// project, `dir:name` in a nested one (which must exist, even to create
/// a task there).
pub fn edit(
    root: &Path,
    projects: &Projects,
    key: &str,
    edit: TaskEdit,
) -> Result<Edited, EditError> {
    let (dir, name) = match key.rsplit_once(':') {
        None => (PathBuf::new(), key),
        Some((dir, name)) => {
            let dir = PathBuf::from(dir);
            let known = dir.components().all(|c| matches!(c, Component::Normal(_)))
                && projects.all()[1..].iter().any(|p| p.dir == dir);
            if !known {
                return Err(EditError::NoProject(dir.display().to_string()));
            }
            (dir, name)
        }
    };
    edit_task(&root.join(dir), name, edit)
}
