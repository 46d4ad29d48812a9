//! `bgtask dashboard`: one local web server for every worktree of this
//! user that has (or had) a daemon — the HTTP API (`/api/v1`, `api.rs`),
//! the daemons' events as Server-Sent Events (`stream.rs`) and the page
//! (`page.rs`, embedded in the binary). It holds no state of its own: each
//! request goes to the project's daemon over its socket (`projects.rs`).
//!
//! It listens on 127.0.0.1 (and `::1`) only, unless `--listen ADDR` is
//! given with a TLS certificate (HTTPS, `tls.rs`) or an explicit
//! `--insecure-listen`; every request needs the token (`guard.rs`). The
//! token and address are kept in the user's private runtime directory
//! (0600), so a second `bgtask dashboard` finds the running one and
//! prints its address instead of starting another.

mod api;
mod bulk;
mod error;
mod guard;
mod local;
mod logs;
mod notify;
mod openapi;
mod page;
mod projects;
mod sources;
mod stream;
mod tasks;
mod tls;
mod trends;
mod trust;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use guard::parse_host;
pub use tls::{Tls, TlsError};

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
    /// `--listen`: this address only, instead of 127.0.0.1 and `::1` on
    /// `port`.
    pub listen: Option<SocketAddr>,
    /// `--tls-cert` and `--tls-key`: serve HTTPS.
    pub tls: Option<Tls>,
    /// `--insecure-listen`: the user asked for plain HTTP on `listen`.
    pub insecure_listen: bool,
    /// `--allow-host`: more names clients may give in `Host`.
    pub allow_hosts: Vec<String>,
}

impl Options {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// `--listen`'s value: an IP address and a port, nothing else.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        "expected IP:PORT, like 0.0.0.0:7420, 192.168.1.5:0 or [::]:7420 (not a host name)"
            .to_owned()
    })
}

/// What a running dashboard left for the next one to find.
#[derive(Debug, Serialize, Deserialize)]
struct Running {
    url: String,
    token: String,
    pid: u32,
    /// `--listen`'s address, bound (the URL names a loopback address for
    /// 0.0.0.0 and `[::]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
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
    let addr = r
        .url
        .strip_prefix("http://")
        .or_else(|| r.url.strip_prefix("https://"))?;
    let answers = std::net::TcpStream::connect_timeout(
        &addr.parse().ok()?,
        std::time::Duration::from_millis(300),
    )
    .is_ok();
    (alive && answers).then_some(r)
}

/// The address of the dashboard this user runs, if one does.
pub fn running_url() -> Option<String> {
    find_running(&running_file().ok()?).map(|r| r.url)
}

/// The dashboard page of run `run_id` of the worktree at `root`, in the
/// dashboard this user runs; one is started in the background (no
/// browser) when none does. With whether it was started now.
pub fn run_page(root: &Path, run_id: i64) -> anyhow::Result<(String, bool)> {
    let (r, started) = match find_running(&running_file()?) {
        Some(r) => (r, false),
        None => (start_in_background()?, true),
    };
    let project = crate::state::registry::id_of(root);
    Ok((
        format!("{}/?token={}#/p/{project}/run/{run_id}", r.url, r.token),
        started,
    ))
}

/// Starts `bgtask dashboard` in its own process group, outliving the
/// caller, and reads where it serves from its first line: on its usual
/// port, else (taken) on any free one.
fn start_in_background() -> anyhow::Result<Running> {
    start_detached(&[]).or_else(|first| {
        start_detached(&["--port", "0"]).map_err(|e| e.context(format!("{first:#}")))
    })
}

fn start_detached(args: &[&str]) -> anyhow::Result<Running> {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().context("find bgtask")?)
        .args(["dashboard", "--no-open", "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("start `bgtask dashboard`")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    // Reaped when it ends, so it is no zombie while the caller lives.
    std::thread::spawn(move || child.wait());
    serde_json::from_str(&line).context("`bgtask dashboard` did not start")
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
        .nest_service(
            "/mcp",
            crate::mcp::http_service(tokio_util::sync::CancellationToken::new()),
        )
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
    anyhow::ensure!(
        opts.listen.is_none() || opts.tls.is_some() || opts.insecure_listen,
        "--listen needs --tls-cert and --tls-key, or --insecure-listen"
    );
    let file = running_file()?;
    if let Some(r) = find_running(&file) {
        if !serves_as_asked(&r, opts) {
            anstream::eprintln!(
                "error: a dashboard already runs at {} (pid {}); stop it first to serve another way",
                r.url,
                r.pid
            );
            return Ok(exit::USAGE);
        }
        say(&r, opts.json, true);
        return Ok(exit::OK);
    }
    let token = guard::new_token().context("make a token")?;
    // As the daemon: blocking threads (store reads) would each leave an
    // allocator arena behind.
    crate::daemon::one_arena();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(opts, &file, token))?;
    Ok(exit::OK)
}

/// The address to print and to check a running dashboard at: a loopback
/// one when it listens on every interface (`0.0.0.0`, `[::]`).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// Whether a running dashboard is the one `opts` asks for: any one is when
/// neither `--listen` nor TLS is asked; else it has the same scheme and
/// address (and port, unless 0 asks for any).
fn serves_as_asked(r: &Running, opts: &Options) -> bool {
    if opts.listen.is_none() && opts.tls.is_none() {
        return true;
    }
    let Some(rest) = r
        .url
        .strip_prefix(opts.scheme())
        .and_then(|u| u.strip_prefix("://"))
    else {
        return false;
    };
    let have = r.listen.or_else(|| rest.parse().ok());
    let want = opts
        .listen
        .unwrap_or((Ipv4Addr::LOCALHOST, opts.port).into());
    have.is_some_and(|h| h.ip() == want.ip() && (want.port() == 0 || want.port() == h.port()))
}

