//! Tool versions: part of every result-cache key and shown by `doctor`.
//!
//! Asking a Python tool for its version costs a few hundred milliseconds, so
//! answers are cached per executable, keyed by its path, size and mtime, for
//! a day. A proxy's file says nothing about what it runs (rustup's `cargo`,
//! pyenv, asdf and mise shims follow their settings), so a proxy's answer
//! is also keyed on those settings. A failed probe is never cached: the
//! next run asks again (after `rustup default stable`, it works).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::dirs::cache_dir;
use crate::analyze::parsers::summary;
use crate::analyze::{ExternalSpec, LazyRegex};
use crate::run::{self, Ended, Finished, Limits, Spec};

const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
static DEFAULT_VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+\.\d+(?:\.\d+)?(?:[-.+\w]*)?)").expect("valid regex"));

/// What asking a tool for its version told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It answered (with a version, if one could be read).
    Version(Option<String>),
    /// The version command failed: the tool is there but not usable (a
    /// `cargo` without clippy, a `python` without the module).
    Failed(String),
}

impl Probe {
    pub fn version(&self) -> Option<&str> {
        match self {
            Probe::Version(v) => v.as_deref(),
            Probe::Failed(_) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    checked: u64,
    version: Option<String>,
    #[serde(default)]
    failed: Option<String>,
    /// For a proxy: a hash of the settings that pick what it runs.
    #[serde(default)]
    resolves: Option<String>,
}

/// The version cache file, read once and written back when it changed.
#[derive(Debug, Default)]
pub struct VersionCache {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    dirty: bool,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn stamp(tool: &Path) -> Option<(u64, u128)> {
    let m = std::fs::metadata(tool).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.len(), mtime))
}

/// A file's identity: the cache file unchanged since it was last read
/// (a daemon loads it for every job) is not read and parsed again.
type FileStamp = (u64, u64, i64, i64);

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

type Loaded = Option<(PathBuf, FileStamp, BTreeMap<String, Entry>)>;

/// The entries as last read or written by this process.
static LOADED: std::sync::Mutex<Loaded> = std::sync::Mutex::new(None);

fn remember(path: &Path, entries: &BTreeMap<String, Entry>) {
    if let Some(stamp) = file_stamp(path)
        && let Ok(mut loaded) = LOADED.lock()
    {
        *loaded = Some((path.to_owned(), stamp, entries.clone()));
    }
}

impl VersionCache {
    pub fn load() -> VersionCache {
        let path = cache_dir().join("tool-versions-v2.json");
        let stamp = file_stamp(&path);
        if let Ok(loaded) = LOADED.lock()
            && let Some((p, s, entries)) = loaded.as_ref()
            && *p == path
            && Some(*s) == stamp
        {
            return VersionCache {
                path,
                entries: entries.clone(),
                dirty: false,
            };
        }
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        remember(&path, &entries);
        VersionCache {
            path,
            entries,
            dirty: false,
        }
    }

    fn key(tool: &Path, args: &[String]) -> String {
        format!("{}\u{0}{}", tool.display(), args.join("\u{1}"))
    }

    /// A cached answer for `tool` run in the project at `root`.
    pub fn get(&self, tool: &Path, args: &[String], root: &Path) -> Option<Probe> {
        let e = self.entries.get(&Self::key(tool, args))?;
        let (size, mtime) = stamp(tool)?;
        let fresh = e.size == size
            && e.mtime_ns == mtime
            && e.failed.is_none()
            && e.resolves == resolution(tool, root)
            && now_secs().saturating_sub(e.checked) < MAX_AGE.as_secs();
        fresh.then(|| Probe::Version(e.version.clone()))
    }

    /// Remembers an answer; a failure is forgotten instead.
    pub fn put(&mut self, tool: &Path, args: &[String], root: &Path, probe: &Probe) {
        if matches!(probe, Probe::Failed(_)) {
            self.dirty |= self.entries.remove(&Self::key(tool, args)).is_some();
            return;
        }
        if let Some((size, mtime_ns)) = stamp(tool) {
            self.entries.insert(
                Self::key(tool, args),
                Entry {
                    size,
                    mtime_ns,
                    checked: now_secs(),
                    version: probe.version().map(str::to_owned),
                    failed: None,
                    resolves: resolution(tool, root),
                },
            );
            self.dirty = true;
        }
    }

