//! `bgtask tools install|list`: the analyzers' tools in bgtask's managed
//! cache. Installing is always explicit and in the foreground.

use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::progress::{Spinner, enabled};
use super::{Ctx, UsageError};
use crate::analyze::AnalyzerDef;
use crate::config::Config;
use crate::engine::{self, Workspace};
use crate::exit;
use crate::tools::{self, install};

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Install analyzers' tools (pinned versions) into bgtask's cache: pip into a venv, npm into a prefix.
    #[command(
        after_help = "Examples:\n  bgtask tools install              the missing tools of analyzers that apply here\n  bgtask tools install bandit eslint\n  bgtask tools install --all        every tool bgtask can install"
    )]
    Install {
        /// Analyzer names; default: those that apply here and are missing.
        names: Vec<String>,
        /// Every analyzer bgtask can install.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// List analyzers, what bgtask would install for them, and where each tool is found.
    #[command(after_help = "Examples:\n  bgtask tools list\n  bgtask tools list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: ToolsCommand) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let config = crate::config::load(&workspace.root)?;
    match cmd {
        ToolsCommand::List { json } => list(&config, &workspace, json),
        ToolsCommand::Install { names, all } => {
            let defs = chosen(&config, &workspace, &names, all)?;
            install_all(ctx, &workspace, &defs)
        }
    }
}

fn list(config: &Config, workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let rows: Vec<_> = config
        .analyzers
        .values()
        .map(|d| {
            let found = d.external().and_then(|s| tools::find(s, &workspace.root));
            json!({
                "analyzer": d.name,
                "pip": d.install.pip,
                "npm": d.install.npm,
                "hint": d.install_hint(),
                "builtin": d.external().is_none(),
                "path": found.as_ref().map(|(p, _)| p.display().to_string()),
                "origin": found.as_ref().map(|(_, o)| o.label()),
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    for r in &rows {
        let pkgs: Vec<String> = ["pip", "npm"]
            .iter()
            .flat_map(|k| r[*k].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let what = if r["builtin"].as_bool() == Some(true) {
            "built in".to_owned()
        } else if pkgs.is_empty() {
            format!(
                "not installable by bgtask: {}",
                r["hint"].as_str().unwrap_or("")
            )
        } else {
            pkgs.join(" ")
        };
        let at = match (r["path"].as_str(), r["origin"].as_str()) {
            (Some(p), Some(o)) => format!("{p} ({o})"),
            _ => "-".to_owned(),
        };
        anstream::println!(
            "  {:<11} {:<40} {}",
            r["analyzer"].as_str().unwrap_or(""),
            what,
            at
        );
    }
    Ok(exit::OK)
}

/// The analyzers to install: named ones, `--all`, or the missing ones that apply.
fn chosen(
    config: &Config,
    workspace: &Workspace,
    names: &[String],
    all: bool,
) -> anyhow::Result<Vec<Arc<AnalyzerDef>>> {
    if all {
        return Ok(config
            .analyzers
            .values()
            .filter(|d| d.install.is_managed())
            .cloned()
            .collect());
    }
    if names.is_empty() {
        return Ok(engine::applicability(config, workspace)
            .into_iter()
            .filter(|a| a.applies.is_ok())
            .map(|a| config.analyzers[&a.analyzer].clone())
            .filter(|d| {
                d.install.is_managed()
                    && d.external()
                        .is_some_and(|s| tools::find(s, &workspace.root).is_none())
            })
            .collect());
    }
    let mut v = Vec::new();
    for n in names {
        let d = config.analyzers.get(n).ok_or_else(|| {
            UsageError(format!(
                "unknown analyzer `{n}`; analyzers: {}",
                config
                    .analyzers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if !d.install.is_managed() {
            return Err(
                UsageError(format!("bgtask cannot install `{n}`: {}", d.install_hint())).into(),
            );
        }
        v.push(d.clone());
    }
    Ok(v)
}

fn install_all(ctx: &Ctx, workspace: &Workspace, defs: &[Arc<AnalyzerDef>]) -> anyhow::Result<u8> {
    let steps = install::plan(defs);
    if steps.is_empty() {
        anstream::println!(
            "nothing to install: every analyzer that applies here is installed (or bgtask cannot install it; see `bgtask doctor`)"
        );
        return Ok(exit::OK);
    }
    anstream::println!(
        "installing into {}:",
        tools::cache_dir().join("tools").display()
    );
    for s in &steps {
        anstream::println!("  {} (for {})", s.describe(), s.analyzers.join(", "));
    }
    let spinner = Spinner::new(enabled(ctx.quiet));
    let mut failed = false;
    for s in &steps {
        if let Err(e) = install::run_step(s, &|msg| spinner.say(msg)) {
            spinner.println(&format!("error: {e}"));
            failed = true;
        }
    }
    spinner.finish();
    let rt = super::runtime()?;
    for d in defs {
        let Some(spec) = d.external() else { continue };
        if let Some((path, origin)) = tools::find(spec, &workspace.root) {
            match rt.block_on(tools::detect_version(&path, spec, &workspace.root)) {
                tools::Probe::Version(v) => anstream::println!(
                    "  ✓ {:<10} {} {} ({})",
                    d.name,
                    v.as_deref().unwrap_or("?"),
                    path.display(),
                    origin.label()
                ),
                tools::Probe::Failed(why) => {
                    failed = true;
                    anstream::println!(
                        "  ✗ {:<10} {} does not work: {why}",
                        d.name,
                        path.display()
                    );
                }
            }
        } else {
            failed = true;
            anstream::println!("  ✗ {:<10} still not found", d.name);
        }
    }
    Ok(if failed { exit::INTERNAL } else { exit::OK })
}
