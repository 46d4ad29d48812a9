//! The team's shared result cache (`cache.remote`), on real stores: a
//! directory (`file://`), an S3 server (moto) and a WebDAV server
//! (wsgidav). A CI run fills it; a fresh clone elsewhere, with an empty
//! local cache, spawns no analyzer for unchanged files; a changed file, an
//! entry signed with another secret or tampered with, no secret at all, or
//! a store that is down all mean analysing locally, said in the report,
//! with the same findings and exit code.

use serde_json::Value;

use crate::harness::{Project, wait_for};
use crate::stores::{DavServer, S3Server};

const SECRET: &str = "team-secret-1";

/// A project whose analyzer (a script of the repository) reports one
/// finding per `.txt` file and counts its runs in `runs.log`.
fn project(url: &str, write: &str) -> Project {
    project_with(url, write, "")
}

/// [`project`] with `extra` fields in the analyzer's definition.
fn project_with(url: &str, write: &str, extra: &str) -> Project {
    let p = Project::empty();
    p.script("count-runs.sh");
    p.file(".gitignore", "runs.log*\n")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n");
    p.config(&format!(
        r#"{{"tasks": {{"scan": {{"analyzers": ["counter"]}}}},
            "analyzers": {{"counter": {{"command": "./bin/count-runs.sh", "files": ["*.txt"],
              "args": ["{{root}}/runs.log", "{{files}}"], "parser": "regex",
              "regex": {{"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"}},
              {extra} "exit_codes": {{"ok": [0]}}}}}},
            "cache": {{"remote": {{"url": "{url}", "write": "{write}"}}}}}}"#
    ));
    p.commit_all("init");
    p
}

fn spawns(p: &Project) -> usize {
    std::fs::read_to_string(p.path().join("runs.log")).map_or(0, |t| t.lines().count())
}

/// `bgtask run scan --format json` with `env`: the report, and stderr.
fn run(p: &Project, env: &[(&str, &str)]) -> (Value, String) {
    let out = p
        .command(&["run", "scan", "--format", "json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {report:#}");
    (report, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn findings(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["location"]["path"], f["message"]))
        .collect()
}

/// A CI run fills the store; a fresh clone reads every result from it.
/// Returns the findings the CI run had.
fn fill_then_read(url: &str, env: &[(&str, &str)]) -> (Project, Vec<String>) {
    let ci = project(url, "ci");
    let mut with = env.to_vec();
    with.extend([("BGTASK_CACHE_SECRET", SECRET), ("CI", "true")]);
    let (filled, said) = run(&ci, &with);
    assert_eq!(spawns(&ci), 1);
    assert!(said.contains("team cache: 1 result stored in"), "{said}");
    assert_eq!(filled["team_cache"]["misses"], 1, "{filled:#}");

    let clone = project(url, "ci");
    let mut with = env.to_vec();
    with.push(("BGTASK_CACHE_SECRET", SECRET));
    let (read, said) = run(&clone, &with);
    assert_eq!(
        spawns(&clone),
        0,
        "every result from the team cache: {said}"
    );
    assert_eq!(read["team_cache"]["hits"], 1, "{read:#}");
    assert_eq!(findings(&read), findings(&filled));
    assert!(
        !said.contains("result stored"),
        "not CI: no writing\n{said}"
    );
    (clone, findings(&filled))
}

#[test]
fn a_directory_store_is_filled_by_ci_and_read_by_a_fresh_clone() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let (clone, want) = fill_then_read(&url, &[]);
    let secret = [("BGTASK_CACHE_SECRET", SECRET)];

    // `doctor` sees it reachable and read (written only by CI here), and
    // says why not without a secret.
    let doctor = |env: &[(&str, &str)]| -> Value {
        let out = clone
            .command(&["doctor", "--json"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["team_cache"].clone()
    };
    let seen = doctor(&secret);
    assert_eq!(
        (&seen["reads"], &seen["writes"]),
        (&Value::Bool(true), &Value::Bool(false)),
        "{seen:#}"
    );
    let unsigned = doctor(&[]);
    assert!(
        unsigned["problem"]
            .as_str()
            .is_some_and(|p| p.contains("no team secret")),
        "{unsigned:#}"
    );

    // A changed file is a miss: analysed here.
    clone.file("a.txt", "a2\n");
    let (changed, _) = run(&clone, &secret);
    assert_eq!(spawns(&clone), 1);
    assert_eq!(changed["team_cache"]["misses"], 1, "{changed:#}");

    // Another secret: the entry does not verify, is counted, not used.
    let other = project(&url, "never");
    let (r, _) = run(&other, &[("BGTASK_CACHE_SECRET", "not-the-team's")]);
    assert_eq!(spawns(&other), 1);
    assert_eq!(r["team_cache"]["rejected"], 1, "{r:#}");
    assert_eq!(findings(&r), want);

    // Without a secret, the store is not read at all, and the report says why.
    let unsigned = project(&url, "never");
    let out = unsigned.bgtask(&["run", "scan"]);
    assert_eq!(spawns(&unsigned), 1);
    assert!(
        out.stdout
            .contains("no team secret (set BGTASK_CACHE_SECRET"),
        "{}",
        out.stdout
    );

    // An entry tampered with (one byte of its compressed result): ignored.
    let entry = walk(store.path())
        .into_iter()
        .next()
        .expect("an entry in the store");
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&entry, bytes).unwrap();
    let fresh = project(&url, "never");
    let (r, _) = run(&fresh, &secret);
    assert_eq!(spawns(&fresh), 1);
    assert_eq!(r["team_cache"]["rejected"], 1, "{r:#}");
    assert_eq!(findings(&r), want);
}

/// Per-file entries (`cache_per_file`) go to the team cache too: a clone
/// with one file changed analyses that file alone, and a one-file run (a
/// save) on a fresh clone meets the entries CI's whole run made.
#[test]
fn per_file_entries_are_shared_file_by_file() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let per_file = r#""cache_per_file": true,"#;
    let ci = project_with(&url, "ci", per_file);
    let (filled, said) = run(&ci, &[("BGTASK_CACHE_SECRET", SECRET), ("CI", "true")]);
    assert!(
        said.contains("team cache: 3 results stored in"),
        "the run's and each file's: {said}"
    );
    assert_eq!(
        filled["team_cache"]["misses"], 3,
        "the run's, then each file's: {filled:#}"
    );
    let secret = [("BGTASK_CACHE_SECRET", SECRET)];

    let clone = project_with(&url, "ci", per_file);
    clone.file("a.txt", "a2\n");
    let (changed, _) = run(&clone, &secret);
    assert_eq!(
        clone.read("runs.log.args").trim(),
        "a.txt",
        "b.txt's result is shared"
    );
    assert_eq!(changed["team_cache"]["hits"], 1, "{changed:#}");
    assert_eq!(findings(&changed), findings(&filled));

    let fresh = project_with(&url, "ci", per_file);
    let out = fresh
        .command(&["run", "scan", "--files", "b.txt", "--format", "json"])
        .envs(secret)
        .output()
        .unwrap();
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spawns(&fresh), 0, "{one:#}");
    assert_eq!(one["team_cache"]["hits"], 1, "{one:#}");
    assert_eq!(one["findings"].as_array().map(Vec::len), Some(1));
}

