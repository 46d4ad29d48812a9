//! The projects the dashboard shows: every worktree this user's daemons
//! serve or served (`state::registry`), each reached through its daemon's
//! socket — the same requests the CLI sends, with a 1 s bound.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::error::{ApiError, blocking};
use crate::ipc::{Request, Response, Status};
use crate::state::registry::{self, Known};

/// How long a daemon may take to answer before the API says 503.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// A project as the API lists it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Project {
    /// Stable: the same for the worktree across daemons and restarts.
    pub id: String,
    pub root: PathBuf,
    /// The worktree directory's name.
    pub name: String,
    /// When its daemon last started (ms since the Unix epoch).
    pub seen_ms: i64,
    /// `up` or `down`.
    #[schemars(with = "String")]
    pub daemon: &'static str,
    /// Why the daemon could not be asked, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The daemon's status (queue, running jobs, last runs, health, trust).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Status>>,
}

/// The known project with this id, or 404.
pub fn known(id: &str) -> Result<Known, ApiError> {
    registry::find(id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no project {id}: `GET /api/v1/projects` lists them"
        ))
    })
}

/// One request to the daemon of `root`, off the async threads.
pub async fn ask(root: PathBuf, request: Request) -> Result<Response, ApiError> {
    blocking(move || crate::ipc::ask(&root, request, ANSWER_WITHIN).map_err(ApiError::from_client))
        .await
}

/// A request whose answer is a stream (`subscribe`, `logs` with follow),
/// sent to the daemon listening on `socket`; read it with [`next`].
pub async fn open_stream(
    socket: &std::path::Path,
    request: Request,
) -> Result<tokio::net::UnixStream, ApiError> {
    crate::ipc::stream::open(socket, request)
        .await
        .map_err(ApiError::from_client)
}

pub use crate::ipc::stream::next;

/// A known worktree with its daemon's status (asked now).
pub async fn describe(k: Known) -> Project {
    let name = k.root.file_name().map_or_else(
        || k.root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (daemon, status, problem) = match ask(k.root.clone(), Request::Status).await {
        Ok(Response::Status(s)) => ("up", Some(s), None),
        Ok(other) => ("up", None, Some(format!("unexpected answer: {other:?}"))),
        Err(e) if e.code == "daemon_down" => ("down", None, None),
        Err(e) => ("down", None, Some(e.message)),
    };
    Project {
        id: k.id,
        root: k.root,
        name,
        seen_ms: k.seen_ms,
        daemon,
        problem,
        status,
    }
}

/// Every known project, asked at once.
pub async fn all() -> Vec<Project> {
    let known = tokio::task::spawn_blocking(registry::list)
        .await
        .unwrap_or_default();
    let mut set = tokio::task::JoinSet::new();
    for (i, k) in known.into_iter().enumerate() {
        set.spawn(async move { (i, describe(k).await) });
    }
    let mut out: Vec<(usize, Project)> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, p)| p).collect()
}

/// The worktree at `root` and its projects, as the CLI loads them; an
/// invalid config is 409 with every problem.
pub fn load(
    root: &std::path::Path,
) -> Result<(crate::engine::Workspace, crate::config::Projects), ApiError> {
    let workspace = crate::engine::Workspace::worktree(root).map_err(ApiError::internal)?;
    let projects = workspace
        .projects()
        .map_err(|e| ApiError::config_invalid(&e))?;
    Ok((workspace, projects))
}
