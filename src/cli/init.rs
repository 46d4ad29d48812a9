//! `bgtask init`: writes `.background-tasks.json` with the built-in tasks,
//! keeping only the analyzers that apply to the files found here.
//!
//! In a monorepo — two or more directories below the root that each hold a
//! project manifest (`pyproject.toml`, `package.json`, `Cargo.toml`, …) —
//! it writes one config per project instead, each with the analyzers that
//! apply there, and one at the root only if something applies to the files
//! left over. `--single` writes one config for the whole tree.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Ctx, UsageError};
use crate::config::CONFIG_FILE;
use crate::engine::{self, Workspace};
use crate::exit;

pub const EXAMPLES: &str = "Examples:
  bgtask init              write .background-tasks.json at the project root
  bgtask init --stdout     print it instead
  bgtask init --all        keep every built-in analyzer, not only those that apply
  bgtask init --single     one config for the whole tree, even in a monorepo";

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
    /// One config at the root even when the tree holds several projects.
    #[arg(long)]
    pub single: bool,
}

/// Files that make their directory a project of its own.
const MANIFESTS: &[&str] = &[
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "package.json",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
];

/// Directories whose manifests are not projects of their own.
const NOT_PROJECTS: &[&str] = &[
    "doc", "docs", "example", "examples", "fixtures", "test", "tests", "testdata",
];

/// Whether the root's own manifest makes it one project: it has one, and
/// it does not declare a workspace of several.
fn root_is_one_project(root: &Path) -> bool {
    let read = |name: &str| std::fs::read_to_string(root.join(name)).ok();
    let mut any = false;
    for name in MANIFESTS {
        let Some(text) = read(name) else { continue };
        any = true;
        let workspace = match *name {
            "package.json" => text.contains("\"workspaces\""),
            "Cargo.toml" => text.contains("[workspace]"),
            "pyproject.toml" => text.contains("[tool.uv.workspace]"),
            "pom.xml" => text.contains("<modules>"),
            _ => false,
        };
        if workspace {
            return false;
        }
    }
    any
}

/// The projects below the root: the outermost directories holding a
/// manifest; `None` unless there are at least two and the root is not
/// one project itself (a monorepo).
fn detect_projects(workspace: &Workspace) -> Option<Vec<PathBuf>> {
    if root_is_one_project(&workspace.root) {
        return None;
    }
    let mut dirs: Vec<PathBuf> = workspace
        .files()
        .iter()
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| MANIFESTS.contains(&n))
        })
        .filter_map(|f| f.parent().map(Path::to_owned))
        .filter(|d| !d.as_os_str().is_empty())
        .filter(|d| {
            !d.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .is_some_and(|c| NOT_PROJECTS.contains(&c))
            })
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut outermost: Vec<PathBuf> = Vec::new();
    for d in dirs {
        if !outermost.iter().any(|o| d.starts_with(o)) {
            outermost.push(d);
        }
    }
    (outermost.len() >= 2).then_some(outermost)
}

/// `bgtask init` in a monorepo: a config per project, then the root's.
fn per_project(
    ctx: &Ctx,
    args: &InitArgs,
    workspace: &Workspace,
    dirs: &[PathBuf],
) -> anyhow::Result<u8> {
    let mut wrote = Vec::new();
    let mut kept = Vec::new();
    for dir in dirs {
        let ws = workspace.below(dir);
        let path = ws.root.join(CONFIG_FILE);
        let initial = engine::initial_config(&ws, args.all)?;
        if initial.kept_all && !args.all {
            continue;
        }
        if args.stdout {
            println!("// {}", Path::new(dir).join(CONFIG_FILE).display());
            print!("{}", initial.text);
            continue;
        }
        if path.exists() && !args.force {
            kept.push(path);
            continue;
        }
        std::fs::write(&path, &initial.text)
            .map_err(|e| anyhow::anyhow!(e).context(format!("write {}", path.display())))?;
        wrote.push((path, initial.summary));
    }
    // What is left at the root, now that each project has its config.
    let root = engine::initial_config(workspace, args.all)?;
    let root_path = workspace.root.join(CONFIG_FILE);
    if !root.kept_all || args.all {
        if args.stdout {
            println!("// {CONFIG_FILE}");
            print!("{}", root.text);
        } else if !root_path.exists() || args.force {
            std::fs::write(&root_path, &root.text).map_err(|e| {
                anyhow::anyhow!(e).context(format!("write {}", root_path.display()))
            })?;
            wrote.push((root_path, root.summary));
        }
    }
    if args.stdout || ctx.quiet {
        return Ok(exit::OK);
    }
    anstream::println!(
        "found {} projects below {}; one config each (`bgtask init --single` writes one for the whole tree)",
        dirs.len(),
        workspace.root.display()
    );
    for (path, summary) in &wrote {
        anstream::println!("wrote {}", path.display());
        for s in summary {
            anstream::println!("  task {s}");
        }
    }
    for path in &kept {
        anstream::println!("kept {} (it exists; `--force` replaces it)", path.display());
    }
    anstream::println!(
        "next: `bgtask doctor` shows what is installed, `bgtask run all` in a project runs its tasks; one daemon serves them all"
    );
    Ok(exit::OK)
}

pub fn run(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    if !args.single
        && let Some(dirs) = detect_projects(&workspace)
    {
        return per_project(ctx, args, &workspace, &dirs);
    }
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
