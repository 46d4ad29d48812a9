//! `bgtask report merge`: one report from the JSON reports of CI shards.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::Ctx;
use crate::report::{self, ConsoleOptions, Format};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge JSON reports (from `bgtask run … --shard K/N --format json`) into one; exits like a single run would.
    #[command(
        after_help = "Example:\n  bgtask report merge shard1.json shard2.json --format sarif --output results.sarif"
    )]
    Merge {
        /// JSON reports written by `bgtask run --format json`.
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Console)]
        format: Format,
        /// Write to FILE instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(ctx: &Ctx, cmd: ReportCommand) -> anyhow::Result<u8> {
    let ReportCommand::Merge {
        reports,
        format,
        output,
    } = cmd;
    let read: Vec<report::Report> = reports
        .iter()
        .map(|p| report::read(&ctx.cwd.join(p)))
        .collect::<Result<_, _>>()?;
    let named: Vec<(PathBuf, &report::Report)> = reports.iter().cloned().zip(&read).collect();
    report::check_shards(&named)?;
    let merged = report::merge(read)?;
    let text = report::render(
        &merged,
        format,
        &ConsoleOptions {
            verbose: ctx.verbose,
            summary_only: false,
            max_findings: None,
        },
    );
    match output {
        Some(path) => std::fs::write(ctx.cwd.join(&path), text)?,
        None if format == Format::Console => anstream::print!("{text}"),
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(merged.exit_code)
}
