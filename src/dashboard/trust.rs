//! A project's trust, as `bgtask trust` shows and gives it: each task's
//! state (`trusted`, `untrusted`, `changed` with the diff) and what it
//! would run. Trusting from the page takes what the CLI's `[y/N]` takes —
//! a person who has seen the list: the request must carry the `confirm`
//! digest of exactly what was shown, so a stale page (or a script that
//! never looked) cannot trust something else; the page asks first.

use std::path::{Path as FsPath, PathBuf};

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, blocking};
use super::projects::{known, load};
use crate::trust::Fingerprint;

pub fn routes() -> Router {
    Router::new().route("/api/v1/projects/{id}/trust", get(show).post(give))
}

/// What a person confirms: a digest of every line each task would run.
fn digest(fp: &Fingerprint) -> String {
    let bytes = serde_json::to_vec(&fp.tasks).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

fn fingerprint(root: &FsPath) -> Result<(PathBuf, Fingerprint), ApiError> {
    let (workspace, projects) = load(root)?;
    let fp = crate::trust::fingerprint_worktree(&projects, &workspace.root);
    Ok((workspace.root, fp))
}

/// Each task: `trusted`, `untrusted` or `changed` (with the diff), and the
/// lines of what it would run; `confirm` for trusting all of it.
fn trust_of(root: &FsPath) -> Result<Value, ApiError> {
    let (root, fp) = fingerprint(root)?;
    let record = crate::trust::load(&root);
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
        "how": format!("`bgtask trust` in {} trusts what is listed here", root.display()),
        "confirm": digest(&fp),
        "tasks": tasks,
    }))
}

async fn show(id: Result<Path<String>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let root: PathBuf = known(&id)?.root;
    Ok(Json(blocking(move || trust_of(&root)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Give {
    /// The `confirm` digest of the list the person saw (`GET …/trust`).
    confirm: String,
}

async fn give(
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Give>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let Json(body) = body?;
    let root: PathBuf = known(&id)?.root;
    let file = blocking(move || {
        let (root, fp) = fingerprint(&root)?;
        if digest(&fp) != body.confirm {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "changed",
                "what the tasks would run is not what was shown (it changed, or it was never looked at); look again, then confirm",
            ));
        }
        crate::trust::save(&root, &fp).map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(json!({ "trusted": true, "record": file })))
}
