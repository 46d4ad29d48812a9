//! The project's Python environment: where its dependencies are installed,
//! so that tools that import the project (pylint, pytest, unittest) see
//! them whichever install of the tool runs. Without it, a managed pylint
//! reports every third-party import as an error and a test suite cannot
//! even be collected.
//!
//! Found, first match wins: an active `$VIRTUAL_ENV`; uv's
//! `$UV_PROJECT_ENVIRONMENT` (with `uv.lock`); `.venv` or `venv` in the
//! project (what `python -m venv` and uv make); the environment poetry
//! (`poetry.lock`), pipenv (`Pipfile`) or hatch (`[tool.hatch]`) report for
//! the project, when those tools are installed. A tool installed in that environment is used as it
//! is; any other is given its `site-packages` on `PYTHONPATH`.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// A Python environment and why it was picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PythonEnv {
    pub dir: PathBuf,
    /// `$VIRTUAL_ENV`, `.venv in the project`, `poetry env info`, …
    pub why: String,
    pub site_packages: Vec<PathBuf>,
}

impl PythonEnv {
    fn at(dir: PathBuf, why: impl Into<String>) -> Option<PythonEnv> {
        if !dir.join("pyvenv.cfg").is_file() && !dir.join("bin/python").exists() {
            return None;
        }
        let mut site_packages: Vec<PathBuf> = std::fs::read_dir(dir.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect();
        site_packages.sort();
        Some(PythonEnv {
            dir,
            why: why.into(),
            site_packages,
        })
    }

    /// What changes when packages are installed or removed here (the
    /// `site-packages` directories' mtimes): part of a result-cache key.
    pub fn stamp(&self) -> String {
        let mut out = self.dir.display().to_string();
        for sp in &self.site_packages {
            let mtime = std::fs::metadata(sp)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let _ = write!(out, "\n{}@{mtime}", sp.display());
        }
        out
    }

    /// Whether `tool` is installed in this environment.
    pub fn holds(&self, tool: &Path) -> bool {
        tool.starts_with(&self.dir)
    }

    /// `PYTHONPATH` with this environment's packages before `existing`.
    pub fn python_path(&self, existing: Option<&std::ffi::OsStr>) -> std::ffi::OsString {
        let mut paths: Vec<PathBuf> = self.site_packages.clone();
        if let Some(e) = existing {
            paths.extend(std::env::split_paths(e));
        }
        std::env::join_paths(paths).unwrap_or_default()
    }
}

/// What `args` print in `root`, trimmed, if the tool is there and answers.
fn ask(root: &Path, program: &str, args: &[&str]) -> Option<PathBuf> {
    let out = Command::new(program)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.lines().last()?.trim();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The project's environment, if it has one.
pub fn find(root: &Path) -> Option<PythonEnv> {
    if let Some(dir) = std::env::var_os("VIRTUAL_ENV").filter(|d| !d.is_empty())
        && let Some(env) = PythonEnv::at(PathBuf::from(dir), "$VIRTUAL_ENV")
    {
        return Some(env);
    }
    // uv keeps the project's environment in `.venv` unless told otherwise.
    if root.join("uv.lock").is_file()
        && let Some(dir) = std::env::var_os("UV_PROJECT_ENVIRONMENT").filter(|d| !d.is_empty())
        && let Some(env) = PythonEnv::at(root.join(dir), "$UV_PROJECT_ENVIRONMENT (uv)")
    {
        return Some(env);
    }
    for name in [".venv", "venv"] {
        if let Some(env) = PythonEnv::at(root.join(name), format!("{name} in the project")) {
            return Some(env);
        }
    }
    if root.join("poetry.lock").is_file()
        && let Some(dir) = ask(root, "poetry", &["env", "info", "--path"])
        && let Some(env) = PythonEnv::at(dir, "poetry env info")
    {
        return Some(env);
    }
    if root.join("Pipfile").is_file()
        && let Some(dir) = ask(root, "pipenv", &["--venv"])
        && let Some(env) = PythonEnv::at(dir, "pipenv --venv")
    {
        return Some(env);
    }
    if crate::repofile::read_to_string(Some(root), &root.join("pyproject.toml"), 1 << 20)
        .ok()
        .flatten()
        .is_some_and(|t| t.contains("[tool.hatch"))
        && let Some(dir) = ask(root, "hatch", &["env", "find"])
        && let Some(env) = PythonEnv::at(dir, "hatch env find")
    {
        return Some(env);
    }
    None
}

/// Says why no environment was found (for `doctor` and messages).
pub const NONE_FOUND: &str = "no project environment (no $VIRTUAL_ENV, .venv, venv, uv, poetry, pipenv or hatch environment): imports of the project's dependencies fail";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_venv_is_found_with_its_packages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        if std::env::var_os("VIRTUAL_ENV").is_some() {
            return; // the test's own environment would win
        }
        assert_eq!(find(root), None);
        std::fs::create_dir_all(root.join(".venv/lib/python3.11/site-packages")).unwrap();
        std::fs::write(root.join(".venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let env = find(root).unwrap();
        assert_eq!(env.why, ".venv in the project");
        assert_eq!(
            env.site_packages,
            [root.join(".venv/lib/python3.11/site-packages")]
        );
        assert!(env.holds(&root.join(".venv/bin/pylint")));
        assert!(!env.holds(Path::new("/usr/bin/pylint")));
        let path = env.python_path(Some(std::ffi::OsStr::new("/a")));
        assert_eq!(
            path,
            std::ffi::OsString::from(format!(
                "{}:/a",
                root.join(".venv/lib/python3.11/site-packages").display()
            ))
        );
    }
}
