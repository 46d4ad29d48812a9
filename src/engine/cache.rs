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
    /// stamp, for a tool that imports the project). Reads every file once;
    /// a missing one hashes as missing.
    pub fn keys(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        relevant: &[PathBuf],
        env: Option<&str>,
    ) -> Keys {
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
        let mut shared = shared_hasher(def, tool, root, env);
        for p in relevant {
            let mut part = blake3::Hasher::new();
            part.update(p.as_os_str().as_bytes());
            part.update(&[0]);
            // Streamed, and never through a FIFO, a device or a link out
            // of the worktree (RELIABILITY 26).
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
            let part = part.finalize();
            h.update(part.as_bytes());
            if let Some(s) = &mut shared {
                s.update(part.as_bytes());
            }
        }
        Keys {
            local: h.finalize().to_hex().to_string(),
            shared: shared.map(|s| s.finalize().to_hex().to_string()),
        }
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
mod tests {
    use super::*;
    use crate::analyze::RunStatus;
    use crate::analyze::parsers::testing::builtin;
    use crate::state::state_dir;

    #[test]
    fn the_state_directory_never_makes_a_deleted_worktree_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("checkout");
        assert!(state_dir(&root).is_err());
        assert!(!root.exists());
        std::fs::create_dir(&root).unwrap();
        let state = state_dir(&root).unwrap();
        assert_eq!(
            std::fs::read_to_string(state.join(".gitignore")).unwrap(),
            "*\n"
        );
        assert_eq!(state_dir(&root).unwrap(), state, "twice is fine");
    }
    use crate::config::raw::Category;

    #[test]
    fn shared_keys_are_the_same_on_another_machine_and_absent_when_they_cannot_be() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for root in [a.path(), b.path()] {
            std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        }
        let files = vec![PathBuf::from("a.py")];
        let bandit = builtin("bandit");
        let here = ToolInfo {
            path: "/usr/bin/bandit".into(),
            version: Some("1.9.4".into()),
        };
        let there = ToolInfo {
            path: "/home/me/.venv/bin/bandit".into(),
            ..here.clone()
        };
        let ka = ResultCache::keys(&bandit, Some(&here), a.path(), &files, None);
        let kb = ResultCache::keys(&bandit, Some(&there), b.path(), &files, None);
        assert_ne!(ka.local, kb.local, "local keys know the tool's path");
        assert!(ka.shared.is_some());
        assert_eq!(ka.shared, kb.shared, "the same tool version and files");
        std::fs::write(b.path().join("a.py"), "x = 2\n").unwrap();
        let changed = ResultCache::keys(&bandit, Some(&there), b.path(), &files, None);
        assert_ne!(ka.shared, changed.shared);
        let unknown = ToolInfo {
            version: None,
            ..here.clone()
        };
        let none = |k: Keys| k.shared.is_none();
        assert!(none(ResultCache::keys(
            &bandit,
            Some(&unknown),
            a.path(),
            &files,
            None
        )));
        assert!(none(ResultCache::keys(
            &bandit,
            Some(&here),
            a.path(),
            &files,
            Some(".venv@1")
        )));
        assert!(none(ResultCache::keys(
            &builtin("pip-audit"),
            Some(&here),
            a.path(),
            &files,
            None
        )));
        // A tool of the repository: known by its text, wherever it is.
        for (root, text) in [(a.path(), "echo 1\n"), (b.path(), "echo 1\n")] {
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::write(root.join("bin/lint.sh"), text).unwrap();
        }
        std::fs::write(b.path().join("a.py"), "x = 1\n").unwrap();
        let script = |root: &Path| ToolInfo {
            path: root.join("bin/lint.sh"),
            version: None,
        };
        let sa = ResultCache::keys(&bandit, Some(&script(a.path())), a.path(), &files, None);
        let sb = ResultCache::keys(&bandit, Some(&script(b.path())), b.path(), &files, None);
        assert!(sa.shared.is_some());
        assert_eq!(sa.shared, sb.shared);
        std::fs::write(b.path().join("bin/lint.sh"), "echo 2\n").unwrap();
        let edited = ResultCache::keys(&bandit, Some(&script(b.path())), b.path(), &files, None);
        assert_ne!(sa.shared, edited.shared);
    }

    #[test]
    fn key_changes_with_content_tool_and_definition() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        let bandit = builtin("bandit");
        let tool = ToolInfo {
            path: "/bin/bandit".into(),
            version: Some("1.9.4".into()),
        };
        let files = vec![PathBuf::from("a.py")];
        let k1 = ResultCache::key(&bandit, Some(&tool), root, &files, None);
        assert_eq!(
            k1,
            ResultCache::key(&bandit, Some(&tool), root, &files, None)
        );
        let newer = ToolInfo {
            version: Some("1.9.5".into()),
            ..tool.clone()
        };
        assert_ne!(
            k1,
            ResultCache::key(&bandit, Some(&newer), root, &files, None)
        );
        assert_ne!(
            k1,
            ResultCache::key(&builtin("pylint"), Some(&tool), root, &files, None)
        );
        let seen = |env| ResultCache::key(&bandit, Some(&tool), root, &files, env);
        assert_ne!(
            seen(Some(".venv@1")),
            seen(Some(".venv@2")),
            "packages changed"
        );
        assert_ne!(seen(Some(".venv@1")), k1);
        std::fs::write(root.join("a.py"), "x = 2\n").unwrap();
        assert_ne!(
            k1,
            ResultCache::key(&bandit, Some(&tool), root, &files, None)
        );
    }

    #[test]
    fn stores_only_cacheable_runs_and_gitignores_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path());
        let mut run = AnalyzerRun::skipped(
            "bandit",
            Category::Security,
            vec![],
            RunStatus::ToolError,
            "x".into(),
        );
        cache.put("k", &run, None);
        assert!(cache.get("k", false).is_none());
        run.status = RunStatus::Clean;
        cache.put("k", &run, None);
        assert_eq!(cache.get("k", false).unwrap().status, RunStatus::Clean);
        // A network audit that could audit only part (offline) is kept for
        // its hour too, so an offline machine does not pay for it each run.
        run.network = true;
        run.status = RunStatus::Partial;
        cache.put("audit", &run, None);
        assert_eq!(cache.get("audit", true).unwrap().status, RunStatus::Partial);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".bgtask/.gitignore")).unwrap(),
            "*\n"
        );
    }

    fn clean_run(analyzer: &str) -> AnalyzerRun {
        let mut run = AnalyzerRun::skipped(
            analyzer,
            Category::Security,
            vec![],
            RunStatus::Clean,
            String::new(),
        );
        run.reason = None;
        run
    }

    #[test]
    fn entries_without_a_time_still_read_as_results_of_unknown_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path());
        cache.put("new", &clean_run("bandit"), None);
        let written = std::fs::read_to_string(cache.path("new")).unwrap();
        assert!(!written.contains("timing"), "{written}");
        // What a bgtask without time records wrote.
        let old = serde_json::json!({
            "created": SystemTime::now(),
            "run": clean_run("bandit"),
        });
        std::fs::write(cache.path("old"), old.to_string()).unwrap();
        assert_eq!(cache.get("old", false).unwrap().status, RunStatus::Clean);
        assert!(cache.times(None).is_empty());
    }

    #[test]
    fn prune_by_age_then_size_deletes_the_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path());
        std::fs::create_dir_all(&cache.dir).unwrap();
        let old = SystemTime::now() - Duration::from_secs(10 * 86_400);
        for (name, when) in [
            ("a", old),
            ("b", SystemTime::now() - Duration::from_secs(60)),
            ("c", SystemTime::now()),
        ] {
            let path = cache.path(name);
            std::fs::write(&path, [b'x'; 100]).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        assert_eq!(cache.usage(), (3, 300));
        let p = cache.prune_by(Duration::from_secs(7 * 86_400), Some(150));
        assert_eq!((p.deleted, p.bytes, p.kept), (2, 200, 1));
        assert!(cache.path("c").exists(), "the newest stays");
    }
}
