//! The config `bgtask init` writes (and the daemon, with `auto_init`): the
//! built-in tasks, keeping only the analyzers that apply to the files here.

use std::path::Path;

use serde_json::Value;

use super::{Workspace, applicability};
use crate::config::DEFAULT_CONFIG;

pub struct Initial {
    /// The config text, validated.
    pub text: String,
    /// `task (analyzer, …)` per task kept.
    pub summary: Vec<String>,
    /// Nothing applied yet, so every built-in analyzer was kept.
    pub kept_all: bool,
}

/// The initial config for `workspace`; with `all`, every built-in analyzer.
pub fn initial_config(workspace: &Workspace, all: bool) -> anyhow::Result<Initial> {
    let defaults =
        crate::config::from_text(Path::new("<built-in default config>"), DEFAULT_CONFIG)?;
    let applies: Vec<String> = applicability(&defaults, workspace)
        .into_iter()
        .filter(|a| a.applies.is_ok())
        .map(|a| a.analyzer)
        .collect();
    let mut value: Value = serde_json::from_str(DEFAULT_CONFIG)?;
    let keep_all = all || applies.is_empty();
    let mut summary = Vec::new();
    if let Some(Value::Object(tasks)) = value.get_mut("tasks") {
        tasks.retain(|name, task| {
            if let Some(Value::Array(list)) = task.get_mut("analyzers") {
                list.retain(|a| {
                    keep_all || a.as_str().is_some_and(|a| applies.iter().any(|x| x == a))
                });
                let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                if !names.is_empty() {
                    summary.push(format!("{name} ({})", names.join(", ")));
                }
                !list.is_empty()
            } else {
                false
            }
        });
    }
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    crate::config::from_text(&workspace.root.join(crate::config::CONFIG_FILE), &text)?;
    Ok(Initial {
        text,
        summary,
        kept_all: applies.is_empty(),
    })
}
