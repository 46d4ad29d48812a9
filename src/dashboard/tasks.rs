//! A project's tasks: listed with what they run, when and which file
//! defines them, and edited — enable, disable, create, edit, delete — in
//! the personal `.background-tasks.local.json` through
//! `config::tasks::edit`, as `bgtask task` does. Each edit is checked
//! with the whole config first (422 with every problem, nothing written);
//! the daemon reloads the file by itself.

use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, blocking};
use super::projects::{known, load};
use crate::config::{EditError, TaskEdit};

pub fn routes() -> Router {
    Router::new()
        .route("/api/v1/projects/{id}/tasks", get(list))
        .route("/api/v1/projects/{id}/tasks/{task}", post(define))
        .route("/api/v1/projects/{id}/tasks/{task}/enable", post(enable))
        .route("/api/v1/projects/{id}/tasks/{task}/disable", post(disable))
        .route("/api/v1/projects/{id}/tasks/{task}/delete", post(delete))
}

type Answer = Result<Json<Value>, ApiError>;

fn path_error(r: &PathRejection) -> ApiError {
    ApiError::bad_request(r.body_text())
}

async fn list(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    let root: PathBuf = known(&id)?.root;
    blocking(move || {
        let (workspace, projects) = load(&root)?;
        let tasks = crate::config::tasks::list(&workspace.root, &projects)
            .map_err(|e| ApiError::config_invalid(&e))?;
        Ok(Json(json!({
            "tasks": tasks,
            "personal_file": workspace.root.join(crate::config::LOCAL_CONFIG_FILE),
        })))
    })
    .await
}

/// Runs `edit` on task `task` of project `id`: the task as it now is.
async fn apply(id: String, task: String, edit: TaskEdit) -> Answer {
    let root: PathBuf = known(&id)?.root;
    blocking(move || {
        let (workspace, projects) = load(&root)?;
        let deleting = matches!(edit, TaskEdit::Delete);
        let edited = crate::config::tasks::edit(&workspace.root, &projects, &task, edit)
            .map_err(|e| edit_error(&e))?;
        // The projects as the written file makes them.
        let (_, projects) = load(&workspace.root)?;
        let now = crate::config::tasks::list(&workspace.root, &projects)
            .map_err(|e| ApiError::config_invalid(&e))?
            .into_iter()
            .find(|t| t.key == task);
        if now.is_none() && !deleting {
            return Err(ApiError::internal(format!(
                "task {task} is gone after its edit"
            )));
        }
        Ok(Json(json!({
            "task": now,
            "file": edited.file,
            "created_file": edited.created,
            "excluded_from_git": edited.excluded,
        })))
    })
    .await
}

fn edit_error(e: &EditError) -> ApiError {
    match e {
        // The edit would leave the config invalid: refused, as is.
        EditError::Invalid(c) => ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            ..ApiError::config_invalid(c)
        },
        EditError::NoSuchTask(_) | EditError::NoProject(_) => ApiError::not_found(e.to_string()),
        EditError::Committed { .. } => {
            ApiError::new(StatusCode::CONFLICT, "committed", e.to_string())
        }
        EditError::NotAnObject | EditError::BadName(_) => ApiError::bad_request(e.to_string()),
        EditError::Write { .. } => ApiError::internal(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Define {
    /// The task's definition, as in the config file.
    task: Value,
}

async fn define(
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<Define>, JsonRejection>,
) -> Answer {
    let Path((id, task)) = ids.map_err(|r| path_error(&r))?;
    let Json(body) = body?;
    apply(id, task, TaskEdit::Define(body.task)).await
}

async fn enable(ids: Result<Path<(String, String)>, PathRejection>) -> Answer {
    let Path((id, task)) = ids.map_err(|r| path_error(&r))?;
    apply(id, task, TaskEdit::Enable(true)).await
}

async fn disable(ids: Result<Path<(String, String)>, PathRejection>) -> Answer {
    let Path((id, task)) = ids.map_err(|r| path_error(&r))?;
    apply(id, task, TaskEdit::Enable(false)).await
}

async fn delete(ids: Result<Path<(String, String)>, PathRejection>) -> Answer {
    let Path((id, task)) = ids.map_err(|r| path_error(&r))?;
    apply(id, task, TaskEdit::Delete).await
}
