//! `bgtask lsp`: a Language Server on stdio that shows the worktree's
//! current findings (`store/current.rs`) as diagnostics in the editor,
//! and updates them as the daemon finishes runs. It reads the store and
//! follows the daemon's events; it never runs an analyzer itself, and
//! works with the daemon stopped (the last findings, no live updates until
//! it is back). A file opened that no run has looked at is handed to the
//! daemon as a save would be.
//!
//! - `server.rs`: capabilities, push or pull, the open documents, answers;
//! - `diagnostics.rs`: a finding as a diagnostic (severity, the line in
//!   UTF-16 units, rule, analyzer, documentation link, baseline state);
//! - `accepted.rs`: the baseline's findings, and adding one;
//! - `actions.rs`: code actions (add to the baseline, show in the
//!   dashboard) and their commands;
//! - `opened.rs`: asking the daemon to analyse an opened file;
//! - `doctor.rs`: `bgtask lsp --doctor`;
//! - `follow.rs`: the daemon's event stream, reconnecting while it is down;
//! - `uri.rs`: `file:` URIs to repo-relative paths.
//!
//! Stdout carries LSP messages only (rust-analyzer's `lsp-server`
//! transport); logs go to stderr.

mod accepted;
mod actions;
mod diagnostics;
mod doctor;
mod follow;
mod opened;
mod server;
mod uri;

use std::path::{Path, PathBuf};

use anyhow::Context;
use lsp_server::{Connection, ErrorCode, Message, Response};

use crate::exit;
pub use doctor::doctor;
use server::{Client, Server};

/// Serves LSP on stdin/stdout until the editor shuts the server down or
/// closes stdin. The worktree is the editor's workspace folder (else its
/// root URI, else `dir`'s).
pub fn serve_stdio(dir: &Path) -> anyhow::Result<u8> {
    let (connection, io_threads) = Connection::stdio();
    let (id, params) = connection
        .initialize_start()
        .context("wait for the editor's `initialize`")?;
    let client = Client::from_initialize(&params);
    let mode = client.mode;
    let root = match worktree(&params, dir) {
        Ok(root) => root,
        Err(e) => {
            let message = format!("{e:#}");
            let _ = connection
                .sender
                .send(Response::new_err(id, ErrorCode::InvalidParams as i32, message).into());
            drop(connection);
            let _ = io_threads.join();
            return Err(e);
        }
    };
    tracing::info!(root = %root.display(), ?mode, "serving diagnostics");
    let result = serde_json::json!({
        "capabilities": server::capabilities(mode),
        "serverInfo": {"name": "bgtask", "version": env!("CARGO_PKG_VERSION")},
    });
    connection
        .initialize_finish(id, result)
        .context("finish `initialize`")?;

    let (changed_tx, changed) = crossbeam_channel::unbounded();
    follow::spawn(root.clone(), changed_tx);
    let mut server = Server::new(root, client, connection.sender.clone());
    let mut changed = changed;
    loop {
        crossbeam_channel::select! {
            recv(connection.receiver) -> message => match message {
                Ok(Message::Request(req)) => {
                    if connection.handle_shutdown(&req).context("shut down")? {
                        break;
                    }
                    server.request(req);
                }
                Ok(Message::Notification(n)) => server.notification(n),
                Ok(Message::Response(_)) => {}
                Err(_) => break,
            },
            recv(changed) -> message => match message {
                Ok(()) => {
                    // Several runs finishing at once: one update.
                    while changed.try_recv().is_ok() {}
                    server.runs_changed();
                }
                Err(_) => changed = crossbeam_channel::never(),
            },
        }
    }
    drop(server);
    drop(connection);
    io_threads.join().context("the editor's connection")?;
    Ok(exit::OK)
}

/// The worktree holding the editor's first workspace folder, else its
/// root URI, else `dir`. Read from the raw parameters, so that a
/// capability this crate's types do not know cannot fail `initialize`.
fn worktree(params: &serde_json::Value, dir: &Path) -> anyhow::Result<PathBuf> {
    let from_editor = [&params["workspaceFolders"][0]["uri"], &params["rootUri"]]
        .into_iter()
        .find_map(|u| u.as_str().and_then(uri::to_path));
    let start = from_editor.unwrap_or_else(|| dir.to_owned());
    let workspace = crate::engine::Workspace::discover(&start)?;
    Ok(workspace.root)
}
