//! Following the daemon's event stream for the language server, on a
//! thread of its own: a message on the channel each time the findings may
//! have changed (a job finished, events were lost, or the daemon came back
//! after being down). Reconnects every 2 s while the daemon is down. Owns
//! only the connection; what changed is for `server.rs` to work out.

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;
use tracing::{debug, warn};

use crate::ipc::events::What;
use crate::ipc::{Client, Request, Response};

const RETRY: Duration = Duration::from_secs(2);

/// Starts following the daemon of the worktree at `root`; the thread ends
/// when `changed`'s receiver is gone.
pub fn spawn(root: PathBuf, changed: Sender<()>) {
    let started = thread::Builder::new()
        .name("lsp-events".into())
        .spawn(move || follow(&root, &changed));
    if let Err(e) = started {
        warn!(error = %e, "cannot follow the daemon's events");
    }
}

fn follow(root: &std::path::Path, changed: &Sender<()>) {
    let socket = match crate::state::Paths::for_root(root) {
        Ok(paths) => paths.socket,
        Err(e) => {
            warn!(error = %e, "no daemon socket for this worktree; diagnostics will not update live");
            return;
        }
    };
    loop {
        if let Ok(mut client) = Client::connect(&socket, RETRY) {
            debug!(socket = %socket.display(), "following the daemon's events");
            if client.no_read_timeout().is_ok()
                && client
                    .send(Request::Subscribe {
                        after: None,
                        epoch: None,
                    })
                    .is_ok()
            {
                // Runs may have finished while nothing was listening.
                if changed.send(()).is_err() {
                    return;
                }
                while let Ok(response) = client.receive() {
                    let finished = match response {
                        Response::Event(e) => {
                            matches!(e.what, What::JobFinished { .. } | What::Lagged { .. })
                        }
                        Response::Subscribed(_) => false,
                        _ => break,
                    };
                    if finished && changed.send(()).is_err() {
                        return;
                    }
                }
            }
            debug!("the daemon's event stream ended");
        }
        thread::sleep(RETRY);
    }
}
