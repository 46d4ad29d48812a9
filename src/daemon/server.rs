//! The IPC server: accepts connections on the socket, checks the peer is
//! the same user, reads framed requests and hands them to the core, and
//! streams live logs for `logs --follow`.
//!
//! A bad frame (too large, malformed, unknown version, half a frame then
//! silence) gets a typed error and the connection is closed; other clients
//! and the daemon carry on (RELIABILITY 18).
//!
//! Clients are bounded, as mini-redis bounds them: at most
//! [`MAX_CONNECTIONS`] at once (the next waits to be accepted), and at most
//! [`MAX_WAITING`] requests waiting for the core; past that a request is
//! answered `busy` at once, which a hook turns into a spooled event. (The
//! core's own channel stays unbounded: what else sends to it — job ends,
//! spawned processes, resolved batches, the watcher's batches, reloads —
//! is bounded by the daemon's own work, and the core sends to itself.)
//! At shutdown every connection is told to end and is joined.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::command::Command;
use super::events::Events;
use crate::ipc::events::{Event, What};
use crate::ipc::frame::{self, FrameError};
use crate::ipc::{Envelope, ErrorKind, IpcError, Request, Response};

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Requests waiting for the core at once.
pub const MAX_WAITING: usize = 128;

/// What every connection shares.
#[derive(Clone)]
struct Shared {
    core: mpsc::UnboundedSender<Command>,
    logs: PathBuf,
    events: Events,
    waiting: Arc<Semaphore>,
    stop: CancellationToken,
}

pub async fn serve(
    listener: UnixListener,
    core: mpsc::UnboundedSender<Command>,
    logs: PathBuf,
    events: Events,
    stop: CancellationToken,
) {
    let shared = Shared {
        core,
        logs,
        events,
        waiting: Arc::new(Semaphore::new(MAX_WAITING)),
        stop: stop.clone(),
    };
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.expect("never closed"),
            () = stop.cancelled() => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        connection(stream, &shared).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next() => {}
            () = stop.cancelled() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    // Each connection sees the stop and ends.
    while connections.join_next().await.is_some() {}
}

/// Sends a response; one too large to send becomes a typed error instead
/// of a silently closed connection.
async fn send(stream: &mut UnixStream, response: Response) -> bool {
    match frame::write(stream, &Envelope::new(response)).await {
        Ok(()) => true,
        Err(e @ FrameError::TooLarge(..)) => {
            let e = IpcError::new(
                ErrorKind::TooLarge,
                format!("the answer is too large to send ({e}); ask for less"),
            );
            frame::write(stream, &Envelope::new(Response::Error(e)))
                .await
                .is_ok()
        }
        Err(_) => false,
    }
}

async fn connection(mut stream: UnixStream, shared: &Shared) {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == uid() => {}
        Ok(cred) => {
            tracing::warn!(
                peer_uid = cred.uid(),
                "refused a connection from another user"
            );
            let e = IpcError::new(ErrorKind::Forbidden, "the daemon only answers its own user");
            // Take the client's request first (bounded in size and time,
            // never parsed beyond JSON), so it can read why it was refused
            // instead of failing to write.
            let _ = tokio::time::timeout(
                frame::READ_DEADLINE,
                frame::read::<serde::de::IgnoredAny>(&mut stream),
            )
            .await;
            send(&mut stream, Response::Error(e)).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check the peer of a connection");
            return;
        }
    }
    loop {
        let read = tokio::select! {
            read = frame::read(&mut stream) => read,
            () = shared.stop.cancelled() => return,
        };
        let envelope: Envelope<serde_json::Value> = match read {
            Ok(e) => e,
            Err(FrameError::Closed) => return,
            Err(e) => {
                let kind = match e {
                    FrameError::TooLarge(..) => ErrorKind::TooLarge,
                    FrameError::Timeout => ErrorKind::Timeout,
                    _ => ErrorKind::Malformed,
                };
                tracing::debug!(error = %e, "bad frame");
                send(
                    &mut stream,
                    Response::Error(IpcError::new(kind, e.to_string())),
                )
                .await;
                return;
            }
        };
        let request = match Request::from_envelope(envelope) {
            Ok(r) => r,
            Err(e) => {
                send(&mut stream, Response::Error(e)).await;
                return;
            }
        };
        let keep_going = match request {
            Request::Logs { run_id, follow } => {
                stream_logs(&mut stream, shared, run_id, follow).await
            }
            Request::Subscribe { after, epoch } => {
                stream_events(&mut stream, shared, after, epoch).await
            }
            other => match ask(shared, other).await {
                Some(response) => send(&mut stream, response).await,
                None => false,
            },
        };
        if !keep_going {
            return;
        }
    }
}

/// The core's answer; `busy` at once when [`MAX_WAITING`] requests wait
/// already; `None` when the core is gone.
async fn ask(shared: &Shared, request: Request) -> Option<Response> {
    let Ok(_waiting) = shared.waiting.try_acquire() else {
        return Some(Response::Error(IpcError::new(
            ErrorKind::Busy,
            format!(
                "the daemon is busy ({MAX_WAITING} requests are waiting); try again in a moment"
            ),
        )));
    };
    let (reply, rx) = oneshot::channel();
    shared.core.send(Command::Request { request, reply }).ok()?;
    // Not cut short by the stop: `bgtask stop`'s own answer comes after
    // it. A core that ends drops the reply, which ends the wait.
    rx.await.ok()
}

