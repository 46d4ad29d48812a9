//! The team's shared result cache, for one run: looked up after a local
//! miss, filled with what the run computed, uploaded once the report is
//! written. A store is reached through `remote.rs`; this module decides
//! when to ask it, counts what it answered, and keeps a store that is down,
//! slow or forbidden from costing the run more than one bounded try:
//!
//! - reads need a team secret (`BGTASK_CACHE_SECRET`, or the config's
//!   `secret_command`): every entry is checked against it, and one that
//!   does not verify is ignored and counted, so a shared cache never hides
//!   a finding;
//! - all of a run's lookups share one deadline (2 s from the first), and
//!   the first time the store cannot be asked, the rest of the run does
//!   not ask again — the analyzers run locally, the report says why once;
//! - writes happen only where `cache.remote.write` allows (`ci`: when
//!   `CI=true`), after the report (`upload`).
//!
//! Entries are the local cache's, with the worktree's absolute path
//! replaced by a placeholder (findings, messages and logs name files
//! under it), so a result made in `/builds/team/app` reads right in
//! `/home/me/app`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::remote::{Fetched, Remote, RemoteSpec};
use crate::config::{RemoteCache, RemoteWrite};
pub use crate::report::TeamCacheUse;

/// The whole of a run's lookups, from the first.
const LOOKUP_BUDGET: Duration = Duration::from_secs(2);
/// The whole of a run's uploads.
const UPLOAD_BUDGET: Duration = Duration::from_secs(30);
/// A store that answered every lookup within this is asked for files one
/// by one (`per_file.rs`); a slower one only for whole runs.
const QUICK: Duration = Duration::from_millis(100);
/// What stands for the worktree's path in a shared entry.
const ROOT_MARK: &str = "@@bgtask-root@@";

#[derive(Default)]
struct State {
    used: TeamCacheUse,
    /// Set once the store could not be asked: no more lookups.
    down: bool,
    /// When the first lookup started.
    first: Option<Instant>,
    /// The longest a lookup took to be answered.
    slowest: Duration,
    /// (key, entry) to upload after the report.
    pending: Vec<(String, Vec<u8>)>,
}

/// The team cache of one run.
pub struct TeamCache {
    /// `None`: the URL could not be used (the report says why).
    remote: Option<Remote>,
    read: bool,
    write: bool,
    /// The worktree's path as it appears in an entry's JSON.
    root_json: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for TeamCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamCache")
            .field("url", &self.state().used.url)
            .field("read", &self.read)
            .field("write", &self.write)
            .finish_non_exhaustive()
    }
}

