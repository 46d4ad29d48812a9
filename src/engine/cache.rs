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

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Clone)]
pub struct ResultCache {
    dir: PathBuf,
}

impl ResultCache {
    pub fn new(root: &Path) -> ResultCache {
        ResultCache {
            dir: root.join(".bgtask").join("cache").join("results"),
        }
    }

    /// The key for running `def` with `tool` over `relevant` (repo-relative)
    /// files, seeing the project environment `env` (its stamp, for a tool
    /// that imports the project). Reads every file; a missing one hashes as
    /// missing.
    pub fn key(
        def: &AnalyzerDef,
        tool: Option<&ToolInfo>,
        root: &Path,
        relevant: &[PathBuf],
        env: Option<&str>,
    ) -> String {
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
        for p in relevant {
            h.update(p.as_os_str().as_bytes());
            h.update(&[0]);
            // Streamed, and never through a FIFO, a device or a link out
            // of the worktree (RELIABILITY 26).
            match crate::repofile::hash(Some(root), &root.join(p)) {
                Ok(Some(hash)) => {
                    h.update(hash.as_bytes());
                }
                Ok(None) => {
                    h.update(b"<missing>");
                }
                Err(e) => {
                    h.update(b"<unreadable>");
                    h.update(e.to_string().as_bytes());
                }
            }
        }
        h.finalize().to_hex().to_string()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    pub fn get(&self, key: &str, network: bool) -> Option<AnalyzerRun> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let max_age = if network { NETWORK_MAX_AGE } else { MAX_AGE };
        let age = SystemTime::now()
            .duration_since(entry.created)
            .unwrap_or_default();
        (age <= max_age).then_some(entry.run)
    }

    /// Stores a cacheable run; failures (read-only tree, full disk) only
    /// cost the cache.
    pub fn put(&self, key: &str, run: &AnalyzerRun) {
        // A network analyzer's result (partial ones too: some dependencies
        // could not be audited offline) is kept for an hour like any of
        // its results, so an offline machine does not pay for it on every
        // run; `--offline` skips it altogether.
        if !run.status.is_cacheable() {
            return;
        }
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
        let entry = Entry {
            created: SystemTime::now(),
            run: run.clone(),
        };
        let Ok(json) = serde_json::to_vec(&entry) else {
            return;
        };
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir)
            && tmp.write_all(&json).is_ok()
        {
            let _ = tmp.persist(self.path(key));
        }
    }

    /// Deletes entries older than a week.
    pub fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > MAX_AGE);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
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
        cache.put("k", &run);
        assert!(cache.get("k", false).is_none());
        run.status = RunStatus::Clean;
        cache.put("k", &run);
        assert_eq!(cache.get("k", false).unwrap().status, RunStatus::Clean);
        // A network audit that could audit only part (offline) is kept for
        // its hour too, so an offline machine does not pay for it each run.
        run.network = true;
        run.status = RunStatus::Partial;
        cache.put("audit", &run);
        assert_eq!(cache.get("audit", true).unwrap().status, RunStatus::Partial);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".bgtask/.gitignore")).unwrap(),
            "*\n"
        );
    }
}
