//! Command-line definitions (clap derive) and dispatch. Each command lives in
//! its own file and returns an exit code; errors go back to `main`, which
//! prints them and picks the code with [`exit_code`].

pub(crate) mod baseline_cmd;
mod baseline_ref;
mod cache_cmd;
mod config_cmd;
mod daemon_cmd;
mod doctor;
mod doctor_background;
mod events_cmd;
mod gate;
mod hook_cmd;
mod init;
mod jobs_cmd;
mod notify_cmd;
mod pause_cmd;
pub use pause_cmd::status_line as automation_line;
mod progress;
mod report_cmd;
pub(crate) mod run_cmd;
mod task_cmd;
mod tools_cmd;
mod trust_cmd;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::{exit, report};

const ABOUT: &str =
    "Runs code analyzers in the background while you work, and in the foreground in CI.";

#[derive(Debug, Parser)]
#[command(name = "bgtask", version, about = ABOUT, long_about = None, propagate_version = true)]
#[command(
    after_help = "Start with `bgtask init`, then `bgtask doctor`, then `bgtask run all`; `bgtask start` runs them in the background.\nExit codes: 0 ok · 1 findings · 2 analyzer failed · 3 analyzer missing · 4 daemon not running · 64 usage · 78 bad config."
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
    /// The result caches, this worktree's and the team's (`cache.remote`): stats, prune, verify.
    #[command(subcommand, after_help = cache_cmd::EXAMPLES)]
    Cache(cache_cmd::CacheCommand),
    /// Validate the config, or print its JSON schema.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// List tasks; enable, disable, create, edit or delete them in your personal .background-tasks.local.json.
    #[command(subcommand)]
    Task(task_cmd::TaskCommand),
    /// Record today's findings as the baseline (.bgtask-baseline.json), or show it; `run --new-only` compares with it.
    #[command(subcommand, after_help = baseline_cmd::EXAMPLES)]
    Baseline(baseline_cmd::BaselineCommand),
    /// Work with JSON reports (merge CI shards).
    #[command(subcommand)]
    Report(report_cmd::ReportCommand),
    /// Start this worktree's background daemon.
    #[command(after_help = daemon_cmd::START_EXAMPLES)]
    Start(daemon_cmd::StartArgs),
    /// Watch this worktree in the terminal: triggered runs, one line per result (like watchexec).
    #[command(after_help = daemon_cmd::WATCH_EXAMPLES)]
    Watch(daemon_cmd::WatchArgs),
    /// Stop the daemon: running jobs are stopped and run again at the next start.
    #[command(after_help = "Example:\n  bgtask stop")]
    Stop,
    /// Stop and start the daemon.
    #[command(after_help = "Example:\n  bgtask restart")]
    Restart(daemon_cmd::StartArgs),
    /// Is the daemon running? Its config state, queue, running jobs, recent runs, health.
    #[command(
        after_help = "Examples:\n  bgtask status\n  bgtask status --json\nExit code 4 when the daemon is not running."
    )]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue tasks in the daemon.
    #[command(after_help = jobs_cmd::SUBMIT_EXAMPLES)]
    Submit(jobs_cmd::SubmitArgs),
    /// What is waiting in the daemon, with priority, wait time and dedup key.
    #[command(after_help = "Examples:\n  bgtask queue\n  bgtask queue --json")]
    Queue {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Past runs, newest first.
    #[command(
        after_help = "Examples:\n  bgtask history\n  bgtask history --task security --limit 5 --json"
    )]
    History(jobs_cmd::HistoryArgs),
    /// A past run's report, in any report format.
    #[command(
        after_help = "Examples:\n  bgtask show 42\n  bgtask show 42 --format sarif > run42.sarif"
    )]
    Show {
        run_id: i64,
        #[arg(long, short = 'f', value_enum, default_value_t = report::Format::Console)]
        format: report::Format,
    },
    /// A run's captured analyzer output; --follow streams a running one.
    #[command(after_help = "Examples:\n  bgtask logs 42\n  bgtask logs 43 --follow")]
    Logs {
        run_id: i64,
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// The daemon's events as they happen: jobs queued, started, finished, analyzers, config, health.
    #[command(after_help = events_cmd::EXAMPLES)]
    Events(events_cmd::EventsArgs),
    /// A local web dashboard and HTTP API over every project with a daemon (127.0.0.1 unless --listen; token).
    #[command(after_help = DASHBOARD_EXAMPLES)]
    Dashboard(DashboardArgs),
    /// An MCP server on stdio for AI coding agents: findings, runs and analyses of this worktree as tools.
    #[command(after_help = MCP_EXAMPLES)]
    Mcp,
    /// A Language Server on stdio: the worktree's current findings as editor diagnostics, updated as runs finish.
    #[command(after_help = LSP_EXAMPLES)]
    Lsp(LspArgs),
    /// Cancel a waiting or running job, or every waiting one (--waiting).
    #[command(
        after_help = "Examples:\n  bgtask cancel 17\n  bgtask cancel --waiting --task tests    # every queued job of `tests`"
    )]
    Cancel(jobs_cmd::CancelArgs),
    /// Run a past run's job again (and lift quarantine on its task's analyzers), or every failed one (--failed).
    #[command(
        after_help = "Examples:\n  bgtask retry 42\n  bgtask retry --failed --since 1h          # every task whose last run failed, last hour"
    )]
    Retry(jobs_cmd::RetryArgs),
    /// Pause automation: saves, hooks, schedules and idle time queue work but start none until `bgtask resume`.
    #[command(after_help = pause_cmd::PAUSE_EXAMPLES)]
    Pause(pause_cmd::PauseArgs),
    /// Resume automation: the jobs held while it was paused start now.
    #[command(after_help = pause_cmd::RESUME_EXAMPLES)]
    Resume {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Per task: runs, success rate, mean/p95 duration, queue wait, peak memory, CPU.
    #[command(after_help = "Examples:\n  bgtask metrics\n  bgtask metrics --json")]
    Metrics {
        #[arg(long)]
        json: bool,
    },
    /// The daemon's health checks, now (exit 1 on an error).
    #[command(after_help = "Examples:\n  bgtask health\n  bgtask health --json")]
    Health {
        #[arg(long)]
        json: bool,
    },
    /// The retention sweep, now.
    #[command(after_help = "Example:\n  bgtask cleanup")]
    Cleanup {
        #[arg(long)]
        json: bool,
    },
    /// Re-read the config now (the daemon also watches it).
    #[command(after_help = "Example:\n  bgtask reload")]
    Reload,
    /// A systemd user unit so the daemon starts at login.
    #[command(subcommand)]
    Service(daemon_cmd::ServiceCommand),
    /// Install git hooks that queue work in the daemon (existing hooks are chained).
    #[command(after_help = hook_cmd::INSTALL_EXAMPLES)]
    InstallHooks(hook_cmd::InstallArgs),
    /// Remove bgtask's git hooks and put back the ones they replaced.
    ///
    /// The daemon and the worktree's trust are left as they are (saves,
    /// schedules and idle time still run tasks while both last), unless
    /// asked: `--stop` stops the daemon, `--revoke` forgets the trust.
    #[command(
        after_help = "Examples:\n  bgtask uninstall-hooks\n  bgtask uninstall-hooks --stop --revoke    # nothing runs by itself here any more"
    )]
    UninstallHooks {
        /// Also stop this worktree's daemon.
        #[arg(long)]
        stop: bool,
        /// Also forget this worktree's trust.
        #[arg(long)]
        revoke: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let hooks, saves, schedules and idle time run this worktree's tasks.
    #[command(after_help = trust_cmd::EXAMPLES)]
    Trust(trust_cmd::TrustArgs),
    /// What an installed git hook runs (fast; always exits with the chained hook's code).
    #[command(
        after_help = "Examples (git runs these through the shims):\n  bgtask hook post-commit\n  bgtask hook --gate pre-push origin git@host:repo.git < refs"
    )]
    Hook(hook_cmd::HookArgs),
    /// Check the notification channels: send a test notification.
    #[command(subcommand, after_help = notify_cmd::TEST_EXAMPLES)]
    Notify(notify_cmd::NotifyCommand),
    /// The notification delivery log: what went where, failures included.
    #[command(after_help = notify_cmd::LOG_EXAMPLES)]
    Notifications(notify_cmd::LogArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  bgtask completions bash > ~/.local/share/bash-completion/completions/bgtask\n  bgtask completions zsh > \"${fpath[1]}/_bgtask\""
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  bgtask man > bgtask.1 && man ./bgtask.1")]
    Man,
}