    /// Writes the cache back (temp file + rename); failures only lose the cache.
    pub fn save(&self) {
        if !self.dirty {
            return;
        }
        let Some(dir) = self.path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(json) = serde_json::to_vec(&self.entries)
            && let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
            && std::io::Write::write_all(&mut tmp, &json).is_ok()
            && tmp.persist(&self.path).is_ok()
        {
            remember(&self.path, &self.entries);
        }
    }
}

/// For a proxy executable, a hash of what decides the tool it runs: for
/// rustup's proxies its settings, `RUSTUP_TOOLCHAIN` and the project's
/// toolchain file; for pyenv, asdf and mise shims their version files and
/// variables. `None` for an ordinary executable.
fn resolution(tool: &Path, root: &Path) -> Option<String> {
    let real = tool.canonicalize().ok()?;
    let name = real.file_name()?.to_string_lossy().into_owned();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let env_dir = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| home.join(default), PathBuf::from)
    };
    let (files, vars): (Vec<PathBuf>, &[&str]) = if name.starts_with("rustup") {
        (
            vec![
                env_dir("RUSTUP_HOME", ".rustup").join("settings.toml"),
                root.join("rust-toolchain.toml"),
                root.join("rust-toolchain"),
            ],
            &["RUSTUP_TOOLCHAIN"],
        )
    } else if tool.components().any(|c| c.as_os_str() == "shims") {
        (
            vec![
                env_dir("PYENV_ROOT", ".pyenv").join("version"),
                root.join(".python-version"),
                root.join(".tool-versions"),
                root.join(".mise.toml"),
                root.join("mise.toml"),
            ],
            &[
                "PYENV_VERSION",
                "ASDF_PYTHON_VERSION",
                "MISE_PYTHON_VERSION",
            ],
        )
    } else {
        return None;
    };
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(f.as_os_str().as_encoded_bytes());
        if let Ok(Some(bytes)) = crate::repofile::read(None, &f, 64 * 1024) {
            h.update(&bytes);
        }
        h.update(&[0]);
    }
    for v in vars {
        if let Some(value) = std::env::var_os(v) {
            h.update(value.as_encoded_bytes());
        }
        h.update(&[0]);
    }
    Some(h.finalize().to_hex()[..16].to_owned())
}

/// Runs the tool's version command (isolated, 20 s limit) and extracts the
/// version; without a version command there is nothing to ask.
pub async fn detect(tool: &Path, spec: &ExternalSpec, root: &Path) -> Probe {
    if spec.version_args.is_empty() {
        return Probe::Version(None);
    }
    let finished = run::run(version_spec(tool, spec, root), CancellationToken::new()).await;
    probe(tool, spec, &finished)
}

/// [`detect`] from synchronous code, inside a tokio runtime or not
/// ([`run::run_blocking`]).
pub fn detect_blocking(tool: &Path, spec: &ExternalSpec, root: &Path) -> Probe {
    if spec.version_args.is_empty() {
        return Probe::Version(None);
    }
    let finished = run::run_blocking(version_spec(tool, spec, root));
    probe(tool, spec, &finished)
}

/// How the version command is run.
fn version_spec(tool: &Path, spec: &ExternalSpec, root: &Path) -> Spec {
    Spec {
        program: tool.to_owned(),
        args: spec.version_args.iter().map(Into::into).collect(),
        cwd: root.to_owned(),
        env: spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        timeout: Duration::from_secs(20),
        kill_grace: Duration::from_secs(1),
        limits: Limits::default(),
        stdout_keep: (64 * 1024, 0),
        stderr_keep: (64 * 1024, 0),
        on_spawn: None,
        log_file: None,
    }
}