/// The daemon of a fresh clone takes its results from the team cache too,
/// and a daemon that writes fills it.
#[test]
fn the_daemon_reads_and_fills_the_team_cache() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let ci = project(&url, "ci");
    run(&ci, &[("BGTASK_CACHE_SECRET", SECRET), ("CI", "true")]);
    let clone = project(&url, "ci");
    clone.bgtask(&["trust", "--yes"]).code(0);
    let mut start = clone.command(&["start"]);
    start.env("BGTASK_CACHE_SECRET", SECRET);
    assert!(start.status().unwrap().success());
    clone.bgtask(&["submit", "scan"]).code(0);
    wait_for(30, "the run", || {
        let h = clone.bgtask(&["history", "--json"]).json();
        h.as_array()
            .is_some_and(|runs| runs.first().is_some_and(|r| r["verdict"] != "running"))
    });
    let h = clone.bgtask(&["history", "--json"]).json();
    let id = h[0]["run_id"].to_string();
    let report = clone.bgtask(&["show", &id, "--format", "json"]).json();
    assert_eq!(report["team_cache"]["hits"], 1, "{report:#}");
    assert_eq!(spawns(&clone), 0);
    clone.stop();

    // A daemon that writes (`write: always`) fills the store in the
    // background after a run it computed.
    let other = tempfile::tempdir().unwrap();
    let writer = project(&format!("file://{}", other.path().display()), "always");
    writer.bgtask(&["trust", "--yes"]).code(0);
    let mut start = writer.command(&["start"]);
    start.env("BGTASK_CACHE_SECRET", SECRET);
    assert!(start.status().unwrap().success());
    writer.bgtask(&["submit", "scan"]).code(0);
    wait_for(30, "an entry in the store", || {
        !walk(other.path()).is_empty()
    });
    assert_eq!(spawns(&writer), 1);
    writer.stop();
}

