//! One daemon per worktree: an exclusive `flock` on the lock file, held for
//! the daemon's whole life (the kernel drops it when the process dies, so a
//! `kill -9` never leaves a stale lock). The pid is written only after the
//! lock is held (RELIABILITY 15).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("already running (pid {})", pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()))]
    Held { pid: Option<u32> },
    #[error("open the lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write the pid file {}", path.display())]
    Pid {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the daemon lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pid_file: PathBuf,
}

pub fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// The lock holder's pid. The holder writes it just after locking, so a
/// loser of a simultaneous start may look too early (no file yet, or the
/// pid of a daemon that died): wait up to a second for a live one.
fn holder_pid(pid_file: &Path) -> Option<u32> {
    for _ in 0..50 {
        if let Some(pid) = read_pid(pid_file)
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            return Some(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    read_pid(pid_file)
}

impl Lock {
    pub fn acquire(lock: &Path, pid_file: &Path) -> Result<Lock, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(lock)
            .map_err(|source| LockError::Open {
                path: lock.to_owned(),
                source,
            })?;
        // SAFETY: flock on a descriptor we own.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Err(LockError::Held {
                pid: holder_pid(pid_file),
            });
        }
        let pid = std::process::id();
        let write = || -> std::io::Result<()> {
            let dir = pid_file.parent().unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            writeln!(tmp, "{pid}")?;
            tmp.persist(pid_file).map_err(|e| e.error)?;
            Ok(())
        };
        write().map_err(|source| LockError::Pid {
            path: pid_file.to_owned(),
            source,
        })?;
        Ok(Lock {
            _file: file,
            pid_file: pid_file.to_owned(),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if read_pid(&self.pid_file) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.pid_file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, pid) = (dir.path().join("x.lock"), dir.path().join("x.pid"));
        let held = Lock::acquire(&lock, &pid).unwrap();
        assert_eq!(read_pid(&pid), Some(std::process::id()));
        let err = Lock::acquire(&lock, &pid).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("already running (pid {})", std::process::id())
        );
        drop(held);
        assert!(!pid.exists(), "pid file removed with the lock");
        Lock::acquire(&lock, &pid).unwrap();
    }
}
