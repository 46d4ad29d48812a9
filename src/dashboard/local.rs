//! What the dashboard reads from a project's worktree itself, as the CLI
//! does (no daemon needed): the notification delivery log (`bgtask
//! notifications`), and whether the config on disk is valid, with every
//! problem (`bgtask config validate`) and the config as merged from its
//! files (`bgtask config show`). Nothing here writes.

use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, blocking};
use super::projects::known;

/// The config on disk: valid (its files, tasks, and each project's config
/// as merged from its files) or every problem with file, line and column. The daemon keeps its last good config meanwhile.
fn config_of(root: &std::path::Path) -> Result<Value, ApiError> {
    let workspace = crate::engine::Workspace::worktree(root).map_err(ApiError::internal)?;
    Ok(match workspace.projects() {
        Ok(projects) => {
            let config = projects.combined();
            let effective: serde_json::Map<String, Value> =
                crate::config::tasks::effective(&workspace.root, &projects)
                    .map_err(|e| ApiError::config_invalid(&e))?
                    .into_iter()
                    .collect();
            json!({
                "valid": true,
                "files": config.files,
                "tasks": config.tasks.keys().collect::<Vec<_>>(),
                "problems": [],
                "effective": effective,
            })
        }
        Err(e) => json!({
            "valid": false,
            "problems": e.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "error": format!("{e:#}"),
        }),
    })
}

pub async fn config(id: Result<Path<String>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let root: PathBuf = known(&id)?.root;
    Ok(Json(blocking(move || config_of(&root)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    limit: Option<u32>,
}

pub async fn notifications(
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let Query(q) = q.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let root = known(&id)?.root;
    let limit = q.limit.unwrap_or(20).min(500);
    let rows = blocking(move || {
        let db = root.join(".bgtask").join(crate::store::FILE);
        if !db.exists() {
            return Ok(Vec::new());
        }
        crate::notifier::Db::open(&db)
            .and_then(|db| db.deliveries(limit))
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(json!({ "deliveries": rows })))
}
