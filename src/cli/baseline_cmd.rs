//! `bgtask baseline write|show`, and `bgtask run --new-only`'s comparison
//! with the baseline file (`crate::baseline`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use super::Ctx;
use super::run_cmd::RunArgs;
use crate::baseline::{Baseline, FILE};
use crate::engine::Workspace;
use crate::exit;
use crate::report::{Format, Report};

pub const EXAMPLES: &str = "Examples:
  bgtask baseline write                    # today's findings of every task into .bgtask-baseline.json
  git add .bgtask-baseline.json && git commit -m 'bgtask baseline'
  bgtask run all --new-only                # only findings not in it count for --fail-on and the exit code
  bgtask baseline show";

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Run tasks (default: all) on the whole project and record their findings as the baseline.
    Write {
        /// Task or analyzer names, or `all`.
        #[arg(value_name = "TASK|ANALYZER")]
        names: Vec<String>,
        /// Where to write it (default: .bgtask-baseline.json at the root).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// What the baseline holds: when and by what it was written, findings by analyzer and severity.
    Show {
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: BaselineCommand) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    match cmd {
        BaselineCommand::Write { names, file } => write(ctx, &workspace, names, file),
        BaselineCommand::Show { file, json } => {
            let path = file.unwrap_or_else(|| workspace.root.join(FILE));
            show(&Baseline::read(&path)?, &path, json)
        }
    }
}

fn write(
    ctx: &Ctx,
    workspace: &Workspace,
    names: Vec<String>,
    file: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let names = if names.is_empty() {
        vec!["all".to_owned()]
    } else {
        names
    };
    let args = RunArgs::for_gate(names.clone(), Vec::new(), Format::Json);
    let (report, cancelled) = super::run_cmd::execute(ctx, &args)?;
    if cancelled {
        return Ok(exit::INTERRUPTED);
    }
    if report.exit_code >= exit::TOOL_ERROR {
        anstream::eprintln!(
            "error: no baseline written: {} (a baseline without an analyzer's findings would call them all new later)",
            report.verdict
        );
        return Ok(report.exit_code);
    }
    let commit = crate::git::head_commit(&workspace.root);
    let baseline = Baseline::new(&report.findings, names, commit);
    let path = file.unwrap_or_else(|| workspace.root.join(FILE));
    baseline
        .write(&path)
        .with_context(|| format!("write {}", path.display()))?;
    if !ctx.quiet {
        anstream::println!(
            "recorded {} findings in {}{}; commit it so CI and your team compare with it",
            baseline.findings.len(),
            path.display(),
            baseline
                .commit
                .as_deref()
                .map(|c| format!(" (at {})", &c[..c.len().min(12)]))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

fn show(baseline: &Baseline, path: &Path, json: bool) -> anyhow::Result<u8> {
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &baseline.findings {
        *by.entry((f.analyzer.clone(), f.severity.as_str().to_owned()))
            .or_default() += 1;
    }
    if json {
        let counts: Vec<serde_json::Value> = by
            .iter()
            .map(|((a, s), n)| serde_json::json!({"analyzer": a, "severity": s, "findings": n}))
            .collect();
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "format": baseline.bgtask_baseline,
            "written_by": baseline.written_by,
            "commit": baseline.commit,
            "names": baseline.names,
            "findings": baseline.findings.len(),
            "by_analyzer": counts,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    anstream::println!(
        "{}: {} findings of {} ({}), written by {}{}",
        path.display(),
        baseline.findings.len(),
        baseline.names.join(", "),
        if baseline.names.is_empty() {
            "?"
        } else {
            "tasks"
        },
        baseline.written_by,
        baseline
            .commit
            .as_deref()
            .map(|c| format!(" at {}", &c[..c.len().min(12)]))
            .unwrap_or_default()
    );
    for ((analyzer, severity), n) in &by {
        anstream::println!("  {analyzer:<16} {severity:<8} {n}");
    }
    Ok(exit::OK)
}

/// A baseline to compare a run with: what it is, its findings and the
/// files renamed since it was recorded (old path → new).
pub struct Wanted {
    pub against: String,
    pub baseline: Baseline,
    pub renames: std::collections::HashMap<String, String>,
}

/// The baseline file `bgtask run` was asked to compare with
/// (`--new-only`, `--baseline`), read now; with what it is.
pub fn from_file(
    args: &RunArgs,
    workspace: &Workspace,
) -> anyhow::Result<Option<(String, Baseline)>> {
    if args.baseline_ref.is_some() || (!args.new_only && args.baseline.is_none()) {
        return Ok(None);
    }
    let path = args
        .baseline
        .clone()
        .unwrap_or_else(|| workspace.root.join(FILE));
    let against = path
        .strip_prefix(&workspace.root)
        .unwrap_or(&path)
        .display()
        .to_string();
    Ok(Some((against, Baseline::read(&path)?)))
}

/// The baseline to compare with — `file` as read, or the merge base of
/// `--baseline-ref` (cached, or analysed now) — and the renames since it.
pub fn resolve(
    ctx: &Ctx,
    args: &RunArgs,
    workspace: &Workspace,
    config: &std::sync::Arc<crate::config::Config>,
    file: Option<(String, Baseline)>,
) -> anyhow::Result<Option<Wanted>> {
    let found = match &args.baseline_ref {
        Some(rev) => super::baseline_ref::baseline(ctx, args, rev, workspace, config)?,
        None => file,
    };
    Ok(found.map(|(against, baseline)| {
        let renames = baseline.renames(&workspace.root);
        Wanted {
            against,
            baseline,
            renames,
        }
    }))
}

/// HEAD's findings for `names` as a baseline (analysed once per HEAD
/// tree, then cached): "what the change introduced", for front ends that
/// run analyses (MCP's `new_only`). `None` without a commit.
pub fn at_head(
    workspace: &Workspace,
    config: &std::sync::Arc<crate::config::Config>,
    names: &[String],
    offline: bool,
) -> anyhow::Result<Option<Wanted>> {
    let ctx = Ctx {
        cwd: workspace.root.clone(),
        verbose: false,
        quiet: true,
    };
    let mut args = RunArgs::for_gate(names.to_vec(), Vec::new(), crate::report::Format::Json);
    args.offline = offline;
    args.baseline_ref = Some("HEAD".to_owned());
    resolve(&ctx, &args, workspace, config, None)
}

/// Compares `report` with the baseline and judges only what is new.
pub fn apply(report: &mut Report, wanted: &Wanted, files: Option<&[String]>) {
    report.baseline = Some(wanted.baseline.compare(
        &wanted.against,
        report,
        files,
        &wanted.renames,
    ));
    report.refresh();
}
