//! `/api/v1`: JSON over the daemons' own requests. Each handler finds the
//! project, sends its daemon the request the CLI would send, and answers
//! with the daemon's answer (without its protocol tag) — one
//! implementation per operation, the HTTP API a thin caller.

use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, blocking};
use super::projects::{self, ask, known};
use crate::event::TriggerSource;
use crate::ipc::{Request, Submit};

/// History pages hold at most this many runs.
const MAX_PAGE: u32 = 500;

pub fn routes() -> Router {
    Router::new()
        .route("/api/v1/projects", get(list))
        .route("/api/v1/projects/{id}", get(one))
        .route("/api/v1/projects/{id}/status", get(status))
        .route("/api/v1/projects/{id}/queue", get(queue))
        .route("/api/v1/projects/{id}/history", get(history))
        .route("/api/v1/projects/{id}/metrics", get(metrics))
        .route("/api/v1/projects/{id}/health", get(health).post(health))
        .route("/api/v1/projects/{id}/cleanup", post(cleanup))
        .route("/api/v1/projects/{id}/config", get(super::local::config))
        .route(
            "/api/v1/projects/{id}/notifications",
            get(super::local::notifications),
        )
        .route("/api/v1/projects/{id}/runs/{run}", get(run))
        .route(
            "/api/v1/projects/{id}/runs/{run}/log",
            get(super::logs::log),
        )
        .route("/api/v1/projects/{id}/runs/{run}/{file}", get(download))
        .route("/api/v1/projects/{id}/submit", post(submit))
        .route("/api/v1/projects/{id}/activity", post(activity))
        .route("/api/v1/projects/{id}/pause", post(pause))
        .route("/api/v1/projects/{id}/resume", post(resume))
        .route("/api/v1/projects/{id}/start", post(start))
        .route("/api/v1/projects/{id}/stop", post(stop))
        .route("/api/v1/projects/{id}/forget", post(forget))
        .route("/api/v1/projects/{id}/jobs/{job}/cancel", post(cancel))
        .route("/api/v1/projects/{id}/runs/{run}/retry", post(retry))
        .route("/api/v1/events", get(super::stream::events))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(super::trends::routes())
        .merge(super::notify::routes())
        .merge(super::tasks::routes())
        .merge(super::bulk::routes())
        .merge(super::trust::routes())
}

type Answer = Result<Json<Value>, ApiError>;

fn path_error(r: &PathRejection) -> ApiError {
    ApiError::bad_request(r.body_text())
}

/// The daemon of project `id`, asked `request`: its answer's fields.
async fn answer(id: &str, request: Request) -> Answer {
    let k = known(id)?;
    let response = ask(k.root, request).await?;
    let mut v = serde_json::to_value(response).map_err(ApiError::internal)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("kind");
    }
    Ok(Json(v))
}

async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

async fn list() -> Json<Value> {
    Json(serde_json::json!({ "projects": projects::all().await }))
}

async fn one(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    let project = projects::describe(known(&id)?).await;
    Ok(Json(serde_json::to_value(project).unwrap_or_default()))
}

async fn status(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Status).await
}

async fn queue(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Queue).await
}

async fn metrics(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Metrics).await
}

/// The health checks, run now (GET, or POST from the page's button).
async fn health(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Health).await
}

/// The retention sweep, now (`bgtask cleanup`).
async fn cleanup(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Cleanup).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    task: Option<String>,
    limit: Option<u32>,
    /// The next page: runs older than this run id.
    before: Option<i64>,
    /// Only runs that ended so: `clean`, `findings`, `failed`.
    outcome: Option<crate::ipc::Outcome>,
    /// Only runs started within this long: `30m`, `1h`, `7d`.
    within: Option<String>,
}

async fn history(
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    let Query(q) = q.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let since_ms = match q.within.as_deref() {
        None => None,
        Some(w) => Some(crate::clock::ms_ago(humantime::parse_duration(w).map_err(
            |e| {
                ApiError::bad_request(format!(
                    "within: `{w}` is not a duration like 30m, 1h or 7d ({e})"
                ))
            },
        )?)),
    };
    answer(
        &id,
        Request::History {
            task: q.task,
            limit: q.limit.unwrap_or(50).min(MAX_PAGE),
            before: q.before,
            outcome: q.outcome,
            since_ms,
        },
    )
    .await
}

/// A run's report, its findings with their source lines as the worktree
/// has them now.
async fn run(ids: Result<Path<(String, i64)>, PathRejection>) -> Answer {
    let Path((id, run_id)) = ids.map_err(|r| path_error(&r))?;
    let Json(mut v) = answer(&id, Request::Show { run_id }).await?;
    let root = known(&id)?.root;
    blocking(move || {
        v["marks"] = marks(&root, run_id, &v["report"]);
        super::sources::attach(&root, &mut v["report"]);
        Ok(Json(v))
    })
    .await
}

