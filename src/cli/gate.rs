//! The gating run of a blocking `pre-commit` / `pre-push`: the tasks its
//! kind triggers, now, on what is being committed (the staged files) or
//! pushed (the pushed commits' files).
//!
//! Two things make a gate fair, where hook managers' most-reported bugs
//! are:
//! - **Only what is being committed counts.** Findings in other files (a
//!   test that was already failing, a project-wide analyzer's old
//!   findings) are shown but never block.
//! - **The staged content is what is judged.** When a staged file also has
//!   unstaged changes, the index is exported to a temporary tree (`git
//!   checkout-index --prefix`: the index and the working tree are never
//!   touched, nothing is stashed) and the analyzers run there, with the
//!   worktree's trusted config and its environments (`.venv`,
//!   `node_modules`) linked in. Paths are repository-relative either way.
//!
//! In a monorepo each project's gate runs on that project's files, in its
//! directory with its config (paths relative to it).
//!
//! Anything that is not a finding at a task's `fail_on` (a broken tool, a
//! bad config, an untrusted worktree) is said and lets git go on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Ctx;
use super::run_cmd::{self, RunArgs};
use crate::config::{Project, TriggerKind};
use crate::engine::Workspace;
use crate::exit;
use crate::git::git;
use crate::report::{Format, Report};
use crate::trust::TaskTrust;

pub fn gate(ctx: &Ctx, hook: &str, hook_args: &[String]) -> u8 {
    if std::env::var_os("BGTASK").is_some_and(|v| v == "0") {
        return exit::OK;
    }
    match gate_inner(ctx, hook, hook_args) {
        Ok(code) => code,
        Err(e) => {
            anstream::eprintln!("bgtask {hook}: {e:#}; not blocking the {hook}");
            exit::OK
        }
    }
}