#[test]
fn an_s3_store_fills_serves_and_going_down_changes_nothing_but_a_note() {
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket("team-cache");
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let url = "s3://team-cache/myrepo";
    let (_, want) = fill_then_read(url, &env);

    // The store goes down: the run goes on locally, same findings and
    // exit code, and says so once.
    s3.kill();
    let late = project(url, "ci");
    let mut with = env.clone();
    with.extend([("BGTASK_CACHE_SECRET", SECRET), ("CI", "true")]);
    let started = std::time::Instant::now();
    let (r, said) = run(&late, &with);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    assert_eq!(spawns(&late), 1);
    assert_eq!(findings(&r), want);
    let problem = r["team_cache"]["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("could not be asked"), "{r:#}");
    assert!(!said.contains("result stored"), "{said}");
}

/// The store dies while the analyzer runs (after the lookups, before the
/// upload): the same findings and exit code as without a team cache, and a
/// note.
#[test]
fn the_store_killed_mid_run_changes_nothing_but_a_note() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket("team-cache");
    let p = Project::empty();
    p.script("kill-store.sh");
    p.file(".gitignore", "store.pid\n")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .file("store.pid", &s3.pid().unwrap().to_string());
    p.config(
        r#"{"tasks": {"scan": {"analyzers": ["killer"]}},
            "analyzers": {"killer": {"command": "./bin/kill-store.sh", "files": ["*.txt"],
              "args": ["{root}/store.pid", "{files}"], "parser": "regex",
              "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"},
              "exit_codes": {"ok": [0]}}},
            "cache": {"remote": {"url": "s3://team-cache/myrepo", "write": "ci"}}}"#,
    );
    p.commit_all("init");
    let mut env = s3.env();
    env.extend(
        [("BGTASK_CACHE_SECRET", SECRET), ("CI", "true")]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let out = p
        .command(&["run", "scan", "--format", "json"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let with: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        with["team_cache"]["misses"], 1,
        "looked up before it died: {with:#}"
    );
    // The upload comes after the report: its failure is a note on stderr.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("could not be written"), "{said}");
    assert!(!said.contains("stored in"), "{said}");
    let without = p
        .command(&["run", "scan", "--format", "json", "--no-cache"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), without.status.code());
    let without: Value = serde_json::from_slice(&without.stdout).unwrap();
    assert_eq!(findings(&with), findings(&without));
    assert_eq!(findings(&with).len(), 2);
}

/// `bgtask cache stats|verify|prune` on both caches.
#[test]
fn cache_stats_verify_and_prune_see_both_caches() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let p = project(&url, "always");
    run(&p, &[("BGTASK_CACHE_SECRET", SECRET)]);
    let cache = |args: &[&str], env: &[(&str, &str)]| {
        let out = p
            .command(&[&["cache"], args].concat())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let secret = [("BGTASK_CACHE_SECRET", SECRET)];
    let (code, out, err) = cache(&["stats", "--json"], &secret);
    assert_eq!(code, Some(0), "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["local"]["entries"], 1, "{stats:#}");
    assert_eq!(stats["remote"]["entries"], 1, "{stats:#}");
    assert!(stats["remote"]["bytes"].as_u64().unwrap() > 0);

    let (code, out, _) = cache(&["verify", "--json"], &secret);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["verified"], 1);
    // Another secret: the entry is reported, and the exit code says so.
    let (code, out, _) = cache(&["verify", "--json"], &[("BGTASK_CACHE_SECRET", "other")]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["rejected"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (code, _, err) = cache(&["prune", "--remote"], &secret);
    assert_eq!(code, Some(64), "{err}");
    let (code, out, _) = cache(
        &["prune", "--remote", "--older-than", "1h", "--json"],
        &secret,
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["kept"],
        1,
        "young entries stay"
    );
    let (_, out, _) = cache(
        &["prune", "--remote", "--older-than", "0s", "--json"],
        &secret,
    );
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["deleted"], 1);
    let (_, out, _) = cache(&["prune", "--max-size", "0", "--json"], &[]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["deleted"], 1);
    let (_, out, _) = cache(&["stats", "--json"], &secret);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&stats["local"]["entries"], &stats["remote"]["entries"]),
        (&Value::from(0), &Value::from(0))
    );
}

#[test]
fn a_webdav_store_fills_and_serves() {
    let Some(dav) = DavServer::start() else {
        return;
    };
    let url = format!("{}/cache/myrepo", dav.url_base);
    fill_then_read(&url, &[]);
    assert!(
        !walk(&dav.root()).is_empty(),
        "entries are files on the server"
    );
}

#[test]
fn a_remote_cache_url_nobody_speaks_is_a_config_error_with_its_place() {
    let p = project("ftp://example.com/cache", "ci");
    let out = p.bgtask(&["run", "scan"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains(".background-tasks.json:") && out.stderr.contains("/cache/remote/url"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("ftp://"), "{}", out.stderr);
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
