//! Bulk actions on what a filter selects, as `bgtask cancel --waiting`
//! and `bgtask retry --failed` do (`ipc::bulk`): cancel every waiting job
//! of a task, retry every failed run of the last hour.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::routing::post;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, blocking};
use super::projects::{ANSWER_WITHIN, known};
use crate::ipc::Client;
use crate::ipc::bulk::BulkOutcome;
use crate::state::Paths;

pub fn routes() -> Router {
    Router::new()
        .route("/api/v1/projects/{id}/bulk/cancel", post(cancel))
        .route("/api/v1/projects/{id}/bulk/retry", post(retry))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelFilter {
    /// Only this task's waiting jobs (all tasks when absent).
    task: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFilter {
    task: Option<String>,
    /// Runs started within this long, e.g. `30m`, `1h` (the default).
    within: Option<String>,
}

/// Runs `work` with a client of project `id`'s daemon.
async fn with_client(
    id: &str,
    work: impl FnOnce(&mut Client) -> Result<BulkOutcome, crate::ipc::ClientError> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    let root = known(id)?.root;
    let out = blocking(move || {
        let paths = Paths::for_root(&root).map_err(ApiError::internal)?;
        let mut client =
            Client::connect(&paths.socket, ANSWER_WITHIN).map_err(ApiError::from_client)?;
        work(&mut client).map_err(ApiError::from_client)
    })
    .await?;
    Ok(Json(serde_json::to_value(out).map_err(ApiError::internal)?))
}

async fn cancel(
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<CancelFilter>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let Json(filter) = body?;
    with_client(&id, move |c| {
        crate::ipc::bulk::cancel_waiting(c, filter.task.as_deref())
    })
    .await
}

async fn retry(
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<RetryFilter>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let Json(filter) = body?;
    let within = match filter.within.as_deref() {
        None => Duration::from_secs(3600),
        Some(w) => humantime::parse_duration(w).map_err(|e| {
            ApiError::bad_request(format!(
                "within: `{w}` is not a duration like 30m or 1h ({e})"
            ))
        })?,
    };
    let since = crate::clock::ms_ago(within);
    with_client(&id, move |c| {
        crate::ipc::bulk::retry_failed(c, filter.task.as_deref(), since)
    })
    .await
}
