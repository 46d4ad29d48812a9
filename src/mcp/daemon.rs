//! The worktree's daemon, asked from async code, with its failures put in
//! words a model can act on (a tool result with `isError`, never a
//! protocol error: the request was fine, the work could not be done).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ipc::{Client, ClientError, ErrorKind, Request, Response};
use crate::state::Paths;

/// How long one request may wait for the daemon's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What went wrong, for the tool result.
pub type Failed = String;

/// One request to the daemon of `root`, off the async threads.
pub async fn ask(root: &Path, request: Request) -> Result<Response, Failed> {
    let root: PathBuf = root.to_owned();
    let shown = root.clone();
    tokio::task::spawn_blocking(move || {
        crate::ipc::ask(&root, request, ANSWER_WITHIN).map_err(|e| explain(&shown, &e))
    })
    .await
    .map_err(|e| format!("internal error: {e}"))?
}

/// A client error as a sentence that says what to do.
pub fn explain(root: &Path, e: &ClientError) -> Failed {
    match e {
        ClientError::NotRunning { .. } => format!(
            "bgtask's daemon is not running in {}: nothing runs in the background there. \
             A person starts it with `bgtask start` (hooks installed with \
             `bgtask install-hooks` start it on the next save or commit). \
             `run_analysis` works without it.",
            root.display()
        ),
        ClientError::Daemon(d) => match d.kind {
            ErrorKind::NotFound => format!("not found: {}", d.message),
            ErrorKind::Invalid => format!("refused: {}", d.message),
            ErrorKind::ShuttingDown => "the daemon is stopping; try again once it runs".to_owned(),
            ErrorKind::Busy => format!("the daemon is busy ({}); try again shortly", d.message),
            _ => format!("the daemon answered: {}", d.message),
        },
        other => other.to_string(),
    }
}

/// The daemon's answer when it is not the one expected.
pub fn unexpected(what: &str, r: &Response) -> Failed {
    match r {
        Response::Error(e) => format!("the daemon answered: {}", e.message),
        _ => format!("the daemon answered a {what} request with something else"),
    }
}

/// A run's captured analyzer output so far: the text (each analyzer's
/// part under a `==> analyzer <==` line, as `bgtask logs` prints it) and
/// whether the run has finished.
pub async fn log(root: &Path, run_id: i64) -> Result<(String, bool), Failed> {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let paths = Paths::for_root(&root).map_err(|e| e.to_string())?;
        let fail = |e: ClientError| explain(&root, &e);
        let mut client = Client::connect(&paths.socket, ANSWER_WITHIN).map_err(fail)?;
        client
            .send(Request::Logs {
                run_id,
                follow: false,
            })
            .map_err(fail)?;
        let mut text = String::new();
        let mut current: Option<String> = None;
        loop {
            match client.receive().map_err(fail)? {
                Response::LogChunk { analyzer, data } => {
                    if current.as_deref() != Some(analyzer.as_str()) {
                        text.push_str("==> ");
                        text.push_str(&analyzer);
                        text.push_str(" <==\n");
                        current = Some(analyzer);
                    }
                    text.push_str(&data);
                }
                Response::LogEnd { finished } => return Ok((text, finished)),
                other => return Err(unexpected("logs", &other)),
            }
        }
    })
    .await
    .map_err(|e| format!("internal error: {e}"))?
}
