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
//!
//! The spool sits in the worktree, where a checkout can put anything under
//! its name: it is used only as a regular file (never through a link, so
//! never `/dev/zero` or a FIFO), and read up to [`MAX_SPOOL`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::ipc::{Request, Submit};

/// The most of a spool read at once: 50 000 hook events, days of a
/// daemon being away. Whole lines past it are dropped with a warning.
pub const MAX_SPOOL: u64 = 16 << 20;

/// Holds an exclusive `flock` on the spool until dropped.
pub struct Locked(pub File);

impl Locked {
    /// Opens (or creates) the spool and locks it; a link or anything but a
    /// regular file is refused.
    pub fn open(path: &Path, create: bool) -> std::io::Result<Locked> {
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
                "not a regular file",
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

/// One non-blank line of the spool.
#[derive(Debug)]
pub struct Spooled {
    /// 1-based.
    pub line: usize,
    /// The request it holds, or why it could not be read.
    pub request: Result<Request, serde_json::Error>,
}

/// Reads a spool file's lines: a request per line, or a bare submit
/// object; blank lines are skipped.
pub fn decode(bytes: &[u8]) -> Vec<Spooled> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| Spooled {
            line: i + 1,
            request: serde_json::from_slice::<Request>(line).or_else(|e| {
                serde_json::from_slice::<Submit>(line)
                    .map(Request::Submit)
                    .map_err(|_| e)
            }),
        })
        .collect()
}

/// Reads `file` up to `cap` bytes, ending at the last whole line when it
/// is longer; returns the bytes and how many were left unread.
pub fn read_capped(file: &mut File, cap: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let len = file.metadata()?.len();
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes)?;
    if len <= cap {
        return Ok((bytes, 0));
    }
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(whole);
    Ok((bytes, len - whole as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TriggerSource;

    #[test]
    fn only_a_regular_file_is_a_spool() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("spool.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(Locked::open(&link, false).is_err());
        assert!(append(&link, &Request::Ping).is_err());
        assert!(Locked::open(Path::new("/dev/zero"), false).is_err());
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(Locked::open(&fifo, false).is_err());
    }

    #[test]
    fn a_spool_over_the_cap_is_read_to_its_last_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let line = "{\"op\":\"ping\"}\n";
        std::fs::write(&path, line.repeat(10)).unwrap();
        let (bytes, dropped) = read_capped(&mut Locked::open(&path, false).unwrap().0, 40).unwrap();
        assert_eq!(bytes, line.repeat(2).as_bytes());
        assert_eq!(dropped, 8 * line.len() as u64);
        let (bytes, dropped) =
            read_capped(&mut Locked::open(&path, false).unwrap().0, 1000).unwrap();
        assert_eq!((bytes.len(), dropped), (10 * line.len(), 0));
    }

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