/// What the version command's run says: the version, or why it failed.
fn probe(tool: &Path, spec: &ExternalSpec, finished: &Finished) -> Probe {
    let mut text = String::from_utf8_lossy(&finished.stdout.bytes).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&finished.stderr.bytes));
    let asked = format!(
        "`{} {}`",
        tool.file_name()
            .unwrap_or(tool.as_os_str())
            .to_string_lossy(),
        spec.version_args.join(" ")
    );
    match &finished.ended {
        Ended::Exited(0) => Probe::Version(extract(
            &text,
            spec.version_regex.as_ref().and_then(LazyRegex::get),
        )),
        Ended::Exited(code) => Probe::Failed(format!(
            "{asked} exited with code {code}{}",
            summary(text.as_bytes())
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        )),
        Ended::TimedOut => Probe::Failed(format!("{asked} did not answer within 20 s")),
        other => Probe::Failed(format!("{asked} failed: {other:?}")),
    }
}

fn extract(text: &str, regex: Option<&Regex>) -> Option<String> {
    let re = regex.unwrap_or(&DEFAULT_VERSION);
    re.captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_real_tool_outputs() {
        let rows = [
            (
                "bandit 1.9.4\n  python version = 3.11.7 (main)",
                Some(r"bandit (\S+)"),
                "1.9.4",
            ),
            (
                "pylint 4.1.4\nastroid 4.0.2\nPython 3.11.7",
                Some(r"pylint (\S+)"),
                "4.1.4",
            ),
            ("v9.39.2", Some(r"v?(\d+\.\d+\.\d+)"), "9.39.2"),
            ("11.19.1", Some(r"^(\S+)"), "11.19.1"),
            (
                "clippy 0.1.95 (59807616e1 2026-04-14)",
                Some(r"clippy (\S+)"),
                "0.1.95",
            ),
            ("radon 6.0.1", None, "6.0.1"),
        ];
        for (text, re, want) in rows {
            let re = re.map(|r| Regex::new(r).unwrap());
            assert_eq!(extract(text, re.as_ref()).as_deref(), Some(want), "{text}");
        }
        assert_eq!(extract("no digits here", None), None);
    }

    #[test]
    fn cache_is_keyed_by_the_file_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "a").unwrap();
        let mut cache = VersionCache {
            path: dir.path().join("v.json"),
            ..VersionCache::default()
        };
        let args = vec!["--version".to_owned()];
        let root = dir.path();
        cache.put(&tool, &args, root, &Probe::Version(Some("1.0".into())));
        assert_eq!(
            cache.get(&tool, &args, root),
            Some(Probe::Version(Some("1.0".into())))
        );
        assert_eq!(cache.get(&tool, &["-V".to_owned()], root), None);
        // A failure is never remembered (nor kept from before).
        cache.put(
            &tool,
            &args,
            root,
            &Probe::Failed("no default toolchain".into()),
        );
        assert_eq!(cache.get(&tool, &args, root), None);
        cache.put(&tool, &args, root, &Probe::Version(Some("1.0".into())));
        std::fs::write(&tool, "changed").unwrap();
        assert_eq!(cache.get(&tool, &args, root), None, "size changed");
        cache.save();
        assert!(dir.path().join("v.json").exists());
    }

    #[test]
    fn a_proxy_is_keyed_on_what_it_resolves_to() {
        let dir = tempfile::tempdir().unwrap();
        let shims = dir.path().join("shims");
        std::fs::create_dir(&shims).unwrap();
        let tool = shims.join("pylint");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let root = dir.path().join("project");
        std::fs::create_dir(&root).unwrap();
        let mut cache = VersionCache {
            path: dir.path().join("v.json"),
            ..VersionCache::default()
        };
        let args = vec!["--version".to_owned()];
        cache.put(&tool, &args, &root, &Probe::Version(Some("3.0".into())));
        assert!(cache.get(&tool, &args, &root).is_some());
        std::fs::write(root.join(".python-version"), "3.12\n").unwrap();
        assert_eq!(cache.get(&tool, &args, &root), None, "another Python now");
    }
}
