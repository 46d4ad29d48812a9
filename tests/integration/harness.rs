//! A small fluent harness: a temp project (from a fixture or empty) in its
//! own git repo, the real `bgtask` binary, the real analyzers from the
//! managed tool cache that `scripts/test.sh` fills.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub fn bgtask_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bgtask")
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared tool cache: `BGTASK_TEST_CACHE`, else `target/test-cache`.
pub fn tool_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("BGTASK_TEST_CACHE")
            .map_or_else(|| manifest_dir().join("target/test-cache"), PathBuf::from);
        let bandit = dir.join("tools/venv/bin/bandit");
        let eslint = dir.join("tools/node/node_modules/.bin/eslint");
        assert!(
            bandit.exists() && eslint.exists(),
            "the analyzers are not installed in {}: run `scripts/test.sh` (it installs them with `bgtask tools install --all`)",
            dir.display()
        );
        dir
    })
}

pub fn tool(name: &str) -> PathBuf {
    let venv = tool_cache().join("tools/venv/bin").join(name);
    if venv.exists() {
        return venv;
    }
    tool_cache().join("tools/node/node_modules/.bin").join(name)
}

pub struct Project {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code, want,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Project {
    pub fn empty() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("bgtask-it-")
            .tempdir()
            .unwrap();
        let p = Project {
            dir,
            env: Vec::new(),
        };
        p.git(&["init", "-q", "-b", "main"]);
        p
    }

    pub fn fixture(name: &str) -> Project {
        let p = Project::empty();
        copy_dir(
            &manifest_dir().join("tests/fixtures/projects").join(name),
            p.path(),
        );
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str, content: &str) -> &Project {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }

    /// Writes `.background-tasks.json`.
    pub fn config(&self, json: &str) -> &Project {
        self.file(".background-tasks.json", json)
    }

    /// Copies a misbehaving script from `tests/fixtures/bin` into `bin/`.
    pub fn script(&self, name: &str) -> &Project {
        let src = manifest_dir().join("tests/fixtures/bin").join(name);
        let dst = self.path().join("bin").join(name);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, &dst).unwrap();
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Project {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn commit_all(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bgtask_bin());
        cmd.args(args)
            .current_dir(self.path())
            .env("BGTASK_CACHE_DIR", tool_cache())
            .env("NO_COLOR", "1")
            .env_remove("BGTASK_LOG")
            .env("CARGO_TARGET_DIR", self.path().join("target"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn bgtask(&self, args: &[&str]) -> Run {
        let out: Output = self.command(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_dir(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), dst).unwrap();
        }
    }
}

/// The run record of one analyzer in a JSON report.
pub fn run_of<'a>(report: &'a Value, analyzer: &str) -> &'a Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["analyzer"] == analyzer)
        .unwrap_or_else(|| panic!("no run of {analyzer} in {report:#}"))
}

/// `(rule, line)` of an analyzer's findings in a JSON report, sorted.
pub fn rules_lines(report: &Value, analyzer: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["analyzer"] == analyzer)
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["location"]["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

/// Whether a process is still running (zombies count as dead).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}
