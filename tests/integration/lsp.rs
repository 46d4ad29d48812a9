//! `bgtask lsp`, driven by a real editor: headless Neovim
//! (`tests/lsp/neovim.lua`) opens a file of a project the daemon analyzed
//! and gets its current findings as diagnostics, then an edit, saved and
//! analyzed again, updates them in the same session; unsaved edits move
//! them with their lines or drop them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Project, bgtask_bin, manifest_dir, signal, wait_for};
use crate::notify_servers::{available, on_path};

const FILE: &str = "src/shop/orders.py";
const NEW_LINE: &str = "eval(input())";

/// `(line, severity, rule, analyzer, message)` as Neovim shows them:
/// 0-based lines, its severities (1 error … 4 hint).
type Shown = (u64, u64, String, String, String);

/// The findings of `FILE` in a run's JSON report, as Neovim should show them.
fn expected(report: &Value) -> Vec<Shown> {
    expected_in(report, FILE)
}

fn expected_in(report: &Value, file: &str) -> Vec<Shown> {
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
        .filter(|f| f["location"]["path"] == file)
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
    report_of(p, &history)
}

/// The newest run in `history` and its JSON report.
fn report_of(p: &Project, history: &Value) -> (i64, Value) {
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

/// Starts headless Neovim on `script` (in tests/lsp/) editing `file` of
/// the project; it writes into `out` of the returned home (Neovim's own
/// files, its LSP log, go there too, outside the project).
fn neovim(
    p: &Project,
    script: &str,
    file: &str,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Child) {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let root = p.path().canonicalize().unwrap();
    let nvim = Command::new("nvim")
        .args(["--headless", "--clean", "-u"])
        .arg(manifest_dir().join("tests/lsp").join(script))
        .current_dir(&root)
        .envs(p.env_vars())
        .env("XDG_STATE_HOME", home.path())
        .env("XDG_CACHE_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("BGTASK_LSP_OUT", &out)
        .env("BGTASK_LSP_FILE", root.join(file))
        .env("BGTASK_LSP_BIN", bgtask_bin())
        .env("BGTASK_LSP_ROOT", &root)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (home, nvim)
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

    let (home, mut nvim) = neovim(&p, "neovim.lua", FILE, &[("BGTASK_LSP_NEW_LINE", NEW_LINE)]);
    let out = home.path().join("out");
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

/// Pickle and a hard-coded password: bandit findings.
const FRESH: &str = "src/shop/fresh.py";
const FRESH_TEXT: &str =
    "import pickle\n\n\ndef load(b):\n    return pickle.loads(b)\n\n\nPASSWORD = \"hunter2\"\n";

/// A file no run has looked at is analysed when the editor opens it; a
/// finding accepted through its code action lands in the baseline and
/// shows as accepted; "show run" opens the run's page in a dashboard the
/// server started. `bgtask lsp --doctor` sees the daemon and the findings.
#[test]
fn neovim_opens_an_unanalysed_file_accepts_a_finding_and_shows_its_run() {
    if !available("Neovim", on_path("nvim"), "apt-get install neovim") {
        return;
    }
    let p = Project::fixture("python-app");
    p.config(r#"{"tasks": {"security": {"analyzers": ["bandit"], "triggers": ["save"]}}}"#);
    p.file(FRESH, FRESH_TEXT);
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.bgtask(&["submit", "security", "--files", FILE]).code(0);
    p.wait_idle();
    let (first_run, _) = last_report(&p);

    doctor_sees_the_daemon_and(&p, first_run);

    let (home, mut nvim) = neovim(&p, "actions.lua", FRESH, &[]);
    let out = home.path().join("out");
    wait_file(&mut nvim, &out, "opened.json", 150);
    let history: Value = p
        .bgtask(&["history", "--task", "security", "--json"])
        .json();
    assert!(
        history[0]["trigger"]
            .as_str()
            .unwrap()
            .starts_with("hook: editor-open"),
        "{history:#}"
    );
    let (run, report) = report_of(&p, &history);
    assert!(run > first_run);
    let want = expected_in(&report, FRESH);
    assert!(want.len() >= 2, "{report:#}");
    let opened = read_json(&out.join("opened.json"));
    let lines: Vec<u64> = opened
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["lnum"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "{opened:#}"
    );
    for d in opened.as_array().unwrap() {
        assert_eq!(d["data"]["run_id"], run, "{d}");
        assert_eq!(d["data"]["accepted"], false, "{d}");
    }

    wait_file(&mut nvim, &out, "accepted.json", 60);
    let baseline: Value = serde_json::from_str(&p.read(".bgtask-baseline.json")).unwrap();
    let kept = baseline["findings"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{baseline:#}");
    let accepted = read_json(&out.join("accepted.json"));
    let hints: Vec<&Value> = accepted
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["data"]["accepted"] == true)
        .collect();
    assert_eq!(hints.len(), 1, "{accepted:#}");
    assert_eq!(hints[0]["severity"], 4, "a hint: {accepted:#}");
    assert_eq!(hints[0]["code"], kept[0]["rule"]);
    let others: Vec<&Value> = accepted
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["data"]["accepted"] != true)
        .collect();
    assert_eq!(others.len(), want.len() - 1, "{accepted:#}");
    assert!(
        others.iter().all(|d| d["data"]["new"] == true),
        "{accepted:#}"
    );

    wait_for(60, "neovim to exit", || nvim.try_wait().unwrap().is_some());
    let error = std::fs::read_to_string(out.join("error")).unwrap_or_default();
    assert!(error.is_empty(), "neovim: {error}");
    let shown = std::fs::read_to_string(out.join("shown")).unwrap();
    dashboard_serves(&p, &shown, run);
    p.stop();
}

/// `bgtask lsp --doctor --json` with this `bgtask` on PATH: nothing to
/// fix, the daemon running, run `last_run` the newest.
fn doctor_sees_the_daemon_and(p: &Project, last_run: i64) {
    let bin_dir = Path::new(bgtask_bin()).parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let doctor = p
        .command(&["lsp", "--doctor", "--json"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let said: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(said["ok"], true, "{said:#}");
    let check = |name: &str| {
        said["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {said:#}"))["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(check("daemon").starts_with("running"), "{said:#}");
    assert!(
        check("findings").contains(&format!("last run {last_run} ")),
        "{said:#}"
    );
}

/// The page the editor was asked to show is run `run`'s, in the dashboard
/// the server started, which serves this project; then stops it.
fn dashboard_serves(p: &Project, shown: &str, run: i64) {
    let running: Value = serde_json::from_str(
        &std::fs::read_to_string(p.runtime_dir().join("dashboard.json")).unwrap(),
    )
    .unwrap();
    let pid = running["pid"].as_i64().unwrap();
    let base = running["url"].as_str().unwrap();
    let token = running["token"].as_str().unwrap();
    assert!(
        shown.starts_with(&format!("{base}/?token={token}#/p/"))
            && shown.ends_with(&format!("/run/{run}")),
        "{shown}"
    );
    let (code, body) = crate::dashboard::curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/api/v1/projects"),
    ]);
    // The dashboard the server started for this test.
    signal(u32::try_from(pid).unwrap(), libc::SIGTERM);
    assert_eq!(code, 200, "{body}");
    let project = shown
        .split("#/p/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    assert!(body.contains(project), "{body}");
}
