//! `bgtask init`: writes `.background-tasks.json` with the built-in tasks,
//! keeping only the analyzers that apply to the files found here.

use std::path::Path;

use clap::Args;
use serde_json::Value;

use super::{Ctx, UsageError};
use crate::config::{CONFIG_FILE, DEFAULT_CONFIG};
use crate::engine::{self, Workspace};
use crate::exit;

pub const EXAMPLES: &str = "Examples:
  bgtask init              write .background-tasks.json at the project root
  bgtask init --stdout     print it instead
  bgtask init --all        keep every built-in analyzer, not only those that apply";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing .background-tasks.json.
    #[arg(long)]
    pub force: bool,
    /// Print the config instead of writing it.
    #[arg(long)]
    pub stdout: bool,
    /// Keep every built-in analyzer in the tasks, not only those that apply.
    #[arg(long)]
    pub all: bool,
}

pub fn run(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let path = workspace.root.join(CONFIG_FILE);
    if path.exists() && !args.force && !args.stdout {
        return Err(UsageError(format!(
            "{} already exists; `bgtask config validate` checks it, `bgtask init --force` replaces it",
            path.display()
        ))
        .into());
    }
    let defaults =
        crate::config::from_text(Path::new("<built-in default config>"), DEFAULT_CONFIG)?;
    let applies: Vec<String> = engine::applicability(&defaults, &workspace)
        .into_iter()
        .filter(|a| a.applies.is_ok())
        .map(|a| a.analyzer)
        .collect();
    let mut value: Value = serde_json::from_str(DEFAULT_CONFIG)?;
    let keep_all = args.all || applies.is_empty();
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
    crate::config::from_text(&path, &text)?;
    if args.stdout {
        print!("{text}");
        return Ok(exit::OK);
    }
    std::fs::write(&path, &text)
        .map_err(|e| anyhow::anyhow!(e).context(format!("write {}", path.display())))?;
    if applies.is_empty() {
        ctx.note("no analyzer applies to the files here yet, so every built-in one was kept");
    }
    anstream::println!("wrote {}", path.display());
    for s in summary {
        anstream::println!("  task {s}");
    }
    anstream::println!(
        "next: `bgtask doctor` shows what is installed, `bgtask run all` runs everything"
    );
    Ok(exit::OK)
}
