//! A project's notification channels from the dashboard: which ones its
//! config turns on (`GET …/notifications/channels`), and "Send a test"
//! (`POST …/notifications/test`), which is `bgtask notify test` —
//! the same function (`notifier::test_worktree`), each attempt in the
//! worktree's delivery log. A channel that failed is an answer, not an
//! error: 200, and the body says.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, blocking};
use super::projects::known;
use crate::notifier::ChannelName;
use crate::notifier::console::ConsoleSink;

pub fn routes() -> Router {
    Router::new()
        .route("/api/v1/projects/{id}/notifications/test", post(test))
        .route(
            "/api/v1/projects/{id}/notifications/channels",
            get(channels),
        )
}

/// What `POST …/notifications/test` takes (or no body: every channel).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// Only this channel, tried even if its `min_severity` is above
    /// `info`; none: every channel (those off say so).
    #[serde(default)]
    channel: Option<ChannelName>,
}

fn project_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    Ok(id)
}

/// Sends the test notification through the project's channels (or the
/// one asked for); each channel's outcome and detail.
async fn test(
    id: Result<Path<String>, PathRejection>,
    body: Result<Option<Json<TestBody>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = project_id(id)?;
    let body = body?.map(|Json(b)| b).unwrap_or_default();
    let root = known(&id)?.root;
    let tested = blocking(move || {
        // Its own small runtime, as the CLI's: the delivery log is a
        // SQLite connection, held across the sends.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ApiError::internal)?;
        // The console channel prints on the dashboard's terminal (its
        // stdout may be `--json`).
        let mut console = ConsoleSink::new(Box::new(std::io::stderr()), false, true);
        rt.block_on(crate::notifier::test_worktree(
            &root,
            body.channel,
            &mut console,
        ))
        .map_err(|e| ApiError::config_invalid(&e))
    })
    .await?;
    let mut answer = json!({ "results": tested.json() });
    if let Some(e) = &tested.unrecorded {
        tracing::warn!(error = %e, "a test notification not recorded in the delivery log");
        answer["not_recorded"] = json!(e.to_string());
    }
    Ok(Json(answer))
}

/// Every channel, whether the project's config turns it on and from
/// which level.
async fn channels(id: Result<Path<String>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let id = project_id(id)?;
    let root = known(&id)?.root;
    let config =
        blocking(move || crate::config::load(&root).map_err(|e| ApiError::config_invalid(&e)))
            .await?;
    let n = &config.notifications;
    let channels: Vec<Value> = ChannelName::ALL
        .into_iter()
        .map(|c| {
            let min = c.threshold(n);
            json!({"channel": c, "on": min.is_some(), "min_severity": min.map(crate::notifier::Level::as_str)})
        })
        .collect();
    Ok(Json(json!({ "channels": channels })))
}
