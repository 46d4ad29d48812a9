//! What the dashboard reads from a project's worktree itself, as the CLI
//! does (no daemon needed): each task's trust with what it would run and
//! what changed (`bgtask trust --diff`), the notification delivery log
//! (`bgtask notifications`), and whether the config on disk is valid, with
//! every problem (`bgtask config validate`). Nothing here writes: trusting stays a
//! person's explicit act at the terminal.

use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, blocking};
use super::projects::known;

/// Each task: `trusted`, `untrusted` or `changed` (with the diff), and the
/// lines of what it would run.
fn trust_of(root: &std::path::Path) -> Result<Value, ApiError> {
    let workspace = crate::engine::Workspace::worktree(root).map_err(ApiError::internal)?;
    let projects = workspace
        .projects()
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "config_invalid", format!("{e:#}")))?;
    let fp = crate::trust::fingerprint_worktree(&projects, &workspace.root);
    let record = crate::trust::load(&workspace.root);
    let states = crate::trust::evaluate(&fp, record.as_ref());
    let tasks: serde_json::Map<String, Value> = fp
        .tasks
        .iter()
        .map(|(task, runs)| {
            let mut state = serde_json::to_value(&states[task]).unwrap_or_default();
            state["runs"] = json!(runs);
            (task.clone(), state)
        })
        .collect();
    Ok(json!({
        "trusted_ever": record.is_some(),
        "how": format!("run `bgtask trust` in {} to trust what is listed here", workspace.root.display()),
        "tasks": tasks,
    }))
}

pub async fn trust(id: Result<Path<String>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let root: PathBuf = known(&id)?.root;
    Ok(Json(blocking(move || trust_of(&root)).await?))
}

/// The config on disk: valid (its files and tasks) or every problem with
/// file, line and column. The daemon keeps its last good config meanwhile.
fn config_of(root: &std::path::Path) -> Result<Value, ApiError> {
    let workspace = crate::engine::Workspace::worktree(root).map_err(ApiError::internal)?;
    Ok(match workspace.projects() {
        Ok(projects) => {
            let config = projects.combined();
            json!({
                "valid": true,
                "files": config.files,
                "tasks": config.tasks.keys().collect::<Vec<_>>(),
                "problems": [],
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
