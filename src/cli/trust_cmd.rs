//! `bgtask trust`: lets hooks, saves, schedules and idle time run this
//! worktree's tasks (see `trust/` for what is trusted and why).

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::{Ctx, UsageError};
use crate::engine::Workspace;
use crate::exit;
use crate::trust::{self, TaskTrust};

pub const EXAMPLES: &str = "Examples:
  bgtask trust              show what the tasks would run, and trust it (asks first)
  bgtask trust --yes        trust without asking (scripts)
  bgtask trust --diff       what changed since it was trusted (after a `git pull`, say)
  bgtask trust --revoke     nothing runs by itself here any more
  bgtask trust --status --json
`bgtask run` and `bgtask submit` never need trust; CI=true (or `bgtask start --trust`) skips the check.";

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show what changed since this worktree was trusted, and trust nothing.
    #[arg(long, conflicts_with_all = ["revoke", "status"])]
    pub diff: bool,
    /// Forget this worktree's trust.
    #[arg(long, conflicts_with = "status")]
    pub revoke: bool,
    /// Each task's trust, and trust nothing.
    #[arg(long)]
    pub status: bool,
    /// Print JSON (with --status or --diff).
    #[arg(long)]
    pub json: bool,
}

fn label(t: &TaskTrust) -> &'static str {
    match t {
        TaskTrust::Trusted => "trusted",
        TaskTrust::Untrusted => "not trusted",
        TaskTrust::Changed { .. } => "changed since trusted",
    }
}

pub fn run(ctx: &Ctx, args: &TrustArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let root = &workspace.root;
    if args.revoke {
        let had = trust::revoke(root)?;
        anstream::println!(
            "{}",
            if had {
                "this worktree is no longer trusted: hooks, saves, schedules and idle time run nothing"
            } else {
                "this worktree was not trusted"
            }
        );
        return Ok(exit::OK);
    }
    let fp = trust::fingerprint_worktree(&workspace.projects()?, root);
    let record = trust::load(root);
    let states = trust::evaluate(&fp, record.as_ref());
    if args.status || args.diff {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&states)?);
            return Ok(exit::OK);
        }
        for (task, state) in &states {
            anstream::println!("{task}: {}", label(state));
            if let TaskTrust::Changed { diff } = state {
                for line in diff {
                    anstream::println!("    {line}");
                }
            }
        }
        if args.diff && states.values().all(|s| *s == TaskTrust::Trusted) {
            anstream::println!("nothing changed since this worktree was trusted");
        }
        return Ok(exit::OK);
    }
    anstream::println!(
        "trusting {} means these may run by themselves (on hooks, saves, schedules, idle):",
        root.display()
    );
    for (task, lines) in &fp.tasks {
        let state = &states[task];
        anstream::println!("  {task} ({})", label(state));
        match state {
            TaskTrust::Changed { diff } => {
                for line in diff {
                    anstream::println!("      {line}");
                }
            }
            _ if lines.is_empty() => anstream::println!("      built-in analyzers only"),
            _ => {
                for line in lines {
                    anstream::println!("      {line}");
                }
            }
        }
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "not a terminal, so not asking; `bgtask trust --yes` trusts without asking".into(),
            )
            .into());
        }
        eprint!("trust this worktree? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anstream::println!("not trusted");
            return Ok(exit::OK);
        }
    }
    let file = trust::save(root, &fp)?;
    anstream::println!("trusted ({})", file.display());
    ctx.note("`bgtask trust --revoke` undoes it; a change to what a task runs needs trust again");
    Ok(exit::OK)
}
