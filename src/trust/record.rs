//! Trust records: per worktree, the fingerprints the user accepted, kept
//! outside the repository; and each task's trust, comparing them with now.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Fingerprint;
use super::short_hash;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub root: PathBuf,
    pub trusted_at_ms: i64,
    pub tasks: BTreeMap<String, Vec<String>>,
}

/// Whether a task may run automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TaskTrust {
    Trusted,
    /// The worktree (or this task) was never trusted.
    Untrusted,
    /// Trusted once; these lines changed since (`-` old, `+` new).
    Changed {
        diff: Vec<String>,
    },
}

pub use crate::state::data_dir;

fn record_path(root: &Path) -> PathBuf {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let key = short_hash(canonical.as_os_str().as_encoded_bytes());
    data_dir().join("trust").join(format!("{key}.json"))
}

/// Whether the worktree was ever trusted (a file's existence: cheap
/// enough for the hook's hot path).
pub fn has_record(root: &Path) -> bool {
    record_path(root).exists()
}

pub fn load(root: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(record_path(root)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `fp` as trusted for the worktree at `root`; returns the file.
pub fn save(root: &Path, fp: &Fingerprint) -> std::io::Result<PathBuf> {
    let path = record_path(root);
    let dir = path.parent().expect("a record has a directory");
    std::fs::create_dir_all(dir)?;
    let record = Record {
        root: root.canonicalize().unwrap_or_else(|_| root.to_owned()),
        trusted_at_ms: crate::clock::now_ms(),
        tasks: fp.tasks.clone(),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, &record).map_err(std::io::Error::other)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

/// Forgets the worktree's trust; whether there was any.
pub fn revoke(root: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(record_path(root)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The check is skipped in CI (`CI=true`).
pub fn skipped_by_env() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Each task's trust, comparing what it would run now with the record.
pub fn evaluate(fp: &Fingerprint, record: Option<&Record>) -> BTreeMap<String, TaskTrust> {
    fp.tasks
        .iter()
        .map(|(task, now)| {
            let state = match record.and_then(|r| r.tasks.get(task)) {
                None => TaskTrust::Untrusted,
                Some(then) if then == now => TaskTrust::Trusted,
                Some(then) => TaskTrust::Changed {
                    diff: diff(then, now),
                },
            };
            (task.clone(), state)
        })
        .collect()
}

fn diff(then: &[String], now: &[String]) -> Vec<String> {
    let mut out: Vec<String> = then
        .iter()
        .filter(|l| !now.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        now.iter()
            .filter(|l| !then.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}
