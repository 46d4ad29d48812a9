//! A task's fingerprint: the readable lines of what it would run — each
//! analyzer's command, arguments and environment, the repository files
//! that are or load its code (by content), and what git tracks of the
//! tools it would find in the worktree (`tracked.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tracked::{Tracked, env_pathspecs, file_line, path_enters, path_tool_inside};
use crate::analyze::{Engine, ExternalSpec};
use crate::config::raw::Lookup;
use crate::config::{Config, Projects};

/// Files that make a tool run code from the repository, by the name the
/// analyzer's command goes by.
const CODE_LOADING: &[(&str, &[&str])] = &[
    (
        "eslint",
        &[
            "eslint.config.js",
            "eslint.config.mjs",
            "eslint.config.cjs",
            "eslint.config.ts",
            "eslint.config.mts",
            "eslint.config.cts",
        ],
    ),
    (
        "pylint",
        &[
            ".pylintrc",
            ".pylintrc.toml",
            "pylintrc",
            "pyproject.toml",
            "setup.cfg",
            "tox.ini",
        ],
    ),
    (
        "pytest",
        &[
            "conftest.py",
            "pytest.ini",
            ".pytest.ini",
            "pyproject.toml",
            "setup.cfg",
            "tox.ini",
        ],
    ),
    (
        "cargo",
        &[
            ".cargo/config.toml",
            ".cargo/config",
            "rust-toolchain.toml",
            "rust-toolchain",
        ],
    ),
    (
        "./mvnw",
        &[
            "mvnw",
            ".mvn/wrapper/maven-wrapper.properties",
            ".mvn/maven.config",
        ],
    ),
    ("mvn", &[".mvn/maven.config", ".mvn/extensions.xml"]),
    (
        "./gradlew",
        &["gradlew", "gradle/wrapper/gradle-wrapper.properties"],
    ),
    ("python", &["conftest.py", "setup.cfg", "pyproject.toml"]),
    // `node-options` and `script-shell` make every script npm runs load
    // what they name.
    ("npm", &[".npmrc"]),
];

/// The executable parts of each task, as readable lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub tasks: BTreeMap<String, Vec<String>>,
}

/// The `test`-related scripts of `package.json`, which `npm run test` runs.
fn npm_scripts(root: &Path) -> Option<String> {
    let text =
        match crate::repofile::read_to_string(Some(root), &root.join("package.json"), MANIFEST_CAP)
        {
            Ok(text) => text?,
            Err(e) => return Some(format!("package.json (unreadable: {e})")),
        };
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let scripts = json.get("scripts")?.as_object()?;
    let picked: BTreeMap<&str, &serde_json::Value> = scripts
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "pretest" | "test" | "posttest"))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    Some(format!(
        "package.json scripts {}",
        serde_json::to_string(&picked).ok()?
    ))
}

/// `package.json` is read only under this size.
const MANIFEST_CAP: u64 = 8 << 20;

/// What each enabled task would run, now.
pub fn fingerprint(config: &Config, root: &Path) -> Fingerprint {
    fingerprint_with(config, root, &mut Tracked::default())
}

/// [`fingerprint_projects`] asking git afresh.
pub fn fingerprint_worktree(projects: &Projects, top: &Path) -> Fingerprint {
    fingerprint_projects(projects, top, &mut BTreeMap::new())
}

/// Every project's fingerprint in one, each task by its key (a worktree
/// is trusted as a whole); `tracked` keeps git's answers per project.
pub fn fingerprint_projects(
    projects: &Projects,
    top: &Path,
    tracked: &mut BTreeMap<PathBuf, Tracked>,
) -> Fingerprint {
    let mut tasks = BTreeMap::new();
    for p in projects.all() {
        let fp = fingerprint_with(
            &p.config,
            &top.join(&p.dir),
            tracked.entry(p.dir.clone()).or_default(),
        );
        tasks.extend(fp.tasks.into_iter().map(|(t, lines)| (p.key(&t), lines)));
    }
    Fingerprint { tasks }
}