/// Sends the events after `after` that are still kept, then every event
/// as it is published, until the daemon stops (its `stopped` event is
/// the last) or the client closes its end. Always ends the connection.
async fn stream_events(
    stream: &mut UnixStream,
    shared: &Shared,
    after: Option<u64>,
    epoch: Option<i64>,
) -> bool {
    let sub = shared.events.subscribe(after, epoch);
    if !send(stream, Response::Subscribed(sub.subscribed)).await {
        return false;
    }
    for event in sub.backlog {
        if !send_event(stream, &event).await {
            return false;
        }
    }
    let mut live = sub.live;
    let mut probe = [0u8; 1];
    let mut stopping = false;
    loop {
        let received = tokio::select! {
            r = live.recv() => r,
            // The client closed its end (or spoke out of turn): done.
            _ = stream.read(&mut probe) => return false,
            () = shared.stop.cancelled(), if !stopping => {
                // The core publishes the jobs it stops and then `stopped`
                // as it winds down: wait for that, not for ever.
                stopping = true;
                continue;
            }
            () = tokio::time::sleep(Duration::from_secs(60)), if stopping => return false,
        };
        match received {
            Ok(event) => {
                if !send_event(stream, &event).await || event.what == What::Stopped {
                    return false;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                let lagged = Event {
                    seq: 0,
                    at_ms: crate::clock::now_ms(),
                    what: What::Lagged { missed },
                };
                if !send_event(stream, &lagged).await {
                    return false;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
        }
    }
}

async fn send_event(stream: &mut UnixStream, event: &Event) -> bool {
    send(stream, Response::Event(Box::new(event.clone()))).await
}

/// Sends what the run's analyzers wrote so far and, with `follow`, what they
/// write next, until the run ends.
async fn stream_logs(stream: &mut UnixStream, shared: &Shared, run_id: i64, follow: bool) -> bool {
    let finished = match ask(shared, Request::Logs { run_id, follow }).await {
        Some(Response::LogEnd { finished }) => finished,
        Some(other) => return send(stream, other).await,
        None => return false,
    };
    let dir = shared.logs.join(run_id.to_string());
    let mut offsets: BTreeMap<String, u64> = BTreeMap::new();
    let mut done = finished || dir.join(".done").exists();
    let mut since_ask = 0u32;
    loop {
        if !send_new(stream, &dir, &mut offsets).await {
            return false;
        }
        if done || !follow {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            // The daemon stops: what was written is sent, then the end.
            () = shared.stop.cancelled() => break,
        }
        since_ask += 1;
        if dir.join(".done").exists() {
            done = true;
        } else if since_ask >= 10 {
            since_ask = 0;
            // The run may have ended without its marker (a crash): ask.
            if let Some(Response::LogEnd { finished: true }) =
                ask(shared, Request::Logs { run_id, follow }).await
            {
                done = true;
            }
        }
    }
    send(stream, Response::LogEnd { finished: done }).await
}

/// Sends bytes appended to the run's log files since the last call.
async fn send_new(
    stream: &mut UnixStream,
    dir: &Path,
    offsets: &mut BTreeMap<String, u64>,
) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    for path in files {
        let analyzer = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let offset = offsets.entry(analyzer.clone()).or_insert(0);
        let Ok(mut f) = tokio::fs::File::open(&path).await else {
            continue;
        };
        if tokio::io::AsyncSeekExt::seek(&mut f, std::io::SeekFrom::Start(*offset))
            .await
            .is_err()
        {
            continue;
        }
        // JSON escaping can grow a chunk up to 6×; stay well under the frame cap.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            *offset += n as u64;
            let chunk = Response::LogChunk {
                analyzer: analyzer.clone(),
                data: String::from_utf8_lossy(&buf[..n]).into_owned(),
            };
            if !send(stream, chunk).await {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core that takes requests but does not answer yet: the waiting
    /// ones fill the room, the next is told `busy` at once, and the core
    /// going away ends them.
    #[tokio::test]
    async fn past_the_waiting_room_a_request_is_busy_at_once() {
        let (core, mut rx) = mpsc::unbounded_channel();
        let shared = Shared {
            core,
            logs: PathBuf::new(),
            events: Events::new(0),
            waiting: Arc::new(Semaphore::new(2)),
            stop: CancellationToken::new(),
        };
        let mut held = JoinSet::new();
        for _ in 0..2 {
            let shared = shared.clone();
            held.spawn(async move { ask(&shared, Request::Ping).await });
        }
        // Both reach the core (and are never answered).
        let mut replies = Vec::new();
        for _ in 0..2 {
            match rx.recv().await {
                Some(Command::Request { reply, .. }) => replies.push(reply),
                _ => panic!("a request"),
            }
        }
        let busy = ask(&shared, Request::Ping).await;
        assert!(
            matches!(&busy, Some(Response::Error(e)) if e.kind == ErrorKind::Busy),
            "{busy:?}"
        );
        drop(replies);
        while let Some(r) = held.join_next().await {
            assert!(r.unwrap().is_none(), "the core gone ends the wait");
        }
    }
}
