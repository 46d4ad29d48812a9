//! Finding an analyzer's executable: the project's own install first
//! (`.venv/bin`, `node_modules/.bin`), then bgtask's managed installs, then
//! `PATH` — in the order the definition's `lookup` gives.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::dirs::{managed_node, managed_venv};
use crate::analyze::ExternalSpec;
use crate::config::raw::Lookup;

/// Where a tool was found, for `doctor` and the analyzer inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Project,
    Managed,
    Path,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Project => "project",
            Origin::Managed => "managed",
            Origin::Path => "PATH",
        }
    }
}

fn executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable found for the spec's command or alternatives.
pub fn find(spec: &ExternalSpec, root: &Path) -> Option<(PathBuf, Origin)> {
    std::iter::once(&spec.command)
        .chain(&spec.alternatives)
        .find_map(|name| find_one(name, &spec.lookup, root))
}

/// The directories inside the worktree where a lookup finds tools (each
/// with its `bin` subdirectory): the project's environments. What git
/// tracks under them is repository code, and trust covers it.
pub fn project_dirs(lookup: Lookup) -> &'static [(&'static str, &'static str)] {
    match lookup {
        Lookup::Venv => &[(".venv", "bin"), ("venv", "bin")],
        Lookup::NodeModules => &[("node_modules", ".bin")],
        Lookup::Managed | Lookup::Path => &[],
    }
}

fn find_one(name: &str, lookup: &[Lookup], root: &Path) -> Option<(PathBuf, Origin)> {
    if name.contains('/') {
        let p = root.join(name);
        return executable(&p).then_some((p, Origin::Project));
    }
    for l in lookup {
        let candidates: Vec<(PathBuf, Origin)> = match l {
            Lookup::Venv | Lookup::NodeModules => project_dirs(*l)
                .iter()
                .map(|(env, bin)| (root.join(env).join(bin).join(name), Origin::Project))
                .collect(),
            Lookup::Managed => vec![
                (managed_venv().join("bin").join(name), Origin::Managed),
                (
                    managed_node().join("node_modules/.bin").join(name),
                    Origin::Managed,
                ),
            ],
            Lookup::Path => std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .filter(|d| d.is_absolute())
                        .map(|d| (d.join(name), Origin::Path))
                        .collect()
                })
                .unwrap_or_default(),
        };
        if let Some(found) = candidates.into_iter().find(|(p, _)| executable(p)) {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::parsers::testing::builtin;

    fn make_exe(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn project_venv_wins_and_plain_files_are_not_executables() {
        let dir = tempfile::tempdir().unwrap();
        let def = builtin("bandit");
        let spec = def.external().unwrap();
        let venv_tool = dir.path().join(".venv/bin/bandit");
        std::fs::create_dir_all(venv_tool.parent().unwrap()).unwrap();
        std::fs::write(&venv_tool, "not executable").unwrap();
        let found = find(spec, dir.path());
        assert_ne!(found.as_ref().map(|f| f.0.clone()), Some(venv_tool.clone()));
        make_exe(&venv_tool);
        assert_eq!(find(spec, dir.path()), Some((venv_tool, Origin::Project)));
    }

    #[test]
    fn relative_commands_resolve_in_the_project_and_alternatives_follow() {
        let dir = tempfile::tempdir().unwrap();
        let def = builtin("gradle");
        let spec = def.external().unwrap();
        let wrapper = dir.path().join("gradlew");
        make_exe(&wrapper);
        assert_eq!(find(spec, dir.path()), Some((wrapper, Origin::Project)));
    }
}
