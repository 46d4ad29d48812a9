//! `bgtask notify test` (a test notification through this worktree's
//! channels, no daemon needed) and `bgtask notifications` (the delivery
//! log: what went where, and every failure).

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};

use super::Ctx;
use crate::engine::Workspace;
use crate::exit;
use crate::notifier::console::ConsoleSink;
use crate::notifier::{ChannelName, Db, ProbeResult, test_worktree};

pub const TEST_EXAMPLES: &str = "Examples:
  bgtask notify test                    every channel this worktree's config enables
  bgtask notify test --channel email    only email: sent now, the server's answer shown
  bgtask notify test --channel desktop
Exit code 69 when a channel tried (or the one asked for) did not deliver.";

pub const LOG_EXAMPLES: &str = "Examples:
  bgtask notifications                  the last 20 deliveries, newest first
  bgtask notifications --limit 100 --json";

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test notification through the real channels and say what happened on each.
    #[command(after_help = TEST_EXAMPLES)]
    Test(TestArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    Console,
    Desktop,
    File,
    Email,
}

impl From<ChannelArg> for ChannelName {
    fn from(c: ChannelArg) -> ChannelName {
        match c {
            ChannelArg::Console => ChannelName::Console,
            ChannelArg::Desktop => ChannelName::Desktop,
            ChannelArg::File => ChannelName::File,
            ChannelArg::Email => ChannelName::Email,
        }
    }
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Only this channel (tried even if its `min_severity` is above `info`).
    #[arg(long, value_enum)]
    pub channel: Option<ChannelArg>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// How many deliveries, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, cmd: &NotifyCommand) -> anyhow::Result<u8> {
    match cmd {
        NotifyCommand::Test(args) => test(ctx, args),
    }
}

fn test(ctx: &Ctx, args: &TestArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let only = args.channel.map(ChannelName::from);
    let mut console = ConsoleSink::stdout(true);
    let mut tested =
        super::runtime()?.block_on(test_worktree(&workspace.root, only, &mut console))?;
    if let Some(e) = tested.unrecorded.take() {
        ctx.note(&format!(
            "note: not recording this in the delivery log: {:#}",
            anyhow::Error::new(e)
        ));
    }
    let mut failed = false;
    for (channel, result) in &tested.results {
        let what = match result {
            ProbeResult::Delivered(_) => "delivered",
            ProbeResult::Off(_) => {
                failed |= only == Some(*channel);
                "off"
            }
            ProbeResult::Failed(_) => {
                failed = true;
                "FAILED"
            }
        };
        anstream::println!("{:<8} {what}: {}", channel.as_str(), result.detail());
    }
    Ok(if failed { exit::UNAVAILABLE } else { exit::OK })
}

pub fn log(ctx: &Ctx, args: &LogArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let state = workspace.root.join(".bgtask").join(crate::store::FILE);
    let rows = if state.exists() {
        Db::open_worktree(&workspace.root)?.deliveries(args.limit)?
    } else {
        Vec::new()
    };
    if args.json {
        // A closed pipe (`| head`) is not an error.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&rows)?
        );
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        anstream::println!("no notifications yet");
        return Ok(exit::OK);
    }
    for r in &rows {
        let run = r
            .run_id
            .map(|id| format!(" (run {id})"))
            .unwrap_or_default();
        anstream::println!(
            "{}  {:<8} {:<9} {:<8} {}{run}: {}",
            r.time,
            r.channel,
            r.outcome,
            r.severity,
            r.event,
            r.title
        );
        if let Some(e) = &r.error {
            anstream::println!("    error: {e}");
        }
    }
    Ok(exit::OK)
}
