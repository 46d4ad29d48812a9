//! The resources: `bgtask://status` (the daemon's status),
//! `bgtask://runs/{id}` (a run's report) and `bgtask://findings/{path}`
//! (a file's current findings), and which of them a daemon event changes,
//! for subscriptions (`notifications/resources/updated`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{Resource, ResourceTemplate};
use serde_json::Value;
use tokio::sync::broadcast;

use super::daemon::{self, Failed};
use crate::ipc::events::What;
use crate::ipc::{Request, Response};
use crate::store::CurrentFinding;

pub const STATUS: &str = "bgtask://status";
const RUNS: &str = "bgtask://runs/";
const FINDINGS: &str = "bgtask://findings/";

/// What a resource URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Status,
    Run(i64),
    Findings(String),
}

impl Named {
    pub fn parse(uri: &str) -> Option<Named> {
        if uri == STATUS {
            return Some(Named::Status);
        }
        if let Some(id) = uri.strip_prefix(RUNS) {
            return id.parse().ok().map(Named::Run);
        }
        let path = uri.strip_prefix(FINDINGS)?;
        let path = path.trim_start_matches("./");
        (!path.is_empty() && !path.split('/').any(|p| p == ".."))
            .then(|| Named::Findings(path.to_owned()))
    }
}

pub fn listed() -> Vec<Resource> {
    vec![
        Resource::new(STATUS, "status")
            .with_description(
                "The daemon's status: queue depth, running jobs, last runs, health, trust, pause.",
            )
            .with_mime_type("application/json"),
    ]
}

pub fn templates() -> Vec<ResourceTemplate> {
    let t = |uri: &str, name: &str, what: &str| {
        ResourceTemplate::new(uri, name)
            .with_description(what)
            .with_mime_type("application/json")
    };
    vec![
        t(
            "bgtask://runs/{run_id}",
            "run",
            "A recorded run's report: verdict, per-analyzer status, findings.",
        ),
        t(
            "bgtask://findings/{path}",
            "findings",
            "A file's current findings (repo-relative path): for each task, what its latest \
             run that looked at the file found there.",
        ),
    ]
}

/// The resource's content, as JSON.
pub async fn read(root: &Path, named: &Named) -> Result<Value, Failed> {
    match named {
        Named::Status => match daemon::ask(root, Request::Status).await? {
            Response::Status(s) => Ok(serde_json::to_value(s).unwrap_or_default()),
            other => Err(daemon::unexpected("status", &other)),
        },
        Named::Run(run_id) => match daemon::ask(root, Request::Show { run_id: *run_id }).await? {
            Response::Report { report } => Ok(serde_json::to_value(report).unwrap_or_default()),
            other => Err(daemon::unexpected("show", &other)),
        },
        Named::Findings(path) => {
            let findings = current_findings(root, path).await?;
            Ok(serde_json::json!({ "path": path, "findings": findings }))
        }
    }
}