impl TeamCache {
    /// The run's team cache from the config, when one is configured: `ci`
    /// says whether this is a CI job (`CI=true`), `secret` is the team
    /// secret if one could be had (else reads are off and the report
    /// says why). A URL the store cannot use is a problem to report, not
    /// an error: the run goes on locally.
    pub fn open(
        config: &RemoteCache,
        root: &Path,
        ci: bool,
        secret: Result<Vec<u8>, String>,
    ) -> Arc<TeamCache> {
        let write = match config.write {
            RemoteWrite::Always => true,
            RemoteWrite::Ci => ci,
            RemoteWrite::Never => false,
        };
        let has_secret = secret.is_ok();
        let (remote, problem) = match Remote::open(&RemoteSpec {
            url: config.url.clone(),
            secret: secret.as_ref().ok().cloned(),
        }) {
            Ok(r) => (Some(r), secret.err()),
            Err(e) => (None, Some(e.to_string())),
        };
        let usable = remote.is_some() && has_secret;
        let root_json = serde_json::to_string(&root.to_string_lossy())
            .map(|q| q.trim_matches('"').to_owned())
            .unwrap_or_default();
        Arc::new(TeamCache {
            remote,
            read: usable,
            // Entries are signed with the secret: none, no writing either.
            write: write && usable,
            root_json,
            state: Mutex::new(State {
                used: TeamCacheUse {
                    url: remote_url(&config.url),
                    problem,
                    ..TeamCacheUse::default()
                },
                ..State::default()
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry stored under `key`, verified, with this worktree's path
    /// put back; `None` on a miss, a rejected entry, or a store that cannot
    /// be asked (then not asked again this run). How long it took to be
    /// answered decides [`TeamCache::answers_quickly`].
    pub async fn fetch(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key, true).await
    }

    /// [`TeamCache::fetch`] of one of many lookups made together (a
    /// file's entry), whose time is the queue's as much as the store's:
    /// not timed.
    pub async fn fetch_one_of_many(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key, false).await
    }

    async fn get(&self, key: &str, timed: bool) -> Option<Vec<u8>> {
        let deadline = {
            let mut s = self.state();
            if !self.read || s.down {
                return None;
            }
            *s.first.get_or_insert_with(Instant::now) + LOOKUP_BUDGET
        };
        let remote = self.remote.as_ref()?;
        let asked = Instant::now();
        let fetched = remote.get(key, deadline).await;
        let mut s = self.state();
        if timed {
            s.slowest = s.slowest.max(asked.elapsed());
        }
        match fetched {
            Fetched::Hit(bytes) => {
                s.used.hits += 1;
                let text = String::from_utf8_lossy(&bytes).replace(ROOT_MARK, &self.root_json);
                Some(text.into_bytes())
            }
            Fetched::Miss => {
                s.used.misses += 1;
                None
            }
            Fetched::Rejected(why) => {
                tracing::warn!(key, %why, "a team cache entry did not verify; ignored");
                s.used.rejected += 1;
                s.used.misses += 1;
                None
            }
            Fetched::Unavailable(why) => {
                if !s.down {
                    tracing::warn!(url = %s.used.url, %why, "the team cache cannot be asked; analysing locally");
                    s.down = true;
                    s.used.problem = Some(format!("could not be asked ({why}): analysed locally"));
                }
                s.used.misses += 1;
                None
            }
        }
    }

    /// Whether it is worth asking for many entries at once (each file's):
    /// readable, not found down, and every lookup so far answered quickly.
    pub fn answers_quickly(&self) -> bool {
        let s = self.state();
        self.read && !s.down && s.slowest <= QUICK
    }

    /// Keeps a result this run computed (a local cache entry) for the
    /// upload after the report, when this machine writes.
    pub fn offer(&self, key: String, entry: &[u8]) {
        if !self.write {
            return;
        }
        let text = String::from_utf8_lossy(entry);
        let shared = text
            .replace(&format!("{}/", self.root_json), &format!("{ROOT_MARK}/"))
            .replace(&format!("{}\"", self.root_json), &format!("{ROOT_MARK}\""));
        self.state().pending.push((key, shared.into_bytes()));
    }

    /// Uploads what the run offered, a few at a time, within a bound; a
    /// store that fails is said in the result, never an error.
    pub async fn upload(&self) -> TeamCacheUse {
        let (pending, down) = {
            let mut s = self.state();
            (std::mem::take(&mut s.pending), s.down)
        };
        // A store found down while looking up is not tried again.
        let Some(remote) = self
            .remote
            .as_ref()
            .filter(|_| !pending.is_empty() && !down)
        else {
            return self.used();
        };
        let deadline = Instant::now() + UPLOAD_BUDGET;
        let mut uploaded = 0;
        let mut failed: Option<String> = None;
        for chunk in pending.chunks(8) {
            let puts = chunk
                .iter()
                .map(|(key, entry)| remote.put(key, entry, deadline));
            for result in futures_util::future::join_all(puts).await {
                match result {
                    Ok(()) => uploaded += 1,
                    Err(why) => {
                        failed.get_or_insert(why);
                    }
                }
            }
            if failed.is_some() {
                break;
            }
        }
        let mut s = self.state();
        s.used.uploaded += uploaded;
        if let Some(why) = failed {
            tracing::debug!(url = %s.used.url, %why, "could not fill the team cache");
            s.used
                .problem
                .get_or_insert_with(|| format!("could not be written ({why})"));
        }
        s.used.clone()
    }

    /// What it did so far.
    pub fn used(&self) -> TeamCacheUse {
        self.state().used.clone()
    }
}

/// The URL without userinfo, for the report.
fn remote_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_owned(),
    }
}

/// The team secret: `BGTASK_CACHE_SECRET`, else what `secret_command`
/// prints (run in `root`, 10 s at most); `Err` says why there is none.
pub fn secret(config: &RemoteCache, root: &Path) -> Result<Vec<u8>, String> {
    if let Some(s) = std::env::var_os("BGTASK_CACHE_SECRET").filter(|s| !s.is_empty()) {
        return Ok(s.into_encoded_bytes());
    }
    let Some((program, args)) = config.secret_command.as_ref().and_then(|c| c.split_first()) else {
        return Err(
            "no team secret (set BGTASK_CACHE_SECRET, or cache.remote.secret_command): its entries cannot be verified, so it is not read".to_owned(),
        );
    };
    let out = run_bounded(program, args, root, Duration::from_secs(10))?;
    if !out.status.success() {
        return Err(format!(
            "secret_command `{program}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if secret.is_empty() {
        return Err(format!("secret_command `{program}` printed nothing"));
    }
    Ok(secret.into_bytes())
}

/// Runs `program` and waits for it at most `limit` (then kills it).
fn run_bounded(
    program: &str,
    args: &[String],
    root: &Path,
    limit: Duration,
) -> Result<std::process::Output, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("secret_command `{program}` could not start: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "secret_command `{program}` did not finish within {:.1}s",
                    limit.as_secs_f64()
                ));
            }
        }
    }
    child
        .wait_with_output()
        .map_err(|e| format!("secret_command `{program}`: {e}"))
}

