//! What the core is told: the messages every other part of the daemon
//! (the IPC server, the watchers, the job tasks, the resolver) sends it.

use tokio::sync::oneshot;

use crate::ipc::{Request, Response};
use crate::report::Report;
use crate::schedule::JobId;
use crate::schedule::intake::IntakeId;

pub enum Command {
    /// A client request and where to send the answer.
    Request {
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    /// A job's run ended (or was abandoned at shutdown).
    Finished(Box<Finished>),
    /// An analyzer process group of a job started.
    Spawned {
        job_id: JobId,
        spawned: crate::run::Spawned,
    },
    /// A config file changed on disk (or SIGHUP).
    Reload,
    /// The watcher saw saves or HEAD move.
    Arrived(crate::event::Arrival, std::time::Instant),
    /// An intake batch, resolved to kinds and files.
    Resolved(Box<ResolvedBatch>),
    /// The watcher's state changed (ready, degraded, …).
    Watcher(crate::ipc::WatcherState),
}

pub struct Finished {
    pub job_id: JobId,
    pub report: Option<Report>,
}

/// A resolved batch, back from the blocking pool.
pub struct ResolvedBatch {
    pub ids: Vec<IntakeId>,
    pub resolved: Vec<super::resolve::Resolved>,
    /// Each task's trust, when it was worked out beside the resolving.
    pub trust: Option<std::collections::BTreeMap<String, crate::trust::TaskTrust>>,
    /// More of the batch follows (what git's lists add, `resolve::Later`):
    /// the intake stays busy, and the arrivals go with the last part.
    pub partial: bool,
}
