//! Command-line definitions (clap derive) and dispatch. Each command lives in
//! its own file and returns an exit code; errors go back to `main`, which
//! prints them and picks the code with [`exit_code`].

mod config_cmd;
mod doctor;
mod init;
mod progress;
mod report_cmd;
mod run_cmd;
mod tools_cmd;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::exit;

const ABOUT: &str =
    "Runs code analyzers in the background while you work, and in the foreground in CI.";

#[derive(Debug, Parser)]
#[command(name = "bgtask", version, about = ABOUT, long_about = None, propagate_version = true)]
#[command(
    after_help = "Start with `bgtask init`, then `bgtask doctor`, then `bgtask run all`.\nExit codes: 0 ok · 1 findings · 2 analyzer failed · 3 analyzer missing · 64 usage · 78 bad config."
)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Show more: every analyzer (also those that do not apply) and tool output on failures.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Show less: no progress, no notes on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run tasks or analyzers now, in the foreground (manual runs and CI).
    #[command(after_help = run_cmd::EXAMPLES)]
    Run(run_cmd::RunArgs),
    /// Write .background-tasks.json for the languages found in this project.
    #[command(after_help = init::EXAMPLES)]
    Init(init::InitArgs),
    /// Show which analyzers apply here, which are installed (path, version) and what to install.
    #[command(after_help = doctor::EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// Install analyzers' tools into bgtask's managed cache, or list them.
    #[command(subcommand)]
    Tools(tools_cmd::ToolsCommand),
    /// Validate the config, or print its JSON schema.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Work with JSON reports (merge CI shards).
    #[command(subcommand)]
    Report(report_cmd::ReportCommand),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  bgtask completions bash > ~/.local/share/bash-completion/completions/bgtask\n  bgtask completions zsh > \"${fpath[1]}/_bgtask\""
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  bgtask man > bgtask.1 && man ./bgtask.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    pub shell: clap_complete::Shell,
}

/// Shared context of every command.
pub struct Ctx {
    pub cwd: PathBuf,
    pub verbose: bool,
    pub quiet: bool,
}

impl Ctx {
    /// Notes for humans on stderr, unless `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            anstream::eprintln!("{msg}");
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let cwd = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let ctx = Ctx {
        cwd,
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Run(args) => run_cmd::run(&ctx, &args),
        Command::Init(args) => init::run(&ctx, &args),
        Command::Doctor(args) => doctor::run(&ctx, &args),
        Command::Tools(cmd) => tools_cmd::run(&ctx, cmd),
        Command::Config(cmd) => config_cmd::run(&ctx, cmd),
        Command::Report(cmd) => report_cmd::run(&ctx, cmd),
        Command::Completions(args) => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "bgtask", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(exit::OK)
        }
    }
}

/// The exit code for an error that reached `main`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<crate::config::ConfigError>().is_some() {
            return exit::CONFIG;
        }
        if cause.downcast_ref::<crate::engine::UnknownName>().is_some()
            || cause
                .downcast_ref::<crate::engine::WorkspaceError>()
                .is_some()
            || cause.downcast_ref::<UsageError>().is_some()
        {
            return exit::USAGE;
        }
        if cause.downcast_ref::<crate::report::MergeError>().is_some() {
            return exit::DATA;
        }
    }
    exit::INTERNAL
}

/// A request that cannot be carried out as asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A current-thread runtime: analyzer processes must be spawned from a thread
/// that outlives them (see `run/process.rs`).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
