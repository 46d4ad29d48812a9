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

pub fn manifest_dir() -> PathBuf {
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
    /// A private runtime dir: the daemon's socket, lock and pid live here.
    runtime: tempfile::TempDir,
    /// bgtask's user data (trust records).
    data: tempfile::TempDir,
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
        let runtime = tempfile::Builder::new()
            .prefix("bgtask-rt-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(
            runtime.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let p = Project {
            dir,
            runtime,
            data: tempfile::Builder::new()
                .prefix("bgtask-data-")
                .tempdir()
                .unwrap(),
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

    /// git in the project, with the environment bgtask gets (so hooks
    /// reach this project's daemon).
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(self.path(), args)
    }

    /// git in `dir` (a linked worktree, a submodule) with the project's
    /// environment.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_command(dir, args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn git_command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        self.bgtask_env(&mut cmd);
        cmd
    }

    fn bgtask_env(&self, cmd: &mut Command) {
        cmd.env("BGTASK_CACHE_DIR", tool_cache())
            .env("NO_COLOR", "1")
            .env_remove("BGTASK_LOG")
            .env_remove("CI")
            // No desktop notifications from tests unless one asks for a bus.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("CARGO_TARGET_DIR", self.path().join("target"))
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("BGTASK_DATA_DIR", self.data.path())
            .env("BGTASK_ALLOW_ROOT", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    pub fn commit_all(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    /// The environment bgtask runs with in this project's tests (for a
    /// program that runs bgtask itself).
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut cmd = Command::new("true");
        self.bgtask_env(&mut cmd);
        cmd.get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bgtask_bin());
        cmd.args(args).current_dir(self.path());
        self.bgtask_env(&mut cmd);
        cmd
    }

    /// `bgtask` run in another directory (a linked worktree, a submodule)
    /// with this project's environment.
    pub fn bgtask_in(&self, dir: &Path, args: &[&str]) -> Run {
        let out: Output = self.command(args).current_dir(dir).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// bgtask's user data directory (trust records).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
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

impl Project {
    /// The private runtime directory the daemon uses (`$XDG_RUNTIME_DIR/bgtask`).
    pub fn runtime_dir(&self) -> PathBuf {
        self.runtime.path().join("bgtask")
    }

    /// The root of the private `$XDG_RUNTIME_DIR`.
    pub fn xdg_runtime(&self) -> &Path {
        self.runtime.path()
    }

    /// The pid in the daemon's pid file, if there is one.
    pub fn daemon_pid(&self) -> Option<u32> {
        let dir = std::fs::read_dir(self.runtime_dir()).ok()?;
        dir.filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "pid"))
            .and_then(|e| std::fs::read_to_string(e.path()).ok())
            .and_then(|s| s.trim().parse().ok())
    }

    /// `status --json` of the daemon (panics when it is not answering).
    pub fn status(&self) -> Value {
        let run = self.bgtask(&["status", "--json"]);
        run.code(0);
        run.json()
    }
}

/// Daemon helpers: jobs driven by `tests/fixtures/bin/job.sh`.
impl Project {
    /// A project whose tasks each run one `job.sh` analyzer of the same
    /// name; `tasks` are `(name, priority)`, `execution` is merged into
    /// the config's `execution` (e.g. `"max_retries": 0`).
    pub fn jobs(tasks: &[(&str, &str)], execution: &str) -> Project {
        let p = Project::empty();
        p.script("job.sh");
        p.write_jobs_config(tasks, execution);
        p
    }

    pub fn write_jobs_config(&self, tasks: &[(&str, &str)], execution: &str) {
        let mut entries: Vec<&str> = Vec::new();
        if !execution.contains("max_retries") {
            entries.push(r#""max_retries": 0"#);
        }
        if !execution.contains("max_concurrent_tasks") {
            entries.push(r#""max_concurrent_tasks": 1"#);
        }
        if !execution.trim().is_empty() {
            entries.push(execution);
        }
        let execution = entries.join(", ");
        let tasks_json: Vec<String> = tasks
            .iter()
            .map(|(t, prio)| {
                format!(r#""{t}": {{"analyzers": ["job-{t}"], "priority": "{prio}"}}"#)
            })
            .collect();
        let analyzers: Vec<String> = tasks
            .iter()
            .map(|(t, _)| {
                format!(
                    r#""job-{t}": {{"command": "./bin/job.sh", "mode": "project", "files": ["*.txt"], "args": ["{t}", "{{root}}"], "parser": "exit-code", "cache": false}}"#
                )
            })
            .collect();
        self.config(&format!(
            r#"{{"execution": {{{execution}}},
                "daemon": {{"max_rss_mb": 100000}},
                "tasks": {{{}}},
                "analyzers": {{{}}}}}"#,
            tasks_json.join(", "),
            analyzers.join(", ")
        ));
    }

    /// `bgtask start` (detached); returns the daemon's pid.
    #[track_caller]
    pub fn start(&self) -> u32 {
        let run = self.bgtask(&["start"]);
        run.code(0);
        assert!(run.stdout.contains("started (pid"), "{}", run.stdout);
        self.daemon_pid().expect("a pid file")
    }

    /// `bgtask stop`, checking it stopped.
    #[track_caller]
    pub fn stop(&self) {
        let run = self.bgtask(&["stop"]);
        run.code(0);
        assert!(run.stdout.contains("stopped"), "{}", run.stdout);
    }

    /// The `(event, task)` pairs of `runs.log` (`start a`, `end a 0`, …).
    pub fn job_log(&self) -> Vec<String> {
        self.read("runs.log")
            .lines()
            .map(|l| {
                let mut w = l.split_whitespace();
                let (event, task) = (w.next().unwrap(), w.next().unwrap());
                if event == "end" {
                    format!("end {task} {}", w.next().unwrap())
                } else {
                    format!("start {task}")
                }
            })
            .collect()
    }

    /// The rows of a query (or the effect of a statement) on the state database, one string per row with
    /// columns joined by `|` (read with Python's sqlite3, independent of
    /// bgtask's own store code).
    pub fn sql(&self, query: &str) -> Vec<String> {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nrows=c.execute(sys.argv[2]).fetchall()\nc.commit()\nfor r in rows: print('|'.join('' if v is None else str(v) for v in r))",
            ])
            .arg(self.path().join(".bgtask/state.db"))
            .arg(query)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The daemon's socket (it must have started once).
    pub fn socket(&self) -> PathBuf {
        std::fs::read_dir(self.runtime_dir())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|x| x.extension().is_some_and(|e| e == "sock"))
            .expect("a socket in the runtime dir")
    }

    /// Waits until no job is waiting or running.
    #[track_caller]
    pub fn settle(&self, secs: u64) {
        wait_for(secs, "the queue to drain", || {
            self.sql("SELECT count(*) FROM jobs WHERE state IN ('queued', 'retry_wait', 'running')")
                == ["0"]
        });
    }

    /// The daemon's log so far.
    pub fn daemon_log(&self) -> String {
        self.read(".bgtask/logs/daemon.log")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid()
            && running(pid)
            && let Ok(pid) = libc::pid_t::try_from(pid)
            && pid > 1
        {
            // SAFETY: signals a daemon this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Sends `sig` to a process the test started.
pub fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    assert!(pid > 1);
    // SAFETY: signals a process this test started.
    unsafe { libc::kill(pid, sig) };
}

/// Polls `cond` every 20 ms until it holds, panicking after `secs`.
#[track_caller]
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
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

/// Trigger tests: tasks that run `tests/fixtures/bin/record.sh`, which
/// writes one line per run to `record.log` (the task and its files).
impl Project {
    /// `tasks` are `(name, triggers JSON list)`; `extra` is merged into the
    /// config's top level (e.g. `"triggers": {...}`), after a comma.
    pub fn triggered(tasks: &[(&str, &str)], extra: &str) -> Project {
        let p = Project::empty();
        p.script("record.sh");
        p.file(".gitignore", "record.log\nruns.log\n");
        p.write_triggered(tasks, extra);
        p
    }

    pub fn write_triggered(&self, tasks: &[(&str, &str)], extra: &str) {
        let tasks_json: Vec<String> = tasks
            .iter()
            .map(|(t, triggers)| {
                format!(r#""{t}": {{"analyzers": ["rec-{t}"], "triggers": {triggers}}}"#)
            })
            .collect();
        let analyzers: Vec<String> = tasks
            .iter()
            .map(|(t, _)| {
                format!(
                    r#""rec-{t}": {{"command": "./bin/record.sh", "files": ["*.py"], "args": ["{t}", "{{root}}", "{{files}}"], "parser": "exit-code", "cache": false}}"#
                )
            })
            .collect();
        let extra = if extra.trim().is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        };
        self.config(&format!(
            r#"{{"execution": {{"max_retries": 0, "max_concurrent_tasks": 1}},
                "daemon": {{"max_rss_mb": 100000}},
                "tasks": {{{}}},
                "analyzers": {{{}}}{extra}}}"#,
            tasks_json.join(", "),
            analyzers.join(", ")
        ));
    }

    /// The lines of `record.log`.
    pub fn records(&self) -> Vec<String> {
        self.read("record.log").lines().map(str::to_owned).collect()
    }

    /// Waits until `record.log` has `n` lines, then a little longer to
    /// see that no more come; returns them.
    #[track_caller]
    pub fn wait_records(&self, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.records().len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {n} recorded runs; got {:#?}\ndaemon log:\n{}",
                self.records(),
                self.daemon_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // No more come: the daemon seen idle (the run ended, whatever it
        // triggered was routed) before and after the watcher's window.
        self.wait_idle();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        self.wait_idle();
        let got = self.records();
        assert_eq!(
            got.len(),
            n,
            "exactly {n} runs: {got:#?}\n{}",
            self.daemon_log()
        );
        got
    }

    /// Waits until nothing is in the daemon's intake, being resolved,
    /// queued or running.
    #[track_caller]
    pub fn wait_idle(&self) -> Value {
        self.wait_routed(0)
    }

    /// Waits until the daemon took `arrivals` triggers and routed them all
    /// (none waits for quiet or is being resolved) and no job is queued or
    /// running: the positive marker to wait for before checking that a
    /// trigger started nothing. Returns the status.
    #[track_caller]
    pub fn wait_routed(&self, arrivals: u64) -> Value {
        let mut last = Value::Null;
        wait_for(30, &format!("{arrivals} trigger(s) routed"), || {
            last = self.status();
            last["arrivals"].as_u64() >= Some(arrivals)
                && last["intake"] == 0
                && last["resolving"] == false
                && last["queue_depth"] == 0
                && last["running_jobs"].as_array().is_some_and(Vec::is_empty)
        });
        last
    }

    /// Waits for the daemon's file watcher to be watching.
    #[track_caller]
    pub fn wait_watching(&self) -> Value {
        let mut last = Value::Null;
        wait_for(30, "the watcher to be ready", || {
            let run = self.bgtask(&["status", "--json"]);
            if run.code != 0 {
                return false;
            }
            last = run.json()["watcher"].clone();
            last["ready_ms"].is_u64()
        });
        last
    }
}
