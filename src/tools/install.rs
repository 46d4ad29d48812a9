//! `bgtask tools install`: pinned Python tools into a managed virtualenv and
//! pinned npm packages into a managed prefix, both under the user cache dir.
//!
//! Always explicit and in the foreground (never from a hook or the daemon).
//! Runs pip and npm with captured output; on failure the error carries the
//! command and the end of its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::dirs::{managed_node, managed_venv};
use crate::analyze::AnalyzerDef;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no Python 3 found: install python3 (with the venv module) or set BGTASK_PYTHON")]
    NoPython,
    #[error("npm not found: install Node.js and npm")]
    NoNpm,
    #[error("run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}):\n{output}")]
    Failed {
        command: String,
        status: String,
        output: String,
    },
    #[error("prepare {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    Python,
    Node,
}

/// One pip or npm install covering several analyzers.
#[derive(Debug, Clone)]
pub struct Step {
    pub ecosystem: Ecosystem,
    pub packages: Vec<String>,
    pub analyzers: Vec<String>,
}

impl Step {
    pub fn describe(&self) -> String {
        let tool = match self.ecosystem {
            Ecosystem::Python => "pip",
            Ecosystem::Node => "npm",
        };
        format!("{tool} install {}", self.packages.join(" "))
    }
}

/// Groups the installable analyzers into at most one pip and one npm step.
pub fn plan(defs: &[Arc<AnalyzerDef>]) -> Vec<Step> {
    let mut py = Step {
        ecosystem: Ecosystem::Python,
        packages: Vec::new(),
        analyzers: Vec::new(),
    };
    let mut node = Step {
        ecosystem: Ecosystem::Node,
        packages: Vec::new(),
        analyzers: Vec::new(),
    };
    for d in defs {
        for (step, pkgs) in [(&mut py, &d.install.pip), (&mut node, &d.install.npm)] {
            if pkgs.is_empty() {
                continue;
            }
            step.analyzers.push(d.name.clone());
            for p in pkgs {
                if !step.packages.contains(p) {
                    step.packages.push(p.clone());
                }
            }
        }
    }
    [py, node]
        .into_iter()
        .filter(|s| !s.packages.is_empty())
        .collect()
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn python() -> Option<PathBuf> {
    std::env::var_os("BGTASK_PYTHON")
        .map(PathBuf::from)
        .or_else(|| on_path("python3"))
        .or_else(|| on_path("python"))
}

/// Runs one step; `say` receives what is being done, for progress display.
pub fn run_step(step: &Step, say: &dyn Fn(&str)) -> Result<(), InstallError> {
    match step.ecosystem {
        Ecosystem::Python => {
            let venv = managed_venv();
            let py = venv.join("bin/python");
            if !py.exists() {
                let system = python().ok_or(InstallError::NoPython)?;
                say(&format!("creating {}", venv.display()));
                let mut cmd = Command::new(system);
                cmd.arg("-m").arg("venv").arg(&venv);
                exec(cmd)?;
            }
            say(&step.describe());
            let mut cmd = Command::new(&py);
            cmd.args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
            ])
            .args(&step.packages);
            exec(cmd)
        }
        Ecosystem::Node => {
            let npm = on_path("npm").ok_or(InstallError::NoNpm)?;
            let prefix = managed_node();
            ensure_package_json(&prefix)?;
            say(&step.describe());
            let mut cmd = Command::new(npm);
            cmd.arg("install")
                .arg("--prefix")
                .arg(&prefix)
                .args([
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--save-exact",
                ])
                .args(&step.packages);
            exec(cmd)
        }
    }
}

fn ensure_package_json(prefix: &Path) -> Result<(), InstallError> {
    let io = |source| InstallError::Io {
        path: prefix.to_owned(),
        source,
    };
    std::fs::create_dir_all(prefix).map_err(io)?;
    let pj = prefix.join("package.json");
    if !pj.exists() {
        std::fs::write(
            &pj,
            "{\n  \"name\": \"bgtask-managed-tools\",\n  \"private\": true\n}\n",
        )
        .map_err(io)?;
    }
    Ok(())
}

fn exec(mut cmd: Command) -> Result<(), InstallError> {
    let command = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .stdin(Stdio::null())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("NPM_CONFIG_UPDATE_NOTIFIER", "false")
        .output()
        .map_err(|source| InstallError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    Err(InstallError::Failed {
        command,
        status: out.status.to_string(),
        output: tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::parsers::testing::builtin;

    #[test]
    fn plan_groups_by_ecosystem() {
        let defs: Vec<_> = ["bandit", "pylint", "eslint", "npm-audit", "clippy"]
            .map(builtin)
            .to_vec();
        let steps = plan(&defs);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].ecosystem, Ecosystem::Python);
        assert_eq!(steps[0].packages, ["bandit==1.9.4", "pylint==4.1.4"]);
        assert_eq!(steps[0].analyzers, ["bandit", "pylint"]);
        assert_eq!(steps[1].packages, ["eslint@9.39.5"]);
        assert_eq!(steps[1].describe(), "npm install eslint@9.39.5");
    }
}
