//! Draining the spool (`state/spool.rs`): the triggers written while the
//! daemon was away are queued, and the spool emptied once that is saved.

use std::io::{Seek, SeekFrom};

use super::Core;
use crate::event::Arrival;
use crate::ipc::{Request, Response};
use crate::state::spool::{Locked, MAX_SPOOL, Spooled, decode, read_capped};

impl Core {
    /// Queues what the spool holds, then empties it once that is saved.
    pub(in crate::daemon) fn drain_spool(&mut self) {
        let path = self.paths.spool.clone();
        let mut locked = match Locked::open(&path, false) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not read the spool");
                return;
            }
        };
        let bytes = match read_capped(&mut locked.0, MAX_SPOOL) {
            Ok((bytes, 0)) => bytes,
            Ok((bytes, dropped)) => {
                tracing::warn!(file = %path.display(), dropped_bytes = dropped, cap = MAX_SPOOL, "the spool is over its cap; dropped the events past it");
                bytes
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not read the spool");
                return;
            }
        };
        if bytes.is_empty() {
            return;
        }
        let mut effects = Vec::new();
        let mut queued = 0;
        for Spooled { line, request } in decode(&bytes) {
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(file = %path.display(), line, error = %e, "skipping a bad spooled event");
                    continue;
                }
            };
            let response = match request {
                Request::Submit(s) => self.submit(&s, &mut effects),
                Request::Hook(h) => self.arrive(Arrival::Hook(h), &mut effects),
                _ => {
                    tracing::warn!(file = %path.display(), line, "skipping a spooled request that is not a trigger");
                    continue;
                }
            };
            match response {
                Response::Submitted { .. } | Response::Accepted => queued += 1,
                Response::Error(e) => {
                    tracing::warn!(file = %path.display(), line, error = %e, "skipping a spooled event");
                }
                _ => {}
            }
        }
        if !self.persist(&effects).on_disk() {
            tracing::warn!(file = %path.display(), "kept the spooled events: they could not be saved yet");
            return;
        }
        if queued > 0 {
            tracing::info!(
                events = queued,
                "queued the events spooled while the daemon was away"
            );
        }
        let emptied = locked
            .0
            .set_len(0)
            .and_then(|()| locked.0.seek(SeekFrom::Start(0)).map(drop));
        if let Err(e) = emptied {
            tracing::error!(file = %path.display(), error = %e, "could not empty the spool; its events may run again");
        }
    }
}