const MCP_EXAMPLES: &str = "Examples:
  bgtask mcp                              # serves the worktree it is started in, on stdin/stdout
  bgtask -C ~/src/app mcp
In an agent's MCP config:  {\"command\": \"bgtask\", \"args\": [\"mcp\"]}
Over HTTP, `bgtask dashboard` serves the same at /mcp?project=ID (with the dashboard's token).
Agents can run analyses, read runs and findings, queue, cancel and retry work, and pause the
automation; they cannot trust a worktree or install hooks.";

const LSP_EXAMPLES: &str = "Examples:
  bgtask lsp                   # started by the editor, for its workspace folder's worktree
  bgtask lsp --doctor          # what the server sees here, and what to fix when nothing shows
In Neovim:  vim.lsp.start({name = \"bgtask\", cmd = {\"bgtask\", \"lsp\"}})
Each open file shows its current findings (what the latest run of each task found there);
they update as the daemon finishes runs, and stay (without updates) while it is stopped.
A file no run has looked at is analysed when opened (initializationOptions
{\"analyzeOnOpen\": false} turns that off). With a .bgtask-baseline.json, accepted findings
are hints and the rest are marked new. Code actions: accept a finding in the baseline, show
its run in the dashboard.";

const DASHBOARD_EXAMPLES: &str = "Examples:
  bgtask dashboard                        # prints \"open http://127.0.0.1:7420/?token=…\" and opens the browser
  bgtask dashboard --port 0 --no-open --json
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:7420/api/v1/projects
  bgtask dashboard --listen 0.0.0.0:7420 --tls-cert cert.pem --tls-key key.pem --allow-host dash.example.com
Every worktree whose daemon started lately is listed; a second `bgtask dashboard` prints the running one's address.";

#[derive(Debug, Args)]
pub struct LspArgs {
    /// Do not serve: say what the server would see here (worktree, config, findings, daemon, trust, baseline, dashboard) and how to set an editor up.
    #[arg(long)]
    pub doctor: bool,
    /// With --doctor: as JSON.
    #[arg(long, requires = "doctor")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The port (0: any free one).
    #[arg(long, default_value_t = 7420)]
    pub port: u16,
    /// Listen on this address instead of 127.0.0.1 and `::1`, e.g. 0.0.0.0:7420 or [::]:0; needs --tls-cert and --tls-key, or --insecure-listen.
    #[arg(long, value_name = "IP:PORT", value_parser = crate::dashboard::parse_listen, conflicts_with = "port")]
    pub listen: Option<std::net::SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); with --tls-key. Also without --listen.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve --listen's address over plain HTTP: the token travels in clear text.
    #[arg(long, requires = "listen", conflicts_with = "tls_cert")]
    pub insecure_listen: bool,
    /// Also accept this name in the Host header, as given and with the port when it has none (repeatable). The listen address itself is accepted; for 0.0.0.0 or [::], give the names clients use.
    #[arg(long, value_name = "NAME[:PORT]", value_parser = crate::dashboard::parse_host)]
    pub allow_host: Vec<String>,
    /// Do not open the browser.
    #[arg(long)]
    pub no_open: bool,
    /// Print {"url", "token", "pid"} as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Forget a project (its id from the API or the page) and exit; a daemon that starts there lists it again.
    #[arg(long, value_name = "ID")]
    pub forget: Option<String>,
    /// Print the API's OpenAPI 3.1 document and exit (also served at /api/v1/openapi.json).
    #[arg(long)]
    pub openapi: bool,
}

fn dashboard(args: DashboardArgs) -> anyhow::Result<u8> {
    if args.openapi {
        print!("{}", crate::dashboard::openapi_json());
        return Ok(exit::OK);
    }
    if let Some(id) = &args.forget {
        return crate::dashboard::forget(id);
    }
    if args.listen.is_some() && args.tls_cert.is_none() && !args.insecure_listen {
        return Err(UsageError(
            "--listen puts the dashboard on the network: add `--tls-cert FILE --tls-key FILE` \
             to serve HTTPS, or `--insecure-listen` to serve plain HTTP (the token then travels in clear text)"
                .to_owned(),
        )
        .into());
    }
    // Read before anything listens: a bad file is the user's to fix.
    let tls = match args.tls_cert.as_deref().zip(args.tls_key.as_deref()) {
        Some((cert, key)) => {
            Some(crate::dashboard::Tls::load(cert, key).map_err(|e| UsageError(e.to_string()))?)
        }
        None => None,
    };
    crate::dashboard::run(&crate::dashboard::Options {
        port: args.port,
        open: !args.no_open,
        json: args.json,
        listen: args.listen,
        tls,
        insecure_listen: args.insecure_listen,
        allow_hosts: args.allow_host,
    })
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
        Command::Cache(cmd) => cache_cmd::run(&ctx, &cmd),
        Command::Config(cmd) => config_cmd::run(&ctx, cmd),
        Command::Task(cmd) => task_cmd::run(&ctx, cmd),
        Command::Report(cmd) => report_cmd::run(&ctx, cmd),
        Command::Baseline(cmd) => baseline_cmd::run(&ctx, cmd),
        Command::Start(args) => daemon_cmd::start(&ctx, &args),
        Command::Watch(args) => daemon_cmd::watch(&ctx, &args),
        Command::Stop => daemon_cmd::stop(&ctx),
        Command::Restart(args) => {
            daemon_cmd::stop(&ctx)?;
            daemon_cmd::start(&ctx, &args)
        }
        Command::Status { json } => daemon_cmd::status(&ctx, json),
        Command::Submit(args) => jobs_cmd::submit(&ctx, &args),
        Command::Queue { json } => jobs_cmd::queue(&ctx, json),
        Command::History(args) => jobs_cmd::history(&ctx, &args),
        Command::Show { run_id, format } => jobs_cmd::show(&ctx, run_id, format),
        Command::Logs { run_id, follow } => jobs_cmd::logs(&ctx, run_id, follow),
        Command::Events(args) => events_cmd::events(&ctx, &args),
        Command::Dashboard(args) => dashboard(args),
        Command::Mcp => crate::mcp::serve_stdio(&ctx.cwd),
        Command::Lsp(args) if args.doctor => crate::lsp::doctor(&ctx.cwd, args.json),
        Command::Lsp(_) => crate::lsp::serve_stdio(&ctx.cwd),
        Command::Cancel(args) => jobs_cmd::cancel(&ctx, &args),
        Command::Retry(args) => jobs_cmd::retry(&ctx, &args),
        Command::Pause(args) => pause_cmd::pause(&ctx, &args),
        Command::Resume { json } => pause_cmd::resume(&ctx, json),
        Command::Metrics { json } => jobs_cmd::simple(&ctx, crate::ipc::Request::Metrics, json),
        Command::Health { json } => jobs_cmd::simple(&ctx, crate::ipc::Request::Health, json),
        Command::Cleanup { json } => jobs_cmd::simple(&ctx, crate::ipc::Request::Cleanup, json),
        Command::Reload => jobs_cmd::simple(&ctx, crate::ipc::Request::Reload, false),
        Command::Service(cmd) => daemon_cmd::service(&ctx, &cmd),
        Command::InstallHooks(args) => hook_cmd::install(&ctx, &args),
        Command::UninstallHooks { stop, revoke, json } => {
            hook_cmd::uninstall(&ctx, stop, revoke, json)
        }
        Command::Trust(args) => trust_cmd::run(&ctx, &args),
        Command::Hook(args) => Ok(hook_cmd::hook(&ctx, args)),
        Command::Notify(cmd) => notify_cmd::run(&ctx, &cmd),
        Command::Notifications(args) => notify_cmd::log(&ctx, &args),
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

/// The log level a command runs with unless `BGTASK_LOG` says otherwise.
pub fn default_log_level(cli: &Cli) -> &'static str {
    match &cli.command {
        Command::Start(a) | Command::Restart(a) if a.dev => "debug",
        Command::Start(a) | Command::Restart(a) if a.foreground => "info",
        Command::Watch(a) if a.dev => "debug",
        _ if cli.verbose => "info",
        _ => "warn",
    }
}

/// The exit code for an error that reached `main`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if closed_pipe(err) {
        return exit::CLOSED_PIPE;
    }
    for cause in err.chain() {
        // No such run, job or task, or a request that cannot be carried
        // out as asked: the caller's to fix, like an unknown name to `run`.
        if let Some(crate::ipc::ClientError::Daemon(e)) = cause.downcast_ref()
            && matches!(
                e.kind,
                crate::ipc::ErrorKind::NotFound | crate::ipc::ErrorKind::Invalid
            )
        {
            return exit::USAGE;
        }
        if cause.downcast_ref::<crate::config::ConfigError>().is_some() {
            return exit::CONFIG;
        }
        if cause
            .downcast_ref::<crate::baseline::BaselineError>()
            .is_some()
        {
            return exit::DATA;
        }
        if cause.downcast_ref::<crate::engine::UnknownName>().is_some()
            || cause
                .downcast_ref::<crate::engine::WorkspaceError>()
                .is_some()
            || cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<baseline_ref::UnknownRef>().is_some()
        {
            return exit::USAGE;
        }
        if cause.downcast_ref::<crate::report::MergeError>().is_some() {
            return exit::DATA;
        }
        if cause.downcast_ref::<crate::daemon::RootRefused>().is_some() {
            return exit::USAGE;
        }
    }
    exit::INTERNAL
}

/// The error is stdout's reader going away (`| head`): nothing to say.
pub fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
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