/// [`secret`], asked once per command and worktree for the process's
/// life (the daemon asks for every job).
pub fn secret_cached(config: &RemoteCache, root: &Path) -> Result<Vec<u8>, String> {
    type Memo = std::collections::HashMap<
        (Option<Vec<String>>, std::path::PathBuf),
        Result<Vec<u8>, String>,
    >;
    static MEMO: std::sync::OnceLock<Mutex<Memo>> = std::sync::OnceLock::new();
    if let Some(s) = std::env::var_os("BGTASK_CACHE_SECRET").filter(|s| !s.is_empty()) {
        return Ok(s.into_encoded_bytes());
    }
    let memo = MEMO.get_or_init(Mutex::default);
    let key = (config.secret_command.clone(), root.to_owned());
    if let Some(known) = memo
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        return known.clone();
    }
    let found = secret(config, root);
    memo.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, found.clone());
    found
}

/// What `bgtask doctor` says of the team cache.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TeamCacheCheck {
    pub url: String,
    /// Results are read from it here.
    pub reads: bool,
    /// Results computed here are written to it.
    pub writes: bool,
    /// Why it is not read or written, or cannot be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Asks the store for an entry that is never there: a miss says it is
/// reachable and answering, anything else why not.
pub async fn check(config: &RemoteCache, root: &Path) -> TeamCacheCheck {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let team = TeamCache::open(config, root, ci, secret(config, root));
    let mut problem = team.used().problem;
    if problem.is_none()
        && let Some(remote) = &team.remote
    {
        let probe = "0".repeat(64);
        match remote.get(&probe, Instant::now() + LOOKUP_BUDGET).await {
            Fetched::Miss | Fetched::Hit(_) | Fetched::Rejected(_) => {}
            Fetched::Unavailable(why) => problem = Some(format!("cannot be reached: {why}")),
        }
    }
    let ok = problem.is_none();
    TeamCacheCheck {
        url: team.used().url,
        reads: ok && team.read,
        writes: ok && team.write,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command: &[&str]) -> RemoteCache {
        RemoteCache {
            url: "file:///nowhere".into(),
            write: RemoteWrite::Never,
            secret_command: Some(command.iter().map(|&s| s.to_owned()).collect()),
        }
    }

    #[test]
    fn secret_command_gives_the_secret_or_says_why_not() {
        if std::env::var_os("BGTASK_CACHE_SECRET").is_some() {
            return; // the environment's secret comes first
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("secret.txt"), "s3cret\n").unwrap();
        // Run in the worktree, its output trimmed.
        assert_eq!(
            secret(&config(&["cat", "secret.txt"]), root).unwrap(),
            b"s3cret"
        );
        let failed = secret(&config(&["sh", "-c", "echo denied >&2; exit 3"]), root).unwrap_err();
        assert!(
            failed.contains("failed") && failed.contains("denied"),
            "{failed}"
        );
        let empty = secret(&config(&["true"]), root).unwrap_err();
        assert!(empty.contains("printed nothing"), "{empty}");
        let missing = secret(&config(&["no-such-secret-tool"]), root).unwrap_err();
        assert!(missing.contains("could not start"), "{missing}");
        let none = RemoteCache {
            secret_command: None,
            ..config(&[])
        };
        assert!(secret(&none, root).unwrap_err().contains("no team secret"));
    }

    /// An HTTP store with nothing in it that answers every request
    /// `delay` late; its URL.
    fn empty_store(delay: Duration) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/cache", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while conn.read(&mut buf).is_ok_and(|n| n > 0) {
                        std::thread::sleep(delay);
                        let answer = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
                        if conn.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn files_are_looked_up_one_by_one_only_in_a_store_that_answers_quickly() {
        let root = tempfile::tempdir().unwrap();
        for (delay, quick) in [(Duration::ZERO, true), (Duration::from_millis(250), false)] {
            let config = RemoteCache {
                url: empty_store(delay),
                write: RemoteWrite::Never,
                secret_command: None,
            };
            let team = TeamCache::open(&config, root.path(), false, Ok(b"s".to_vec()));
            assert!(team.answers_quickly(), "not asked yet");
            // Many lookups at once are not timed: they wait in a queue.
            let (k1, k2) = ("a1".repeat(32), "b2".repeat(32));
            assert!(team.fetch_one_of_many(&k1).await.is_none());
            assert!(team.answers_quickly());
            let asked = Instant::now();
            assert!(team.fetch(&k2).await.is_none());
            assert_eq!(
                team.answers_quickly(),
                quick,
                "{delay:?}: {:?} {:?}",
                asked.elapsed(),
                team.used()
            );
            let used = team.used();
            assert_eq!((used.misses, used.rejected), (2, 0), "{used:?}");
            assert!(used.problem.is_none(), "{used:?}");
        }
    }

    #[test]
    fn a_hung_secret_command_is_killed_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let hung = run_bounded(
            "sleep",
            &["30".to_owned()],
            dir.path(),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(hung.contains("did not finish"), "{hung}");
    }
}
