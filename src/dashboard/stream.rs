//! `GET /api/v1/events`: the daemons' event streams as Server-Sent Events,
//! across every known project or one (`?project=ID`). Each daemon's
//! stream is subscribed to over its socket; a daemon that starts later is
//! picked up (its socket is looked for every 2 s), one that stops says so
//! (`daemon_down`). Every event's id is the cursor of the whole stream —
//! each project's daemon epoch and last sequence number — so a browser
//! that reconnects (`Last-Event-ID`) gets what it missed from each daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::projects::{next, open_stream};
use crate::ipc::events::Event;
use crate::ipc::{Request, Response as Answer};
use crate::state::Paths;
use crate::state::registry;

/// How often daemons that are not streaming are looked for.
const LOOK_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    project: Option<String>,
}

/// What one project's subscription tells the stream.
enum Told {
    Up {
        project: String,
        epoch: i64,
        pid: u32,
        missed: u64,
    },
    Event {
        project: String,
        epoch: i64,
        event: Box<Event>,
    },
    Down {
        project: String,
    },
}

/// Each project's daemon epoch and last event seen: `id.epoch.seq,…`.
type Cursor = BTreeMap<String, (i64, u64)>;

fn parse_cursor(headers: &HeaderMap) -> Cursor {
    let Some(v) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) else {
        return Cursor::new();
    };
    v.split(',')
        .filter_map(|part| {
            let mut it = part.split('.');
            let (id, epoch, seq) = (it.next()?, it.next()?, it.next()?);
            Some((id.to_owned(), (epoch.parse().ok()?, seq.parse().ok()?)))
        })
        .collect()
}

fn cursor_id(cursor: &Cursor) -> String {
    cursor
        .iter()
        .map(|(id, (epoch, seq))| format!("{id}.{epoch}.{seq}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn events(q: Result<Query<EventsQuery>, QueryRejection>, headers: HeaderMap) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(r) => return ApiError::bad_request(r.body_text()).into_response(),
    };
    if let Some(id) = &q.project
        && registry::find(id).is_none()
    {
        return ApiError::not_found(format!("no project {id}")).into_response();
    }
    let cursor = parse_cursor(&headers);
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(supervise(q.project, cursor.clone(), tx));
    axum::response::sse::Sse::new(sse_stream(rx, cursor))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The SSE events, each with the cursor after it as its id.
fn sse_stream(
    rx: mpsc::Receiver<Told>,
    cursor: Cursor,
) -> impl Stream<Item = Result<Sse, Infallible>> {
    futures_util::stream::unfold((rx, cursor), |(mut rx, mut cursor)| async move {
        let told = rx.recv().await?;
        let sse = match told {
            Told::Up {
                project,
                epoch,
                pid,
                missed,
            } => {
                // A new daemon: its numbers start again.
                if cursor.get(&project).is_none_or(|(e, _)| *e != epoch) {
                    cursor.insert(project.clone(), (epoch, 0));
                }
                let data =
                    json!({"project": project, "epoch": epoch, "pid": pid, "missed": missed});
                Sse::default().event("daemon_up").data(data.to_string())
            }
            Told::Down { project } => Sse::default()
                .event("daemon_down")
                .data(json!({"project": project}).to_string()),
            Told::Event {
                project,
                epoch,
                event,
            } => {
                if event.seq > 0 {
                    cursor.insert(project.clone(), (epoch, event.seq));
                }
                let mut data = serde_json::to_value(&*event).unwrap_or_default();
                data["project"] = json!(project);
                let kind = data["event"].as_str().unwrap_or("event").to_owned();
                Sse::default().event(kind).data(data.to_string())
            }
        };
        let sse = sse.id(cursor_id(&cursor));
        Some((Ok(sse), (rx, cursor)))
    })
}

/// Subscribes to each wanted project's daemon as it appears, until the
/// browser goes (`tx` closed).
async fn supervise(only: Option<String>, cursor: Cursor, tx: mpsc::Sender<Told>) {
    let mut streaming: BTreeSet<String> = BTreeSet::new();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<String>();
    loop {
        while let Ok(id) = ended.try_recv() {
            streaming.remove(&id);
        }
        let known = tokio::task::spawn_blocking(registry::list)
            .await
            .unwrap_or_default();
        for k in known {
            if only.as_ref().is_some_and(|o| *o != k.id) || streaming.contains(&k.id) {
                continue;
            }
            let Ok(paths) = Paths::for_root(&k.root) else {
                continue;
            };
            if !paths.socket.exists() {
                continue;
            }
            streaming.insert(k.id.clone());
            let after = cursor.get(&k.id).copied();
            let (tx, ended_tx) = (tx.clone(), ended_tx.clone());
            tokio::spawn(async move {
                let id = k.id.clone();
                follow(k.id, paths.socket, after, &tx).await;
                let _ = ended_tx.send(id);
            });
        }
        tokio::select! {
            () = tokio::time::sleep(LOOK_EVERY) => {}
            () = tx.closed() => return,
        }
    }
}

/// One daemon's stream, told on `tx` until it ends (then `Down`).
async fn follow(
    project: String,
    socket: PathBuf,
    after: Option<(i64, u64)>,
    tx: &mpsc::Sender<Told>,
) {
    // The cursor's numbers are its daemon's (epoch): the daemon itself
    // starts another epoch's cursor at the oldest event it kept.
    let request = Request::Subscribe {
        after: after.map(|(_, seq)| seq),
        epoch: after.map(|(epoch, _)| epoch),
    };
    let Ok(mut stream) = open_stream(&socket, request).await else {
        return;
    };
    let Some(Answer::Subscribed(s)) = next(&mut stream).await else {
        return;
    };
    let up = Told::Up {
        project: project.clone(),
        epoch: s.epoch,
        pid: s.pid,
        missed: s.missed,
    };
    if tx.send(up).await.is_err() {
        return;
    }
    let epoch = s.epoch;
    loop {
        let told = tokio::select! {
            read = next(&mut stream) => read,
            () = tx.closed() => return,
        };
        match told {
            Some(Answer::Event(event)) => {
                let told = Told::Event {
                    project: project.clone(),
                    epoch,
                    event,
                };
                if tx.send(told).await.is_err() {
                    return;
                }
            }
            _ => break,
        }
    }
    let _ = tx.send(Told::Down { project }).await;
}
