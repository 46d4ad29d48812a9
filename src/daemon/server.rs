//! The IPC server: accepts connections on the socket, checks the peer is
//! the same user, reads framed requests and hands them to the core, and
//! streams live logs for `logs --follow`.
//!
//! A bad frame (too large, malformed, unknown version, half a frame then
//! silence) gets a typed error and the connection is closed; other clients
//! and the daemon carry on (RELIABILITY 18).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::core::Command;
use crate::ipc::frame::{self, FrameError};
use crate::ipc::{Envelope, ErrorKind, IpcError, Request, Response};

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

pub async fn serve(
    listener: UnixListener,
    core: mpsc::UnboundedSender<Command>,
    logs: PathBuf,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let core = core.clone();
                    let logs = logs.clone();
                    tokio::spawn(async move { connection(stream, core, logs).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = stop.cancelled() => break,
        }
    }
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

async fn connection(mut stream: UnixStream, core: mpsc::UnboundedSender<Command>, logs: PathBuf) {
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
        let envelope: Envelope<serde_json::Value> = match frame::read(&mut stream).await {
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
                stream_logs(&mut stream, &core, &logs, run_id, follow).await
            }
            other => match ask(&core, other).await {
                Some(response) => send(&mut stream, response).await,
                None => false,
            },
        };
        if !keep_going {
            return;
        }
    }
}

async fn ask(core: &mpsc::UnboundedSender<Command>, request: Request) -> Option<Response> {
    let (reply, rx) = oneshot::channel();
    core.send(Command::Request { request, reply }).ok()?;
    rx.await.ok()
}

/// Sends what the run's analyzers wrote so far and, with `follow`, what they
/// write next, until the run ends.
async fn stream_logs(
    stream: &mut UnixStream,
    core: &mpsc::UnboundedSender<Command>,
    logs: &Path,
    run_id: i64,
    follow: bool,
) -> bool {
    let finished = match ask(core, Request::Logs { run_id, follow }).await {
        Some(Response::LogEnd { finished }) => finished,
        Some(other) => return send(stream, other).await,
        None => return false,
    };
    let dir = logs.join(run_id.to_string());
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
        tokio::time::sleep(Duration::from_millis(100)).await;
        since_ask += 1;
        if dir.join(".done").exists() {
            done = true;
        } else if since_ask >= 10 {
            since_ask = 0;
            // The run may have ended without its marker (a crash): ask.
            if let Some(Response::LogEnd { finished: true }) =
                ask(core, Request::Logs { run_id, follow }).await
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