/// [`fingerprint`], asking git about tracked environments through `tracked`.
pub fn fingerprint_with(config: &Config, root: &Path, tracked: &mut Tracked) -> Fingerprint {
    // A project below a worktree's top is in git as much as the top.
    let git = root
        .ancestors()
        .any(|d| d.join(".git").symlink_metadata().is_ok());
    let places = tool_places(config, root, git);
    let mut pathspecs: Vec<String> = places.values().flatten().cloned().collect();
    pathspecs.sort();
    pathspecs.dedup();
    let in_worktree = tracked.under(root, pathspecs);
    let mut tasks = BTreeMap::new();
    for task in config.tasks.values() {
        let mut lines = Vec::new();
        for name in &task.analyzers {
            let Some(def) = config.analyzers.get(name) else {
                continue;
            };
            let Engine::External(spec) = &def.engine else {
                continue;
            };
            lines.extend(spec_lines(name, spec, root));
            if let Some(specs) = places.get(name.as_str()) {
                lines.extend(tracked_lines(name, specs, &in_worktree));
            }
        }
        lines.sort();
        lines.dedup();
        tasks.insert(task.name.clone(), lines);
    }
    Fingerprint { tasks }
}

/// Per analyzer a task uses, where in the worktree its tool may come from:
/// the pathspecs of the project environments it looks in and, when `PATH`
/// enters the worktree, of the tool found there.
fn tool_places<'c>(config: &'c Config, root: &Path, git: bool) -> BTreeMap<&'c str, Vec<String>> {
    let envs: BTreeMap<&'static str, Vec<String>> = [Lookup::Venv, Lookup::NodeModules]
        .into_iter()
        .flat_map(crate::tools::project_dirs)
        .map(|(dir, _)| *dir)
        .filter(|dir| git && root.join(dir).symlink_metadata().is_ok())
        .map(|dir| (dir, env_pathspecs(root, dir)))
        .collect();
    let path_enters = path_enters(root);
    let used: std::collections::BTreeSet<&str> = config
        .tasks
        .values()
        .flat_map(|t| t.analyzers.iter().map(String::as_str))
        .collect();
    let mut places: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, def) in config
        .analyzers
        .iter()
        .filter(|(n, _)| used.contains(n.as_str()))
    {
        let Engine::External(spec) = &def.engine else {
            continue;
        };
        // A tool named by its path is run from there, never looked up in
        // an environment (a path inside the worktree is the command file
        // `spec_lines` hashes).
        if std::iter::once(&spec.command)
            .chain(&spec.alternatives)
            .all(|c| c.contains('/'))
        {
            continue;
        }
        let mut specs: Vec<String> = spec
            .lookup
            .iter()
            .flat_map(|l| crate::tools::project_dirs(*l))
            .filter_map(|(dir, _)| envs.get(dir))
            .flatten()
            .cloned()
            .collect();
        if git && path_enters {
            specs.extend(path_tool_inside(spec, root));
        }
        if !specs.is_empty() {
            places.insert(name, specs);
        }
    }
    places
}

/// The lines of the tracked files under an analyzer's `specs`, or one line
/// saying git could not tell.
fn tracked_lines(
    name: &str,
    specs: &[String],
    in_worktree: &Result<BTreeMap<String, String>, String>,
) -> Vec<String> {
    match in_worktree {
        Ok(paths) => {
            let under = |p: &String| {
                specs.iter().any(|d| {
                    p == d
                        || p.strip_prefix(d.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
            };
            paths
                .iter()
                .filter(|(p, _)| under(p))
                .map(|(_, line)| line.clone())
                .collect()
        }
        Err(e) => vec![format!(
            "analyzer {name}: what git tracks in {} is unknown ({e})",
            specs.join(", ")
        )],
    }
}

/// An analyzer's own executable parts: command, arguments, environment,
/// a command file in the repository and the config files that make its
/// tool load code.
fn spec_lines(name: &str, spec: &ExternalSpec, root: &Path) -> Vec<String> {
    let mut lines = vec![format!(
        "analyzer {name}: command {} {}",
        serde_json::to_string(&spec.command).unwrap_or_default(),
        serde_json::to_string(&spec.args).unwrap_or_default(),
    )];
    if !spec.alternatives.is_empty() {
        lines.push(format!(
            "analyzer {name}: alternatives {}",
            serde_json::to_string(&spec.alternatives).unwrap_or_default()
        ));
    }
    if !spec.env.is_empty() {
        lines.push(format!(
            "analyzer {name}: env {}",
            serde_json::to_string(&spec.env).unwrap_or_default()
        ));
    }
    for cmd in std::iter::once(&spec.command).chain(&spec.alternatives) {
        if cmd.contains('/') && !Path::new(cmd).is_absolute() {
            lines.extend(file_line(root, cmd.trim_start_matches("./")));
        }
        let files = CODE_LOADING
            .iter()
            .filter(|(c, _)| c == cmd)
            .flat_map(|(_, files)| files.iter());
        for f in files {
            lines.extend(file_line(root, f));
        }
    }
    if spec.command == "npm" && spec.args.iter().any(|a| a == "test") {
        lines.extend(npm_scripts(root));
    }
    lines
}
