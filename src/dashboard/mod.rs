//! `bgtask dashboard`: one local web server for every worktree of this
//! user that has (or had) a daemon — the HTTP API (`/api/v1`, `api.rs`),
//! the daemons' events as Server-Sent Events (`stream.rs`) and the page
//! (`page.rs`, embedded in the binary). It holds no state of its own: each
//! request goes to the project's daemon over its socket (`projects.rs`).
//!
//! It listens on 127.0.0.1 (and `::1`) only and every request needs the
//! token (`guard.rs`); the token and address are kept in the user's
//! private runtime directory (0600), so a second `bgtask dashboard` finds
//! the running one and prints its address instead of starting another.

mod api;
mod error;
mod guard;
mod local;
mod logs;
mod openapi;
mod page;
mod projects;
mod sources;
mod stream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::exit;

/// Request bodies over this are refused (413) unread.
const MAX_BODY: usize = 1024 * 1024;

pub struct Options {
    /// 0: any free port.
    pub port: u16,
    /// Open the page in the browser, when there is a display.
    pub open: bool,
    /// Print `{"url", "token"}` (scripts) instead of a sentence.
    pub json: bool,
}

/// What a running dashboard left for the next one to find.
#[derive(Debug, Serialize, Deserialize)]
struct Running {
    url: String,
    token: String,
    pid: u32,
}

fn running_file() -> anyhow::Result<PathBuf> {
    Ok(crate::state::paths::runtime_dir()?.join("dashboard.json"))
}

/// The dashboard already serving, if its process is alive and answers.
fn find_running(file: &Path) -> Option<Running> {
    let r: Running = serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    let pid = libc::pid_t::try_from(r.pid).ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    let addr = r.url.strip_prefix("http://")?;
    let answers = std::net::TcpStream::connect_timeout(
        &addr.parse().ok()?,
        std::time::Duration::from_millis(300),
    )
    .is_ok();
    (alive && answers).then_some(r)
}

fn say(r: &Running, json: bool, reused: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"url": r.url, "token": r.token, "pid": r.pid, "reused": reused})
        );
    } else {
        let how = if reused {
            "the dashboard already runs"
        } else {
            "dashboard"
        };
        anstream::println!("{how}: open {}/?token={}", r.url, r.token);
        anstream::println!(
            "(API: curl -H \"Authorization: Bearer {}\" {}/api/v1/projects; Ctrl-C stops)",
            r.token,
            r.url
        );
    }
    let _ = std::io::stdout().flush();
}

/// Opens the page in the user's browser, when there is a display to
/// show it on; quietly does nothing otherwise.
fn open_browser(url: &str) {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !display {
        return;
    }
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn router(guard: Arc<guard::Guard>) -> Router {
    api::routes()
        .route("/", get(page::index))
        .route("/assets/{name}", get(page::asset))
        .fallback(page::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}

/// The API's OpenAPI document, as committed in `schema/openapi.json`.
pub fn openapi_json() -> String {
    openapi::document_json()
}

/// `--forget ID`: the project is no longer listed (until a daemon starts
/// there again).
pub fn forget(id: &str) -> anyhow::Result<u8> {
    if crate::state::registry::forget(id)? {
        anstream::println!("forgot {id}");
        Ok(exit::OK)
    } else {
        anstream::eprintln!(
            "error: no project {id}; `bgtask dashboard --json` and the API list them"
        );
        Ok(exit::USAGE)
    }
}

pub fn run(opts: &Options) -> anyhow::Result<u8> {
    let file = running_file()?;
    if let Some(r) = find_running(&file) {
        say(&r, opts.json, true);
        return Ok(exit::OK);
    }
    let token = guard::new_token().context("make a token")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(opts, &file, token))?;
    Ok(exit::OK)
}

async fn serve(opts: &Options, file: &Path, token: String) -> anyhow::Result<()> {
    let v4 = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .with_context(|| format!("listen on 127.0.0.1:{}", opts.port))?;
    let port = v4.local_addr()?.port();
    // ::1 too where the machine has it (a browser may resolve localhost so).
    let v6 = tokio::net::TcpListener::bind(("::1", port)).await.ok();
    let guard = Arc::new(guard::Guard {
        token: token.clone(),
        hosts: vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ],
    });
    let running = Running {
        url: format!("http://127.0.0.1:{port}"),
        token,
        pid: std::process::id(),
    };
    write_private(file, &serde_json::to_vec(&running)?)?;
    say(&running, opts.json, false);
    if opts.open {
        open_browser(&format!("{}/?token={}", running.url, running.token));
    }
    let app = router(guard);
    let stop = tokio_util::sync::CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stopper.cancel();
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stopper = stop.clone();
    tokio::spawn(async move {
        term.recv().await;
        stopper.cancel();
    });
    let serve_v6 = {
        let (app, stop) = (app.clone(), stop.clone());
        async move {
            if let Some(v6) = v6 {
                let _ = axum::serve(v6, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }
        }
    };
    let serve_v4 = axum::serve(v4, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    // Event streams never end by themselves: a moment for the rest, then go.
    let served = tokio::select! {
        (served, ()) = async { tokio::join!(serve_v4.into_future(), serve_v6) } => served,
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        } => Ok(()),
    };
    let _ = std::fs::remove_file(file);
    served.context("serve")
}

/// Writes `bytes` to `path`, readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}
