//! The result cache: a second run with nothing changed starts no process.
//!
//! Key: the analyzer's resolved definition (its digest), the tool's path and
//! version, and the content hash of every relevant file (targets plus the
//! tool's config files). Entries are JSON files under
//! `.bgtask/cache/results/`, written atomically; only trustworthy statuses
//! are stored (see [`RunStatus::is_cacheable`]). Results of network analyzers
//! (vulnerability databases change without the files changing) expire after
//! an hour. Findings are stored finished, identity and fingerprint included:
//! those depend only on the text of files the key hashes, so a hit needs no
//! recomputing.
//!
//! Each entry also records how long the run took (`timing.rs`), which
//! `--shard` balances CI jobs by.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use super::timing::Timing;
use crate::analyze::AnalyzerDef;
use crate::event::{AnalyzerRun, ToolInfo};

/// Part of every key: a new version when what an entry holds changes (v2:
/// findings carry their identity, and fingerprints are made differently).
const VERSION: &str = "bgtask-result-cache-v2";
const NETWORK_MAX_AGE: Duration = Duration::from_secs(3600);
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Serialize, Deserialize)]
struct Entry {
    created: SystemTime,
    run: AnalyzerRun,
    /// Absent in entries from before times were recorded: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timing: Option<Timing>,
}

/// Whether an entry may still be used: younger than its kind's limit, and
/// not from the future (beyond a minute of clock difference).
fn fresh(entry: &Entry, network: bool) -> bool {
    let max_age = if network { NETWORK_MAX_AGE } else { MAX_AGE };
    let now = SystemTime::now();
    match now.duration_since(entry.created) {
        Ok(age) => age <= max_age,
        Err(ahead) => ahead.duration() <= Duration::from_secs(60),
    }
}

/// A result's keys: on this machine, and in the team's shared cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub local: String,
    /// `None` when the result is this machine's own: a network audit
    /// (time-sensitive), a tool that imports the project's environment,
    /// or a tool whose version is unknown.
    pub shared: Option<String>,
}

/// The part of a shared key that is not the files: what makes a result
/// mean the same on another machine — the analyzer's definition, the
/// tool's name and version (not its path; for a tool of the repository,
/// its text), bgtask's version, the OS and architecture. `None` when
/// nothing does (see [`Keys::shared`]).
fn shared_hasher(
    def: &AnalyzerDef,
    tool: Option<&ToolInfo>,
    root: &Path,
    env: Option<&str>,
) -> Option<blake3::Hasher> {
    if def.network || env.is_some() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    for part in [
        "bgtask-shared-result-v1",
        VERSION,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        &def.digest,
    ] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    if let Some(t) = tool {
        if let Ok(inside) = t.path.strip_prefix(root) {
            // A tool of the repository (`./bin/lint.sh`): its text is what it is.
            h.update(inside.as_os_str().as_bytes());
            h.update(&[0]);
            h.update(crate::repofile::hash(Some(root), &t.path).ok()??.as_bytes());
        } else {
            h.update(t.path.file_name()?.as_bytes());
            h.update(&[0]);
            h.update(t.version.as_deref()?.as_bytes());
        }
    }
    h.update(&[0]);
    Some(h)
}

/// Each file's part of a key, by repo-relative path: hashed once per run,
/// for the whole run's key and its files' own.
pub type FileParts = std::collections::HashMap<PathBuf, blake3::Hash>;

/// A repo-relative file's part of a key: its path and content. Streamed,
/// and never through a FIFO, a device or a link out of the worktree
/// (RELIABILITY 26); a missing one hashes as missing.
fn file_part(root: &Path, p: &Path) -> blake3::Hash {
    let mut part = blake3::Hasher::new();
    part.update(p.as_os_str().as_bytes());
    part.update(&[0]);
    match crate::repofile::hash(Some(root), &root.join(p)) {
        Ok(Some(hash)) => {
            part.update(hash.as_bytes());
        }
        Ok(None) => {
            part.update(b"<missing>");
        }
        Err(e) => {
            part.update(b"<unreadable>");
            part.update(e.to_string().as_bytes());
        }
    }
    part.finalize()
}

