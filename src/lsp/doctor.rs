//! `bgtask lsp --doctor`: what the language server would see if the
//! editor started it here — the worktree, its config, the findings
//! recorded, the daemon and its event stream, trust, the baseline, the
//! dashboard, and whether the editor finds this `bgtask` on its PATH. For
//! editor setups that go wrong: each problem says what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::exit;
use crate::ipc::{Client, Request, Response};
use crate::store::HistoryFilter;

/// One thing looked at.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// Looks, prints, and exits 0 when nothing stands between the findings
/// and the editor, else 1.
pub fn doctor(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let (root, checks) = look(dir);
    let ok = checks.iter().all(|c| c.ok);
    if json {
        let v = serde_json::json!({"worktree": root, "ok": ok, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &checks {
            let mark = if c.ok { "ok  " } else { "FIX " };
            anstream::println!("{mark} {:<11} {}", c.name, c.detail);
        }
        anstream::println!(
            "\nEditor setup (the server is `bgtask lsp` on stdio, started in the worktree):\n  \
             Neovim:  vim.lsp.start({{name = \"bgtask\", cmd = {{\"bgtask\", \"lsp\"}}, root_dir = vim.fs.root(0, \".git\")}})\n  \
             Helix (languages.toml):  [language-server.bgtask] command = \"bgtask\", args = [\"lsp\"]\n  \
             Any client: initializationOptions {{\"analyzeOnOpen\": false}} stops asking the daemon to analyse opened files"
        );
    }
    Ok(if ok { exit::OK } else { exit::FINDINGS })
}

/// The checks, in the order a problem blocks the next; the worktree if found.
pub fn look(dir: &Path) -> (Option<PathBuf>, Vec<Check>) {
    let mut checks = vec![on_path()];
    let root = match crate::engine::Workspace::discover(dir) {
        Ok(w) => w.root,
        Err(e) => {
            checks.push(check(
                "worktree",
                false,
                format!("{e}: start the editor in a git worktree (or open a folder inside one)"),
            ));
            return (None, checks);
        }
    };
    checks.push(check("worktree", true, root.display().to_string()));
    checks.push(match crate::config::load(&root) {
        Ok(c) => {
            let names: Vec<&str> = c.tasks.keys().map(String::as_str).collect();
            check("config", true, format!("tasks: {}", names.join(", ")))
        }
        Err(e) => check("config", false, format!("{e}")),
    });
    checks.push(findings(&root));
    checks.extend(daemon(&root));
    let mut accepted = super::accepted::Accepted::default();
    checks.push(match accepted.refresh(&root) {
        Some(problem) => check("baseline", false, problem),
        None if accepted.exists() => check(
            "baseline",
            true,
            format!(
                "{}: findings in it are hints, the others marked new",
                crate::baseline::FILE
            ),
        ),
        None => check(
            "baseline",
            true,
            format!(
                "none ({} absent): every finding is shown as it is",
                crate::baseline::FILE
            ),
        ),
    });
    checks.push(match crate::dashboard::running_url() {
        Some(url) => check("dashboard", true, format!("serving at {url}")),
        None => check(
            "dashboard",
            true,
            "not running: \"show in the dashboard\" starts one in the background",
        ),
    });
    (Some(root), checks)
}

/// Whether `bgtask` on PATH (what an editor's config names) is this one.
fn on_path() -> Check {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("bgtask"))
            .find(|p| p.is_file())
    });
    match (found, me) {
        (Some(p), Some(me)) if p.canonicalize().ok().as_ref() == Some(&me) => {
            check("binary", true, format!("{} (on PATH)", me.display()))
        }
        (Some(p), Some(me)) => check(
            "binary",
            true,
            format!(
                "PATH has {}, this is {}: an editor starting `bgtask` runs the former",
                p.display(),
                me.display()
            ),
        ),
        (Some(p), None) => check("binary", true, format!("{} (on PATH)", p.display())),
        (None, me) => check(
            "binary",
            false,
            format!(
                "`bgtask` is not on PATH, so an editor cannot start it by name: give the full path{}",
                me.map(|m| format!(" ({})", m.display()))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// The findings recorded: what the editor shows before any update.
fn findings(root: &Path) -> Check {
    let Some(store) = super::server::open_store(root) else {
        return check(
            "findings",
            false,
            "none recorded yet (no .bgtask/ store): start the daemon (`bgtask start`) or run `bgtask run all`",
        );
    };
    match store.history(&HistoryFilter::default(), None, 1) {
        Ok(runs) => match runs.first() {
            Some(r) => check(
                "findings",
                true,
                format!(
                    "last run {} ({}, {}, {} findings, started {})",
                    r.run_id, r.task, r.verdict, r.findings, r.started
                ),
            ),
            None => check("findings", false, "no run recorded yet: `bgtask run all`"),
        },
        Err(e) => check("findings", false, format!("cannot read the store: {e}")),
    }
}

/// The daemon (live updates), its automation, and trust.
fn daemon(root: &Path) -> Vec<Check> {
    let socket = match crate::state::Paths::for_root(root) {
        Ok(p) => p.socket,
        Err(e) => return vec![check("daemon", false, format!("{e}"))],
    };
    let status = Client::connect(&socket, Duration::from_secs(1))
        .map_err(|e| e.to_string())
        .and_then(|mut c| c.call(Request::Status).map_err(|e| e.to_string()));
    let s = match status {
        Ok(Response::Status(s)) => s,
        Ok(other) => return vec![check("daemon", false, format!("answered {other:?}"))],
        Err(e) => {
            return vec![check(
                "daemon",
                false,
                format!(
                    "{e}: diagnostics show the last findings but do not update; `bgtask start`"
                ),
            )];
        }
    };
    let mut out = vec![check(
        "daemon",
        true,
        format!(
            "running (pid {}, bgtask {}, {} queued, {} running): diagnostics update as runs finish",
            s.pid,
            s.version,
            s.queue_depth,
            s.running_jobs.len()
        ),
    )];
    out.push(match &s.automation {
        Some(a) => check(
            "automation",
            false,
            format!(
                "{}: saves queue work that does not start; `bgtask resume`",
                crate::cli::automation_line(a)
            ),
        ),
        None => check("automation", true, "on: saves and opened files start runs"),
    });
    out.push(if s.untrusted.is_empty() {
        check("trust", true, "every task is trusted as it is now")
    } else {
        let names: Vec<String> = s
            .untrusted
            .iter()
            .map(|t| format!("{} ({})", t.task, t.state))
            .collect();
        check(
            "trust",
            false,
            format!(
                "not run automatically: {}; `bgtask trust --diff` shows why, `bgtask trust` allows",
                names.join(", ")
            ),
        )
    });
    out
}
