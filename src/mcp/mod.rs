//! `bgtask mcp`: bgtask for AI coding agents, over the Model Context
//! Protocol (the official `rmcp` SDK). On stdio for the worktree it is
//! started in, and over Streamable HTTP at `/mcp` in `bgtask dashboard`
//! (one project per URL: `/mcp?project=ID`, or the only one known).
//!
//! Every tool is a thin caller of what the CLI does: the daemon's own
//! requests (`status`, `submit`, `history`…), the foreground run engine
//! (`run_analysis` is `bgtask run`), the config checks. There is no tool to
//! trust a worktree, change trust or install hooks: an agent can pause and
//! resume the automatic work, nothing more (`tools.rs`).
//!
//! - `server.rs`: the handler — which worktree, server info, resources
//!   and their subscriptions;
//! - `tools.rs`: the tools; `analysis.rs`: `run_analysis`;
//! - `resources.rs`: `bgtask://status`, `bgtask://runs/{id}`,
//!   `bgtask://findings/{path}`, and which of them a daemon event changes;
//! - `prompts.rs`: `review-my-change`, `fix-findings`;
//! - `daemon.rs`: the daemon, asked from async code, its errors in words
//!   for a model.
//!
//! On stdio, stdout carries protocol messages only: the process's fd 1 is
//! pointed at stderr before anything runs, and the protocol is written to
//! a private copy of the original stdout, so a stray print (or an analyzer
//! that writes to an inherited fd 1) cannot corrupt the stream.

mod analysis;
mod daemon;
mod novelty;
mod params;
mod prompts;
mod resources;
mod runs;
mod server;
mod tools;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::Context;
use rmcp::ServiceExt;

pub use server::Bgtask;

use crate::exit;

/// Serves MCP on stdin/stdout for the worktree holding `dir`, until the
/// client closes stdin.
pub fn serve_stdio(dir: &Path) -> anyhow::Result<u8> {
    let workspace = crate::engine::Workspace::discover(dir)?;
    let protocol_out = take_stdout().context("keep stdout for the protocol")?;
    crate::run::become_subreaper();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Bgtask::for_worktree(workspace.root.clone());
        let out = tokio::fs::File::from_std(std::fs::File::from(protocol_out));
        let service = server
            .serve((tokio::io::stdin(), out))
            .await
            .context("start the MCP session")?;
        service.waiting().await.context("MCP session")?;
        anyhow::Ok(())
    })?;
    // Analyzers still running belong to a request the client gave up on.
    crate::run::kill_all_spawned();
    Ok(exit::OK)
}

/// A private copy of stdout for the protocol; fd 1 itself then points at
/// stderr, for everything else that writes there.
fn take_stdout() -> std::io::Result<OwnedFd> {
    use std::io::Write;
    std::io::stdout().flush()?;
    // SAFETY: `dup` and `dup2` on the process's own standard descriptors;
    // the new descriptor is owned by the returned `OwnedFd` alone.
    unsafe {
        let copy = libc::dup(std::io::stdout().as_raw_fd());
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(copy);
        if libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let _ = libc::fcntl(copy, libc::F_SETFD, libc::FD_CLOEXEC);
        Ok(owned)
    }
}

/// The Streamable HTTP endpoint the dashboard serves at `/mcp`. The
/// dashboard's guard checks the token, `Host` and `Origin` of every request
/// before it gets here (with its `--allow-host` names), so the SDK's own
/// loopback-only `Host` list is not applied a second time.
pub fn http_service(
    cancel: tokio_util::sync::CancellationToken,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    Bgtask,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    StreamableHttpService::new(
        || Ok(Bgtask::for_dashboard()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_cancellation_token(cancel)
            .disable_allowed_hosts(),
    )
}