/// The listening sockets: `--listen`'s address, or 127.0.0.1 and `::1`
/// where the machine has it (a browser may resolve localhost so).
async fn bind(opts: &Options) -> anyhow::Result<(TcpListener, Option<TcpListener>)> {
    if let Some(addr) = opts.listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listen on {addr}"))?;
        return Ok((listener, None));
    }
    let v4 = TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .with_context(|| format!("listen on 127.0.0.1:{}", opts.port))?;
    let port = v4.local_addr()?.port();
    let v6 = TcpListener::bind(("::1", port)).await.ok();
    Ok((v4, v6))
}

async fn serve(opts: &Options, file: &Path, token: String) -> anyhow::Result<()> {
    let (first, second) = bind(opts).await?;
    let addr = first.local_addr()?;
    let guard = Arc::new(guard::Guard::new(
        token.clone(),
        addr,
        &opts.allow_hosts,
        opts.tls.is_some(),
    ));
    let running = Running {
        url: format!("{}://{}", opts.scheme(), reachable(addr)),
        token,
        pid: std::process::id(),
        listen: opts.listen.map(|_| addr),
    };
    if opts.listen.is_some() {
        warn_listening(addr, opts.tls.is_some());
    }
    write_private(file, &serde_json::to_vec(&running)?)?;
    say(&running, opts.json, false);
    if opts.open {
        open_browser(&format!("{}/?token={}", running.url, running.token));
    }
    let app = router(guard);
    let stop = stop_on_signals()?;
    let served = match &opts.tls {
        Some(tls) => {
            let second = second.map(|l| tls.listener(l));
            serve_on(tls.listener(first), second, app, &stop).await
        }
        None => serve_on(first, second, app, &stop).await,
    };
    let _ = std::fs::remove_file(file);
    served.context("serve")
}

/// What `--listen` puts at risk, on stderr: plain HTTP carries the token
/// in clear text; every interface is reached only by `--allow-host` names.
fn warn_listening(addr: SocketAddr, tls: bool) {
    if !tls {
        anstream::eprintln!(
            "warning: --insecure-listen: plain HTTP on {addr}: the token, and all the dashboard shows, \
             travel in clear text (--tls-cert and --tls-key serve HTTPS)"
        );
    }
    if addr.ip().is_unspecified() {
        anstream::eprintln!(
            "note: listening on every interface ({addr}); other machines open it by a name given with --allow-host"
        );
    }
}

/// Cancelled by the first Ctrl-C or SIGTERM.
fn stop_on_signals() -> std::io::Result<CancellationToken> {
    let stop = CancellationToken::new();
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
    Ok(stop)
}

/// Serves `app` on `first`, and on `second` if there is one, until `stop`.
async fn serve_on<L>(
    first: L,
    second: Option<L>,
    app: Router,
    stop: &CancellationToken,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let serve_second = {
        let (app, stop) = (app.clone(), stop.clone());
        async move {
            if let Some(second) = second {
                let _ = axum::serve(second, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }
        }
    };
    let serve_first =
        axum::serve(first, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    // Event streams never end by themselves: a moment for the rest, then go.
    tokio::select! {
        (served, ()) = async { tokio::join!(serve_first.into_future(), serve_second) } => served,
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        } => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(listen: Option<&str>, port: u16) -> Options {
        Options {
            port,
            open: false,
            json: true,
            listen: listen.map(|l| parse_listen(l).unwrap()),
            tls: None,
            insecure_listen: listen.is_some(),
            allow_hosts: Vec::new(),
        }
    }

    #[test]
    fn listen_takes_an_ip_and_a_port_only() {
        for ok in ["0.0.0.0:7420", "192.168.1.5:0", "[::]:7420", "[::1]:1"] {
            assert!(parse_listen(ok).is_ok(), "{ok}");
        }
        for bad in [
            "localhost:7420",
            "0.0.0.0",
            "7420",
            ":7420",
            "[::]",
            "1.2.3.4:99999",
            "",
        ] {
            let e = parse_listen(bad).unwrap_err();
            assert!(e.contains("expected IP:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_running_dashboard_is_reused_only_when_it_serves_as_asked() {
        let running = |url: &str, listen: Option<&str>| Running {
            url: url.to_owned(),
            token: String::new(),
            pid: 1,
            listen: listen.map(|l| l.parse().unwrap()),
        };
        let (any, every) = (Some("0.0.0.0:0"), Some("0.0.0.0:41000"));
        let rows = [
            (None, "https://192.168.1.5:9", every, true),
            (Some("0.0.0.0:7420"), "http://127.0.0.1:7420", None, false),
            (
                Some("0.0.0.0:7420"),
                "http://127.0.0.1:7420",
                Some("0.0.0.0:7420"),
                true,
            ),
            (any, "http://127.0.0.1:41000", every, true),
            (any, "https://127.0.0.1:41000", every, false),
            (Some("[::]:0"), "http://[::1]:41000", every, false),
            (
                Some("[::]:0"),
                "http://[::1]:41000",
                Some("[::]:41000"),
                true,
            ),
            (Some("127.0.0.1:0"), "http://127.0.0.1:41000", None, true),
            (
                Some("192.168.1.5:7420"),
                "http://192.168.1.5:7421",
                None,
                false,
            ),
        ];
        for (listen, url, was, reused) in rows {
            let r = running(url, was);
            assert_eq!(
                serves_as_asked(&r, &options(listen, 0)),
                reused,
                "{url} {was:?}"
            );
        }
    }
}
