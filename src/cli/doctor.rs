//! `bgtask doctor`: which analyzers apply to this project, which are
//! installed (where, which version), and what to do about the rest; then
//! the background side (`doctor_background.rs`).

use clap::Args;
use serde::Serialize;

use super::Ctx;
use crate::engine::Workspace;
use crate::exit;
use crate::tools::{self, AnalyzerRow, Origin};

pub const EXAMPLES: &str = "Examples:
  bgtask doctor            what applies here and what is missing
  bgtask doctor --json     the same for scripts
  bgtask doctor -v         also analyzers that do not apply";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Doctor {
    root: String,
    git: bool,
    config_files: Vec<String>,
    default_config: bool,
    cache_dir: String,
    analyzers: Vec<AnalyzerRow>,
    /// `cache.remote`, when configured: reachable, read, written?
    #[serde(skip_serializing_if = "Option::is_none")]
    team_cache: Option<crate::engine::TeamCacheCheck>,
    /// Hooks, the watcher's limits, trust, the daemon.
    background: super::doctor_background::Background,
}

pub fn run(ctx: &Ctx, args: &DoctorArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let config = crate::config::load(&workspace.root)?;
    let doc = Doctor {
        root: workspace.root.display().to_string(),
        git: workspace.git,
        config_files: config
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        default_config: config.uses_default(),
        cache_dir: tools::cache_dir().display().to_string(),
        analyzers: tools::analyzers(&workspace, &config),
        team_cache: config.remote_cache.as_ref().and_then(|remote| {
            let rt = super::runtime().ok()?;
            Some(rt.block_on(crate::engine::check_team_cache(remote, &workspace.root)))
        }),
        background: super::doctor_background::collect(&workspace, &config),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_table(&doc, ctx.verbose);
    }
    Ok(exit::OK)
}

fn print_table(doc: &Doctor, verbose: bool) {
    print_header(doc);
    let shown: Vec<&AnalyzerRow> = doc
        .analyzers
        .iter()
        .filter(|r| verbose || !r.tasks.is_empty())
        .collect();
    let widths = Widths {
        analyzer: shown.iter().map(|r| r.analyzer.len()).max().unwrap_or(8),
        tasks: shown
            .iter()
            .map(|r| r.tasks.join(",").len())
            .max()
            .unwrap_or(5)
            .max(5),
    };
    for r in &shown {
        print_row(r, &widths, verbose);
    }
    print_advice(doc);
    super::doctor_background::print(&doc.background);
}

/// The lines above the table: the project, its config, where managed tools go.
fn print_header(doc: &Doctor) {
    use anstyle::{AnsiColor, Effects, Style};
    let bold = Style::new().effects(Effects::BOLD);
    let dim = Style::new().effects(Effects::DIMMED);
    let green = AnsiColor::Green.on_default();
    anstream::println!(
        "{bold}project{bold:#}  {}{}",
        doc.root,
        if doc.git { " (git)" } else { "" }
    );
    if doc.default_config {
        anstream::println!(
            "{bold}config{bold:#}   built-in tasks {dim}(no .background-tasks.json; `bgtask init` writes one){dim:#}"
        );
    } else {
        anstream::println!(
            "{bold}config{bold:#}   {} {green}valid{green:#}",
            doc.config_files.join(" + ")
        );
    }
    anstream::println!(
        "{bold}tools{bold:#}    managed installs under {}/tools",
        doc.cache_dir
    );
    if let Some(t) = &doc.team_cache {
        let red = AnsiColor::Red.on_default();
        match &t.problem {
            Some(problem) => anstream::println!(
                "{bold}team cache{bold:#} {} {red}not used{red:#}: {problem}",
                t.url
            ),
            None => anstream::println!(
                "{bold}team cache{bold:#} {} {green}reachable{green:#}: read{}",
                t.url,
                if t.writes {
                    ", and written by runs here"
                } else {
                    "; written only by CI (`write`: ci) or never"
                }
            ),
        }
    }
    anstream::println!();
}

/// Column widths of the table: analyzer names and task lists.
struct Widths {
    analyzer: usize,
    tasks: usize,
}

/// One analyzer's line of the table, and under it why it does not apply
/// (verbose) or which Python environment it sees.
fn print_row(r: &AnalyzerRow, widths: &Widths, verbose: bool) {
    use anstyle::{AnsiColor, Effects, Style};
    let dim = Style::new().effects(Effects::DIMMED);
    let green = AnsiColor::Green.on_default();
    let red = AnsiColor::Red.on_default();
    let (w, tw) = (widths.analyzer, widths.tasks);
    let tasks = if r.tasks.is_empty() {
        "-".to_owned()
    } else {
        r.tasks.join(",")
    };
    let applies = match (r.applies, r.files) {
        (true, Some(n)) if n > 0 => format!("applies ({n} files)"),
        (true, _) => "applies".to_owned(),
        (false, _) => "does not apply".to_owned(),
    };
    let tool = match (r.installed, r.applies) {
        (Some(true), _) => format!(
            "{green}{}{green:#} {dim}{} ({}){dim:#}",
            r.version.as_deref().unwrap_or("?"),
            r.path.as_deref().unwrap_or(""),
            r.origin.map_or("", Origin::label)
        ),
        (Some(false), true) => format!(
            "{red}missing{red:#}: {}",
            r.install_hint.as_deref().unwrap_or("")
        ),
        (Some(false), false) => format!("{dim}not installed{dim:#}"),
        (None, _) => format!("{dim}built in{dim:#}"),
    };
    anstream::println!(
        "  {:<w$}  {dim}{tasks:<tw$}{dim:#}  {:<22}  {tool}",
        r.analyzer,
        applies
    );
    if !r.applies
        && verbose
        && let Some(reason) = &r.reason
    {
        anstream::println!("  {:<w$}  {dim}↳ {reason}{dim:#}", "");
    }
    if r.applies
        && let Some(env) = &r.environment
    {
        anstream::println!("  {:<w$}  {dim}↳ python: {env}{dim:#}", "");
    }
}

/// What to do about analyzers that apply here but are missing.
fn print_advice(doc: &Doctor) {
    let green = anstyle::AnsiColor::Green.on_default();
    let red = anstyle::AnsiColor::Red.on_default();
    let missing: Vec<&AnalyzerRow> = doc
        .analyzers
        .iter()
        .filter(|r| r.applies && r.installed == Some(false) && !r.tasks.is_empty())
        .collect();
    let managed: Vec<&str> = missing
        .iter()
        .filter(|r| r.managed_install)
        .map(|r| r.analyzer.as_str())
        .collect();
    anstream::println!();
    if missing.is_empty() {
        anstream::println!("{green}✓{green:#} every analyzer that applies here is installed");
    } else {
        anstream::println!(
            "{red}!{red:#} {} analyzer{} that apply here {} not installed",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            if missing.len() == 1 { "is" } else { "are" }
        );
        if !managed.is_empty() {
            anstream::println!(
                "  run `bgtask tools install` to install {} into bgtask's cache",
                managed.join(", ")
            );
        }
        for r in missing.iter().filter(|r| !r.managed_install) {
            anstream::println!(
                "  {}: {}",
                r.analyzer,
                r.install_hint.as_deref().unwrap_or("")
            );
        }
    }
}
