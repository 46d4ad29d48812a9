//! The file channel: one JSON object per line
//! (`.bgtask/logs/notifications.jsonl` by default), rotated by size and
//! pruned by age.
//!
//! Before a line would take the file past `max_size_mb`, it is renamed to
//! `NAME.1` (older ones shift to `NAME.2` …), keeping `max_files` files in
//! all, so the log never takes more than `max_size_mb × max_files`. Files
//! not written for `retention_days` are removed (0 keeps them). A failed
//! write (a full disk, a read-only directory) is cut back to the last whole
//! line and returned as an error for the delivery log; it never reaches a
//! job.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::FileChannel;

#[derive(Debug, Clone)]
pub struct JsonlLog {
    path: PathBuf,
    /// The worktree, which a late write must never make again.
    root: Option<PathBuf>,
    max_bytes: u64,
    max_files: u32,
    retention: Option<Duration>,
}

impl JsonlLog {
    /// The log of `channel`, its path taken relative to the worktree `root`.
    pub fn new(root: &Path, channel: &FileChannel) -> JsonlLog {
        JsonlLog {
            path: root.join(&channel.path),
            root: Some(root.to_owned()),
            max_bytes: channel.max_size_mb.max(1) * 1024 * 1024,
            max_files: channel.max_files.max(1),
            retention: (channel.retention_days > 0)
                .then(|| Duration::from_secs(u64::from(channel.retention_days) * 86_400)),
        }
    }

    #[cfg(test)]
    fn with_limits(path: PathBuf, max_bytes: u64, max_files: u32, retention: Duration) -> JsonlLog {
        JsonlLog {
            path,
            root: None,
            max_bytes,
            max_files,
            retention: Some(retention),
        }
    }

    /// The log's directory, made if missing: below the worktree one level
    /// at a time and never the worktree itself, so a line written as a
    /// deleted worktree's daemon stops does not make its path again.
    fn make_dir(&self) -> std::io::Result<()> {
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        let Some(root) = self.root.as_deref().filter(|r| dir.starts_with(r)) else {
            return std::fs::create_dir_all(dir);
        };
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the worktree {} is gone", root.display()),
            ));
        }
        let below: Vec<&Path> = dir.ancestors().take_while(|d| *d != root).collect();
        for d in below.into_iter().rev() {
            match std::fs::create_dir(d) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Appends one line (a newline is added), rotating first if it would
    /// not fit.
    pub fn append(&self, line: &str) -> std::io::Result<()> {
        self.make_dir()?;
        let mut record = Vec::with_capacity(line.len() + 1);
        record.extend_from_slice(line.as_bytes());
        record.push(b'\n');
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if size > 0 && size + record.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let before = file.metadata()?.len();
        if let Err(e) = file.write_all(&record).and_then(|()| file.flush()) {
            // No half line for the next one to be glued to.
            let _ = file.set_len(before);
            return Err(e);
        }
        Ok(())
    }

    /// `NAME` → `NAME.1` → … → `NAME.(max_files-1)`; the oldest goes.
    fn rotate(&self) -> std::io::Result<()> {
        if self.max_files <= 1 {
            return std::fs::remove_file(&self.path);
        }
        let last = self.max_files - 1;
        match std::fs::remove_file(self.rotated(last)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..last).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    /// Removes files not written for the retention period, and rotated
    /// files past `max_files` (a lowered limit); returns how many.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let mut removed = 0;
        let old = |p: &Path| {
            self.retention.is_some_and(|keep| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > keep))
            })
        };
        if old(&self.path) && std::fs::remove_file(&self.path).is_ok() {
            removed += 1;
        }
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return removed;
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return removed;
        };
        for e in entries.flatten() {
            let file_name = e.file_name();
            let file_name = file_name.to_string_lossy();
            let Some(n) = file_name
                .strip_prefix(&prefix)
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let p = e.path();
            if (n >= self.max_files || old(&p)) && std::fs::remove_file(&p).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_under_a_deleted_worktree_does_not_make_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("wt");
        std::fs::create_dir(&root).unwrap();
        let channel = FileChannel {
            enabled: true,
            min_severity: crate::config::NotifyLevel::Info,
            path: ".bgtask/logs/n.jsonl".into(),
            max_size_mb: 1,
            max_files: 2,
            retention_days: 0,
        };
        let log = JsonlLog::new(&root, &channel);
        log.append("{}").unwrap();
        assert!(root.join(".bgtask/logs/n.jsonl").exists());
        std::fs::remove_dir_all(&root).unwrap();
        assert!(log.append("{}").is_err());
        assert!(!root.exists());
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_at_the_size_limit_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = JsonlLog::with_limits(
            dir.path().join("logs/n.jsonl"),
            100,
            3,
            Duration::from_secs(3600),
        );
        let line = format!("{{\"i\":\"{}\"}}", "x".repeat(40)); // 49 bytes + newline
        for _ in 0..2 {
            log.append(&line).unwrap();
        }
        assert_eq!(files(&dir.path().join("logs")), ["n.jsonl"]);
        // The third line would pass 100 bytes: rotate first.
        log.append(&line).unwrap();
        assert_eq!(files(&dir.path().join("logs")), ["n.jsonl", "n.jsonl.1"]);
        for _ in 0..10 {
            log.append(&line).unwrap();
        }
        assert_eq!(
            files(&dir.path().join("logs")),
            ["n.jsonl", "n.jsonl.1", "n.jsonl.2"],
            "three files at most"
        );
        for f in files(&dir.path().join("logs")) {
            let text = std::fs::read_to_string(dir.path().join("logs").join(&f)).unwrap();
            assert!(text.len() <= 100, "{f}: {} bytes", text.len());
            for l in text.lines() {
                serde_json::from_str::<serde_json::Value>(l).unwrap();
            }
        }
    }

    #[test]
    fn one_file_means_starting_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = JsonlLog::with_limits(dir.path().join("n.jsonl"), 10, 1, Duration::ZERO);
        log.append("123456789").unwrap();
        log.append("abc").unwrap();
        assert_eq!(files(dir.path()), ["n.jsonl"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("n.jsonl")).unwrap(),
            "abc\n"
        );
    }

    #[test]
    fn sweep_removes_old_and_surplus_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.jsonl");
        let log = JsonlLog::with_limits(path.clone(), 1000, 3, Duration::from_secs(86_400));
        for name in ["n.jsonl", "n.jsonl.1", "n.jsonl.2", "n.jsonl.7", "other.1"] {
            std::fs::write(dir.path().join(name), "{}\n").unwrap();
        }
        let now = SystemTime::now();
        assert_eq!(log.sweep(now), 1, "n.jsonl.7 is past max_files");
        assert_eq!(
            files(dir.path()),
            ["n.jsonl", "n.jsonl.1", "n.jsonl.2", "other.1"]
        );
        // Two days later everything of ours is past retention.
        assert_eq!(log.sweep(now + Duration::from_secs(2 * 86_400)), 3);
        assert_eq!(files(dir.path()), ["other.1"]);
    }

    #[test]
    fn a_full_device_is_an_error_not_a_panic() {
        let log = JsonlLog::with_limits(PathBuf::from("/dev/full"), 1000, 2, Duration::ZERO);
        let err = log.append("{}").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    }

    #[test]
    fn an_unwritable_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("logs"), "a file, not a directory").unwrap();
        let log = JsonlLog::with_limits(dir.path().join("logs/n.jsonl"), 1000, 2, Duration::ZERO);
        assert!(log.append("{}").is_err());
    }
}
