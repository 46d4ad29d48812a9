//! `bgtask init`: writes `.background-tasks.json` with the built-in tasks,
//! keeping only the analyzers that apply to the files found here.

use clap::Args;

use super::{Ctx, UsageError};
use crate::config::CONFIG_FILE;
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
    let initial = engine::initial_config(&workspace, args.all)?;
    let (text, summary) = (initial.text, initial.summary);
    if args.stdout {
        print!("{text}");
        return Ok(exit::OK);
    }
    std::fs::write(&path, &text)
        .map_err(|e| anyhow::anyhow!(e).context(format!("write {}", path.display())))?;
    if initial.kept_all {
        ctx.note("no analyzer applies to the files here yet, so every built-in one was kept");
    }
    if ctx.quiet {
        return Ok(exit::OK);
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
