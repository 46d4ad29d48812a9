//! `bgtask config validate|show|schema`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::Ctx;
use crate::config::ConfigError;
use crate::engine::Workspace;
use crate::exit;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config (and the local overrides); every problem with file, line:column and JSON pointer.
    #[command(
        after_help = "Examples:\n  bgtask config validate\n  bgtask config validate some/other.json\n  bgtask config validate --json"
    )]
    Validate {
        /// Validate this file as a repo config instead of the project's.
        file: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the config as merged from its files (the committed one or the built-in default, your .background-tasks.local.json over it), per project.
    #[command(after_help = "Example:\n  bgtask config show | jq '.[\".\"].tasks'")]
    Show,
    /// Print the JSON schema of .background-tasks.json.
    #[command(after_help = "Example:\n  bgtask config schema > background-tasks.schema.json")]
    Schema,
}

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Show => {
            let workspace = Workspace::worktree(&ctx.cwd)?;
            let projects = workspace.projects()?;
            let merged: serde_json::Map<String, serde_json::Value> =
                crate::config::tasks::effective(&workspace.root, &projects)?
                    .into_iter()
                    .collect();
            println!("{}", serde_json::to_string_pretty(&merged)?);
            Ok(exit::OK)
        }
        ConfigCommand::Schema => {
            print!("{}", crate::config::schema_json());
            Ok(exit::OK)
        }
        ConfigCommand::Validate { file, json } => {
            let result = match &file {
                Some(f) => {
                    let path = ctx.cwd.join(f);
                    match crate::repofile::read_to_string(
                        None,
                        &path,
                        crate::config::MAX_CONFIG_BYTES,
                    ) {
                        Ok(Some(text)) => crate::config::from_text(&path, &text),
                        Ok(None) => Err(ConfigError::Read {
                            path: path.clone(),
                            source: std::io::ErrorKind::NotFound.into(),
                        }),
                        Err(e) => Err(ConfigError::Invalid {
                            problems: vec![crate::config::refused(&path, &e)],
                        }),
                    }
                }
                None => crate::config::load(&Workspace::discover(&ctx.cwd)?.root),
            };
            match result {
                Ok(config) => {
                    if json {
                        println!(
                            "{}",
                            json!({ "valid": true, "files": config.files, "tasks": config.tasks.keys().collect::<Vec<_>>(), "problems": [] })
                        );
                    } else if config.uses_default() {
                        anstream::println!(
                            "no .background-tasks.json here; the built-in tasks apply ({} tasks)",
                            config.tasks.len()
                        );
                    } else {
                        let files: Vec<String> = config
                            .files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect();
                        anstream::println!(
                            "✓ {} is valid: {} task{}, {} analyzers",
                            files.join(" + "),
                            config.tasks.len(),
                            if config.tasks.len() == 1 { "" } else { "s" },
                            config.analyzers.len()
                        );
                    }
                    Ok(exit::OK)
                }
                Err(e @ ConfigError::Invalid { .. }) if json => {
                    println!("{}", json!({ "valid": false, "problems": e.problems() }));
                    Ok(exit::CONFIG)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