/// The local and shared keys being hashed.
#[derive(Clone)]
struct KeyHashers {
    local: blake3::Hasher,
    shared: Option<blake3::Hasher>,
}

impl KeyHashers {
    /// Everything but the files: the definition, the environment seen, the
    /// tool (here: its path, version and the executable's size and time).
    fn new(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        env: Option<&str>,
    ) -> KeyHashers {
        let mut h = blake3::Hasher::new();
        h.update(VERSION.as_bytes());
        h.update(&[0]);
        h.update(def.digest.as_bytes());
        h.update(&[0]);
        if let Some(env) = env {
            h.update(env.as_bytes());
            h.update(&[0]);
        }
        if let Some(t) = tool {
            h.update(t.path.as_os_str().as_bytes());
            h.update(&[0]);
            h.update(t.version.as_deref().unwrap_or("?").as_bytes());
            h.update(&[0]);
            // The executable itself: catches upgrades of tools without a version probe.
            if let Ok(m) = std::fs::metadata(&t.path) {
                h.update(&m.len().to_le_bytes());
                if let Ok(mtime) = m.modified().and_then(|t| {
                    t.duration_since(std::time::UNIX_EPOCH)
                        .map_err(std::io::Error::other)
                }) {
                    h.update(&mtime.as_nanos().to_le_bytes());
                }
            }
        }
        KeyHashers {
            local: h,
            shared: shared_hasher(def, tool, root, env),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.local.update(bytes);
        if let Some(s) = &mut self.shared {
            s.update(bytes);
        }
    }

    /// A file's part (see [`file_part`]).
    fn file(&mut self, part: &blake3::Hash) {
        self.update(part.as_bytes());
    }

    fn finish(self) -> Keys {
        Keys {
            local: self.local.finalize().to_hex().to_string(),
            shared: self.shared.map(|s| s.finalize().to_hex().to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResultCache {
    pub(super) dir: PathBuf,
}

impl ResultCache {
    pub fn new(root: &Path) -> ResultCache {
        ResultCache {
            dir: root.join(".bgtask").join("cache").join("results"),
        }
    }

    /// The local key for running `def` with `tool` over `relevant`
    /// (repo-relative) files, seeing the project environment `env`.
    #[cfg(test)]
    pub fn key(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        relevant: &[PathBuf],
        env: Option<&str>,
    ) -> String {
        ResultCache::keys(def, tool, root, relevant, env).local
    }

    /// The keys for running `def` with `tool` over `relevant`
    /// (repo-relative) files, seeing the project environment `env` (its
    /// stamp, for a tool that imports the project).
    pub fn keys(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        relevant: &[PathBuf],
        env: Option<&str>,
    ) -> Keys {
        ResultCache::keys_and_parts(def, tool, root, relevant, env).0
    }

    /// [`ResultCache::keys`], with each file's part (read once; for
    /// [`ResultCache::file_keys`]).
    pub fn keys_and_parts(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        relevant: &[PathBuf],
        env: Option<&str>,
    ) -> (Keys, FileParts) {
        let mut k = KeyHashers::new(def, tool, root, env);
        let mut parts = FileParts::with_capacity(relevant.len());
        for p in relevant {
            let part = file_part(root, p);
            k.file(&part);
            parts.insert(p.clone(), part);
        }
        (k.finish(), parts)
    }

    /// One pair of keys per target for an analyzer whose findings on a
    /// file depend on that file alone (`cache_per_file`): each covers the
    /// tool's `configs` and the one file. Marked apart from whole-run keys
    /// (a one-file run's entry records a run, not a file's result). A
    /// file's part is taken from `parts` when the run's key read it.
    pub fn file_keys(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        (configs, targets): (&[PathBuf], &[PathBuf]),
        env: Option<&str>,
        parts: &FileParts,
    ) -> Vec<Keys> {
        let part = |p: &PathBuf| parts.get(p).copied().unwrap_or_else(|| file_part(root, p));
        let mut common = KeyHashers::new(def, tool, root, env);
        common.update(b"per-file");
        for p in configs {
            common.file(&part(p));
        }
        targets
            .iter()
            .map(|t| {
                let mut k = common.clone();
                k.file(&part(t));
                k.finish()
            })
            .collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    pub fn get(&self, key: &str, network: bool) -> Option<AnalyzerRun> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        fresh(&entry, network).then_some(entry.run)
    }

    /// An entry from the team's cache (`team.rs`), stored here under `key`
    /// too; its run when it reads as one and is not too old (an entry
    /// dated in the future is not taken: a clock cannot make one valid).
    pub fn import(&self, key: &str, bytes: &[u8], network: bool) -> Option<AnalyzerRun> {
        let entry: Entry = serde_json::from_slice(bytes).ok()?;
        if !fresh(&entry, network) {
            return None;
        }
        self.write(key, bytes);
        Some(entry.run)
    }

    /// Stores a cacheable run, with how long it took; failures (read-only
    /// tree, full disk) only cost the cache. The entry as stored (for the
    /// team's cache), when it is one.
    pub fn put(&self, key: &str, run: &AnalyzerRun, timing: Option<Timing>) -> Option<Vec<u8>> {
        // A network analyzer's result (partial ones too: some dependencies
        // could not be audited offline) is kept for an hour like any of
        // its results, so an offline machine does not pay for it on every
        // run; `--offline` skips it altogether.
        if !run.status.is_cacheable() {
            return None;
        }
        let entry = Entry {
            created: SystemTime::now(),
            run: run.clone(),
            timing,
        };
        let json = serde_json::to_vec(&entry).ok()?;
        self.write(key, &json);
        Some(json)
    }

    fn write(&self, key: &str, json: &[u8]) {
        let Some(root) = self
            .dir
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
        else {
            return;
        };
        if crate::state::state_dir(root).is_err() || std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir)
            && tmp.write_all(json).is_ok()
        {
            let _ = tmp.persist(self.path(key));
        }
    }

    /// Deletes entries older than a week.
    pub fn prune(&self) {
        self.prune_by(MAX_AGE, None);
    }

    /// Deletes the entries older than `older_than`, then the oldest until
    /// at most `max_size` bytes are left (`bgtask cache prune`).
    pub fn prune_by(&self, older_than: Duration, max_size: Option<u64>) -> Pruned {
        let now = SystemTime::now();
        let entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        let mut p = Pruned::default();
        for (path, len, changed) in entries {
            let old = now.duration_since(changed).unwrap_or_default() > older_than;
            let over = max_size.is_some_and(|m| total > m);
            if (old || over) && std::fs::remove_file(&path).is_ok() {
                p.deleted += 1;
                p.bytes += len;
                total -= len;
            } else {
                p.kept += 1;
            }
        }
        p
    }

    /// Its entries and their bytes.
    pub fn usage(&self) -> (usize, u64) {
        let entries = self.entries();
        (entries.len(), entries.iter().map(|e| e.1).sum())
    }

    /// Every entry's file, size and last change, oldest first (what
    /// pruning by size deletes first).
    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "json")
                && let Ok(m) = e.metadata()
                && m.is_file()
            {
                out.push((
                    path,
                    m.len(),
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ));
            }
        }
        out.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// What a prune did.
#[derive(Debug, Default, Serialize)]
pub struct Pruned {
    pub deleted: usize,
    pub bytes: u64,
    pub kept: usize,
}

#[cfg(test)]
#[path = "cache_tests.rs"]
pub(super) mod tests;
