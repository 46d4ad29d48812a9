//! The dashboard in a real headless Chromium (Debian's `chromium`, driven
//! by Playwright for Python from PyPI: `tests/browser/dashboard.py`), both
//! installed by scripts/test.sh. Screenshots of each page are kept under
//! `target/dashboard-screenshots/`.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Project, manifest_dir, tool_cache};
use crate::notify_servers::available;

fn browser_python() -> PathBuf {
    tool_cache().join("browser-venv/bin/python")
}

/// The venv's python and Chromium, when both are installed (else the
/// test says what to install and fails, unless told to skip).
pub(crate) fn browser() -> Option<(PathBuf, String)> {
    let python = browser_python();
    let chromium = std::env::var("BGTASK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let present = python.exists() && std::path::Path::new(&chromium).exists();
    available(
        "a headless Chromium with Playwright",
        present,
        "apt-get install chromium; pip install playwright into target/test-cache/browser-venv",
    )
    .then_some((python, chromium))
}

#[test]
fn the_page_shows_projects_runs_a_task_live_and_says_when_a_daemon_is_down() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let p = Project::empty();
    p.config(
        r#"{"daemon": {"max_rss_mb": 100000},
            "tasks": {"todo": {"analyzers": ["todo"]}},
            "analyzers": {"todo": {"command": "sh", "mode": "batch", "files": ["*.py"],
              "args": ["-c", "sleep 1; grep -Hn TODO \"$@\"", "todo", "{files}"],
              "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+):(?P<message>.*)$"},
              "exit_codes": {"ok": [0, 1]}, "cache": false}}}"#,
    );
    p.file(
        "app.py",
        "def first(items):\n    return items[0]  # TODO: handle the empty list\n",
    );
    p.start();
    let d = crate::dashboard::Dashboard::start(&p);
    let shots = manifest_dir().join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new(&python)
        .arg(manifest_dir().join("tests/browser/dashboard.py"))
        .args([&d.url, &d.token])
        .arg(p.path())
        .arg(&shots)
        .arg(crate::harness::bgtask_bin())
        .envs(p.env_vars())
        .env("BGTASK_CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        p.daemon_log()
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    for page in ["overview", "project", "paused", "run", "tasks", "down"] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}.png");
    }
}
