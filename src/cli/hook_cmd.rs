//! `bgtask install-hooks`, `uninstall-hooks` and `hook` (what the shims
//! run; the notify path normally never reaches clap, see `main.rs`). The
//! gating run of a blocking `pre-commit` / `pre-push` is `gate.rs`.

use clap::Args;

use super::Ctx;
use crate::engine::Workspace;
use crate::exit;
use crate::hooks::{self, Action, HookChange, HookError};

pub const INSTALL_EXAMPLES: &str = "Examples:
  bgtask install-hooks            install the hooks the config names (default: post-commit, post-merge,
                                  post-checkout, post-rewrite, pre-push); existing hooks are chained
  bgtask install-hooks --force    also when core.hooksPath comes from your global git config
Installing also trusts this worktree (see `bgtask trust`). BGTASK=0 git commit … skips bgtask once;
BGTASK_SKIP=security,tests skips tasks.";

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Install even into a core.hooksPath set in the global or system git config.
    #[arg(long)]
    pub force: bool,
    /// Do not record trust for this worktree.
    #[arg(long)]
    pub no_trust: bool,
    /// Do not start the daemon now (by default it starts, when
    /// `git_hooks.autostart` is on and the worktree is trusted, so saves
    /// are watched at once).
    #[arg(long)]
    pub no_start: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// Run the hook's tasks now and fail the git operation on findings.
    #[arg(long)]
    pub gate: bool,
    /// Exit with this code (the chained hook's) whatever happens.
    #[arg(long, default_value_t = 0)]
    pub status: u8,
    /// The hook's name.
    pub hook: String,
    /// What git passed to the hook.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

fn describe(c: &HookChange) -> String {
    match &c.action {
        Action::Installed => format!("installed {}", c.hook),
        Action::Unchanged => format!("{} is up to date", c.hook),
        Action::Refreshed => format!("refreshed {} (it was stale)", c.hook),
        Action::Chained { kept_at } => format!(
            "installed {}; the hook that was there runs first, kept at {}",
            c.hook,
            kept_at.display()
        ),
        Action::Skipped { why } => format!("skipped {}: {why}", c.hook),
        Action::Removed => format!("removed {}", c.hook),
        Action::Restored => format!("removed {} and put back the hook it replaced", c.hook),
    }
}

fn print(
    ctx: &Ctx,
    dir: &hooks::HooksDir,
    changes: &[HookChange],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({ "hooks_dir": dir.path, "hooks": changes });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if changes.is_empty() {
        anstream::println!("no bgtask hooks in {}", dir.path.display());
    }
    for c in changes {
        anstream::println!("{}", describe(c));
    }
    ctx.note(&format!("hooks directory: {}", dir.path.display()));
    Ok(())
}

/// Saves are watched only while the daemon runs: start it now (unless
/// told not to, autostart is off, or nothing would run untrusted), and
/// say how it comes back after a reboot.
fn daemon_now(
    ctx: &Ctx,
    workspace: &Workspace,
    config: &crate::config::Config,
    args: &InstallArgs,
) {
    let running = crate::state::Paths::for_root(&workspace.root)
        .ok()
        .and_then(|p| crate::daemon::is_running(&p));
    if let Some(pid) = running {
        ctx.note(&format!("the daemon is running (pid {pid})"));
        return;
    }
    let autostart = config.triggers.git_hooks.autostart;
    if !autostart {
        ctx.note("start the daemon with `bgtask start` (autostart is off)");
        return;
    }
    if args.no_start || args.no_trust {
        ctx.note("the daemon starts with the first hook (or now: `bgtask start`)");
        return;
    }
    let start = super::daemon_cmd::StartArgs::default();
    match super::daemon_cmd::start(ctx, &start) {
        Ok(_) => ctx.note(
            "saves are watched from now on; `bgtask service install` starts the daemon at login too",
        ),
        Err(e) => ctx.note(&format!(
            "could not start the daemon ({e:#}); the first hook tries again, or `bgtask start`"
        )),
    }
}

pub fn install(ctx: &Ctx, args: &InstallArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let config = crate::config::load(&workspace.root)?;
    let bin = std::env::current_exe()?;
    let (dir, changes) = match hooks::install::install(&workspace.root, &config, &bin, args.force) {
        Ok(v) => v,
        Err(
            e @ (HookError::SharedHooksPath { .. }
            | HookError::TrackedHooksPath { .. }
            | HookError::Disabled
            | HookError::NotGit { .. }),
        ) => {
            return Err(super::UsageError(e.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    print(ctx, &dir, &changes, args.json)?;
    if !args.no_trust {
        let fp = crate::trust::fingerprint_worktree(&workspace.projects()?, &workspace.root);
        let file = crate::trust::save(&workspace.root, &fp)?;
        if !args.json {
            anstream::println!(
                "trusted this worktree: hooks, saves, schedules and idle time may now run its tasks ({}); `bgtask trust --revoke` undoes it",
                file.display()
            );
            let root = workspace
                .root
                .canonicalize()
                .unwrap_or_else(|_| workspace.root.clone());
            let others: Vec<String> = super::doctor_background::worktrees(&workspace.root)
                .into_iter()
                .filter(|w| w.canonicalize().is_ok_and(|w| w != root))
                .map(|w| w.display().to_string())
                .collect();
            if !others.is_empty() {
                ctx.note(&format!(
                    "the other worktrees of this repository ({}) share these hooks; each needs its own `bgtask trust` (run it there)",
                    others.join(", ")
                ));
            }
        }
    }
    if !args.json {
        daemon_now(ctx, &workspace, &config, args);
    }
    let skipped = changes
        .iter()
        .any(|c| matches!(c.action, Action::Skipped { .. }));
    Ok(if skipped { exit::USAGE } else { exit::OK })
}

pub fn uninstall(ctx: &Ctx, stop: bool, revoke: bool, json: bool) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let (dir, changes) = match hooks::install::uninstall(&workspace.root) {
        Ok(v) => v,
        Err(e @ HookError::NotGit { .. }) => return Err(super::UsageError(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    print(ctx, &dir, &changes, json)?;
    if stop {
        super::daemon_cmd::stop(ctx)?;
    }
    if revoke && crate::trust::revoke(&workspace.root)? {
        ctx.note("this worktree is no longer trusted");
    }
    // Hooks were one trigger of several: say what still runs by itself.
    let running = crate::state::Paths::for_root(&workspace.root)
        .ok()
        .and_then(|p| crate::daemon::is_running(&p));
    let trusted = crate::trust::load(&workspace.root).is_some();
    match (running, trusted) {
        (Some(pid), true) => ctx.note(&format!(
            "the daemon (pid {pid}) still runs and this worktree is still trusted, so saves, schedules and idle time still run tasks; `bgtask uninstall-hooks --stop --revoke` ends both"
        )),
        (Some(pid), false) => ctx.note(&format!(
            "the daemon (pid {pid}) still runs (nothing runs by itself without trust); `bgtask stop` stops it"
        )),
        (None, true) => ctx.note(
            "this worktree is still trusted: a daemon started here runs tasks on saves, schedules and idle time; `bgtask trust --revoke` forgets it",
        ),
        (None, false) => {}
    }
    Ok(exit::OK)
}

pub fn hook(ctx: &Ctx, args: HookArgs) -> u8 {
    if !args.gate {
        return hooks::client::notify(args.status, &args.hook, args.args);
    }
    super::gate::gate(ctx, &args.hook, &args.args)
}
