//! The spool: triggers written while the daemon was down (or not
//! answering), one JSON request per line in `.bgtask/spool.jsonl`: a hook
//! event (`{"op":"hook",…}`) or a submit (`{"op":"submit",…}`; a bare
//! submit object is read too).
//!
//! Writers append a whole line under an exclusive `flock`; the daemon
//! drains under the same lock and empties the file only once the queued
//! work is saved, so an append racing a drain waits and lands in the next
//! one, and nothing is read twice or lost. A bad line is skipped with its
//! line number; the rest still run.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::scheduler::Scheduler;
use crate::event::Arrival;
use crate::ipc::{Request, Response, Submit};

/// A spool larger than this was not written by hooks (each event is a
/// line of about half a kilobyte): it is moved aside, never read.
const MAX_SPOOL_BYTES: u64 = 64 << 20;

/// Holds an exclusive `flock` on the spool until dropped.
struct Locked(File);

impl Locked {
    /// Opens the spool without following a link and without blocking (a
    /// repository can commit `.bgtask/spool.jsonl` as a link to
    /// `/dev/zero` or a FIFO, RELIABILITY 26): anything but a regular file
    /// is refused.
    fn open(path: &Path, create: bool) -> std::io::Result<Locked> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(create)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the spool is not a regular file",
            ));
        }
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Locked(file))
    }
}

/// Appends one trigger to the spool (what a hook does when the daemon is
/// not there to take it).
pub fn append(path: &Path, request: &Request) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut locked = Locked::open(path, true)?;
    locked.0.write_all(&line)
}

impl Scheduler {
    /// Queues what the spool holds, then empties it once that is saved.
    pub(super) fn drain_spool(&mut self) {
        let path = self.paths.spool.clone();
        let mut locked = match Locked::open(&path, false) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not read the spool");
                return;
            }
        };
        let size = locked.0.metadata().map_or(0, |m| m.len());
        if size > MAX_SPOOL_BYTES {
            let aside =
                path.with_extension(format!("jsonl.too-large-{}", crate::store::now_ms() / 1000));
            let moved = std::fs::rename(&path, &aside);
            tracing::error!(
                file = %path.display(),
                size,
                aside = %aside.display(),
                moved = moved.is_ok(),
                "the spool is over {} bytes (not what hooks write): moved aside unread",
                MAX_SPOOL_BYTES
            );
            return;
        }
        let mut bytes = Vec::new();
        if let Err(e) = (&mut locked.0)
            .take(MAX_SPOOL_BYTES)
            .read_to_end(&mut bytes)
        {
            tracing::warn!(file = %path.display(), error = %e, "could not read the spool");
            return;
        }
        if bytes.is_empty() {
            return;
        }
        let mut effects = Vec::new();
        let mut queued = 0;
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let request = match serde_json::from_slice::<Request>(line) {
                Ok(r) => r,
                Err(e) => {
                    let Ok(s) = serde_json::from_slice::<Submit>(line) else {
                        tracing::warn!(file = %path.display(), line = i + 1, error = %e, "skipping a bad spooled event");
                        continue;
                    };
                    Request::Submit(s)
                }
            };
            let response = match request {
                Request::Submit(s) => self.submit(&s, &mut effects),
                Request::Hook(h) => self.arrive(Arrival::Hook(h), &mut effects),
                _ => {
                    tracing::warn!(file = %path.display(), line = i + 1, "skipping a spooled request that is not a trigger");
                    continue;
                }
            };
            match response {
                Response::Submitted { .. } | Response::Accepted => queued += 1,
                Response::Error(e) => {
                    tracing::warn!(file = %path.display(), line = i + 1, error = %e, "skipping a spooled event");
                }
                _ => {}
            }
        }
        if !self.persist(&effects) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TriggerSource;

    #[test]
    fn appends_are_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let submit = Submit {
            tasks: vec!["security".into()],
            files: Some(vec!["a b\nc.py".into()]),
            priority: None,
            source: TriggerSource::Manual {
                command: "git commit".into(),
            },
            debounce: true,
        };
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        append(&path, &Request::Submit(submit.clone())).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 400);
        for l in lines {
            let Request::Submit(back) = serde_json::from_str(l).unwrap() else {
                panic!("{l}")
            };
            assert_eq!(
                back.files.unwrap()[0],
                std::path::PathBuf::from("a b\nc.py")
            );
        }
    }

    #[test]
    fn a_spool_that_is_a_link_or_a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let fifo = dir.path().join("fifo.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let submit = Request::Submit(Submit {
            tasks: vec!["security".into()],
            files: None,
            priority: None,
            source: TriggerSource::Manual {
                command: "git commit".into(),
            },
            debounce: true,
        });
        assert!(append(&link, &submit).is_err());
        assert!(append(&fifo, &submit).is_err());
    }
}
