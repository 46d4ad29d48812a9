//! `bgtask doctor`: which analyzers apply to this project, which are
//! installed (where, which version), and what to do about the rest; then
//! the background side (`doctor_background.rs`).

use std::path::Path;

use clap::Args;
use serde::Serialize;

use super::Ctx;
use crate::analyze::{AnalyzerDef, ExternalSpec};
use crate::engine::{self, Workspace};
use crate::exit;
use crate::tools::{self, Origin, Probe};

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
struct Row {
    analyzer: String,
    tasks: Vec<String>,
    applies: bool,
    files: Option<usize>,
    reason: Option<String>,
    installed: Option<bool>,
    path: Option<String>,
    origin: Option<Origin>,
    version: Option<String>,
    install_hint: Option<String>,
    managed_install: bool,
    network: bool,
    /// For a tool that imports the project: which Python environment it
    /// sees, and why.
    environment: Option<String>,
}

#[derive(Debug, Serialize)]
struct Doctor {
    root: String,
    git: bool,
    config_files: Vec<String>,
    default_config: bool,
    cache_dir: String,
    analyzers: Vec<Row>,
    /// Hooks, the watcher's limits, trust, the daemon.
    background: super::doctor_background::Background,
}

pub fn run(ctx: &Ctx, args: &DoctorArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let config = crate::config::load(&workspace.root)?;
    let mut prober = Prober {
        root: &workspace.root,
        rt: super::runtime()?,
        versions: tools::VersionCache::load(),
        python_env: tools::pyenv::find(&workspace.root),
    };
    let mut rows = Vec::new();
    for a in engine::applicability(&config, &workspace) {
        let def = &config.analyzers[&a.analyzer];
        let mut row = Row {
            analyzer: a.analyzer.clone(),
            tasks: a.tasks.clone(),
            applies: a.applies.is_ok(),
            files: a.applies.as_ref().ok().copied(),
            reason: a.applies.as_ref().err().cloned(),
            installed: None,
            path: None,
            origin: None,
            version: None,
            install_hint: None,
            managed_install: def.install.is_managed(),
            network: def.network,
            environment: None,
        };
        if let Some(spec) = def.external() {
            prober.fill_tool(&mut row, def, spec);
        }
        rows.push(row);
    }
    prober.versions.save();
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
        analyzers: rows,
        background: super::doctor_background::collect(&workspace, &config),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_table(&doc, ctx.verbose);
    }
    Ok(exit::OK)
}

/// Looks up external analyzers' tools for the rows: where each is, its
/// version (from the version cache when it has one) and the Python
/// environment it sees.
struct Prober<'a> {
    root: &'a Path,
    rt: tokio::runtime::Runtime,
    versions: tools::VersionCache,
    python_env: Option<tools::pyenv::PythonEnv>,
}

impl Prober<'_> {
    /// Fills in the tool side of an external analyzer's row: installed or
    /// not, path, origin, version, and what to do when it is missing.
    fn fill_tool(&mut self, row: &mut Row, def: &AnalyzerDef, spec: &ExternalSpec) {
        let Some((path, origin)) = tools::find(spec, self.root) else {
            row.installed = Some(false);
            row.install_hint = Some(def.install_hint());
            return;
        };
        let probe = self.version(&path, spec);
        if spec.project_env == Some(crate::config::raw::ProjectEnv::Python) {
            row.environment = Some(self.environment(&path));
        }
        row.path = Some(path.display().to_string());
        row.origin = Some(origin);
        match probe {
            Probe::Version(v) => {
                row.installed = Some(true);
                row.version = v;
            }
            Probe::Failed(why) => {
                row.installed = Some(false);
                row.install_hint = Some(format!(
                    "{} ({} is there, but {why})",
                    def.install_hint(),
                    path.display()
                ));
            }
        }
    }

    /// The tool's version, from the cache or by running it (and then cached).
    fn version(&mut self, path: &Path, spec: &ExternalSpec) -> Probe {
        if let Some(p) = self.versions.get(path, &spec.version_args, self.root) {
            return p;
        }
        let p = self
            .rt
            .block_on(tools::detect_version(path, spec, self.root));
        self.versions.put(path, &spec.version_args, self.root, &p);
        p
    }

    /// Which Python environment a tool at `path` runs in or sees, and why.
    fn environment(&self, path: &Path) -> String {
        match &self.python_env {
            Some(e) if e.holds(path) => format!("runs in {} ({})", e.dir.display(), e.why),
            Some(e) => format!("sees the packages of {} ({})", e.dir.display(), e.why),
            None => tools::pyenv::NONE_FOUND.to_owned(),
        }
    }
}

fn print_table(doc: &Doctor, verbose: bool) {
    print_header(doc);
    let shown: Vec<&Row> = doc
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
    anstream::println!();
}

/// Column widths of the table: analyzer names and task lists.
struct Widths {
    analyzer: usize,
    tasks: usize,
}

/// One analyzer's line of the table, and under it why it does not apply
/// (verbose) or which Python environment it sees.
fn print_row(r: &Row, widths: &Widths, verbose: bool) {
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
    let missing: Vec<&Row> = doc
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