/// A file's current findings, from the daemon's store (read-only; works
/// with the daemon stopped).
pub async fn current_findings(root: &Path, path: &str) -> Result<Vec<CurrentFinding>, Failed> {
    let db = root.join(".bgtask").join(crate::store::FILE);
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        if !db.exists() {
            return Ok(Vec::new());
        }
        let store = crate::store::Store::open_read_only(&db).map_err(|e| e.to_string())?;
        store.current_findings(&path).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Subscribed URIs of one worktree, and the daemon events that change
/// them: a task follows the daemon's event stream while anything is
/// subscribed and sends the URIs each event changed on `changed`.
pub struct Updates {
    root: PathBuf,
    subscribed: Mutex<HashSet<String>>,
    changed: broadcast::Sender<String>,
    following: Mutex<bool>,
}

impl Updates {
    pub fn new(root: PathBuf) -> Arc<Updates> {
        Arc::new(Updates {
            root,
            subscribed: Mutex::new(HashSet::new()),
            changed: broadcast::channel(256).0,
            following: Mutex::new(false),
        })
    }

    /// URIs changed from now on (a listener filters by its own).
    pub fn changes(
        self: &Arc<Self>,
        uris: impl IntoIterator<Item = String>,
    ) -> broadcast::Receiver<String> {
        let rx = self.changed.subscribe();
        self.add(uris);
        rx
    }

    pub fn add(self: &Arc<Self>, uris: impl IntoIterator<Item = String>) {
        self.subscribed
            .lock()
            .expect("subscriptions lock")
            .extend(uris);
        let mut following = self.following.lock().expect("follow lock");
        if !*following {
            *following = true;
            tokio::spawn(follow(Arc::downgrade(self)));
        }
    }

    pub fn remove(&self, uri: &str) {
        self.subscribed
            .lock()
            .expect("subscriptions lock")
            .remove(uri);
    }

    fn subscribed(&self) -> Vec<String> {
        self.subscribed
            .lock()
            .expect("subscriptions lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Follows the daemon's events for as long as the session lives (it
/// holds the only strong references), reconnecting every 2 s while the
/// daemon is down.
async fn follow(updates: std::sync::Weak<Updates>) {
    let mut digests: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let Some(root) = updates.upgrade().map(|u| u.root.clone()) else {
            return;
        };
        if let Ok(mut stream) = subscribe(&root).await {
            while let Some(what) = next_event(&mut stream).await {
                let Some(u) = updates.upgrade() else { return };
                for uri in changed_by(&u, &what, &mut digests).await {
                    let _ = u.changed.send(uri);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn subscribe(root: &Path) -> Result<tokio::net::UnixStream, crate::ipc::ClientError> {
    let paths = crate::state::Paths::for_root(root)
        .map_err(|e| crate::ipc::ClientError::NoSocket(e.to_string()))?;
    let request = Request::Subscribe {
        after: None,
        epoch: None,
    };
    crate::ipc::stream::open(&paths.socket, request).await
}

async fn next_event(stream: &mut tokio::net::UnixStream) -> Option<What> {
    loop {
        match crate::ipc::stream::next(stream).await? {
            Response::Event(e) => return Some(e.what),
            Response::Subscribed(_) => {}
            _ => return None,
        }
    }
}

/// The subscribed URIs `what` changed. A file's findings count as changed
/// only when a finished run changed what they are.
async fn changed_by(
    updates: &Updates,
    what: &What,
    digests: &mut HashMap<String, Vec<String>>,
) -> Vec<String> {
    let run = match what {
        What::JobStarted { run_id, .. }
        | What::AnalyzerStarted { run_id, .. }
        | What::AnalyzerFinished { run_id, .. }
        | What::JobFinished { run_id, .. } => Some(*run_id),
        _ => None,
    };
    let finished = matches!(what, What::JobFinished { .. });
    let mut out = Vec::new();
    for uri in updates.subscribed() {
        match Named::parse(&uri) {
            Some(Named::Status) if !matches!(what, What::Lagged { .. }) => out.push(uri),
            Some(Named::Run(id)) if Some(id) == run => out.push(uri),
            Some(Named::Findings(path)) if finished => {
                let now: Vec<String> = current_findings(&updates.root, &path)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| format!("{}:{:?}:{}", f.fingerprint, f.line, f.run_id))
                    .collect();
                if digests.get(&uri) != Some(&now) {
                    digests.insert(uri.clone(), now);
                    out.push(uri);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_what_they_should() {
        assert_eq!(Named::parse("bgtask://status"), Some(Named::Status));
        assert_eq!(Named::parse("bgtask://runs/42"), Some(Named::Run(42)));
        assert_eq!(Named::parse("bgtask://runs/x"), None);
        assert_eq!(
            Named::parse("bgtask://findings/src/app.py"),
            Some(Named::Findings("src/app.py".to_owned()))
        );
        assert_eq!(Named::parse("bgtask://findings/../etc/passwd"), None);
        assert_eq!(Named::parse("bgtask://findings/"), None);
        assert_eq!(Named::parse("file:///etc/passwd"), None);
    }
}
