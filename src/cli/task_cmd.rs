//! `bgtask task list|enable|disable|set|delete`: the tasks, and edits to
//! them in the personal `.background-tasks.local.json` (the committed
//! config is never rewritten). The dashboard's task editor makes the same
//! edits (`config::tasks::edit`).

use std::io::Read;

use clap::Subcommand;
use serde_json::{Value, json};

use super::Ctx;
use crate::config::tasks::TaskInfo;
use crate::config::{EditError, TaskEdit};
use crate::engine::Workspace;
use crate::exit;

const EXAMPLES: &str = "Examples:
  bgtask task list
  bgtask task disable tests                 # in your .background-tasks.local.json
  bgtask task set lint-fast '{\"analyzers\": [\"pylint\"], \"triggers\": [\"save\"], \"priority\": \"low\"}'
  bgtask task set services/api:lint - < task.json
  bgtask task delete lint-fast              # only tasks your personal file defines";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum TaskCommand {
    /// Every task: what it runs, when, and which file defines it.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Turn a task on (in your personal file).
    Enable { task: String },
    /// Turn a task off (in your personal file); `bgtask run` can still run it.
    Disable { task: String },
    /// Create a task, or replace what your personal file says of it (merged over a committed definition).
    Set {
        task: String,
        /// The task as JSON, or `-` to read it from stdin.
        definition: String,
    },
    /// Delete a task your personal file defines (a committed one can only be disabled).
    Delete { task: String },
}

pub fn run(ctx: &Ctx, cmd: TaskCommand) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let projects = workspace.projects()?;
    let (key, edit) = match cmd {
        TaskCommand::List { json } => {
            let tasks = crate::config::tasks::list(&workspace.root, &projects)?;
            print_list(&tasks, json);
            return Ok(exit::OK);
        }
        TaskCommand::Enable { task } => (task, TaskEdit::Enable(true)),
        TaskCommand::Disable { task } => (task, TaskEdit::Enable(false)),
        TaskCommand::Delete { task } => (task, TaskEdit::Delete),
        TaskCommand::Set { task, definition } => match parse(&definition) {
            Ok(v) => (task, TaskEdit::Define(v)),
            Err(msg) => {
                anstream::eprintln!("error: {msg}");
                return Ok(exit::USAGE);
            }
        },
    };
    match crate::config::tasks::edit(&workspace.root, &projects, &key, edit) {
        Ok(edited) => {
            anstream::println!("{key}: written to {}", edited.file.display());
            if edited.excluded {
                ctx.note("note: added it to git's info/exclude: it is yours, not the repository's");
            }
            ctx.note("note: a running daemon reloads it by itself");
            Ok(exit::OK)
        }
        Err(e) => {
            anstream::eprintln!("error: {e}");
            Ok(match e {
                EditError::Invalid(_) => exit::CONFIG,
                EditError::Write { .. } => exit::UNAVAILABLE,
                _ => exit::USAGE,
            })
        }
    }
}

/// The task's JSON from the argument (or stdin for `-`).
fn parse(definition: &str) -> Result<Value, String> {
    let text = if definition == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("read the task from stdin: {e}"))?;
        s
    } else {
        definition.to_owned()
    };
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "the task is not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

fn print_list(tasks: &[TaskInfo], json: bool) {
    if json {
        println!("{}", json!({ "tasks": tasks }));
        return;
    }
    for t in tasks {
        let triggers: Vec<String> = t
            .triggers
            .iter()
            .map(|k| {
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        let when = if triggers.is_empty() {
            "by hand".to_owned()
        } else {
            triggers.join(", ")
        };
        let schedule = t
            .schedule
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        anstream::println!(
            "{:<20} {:<3} {} — on {when}{schedule}, {} priority [{}]",
            t.key,
            if t.enabled { "on" } else { "off" },
            t.analyzers.join(" "),
            t.priority.as_str(),
            t.defined_in.join(" + ")
        );
    }
}