/// Which of the run's findings are new and what it fixed, as its
/// notification said; `null` when that cannot be told (no state database,
/// a report that does not parse) — the page then shows no marks.
fn marks(root: &std::path::Path, run_id: i64, report: &Value) -> Value {
    let db = root.join(".bgtask").join(crate::store::FILE);
    if !db.exists() {
        return Value::Null;
    }
    let report: Option<crate::report::Report> = serde_json::from_value(report.clone()).ok();
    let marks = report.and_then(|report| {
        let db = crate::notifier::Db::open(&db).ok()?;
        db.marks(run_id, &report).ok().flatten()
    });
    serde_json::to_value(marks).unwrap_or_default()
}

/// A run's report as a file: `report.json`, `report.sarif` or
/// `report.junit` (XML), rendered as `bgtask show --format` renders it.
async fn download(
    ids: Result<Path<(String, i64, String)>, PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    use crate::report::Format;
    use axum::response::IntoResponse;
    let Path((id, run_id, file)) = ids.map_err(|r| path_error(&r))?;
    let (format, mime, ext) = match file.as_str() {
        "report.json" => (Format::Json, "application/json", "json"),
        "report.sarif" => (Format::Sarif, "application/sarif+json", "sarif"),
        "report.junit" => (Format::Junit, "application/xml", "xml"),
        _ => {
            return Err(ApiError::not_found(
                "a run's report is report.json, report.sarif or report.junit",
            ));
        }
    };
    let k = known(&id)?;
    let crate::ipc::Response::Report { report } = ask(k.root, Request::Show { run_id }).await?
    else {
        return Err(ApiError::not_found(format!("no report for run {run_id}")));
    };
    let text = crate::report::render(&report, format, &crate::report::ConsoleOptions::default());
    let disposition = format!("attachment; filename=\"run-{run_id}.{ext}\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, mime.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

/// What `POST …/submit` takes.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// Task names (`all` for every task; `dir:task` in a monorepo).
    tasks: Vec<String>,
    /// Repo-relative files; none: the whole project.
    #[serde(default)]
    files: Option<Vec<PathBuf>>,
    /// Overrides the tasks' configured priority.
    #[serde(default)]
    priority: Option<crate::config::Priority>,
}

async fn submit(
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<SubmitBody>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    let Json(body) = body?;
    if body.tasks.is_empty() {
        return Err(ApiError::bad_request("`tasks` names no task"));
    }
    answer(
        &id,
        Request::Submit(Submit {
            tasks: body.tasks,
            files: body.files,
            priority: body.priority,
            source: TriggerSource::Manual {
                command: "dashboard".to_owned(),
            },
            debounce: false,
        }),
    )
    .await
}

/// A person is working in the project (an editor, an agent): its idle
/// trigger waits.
async fn activity(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Activity).await
}

/// What `POST …/pause` takes.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// Why: shown to everyone (status, queue, the page, the event stream).
    #[serde(default)]
    reason: String,
    /// Who pauses; `dashboard` when not given.
    #[serde(default)]
    by: Option<String>,
}

/// Pauses automation (`bgtask pause`): automatic jobs wait until resumed.
async fn pause(
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<PauseBody>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    let Json(body) = body?;
    let by = body.by.unwrap_or_else(|| "dashboard".to_owned());
    answer(
        &id,
        Request::Pause {
            reason: body.reason,
            by: Some(by),
        },
    )
    .await
}

/// Resumes automation (`bgtask resume`): the held jobs start.
async fn resume(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Resume).await
}

/// The project is no longer listed (until a daemon starts there again).
async fn forget(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    known(&id)?;
    let forgot =
        blocking(move || crate::state::registry::forget(&id).map_err(ApiError::internal)).await?;
    Ok(Json(serde_json::json!({ "forgot": forgot })))
}

async fn stop(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    answer(&id, Request::Stop).await
}

/// Starts the project's daemon: `bgtask start` in its worktree, the very
/// command a person would run (it returns once the daemon answers).
async fn start(id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id.map_err(|r| path_error(&r))?;
    let root = known(&id)?.root;
    let out = blocking(move || {
        let exe = std::env::current_exe().map_err(ApiError::internal)?;
        std::process::Command::new(exe)
            .arg("-C")
            .arg(&root)
            .arg("start")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(ApiError::internal)
    })
    .await?;
    if out.status.success() {
        Ok(Json(serde_json::json!({
            "started": String::from_utf8_lossy(&out.stdout).trim(),
        })))
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "start_failed",
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

async fn cancel(ids: Result<Path<(String, i64)>, PathRejection>) -> Answer {
    let Path((id, job_id)) = ids.map_err(|r| path_error(&r))?;
    answer(&id, Request::Cancel { job_id }).await
}

async fn retry(ids: Result<Path<(String, i64)>, PathRejection>) -> Answer {
    let Path((id, run_id)) = ids.map_err(|r| path_error(&r))?;
    answer(&id, Request::Retry { run_id }).await
}