/// The gate's tasks of one project: those the hook's kind triggers, not
/// skipped, trusted (by their keys in the worktree's trust).
fn tasks(
    hook: &str,
    kind: TriggerKind,
    project: &Project,
    trust: Option<&BTreeMap<String, TaskTrust>>,
) -> Vec<String> {
    let skip: Vec<String> = std::env::var("BGTASK_SKIP")
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let tasks: Vec<String> = project
        .config
        .tasks
        .values()
        .filter(|t| {
            t.enabled
                && t.triggers.contains(&kind)
                && !skip.contains(&t.name)
                && !skip.contains(&project.key(&t.name))
        })
        .map(|t| t.name.clone())
        .collect();
    let Some(states) = trust else {
        return tasks;
    };
    let (trusted, not): (Vec<String>, Vec<String>) = tasks
        .into_iter()
        .partition(|t| states.get(&project.key(t)) == Some(&TaskTrust::Trusted));
    if !not.is_empty() {
        anstream::eprintln!(
            "bgtask {hook}: not running {} (not trusted here; `bgtask trust` trusts this worktree)",
            not.iter()
                .map(|t| project.key(t))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    trusted
}

fn gate_inner(ctx: &Ctx, hook: &str, _hook_args: &[String]) -> anyhow::Result<u8> {
    let workspace = Workspace::worktree(&ctx.cwd)?;
    let kind = match hook {
        "pre-commit" => TriggerKind::Commit,
        "pre-push" => TriggerKind::Push,
        other => anyhow::bail!("{other} cannot gate (only pre-commit and pre-push)"),
    };
    let gated: BTreeSet<PathBuf> = if kind == TriggerKind::Push {
        let mut stdin = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin)?;
        crate::daemon::pushed_files(&workspace.root, &stdin)
    } else {
        workspace.staged()?.into_iter().collect()
    };
    if gated.is_empty() {
        return Ok(exit::OK);
    }
    // Only the projects holding the gated files: no walk of the tree.
    let projects = workspace.projects_of(&gated)?;
    let wanted = projects
        .tasks()
        .any(|(_, _, t)| t.enabled && t.triggers.contains(&kind));
    if !wanted {
        return Ok(exit::OK);
    }
    let trust = (!crate::trust::skipped_by_env()).then(|| {
        let fp = crate::trust::fingerprint_worktree(&projects, &workspace.root);
        crate::trust::evaluate(&fp, crate::trust::load(&workspace.root).as_ref())
    });
    let partly = if kind == TriggerKind::Commit {
        partly_staged(&workspace.root, &gated)?
    } else {
        Vec::new()
    };
    let snapshot = if partly.is_empty() {
        None
    } else {
        anstream::eprintln!(
            "bgtask {hook}: {} partly staged: judging the staged content",
            partly.join(", ")
        );
        Some(Snapshot::of_index(&workspace.root)?)
    };
    let tree = match &snapshot {
        Some(s) => Workspace::discover(s.dir())?,
        None => workspace.clone(),
    };
    let mut code = exit::OK;
    for project in projects.all() {
        // The project's own gated files, relative to it.
        let mine: BTreeSet<PathBuf> = gated
            .iter()
            .filter(|f| projects.owner(f).dir == project.dir)
            .filter_map(|f| project.relative(f).map(Path::to_owned))
            .collect();
        let tasks = tasks(hook, kind, project, trust.as_ref());
        if mine.is_empty() || tasks.is_empty() {
            continue;
        }
        let keys: Vec<String> = tasks.iter().map(|t| project.key(t)).collect();
        let args = RunArgs::for_gate(tasks, mine.iter().cloned().collect(), Format::Console);
        anstream::eprintln!("bgtask {hook}: running {}", keys.join(", "));
        let (report, cancelled) =
            run_cmd::execute_in(ctx, &args, &tree.below(&project.dir), &project.config)?;
        let console = crate::report::ConsoleOptions {
            verbose: ctx.verbose,
            summary_only: false,
            max_findings: None,
        };
        anstream::eprint!(
            "{}",
            crate::report::render(&report, Format::Console, &console)
        );
        if cancelled {
            return Ok(exit::INTERRUPTED);
        }
        let verdict = verdict(hook, kind, &report, &mine);
        if verdict != exit::OK {
            code = verdict;
        }
    }
    Ok(code)
}

/// Blocks on findings at a task's `fail_on` in the gated files only.
fn verdict(hook: &str, kind: TriggerKind, report: &Report, gated: &BTreeSet<PathBuf>) -> u8 {
    let over: Vec<&crate::analyze::Finding> = report
        .findings
        .iter()
        .filter(|f| crate::report::over_threshold(&report.policy, &report.runs, f))
        .collect();
    let (blocking, elsewhere): (Vec<_>, Vec<_>) = over
        .into_iter()
        .partition(|f| f.path().is_some_and(|p| gated.contains(Path::new(p))));
    if !elsewhere.is_empty() {
        anstream::eprintln!(
            "bgtask {hook}: {} finding(s) in files this {hook} does not touch do not block it",
            elsewhere.len()
        );
    }
    if !blocking.is_empty() {
        anstream::eprintln!(
            "bgtask {hook}: {} finding(s) at the tasks' fail_on level stop the {hook}; fix them, or skip once with BGTASK=0 git {}",
            blocking.len(),
            if kind == TriggerKind::Commit {
                "commit …"
            } else {
                "push …"
            }
        );
        return exit::FINDINGS;
    }
    if report.exit_code != exit::OK && elsewhere.is_empty() {
        anstream::eprintln!(
            "bgtask {hook}: not every analyzer ran (see above); not blocking the {hook}"
        );
    }
    exit::OK
}

/// Staged files whose working-tree copy differs from the staged one.
fn partly_staged(root: &Path, staged: &BTreeSet<PathBuf>) -> anyhow::Result<Vec<String>> {
    let out = git(root, &["diff", "--name-only", "-z", "--no-renames"])?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .filter(|p| staged.contains(Path::new(p)))
        .collect())
}

/// The index exported to a temporary tree, removed when dropped.
struct Snapshot {
    dir: tempfile::TempDir,
}

impl Snapshot {
    fn of_index(root: &Path) -> anyhow::Result<Snapshot> {
        let dir = tempfile::Builder::new()
            .prefix("bgtask-staged-")
            .tempdir()?;
        let prefix = format!("{}/", dir.path().display());
        git(root, &["checkout-index", "-a", "--prefix", &prefix])?;
        // The project's environments are not in the index: the tools look
        // for them where they are.
        for env in [".venv", "venv", "node_modules"] {
            let real = root.join(env);
            let there = dir.path().join(env);
            if real.is_dir() && std::fs::symlink_metadata(&there).is_err() {
                std::os::unix::fs::symlink(&real, &there)?;
            }
        }
        Ok(Snapshot { dir })
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}
