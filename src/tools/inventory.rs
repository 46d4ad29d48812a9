//! The analyzer inventory: every analyzer of the config, the tasks that use
//! it, whether it applies to the project, and where its tool is (path,
//! origin, version, the Python environment it sees) or how to install it.
//! One implementation for `bgtask doctor` and every other reader.
//!
//! Owns assembling the rows; finding a tool is `locate.rs`'s, its version
//! `version.rs`'s and applicability the engine's. Callable from any thread,
//! inside a tokio runtime or not: a version the cache does not hold is
//! asked on a thread of its own ([`crate::run::run_blocking`]).

use std::path::Path;

use serde::Serialize;

use super::{Origin, Probe, VersionCache, pyenv};
use crate::analyze::{AnalyzerDef, ExternalSpec};
use crate::config::Config;
use crate::engine::{self, Workspace};

/// One analyzer as the project sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AnalyzerRow {
    pub analyzer: String,
    /// The tasks that run it.
    pub tasks: Vec<String>,
    pub applies: bool,
    /// How many files it would look at, when it applies.
    pub files: Option<usize>,
    /// Why it does not apply.
    pub reason: Option<String>,
    /// Whether its tool is installed and answers; `None` for an analyzer
    /// built into bgtask.
    pub installed: Option<bool>,
    /// Where its tool is.
    pub path: Option<String>,
    pub origin: Option<Origin>,
    pub version: Option<String>,
    /// What to do when the tool is missing or does not answer.
    pub install_hint: Option<String>,
    /// Whether `bgtask tools install` can install it.
    pub managed_install: bool,
    /// Whether it needs the network.
    pub network: bool,
    /// For a tool that imports the project: which Python environment it
    /// sees, and why.
    pub environment: Option<String>,
}

/// Every analyzer of `config` in `workspace`, by name. Versions come from
/// the version cache when it has them; others are asked (and cached), which
/// blocks while the tools answer: an async caller runs it with
/// `spawn_blocking`.
pub fn analyzers(workspace: &Workspace, config: &Config) -> Vec<AnalyzerRow> {
    let mut versions = VersionCache::load();
    let rows = analyzers_with(workspace, config, &mut versions);
    versions.save();
    rows
}

/// [`analyzers`] with the version cache given.
fn analyzers_with(
    workspace: &Workspace,
    config: &Config,
    versions: &mut VersionCache,
) -> Vec<AnalyzerRow> {
    let mut prober = Prober {
        root: &workspace.root,
        versions,
        python_env: pyenv::find(&workspace.root),
    };
    let mut rows = Vec::new();
    for a in engine::applicability(config, workspace) {
        let def = &config.analyzers[&a.analyzer];
        let mut row = AnalyzerRow {
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
    rows
}

/// Looks up external analyzers' tools for the rows: where each is, its
/// version (from the version cache when it has one) and the Python
/// environment it sees.
struct Prober<'a> {
    root: &'a Path,
    versions: &'a mut VersionCache,
    python_env: Option<pyenv::PythonEnv>,
}

impl Prober<'_> {
    /// Fills in the tool side of an external analyzer's row: installed or
    /// not, path, origin, version, and what to do when it is missing.
    fn fill_tool(&mut self, row: &mut AnalyzerRow, def: &AnalyzerDef, spec: &ExternalSpec) {
        let Some((path, origin)) = super::find(spec, self.root) else {
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
        let p = super::detect_version_blocking(path, spec, self.root);
        self.versions.put(path, &spec.version_args, self.root, &p);
        p
    }

    /// Which Python environment a tool at `path` runs in or sees, and why.
    fn environment(&self, path: &Path) -> String {
        match &self.python_env {
            Some(e) if e.holds(path) => format!("runs in {} ({})", e.dir.display(), e.why),
            Some(e) => format!("sees the packages of {} ({})", e.dir.display(), e.why),
            None => pyenv::NONE_FOUND.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn row<'a>(rows: &'a [AnalyzerRow], name: &str) -> &'a AnalyzerRow {
        rows.iter()
            .find(|r| r.analyzer == name)
            .unwrap_or_else(|| panic!("no {name} in {rows:#?}"))
    }

    /// A Python project with its own pylint (answers) and bandit (fails);
    /// asked from inside a runtime, where the probes must not `block_on`.
    #[tokio::test]
    async fn rows_say_what_applies_and_where_each_tool_is_from_inside_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("app.py"), "x = 1\n").unwrap();
        script(&root.join(".venv/bin/pylint"), "echo 'pylint 9.9.9'");
        script(&root.join(".venv/bin/bandit"), "echo broken >&2; exit 3");
        let workspace = Workspace {
            root: root.clone(),
            canonical_root: root.clone(),
            git: false,
        };
        let config = crate::config::load(&root).unwrap();
        let rows = analyzers_with(&workspace, &config, &mut VersionCache::default());
        assert!(rows.windows(2).all(|w| w[0].analyzer < w[1].analyzer));

        let pylint = row(&rows, "pylint");
        assert!(pylint.applies && pylint.files == Some(1), "{pylint:?}");
        assert_eq!(pylint.installed, Some(true));
        assert_eq!(pylint.version.as_deref(), Some("9.9.9"));
        assert_eq!(pylint.origin, Some(Origin::Project));
        assert_eq!(
            pylint.path,
            Some(root.join(".venv/bin/pylint").display().to_string())
        );
        assert!(pylint.environment.is_some());

        let bandit = row(&rows, "bandit");
        assert_eq!(bandit.installed, Some(false));
        let hint = bandit.install_hint.as_deref().unwrap();
        assert!(
            hint.contains("is there, but") && hint.contains("code 3"),
            "{hint}"
        );

        let clippy = row(&rows, "clippy");
        assert!(!clippy.applies && clippy.files.is_none());
        assert!(clippy.reason.as_deref().unwrap().contains("Cargo.toml"));

        let profile = row(&rows, "profile");
        assert_eq!((profile.installed, &profile.path), (None, &None));
    }

    #[test]
    fn the_json_field_names_are_doctors() {
        let r = AnalyzerRow {
            analyzer: "a".into(),
            tasks: vec![],
            applies: false,
            files: None,
            reason: None,
            installed: None,
            path: None,
            origin: Some(Origin::Managed),
            version: None,
            install_hint: None,
            managed_install: false,
            network: false,
            environment: None,
        };
        let json = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "analyzer",
                "tasks",
                "applies",
                "files",
                "reason",
                "installed",
                "path",
                "origin",
                "version",
                "install_hint",
                "managed_install",
                "network",
                "environment"
            ]
        );
        assert_eq!(json["origin"], "managed");
    }
}
