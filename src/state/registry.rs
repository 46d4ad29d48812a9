//! The worktrees this user's daemons serve (or served): one small JSON
//! file in the user's data directory, so one dashboard can list every
//! project. A daemon adds its worktree when it starts; `bgtask dashboard
//! --forget ID` (or the API's `…/forget`) removes one. Written whole to a temporary
//! file and renamed over, under a lock, so concurrent starts lose nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Worktrees kept at most (the oldest seen go first).
const MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The stable id of the worktree (its runtime files' name).
    pub id: String,
    pub root: PathBuf,
    /// When a daemon last started there (ms since the Unix epoch).
    pub seen_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    worktrees: Vec<Known>,
}

/// The stable id of a worktree: the hash its socket and lock are named by.
pub fn id_of(root: &Path) -> String {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex()[..16].to_owned()
}

fn path() -> PathBuf {
    super::data_dir().join("worktrees.json")
}

/// Every known worktree, most recently started first. A missing or
/// unreadable file is an empty list.
pub fn list() -> Vec<Known> {
    read(&path()).worktrees
}

/// The known worktree with this id.
pub fn find(id: &str) -> Option<Known> {
    list().into_iter().find(|k| k.id == id)
}

fn read(path: &Path) -> File {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Notes that a daemon started for `root` now.
pub fn register(root: &Path, now_ms: i64) -> std::io::Result<()> {
    register_at(&path(), root, now_ms)
}

fn register_at(path: &Path, root: &Path, now_ms: i64) -> std::io::Result<()> {
    let id = id_of(root);
    let root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    update(path, |list| {
        list.retain(|k| k.id != id);
        list.insert(
            0,
            Known {
                id,
                root,
                seen_ms: now_ms,
            },
        );
        list.truncate(MAX);
    })
}

/// Forgets a worktree; whether it was known.
pub fn forget(id: &str) -> std::io::Result<bool> {
    forget_at(&path(), id)
}

fn forget_at(path: &Path, id: &str) -> std::io::Result<bool> {
    let mut found = false;
    update(path, |list| {
        let before = list.len();
        list.retain(|k| k.id != id);
        found = list.len() != before;
    })?;
    Ok(found)
}

fn update(path: &Path, change: impl FnOnce(&mut Vec<Known>)) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in a directory");
    fs::create_dir_all(dir)?;
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("worktrees.lock"))?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut file = read(path);
    change(&mut file.worktrees);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_kept_newest_first_once_each_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data/worktrees.json");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        register_at(&file, &a, 1).unwrap();
        register_at(&file, &b, 2).unwrap();
        register_at(&file, &a, 3).unwrap();
        let list = read(&file).worktrees;
        let ids: Vec<&str> = list.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, [id_of(&a), id_of(&b)]);
        assert_eq!(list[0].seen_ms, 3);
        assert!(forget_at(&file, &id_of(&a)).unwrap());
        assert!(!forget_at(&file, &id_of(&a)).unwrap());
        assert_eq!(read(&file).worktrees.len(), 1);
    }

    #[test]
    fn concurrent_starts_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("worktrees.json");
        std::thread::scope(|s| {
            for i in 0..16 {
                let (file, root) = (&file, dir.path().join(format!("w{i}")));
                s.spawn(move || {
                    fs::create_dir_all(&root).unwrap();
                    register_at(file, &root, i).unwrap();
                });
            }
        });
        assert_eq!(read(&file).worktrees.len(), 16);
    }
}
