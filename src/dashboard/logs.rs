//! `GET …/runs/{run}/log`: what a run's analyzers printed, from the
//! daemon's `logs` request (as `bgtask logs` asks). `?follow=1` is a
//! Server-Sent Events stream of the output as it is written (`chunk`
//! events), ending with `end` when the run does.

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::projects::{known, next, open_stream};
use crate::ipc::{Request, Response as Answer};
use crate::state::Paths;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    follow: Option<u8>,
}

pub async fn log(
    ids: Result<Path<(String, i64)>, PathRejection>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path((id, run_id)) = ids.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let Query(q) = q.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let root = known(&id)?.root;
    let follow = q.follow.is_some_and(|f| f != 0);
    let socket = Paths::for_root(&root).map_err(ApiError::internal)?.socket;
    let mut stream = open_stream(&socket, Request::Logs { run_id, follow }).await?;
    if !follow {
        let mut logs = serde_json::Map::new();
        loop {
            match next(&mut stream).await {
                Some(Answer::LogChunk { analyzer, data }) => {
                    let text = logs.entry(analyzer).or_insert_with(|| json!(""));
                    *text = json!(format!("{}{data}", text.as_str().unwrap_or("")));
                }
                Some(Answer::LogEnd { finished }) => {
                    return Ok(Json(json!({"logs": logs, "finished": finished})).into_response());
                }
                Some(Answer::Error(e)) => {
                    return Err(ApiError::from_client(crate::ipc::ClientError::Daemon(e)));
                }
                _ => {
                    return Err(ApiError::from_client(crate::ipc::ClientError::Timeout));
                }
            }
        }
    }
    // The first answer decides: an unknown run is a 404, not a stream.
    let first = match next(&mut stream).await {
        Some(Answer::Error(e)) => {
            return Err(ApiError::from_client(crate::ipc::ClientError::Daemon(e)));
        }
        Some(a) => a,
        None => return Err(ApiError::from_client(crate::ipc::ClientError::Timeout)),
    };
    let events =
        futures_util::stream::unfold((Some(first), Some(stream)), |(first, stream)| async move {
            let mut stream = stream?;
            let answer = match first {
                Some(a) => a,
                None => next(&mut stream).await?,
            };
            let (sse, more) = match answer {
                Answer::LogChunk { analyzer, data } => (
                    Sse::default()
                        .event("chunk")
                        .data(json!({"analyzer": analyzer, "data": data}).to_string()),
                    true,
                ),
                Answer::LogEnd { finished } => (
                    Sse::default()
                        .event("end")
                        .data(json!({"finished": finished}).to_string()),
                    false,
                ),
                _ => return None,
            };
            Some((Ok::<_, Infallible>(sse), (None, more.then_some(stream))))
        });
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
