//! `bgtask lsp`, driven by a real editor: headless Neovim
//! (`tests/lsp/neovim.lua`) opens a file of a project the daemon analyzed
//! and gets its current findings as diagnostics, then an edit, saved and
//! analyzed again, updates them in the same session; unsaved edits move
//! them with their lines or drop them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Project, bgtask_bin, manifest_dir, wait_for};
use crate::notify_servers::{available, on_path};

const FILE: &str = "src/shop/orders.py";
const NEW_LINE: &str = "eval(input())";

/// `(line, severity, rule, analyzer, message)` as Neovim shows them:
/// 0-based lines, its severities (1 error … 4 hint).
type Shown = (u64, u64, String, String, String);

/// The findings of `FILE` in a run's JSON report, as Neovim should show them.
fn expected(report: &Value) -> Vec<Shown> {
    let level = |s: &str| match s {
        "critical" | "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    };
    let mut v: Vec<Shown> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["location"]["path"] == FILE)
        .map(|f| {
            (
                f["location"]["line"].as_u64().unwrap() - 1,
                level(f["severity"].as_str().unwrap()),
                f["rule"].as_str().unwrap().to_owned(),
                format!("bgtask: {}", f["analyzer"].as_str().unwrap()),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn shown(diagnostics: &Value) -> Vec<Shown> {
    let mut v: Vec<Shown> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["lnum"].as_u64().unwrap(),
                d["severity"].as_u64().unwrap(),
                d["code"].as_str().unwrap().to_owned(),
                d["source"].as_str().unwrap().to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The newest run of `security` and its JSON report.
fn last_report(p: &Project) -> (i64, Value) {
    let history: Value = p
        .bgtask(&["history", "--task", "security", "--json"])
        .json();
    let run = history[0]["run_id"].as_i64().unwrap();
    let report = p
        .bgtask(&["show", &run.to_string(), "--format", "json"])
        .code(0)
        .json();
    (run, report)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Waits for `path`, or for Neovim to fail.
fn wait_file(nvim: &mut Child, out: &Path, name: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !out.join(name).exists() {
        let error = std::fs::read_to_string(out.join("error")).unwrap_or_default();
        assert!(error.is_empty(), "neovim: {error}");
        if let Some(status) = nvim.try_wait().unwrap() {
            panic!("neovim exited ({status}) before writing {name}");
        }
        if Instant::now() > deadline {
            let _ = nvim.kill();
            panic!("neovim wrote no {name} within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn neovim_shows_the_current_findings_and_their_updates() {
    if !available("Neovim", on_path("nvim"), "apt-get install neovim") {
        return;
    }
    let p = Project::fixture("python-app");
    p.config(r#"{"tasks": {"security": {"analyzers": ["bandit"]}}}"#);
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.bgtask(&["submit", "security"]).code(0);
    p.wait_idle();
    let (first_run, report) = last_report(&p);
    let want = expected(&report);
    assert!(want.len() > 1, "{report:#}");

    // Neovim's own files (its LSP log) outside the project and the home.
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let root = p.path().canonicalize().unwrap();
    let mut nvim = Command::new("nvim")
        .args(["--headless", "--clean", "-u"])
        .arg(manifest_dir().join("tests/lsp/neovim.lua"))
        .current_dir(&root)
        .envs(p.env_vars())
        .env("XDG_STATE_HOME", home.path())
        .env("XDG_CACHE_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("BGTASK_LSP_OUT", &out)
        .env("BGTASK_LSP_FILE", root.join(FILE))
        .env("BGTASK_LSP_BIN", bgtask_bin())
        .env("BGTASK_LSP_ROOT", &root)
        .env("BGTASK_LSP_NEW_LINE", NEW_LINE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    wait_file(&mut nvim, &out, "before.json", 60);
    let before = read_json(&out.join("before.json"));
    assert_eq!(shown(&before), want, "{before:#}");
    // Each diagnostic covers its whole line, measured in the open text.
    let text = p.read(FILE);
    let lines: Vec<&str> = text.lines().collect();
    for d in before.as_array().unwrap() {
        let line = lines[usize::try_from(d["lnum"].as_u64().unwrap()).unwrap()];
        assert_eq!(d["col"], 0, "{d}");
        assert_eq!(d["end_col"].as_u64().unwrap(), line.len() as u64, "{d}");
    }
    let pickle = before
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "B301")
        .unwrap_or_else(|| panic!("{before:#}"));
    assert_eq!(
        pickle["href"],
        "https://bandit.readthedocs.io/en/latest/blacklists/blacklist_calls.html"
    );

    // The edit, saved and analyzed: the editor hears of the new run.
    wait_file(&mut nvim, &out, "saved", 30);
    assert!(p.read(FILE).ends_with(&format!("{NEW_LINE}\n")));
    p.bgtask(&["submit", "security"]).code(0);
    p.wait_idle();
    wait_for(60, "neovim to exit", || nvim.try_wait().unwrap().is_some());
    let error = std::fs::read_to_string(out.join("error")).unwrap_or_default();
    assert!(error.is_empty(), "neovim: {error}");
    let (run, report) = last_report(&p);
    assert!(run > first_run);
    let after = read_json(&out.join("after.json"));
    let want_after = expected(&report);
    assert_eq!(shown(&after), want_after, "{after:#}");
    let last_line = u64::try_from(p.read(FILE).lines().count() - 1).unwrap();
    assert!(
        want_after
            .iter()
            .any(|(line, _, rule, _, _)| *line == last_line && rule == "B307"),
        "{want_after:?}"
    );

    // Unsaved: a line inserted at the top moves every diagnostic down one;
    // replacing the `eval` line drops its finding.
    let moved = shown(&read_json(&out.join("moved.json")));
    let down: Vec<Shown> = want_after
        .iter()
        .map(|(line, sev, rule, source, message)| {
            (
                line + 1,
                *sev,
                rule.clone(),
                source.clone(),
                message.clone(),
            )
        })
        .collect();
    assert_eq!(moved, down);
    let edited = shown(&read_json(&out.join("edited.json")));
    let kept: Vec<Shown> = down
        .into_iter()
        .filter(|(_, _, rule, _, _)| rule != "B307")
        .collect();
    assert_eq!(edited, kept);
    p.stop();
}
