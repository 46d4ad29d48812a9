//! The API's errors: every one is JSON, `{"error": {"code", "message"}}`,
//! with the HTTP status that fits.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ipc::{ClientError, ErrorKind, IpcError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Config problems, each `file:line:column: /pointer: message` (a
    /// refused config edit), when there are any.
    pub problems: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// The config on disk is invalid: 409 with every problem (the daemon
    /// keeps its last good config meanwhile).
    pub fn config_invalid(e: &crate::config::ConfigError) -> ApiError {
        let mut err = ApiError::new(StatusCode::CONFLICT, "config_invalid", format!("{e:#}"));
        err.problems = e.problems().iter().map(ToString::to_string).collect();
        err
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// Something on the dashboard's side failed (a thread, the disk).
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }

    /// What a daemon's answer (or its absence) means over HTTP.
    pub fn from_client(e: ClientError) -> ApiError {
        match e {
            ClientError::NotRunning { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "daemon_down",
                "the project's daemon is not running; start it (POST …/start or `bgtask start`)",
            ),
            ClientError::Timeout => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "daemon_timeout",
                "the project's daemon did not answer within 1 s",
            ),
            ClientError::Daemon(e) => ApiError::from_daemon(e),
            ClientError::NoSocket(why) => ApiError::internal(why),
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "daemon_unreachable",
                other.to_string(),
            ),
        }
    }

    fn from_daemon(e: IpcError) -> ApiError {
        let (status, code) = match e.kind {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Invalid | ErrorKind::Malformed => (StatusCode::BAD_REQUEST, "invalid"),
            ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ErrorKind::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ErrorKind::Degraded => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
            ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.message)
    }
}

/// Runs `work` on the blocking pool (files, sockets, subprocesses).
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

/// A request body that is not the JSON asked for: 400 naming the field
/// (or 413 when it is too large, 415 when it is not JSON).
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid",
        };
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.problems.is_empty() {
            error["problems"] = json!(self.problems);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
