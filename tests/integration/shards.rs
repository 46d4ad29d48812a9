//! `--shard K/N` balanced by the times the result cache recorded, and
//! `--shard auto` from the CI's variables.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::harness::{Project, run_of};

/// Sleeps 40 ms per line of the files it is given (one batch per run), then
/// reports one finding per file.
const SLOW: &str = r#"#!/bin/sh
lines=$(cat "$@" | wc -l)
sleep "$(awk "BEGIN { print $lines * 0.04 }")"
for f in "$@"; do echo "$f:1: looked at $f"; done
"#;

const LIGHT: &[&str] = &[
    "l1.txt", "l2.txt", "l3.txt", "l4.txt", "l5.txt", "l6.txt", "l7.txt", "l8.txt", "l9.txt",
];

/// One file costs 8x each of the nine others (size and time alike).
fn skewed() -> Project {
    let p = Project::empty();
    p.file("bin/slow.sh", SLOW).config(
        r#"{"analyzers": {"slow": {"command": "./bin/slow.sh", "files": ["*.txt"], "args": ["{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"},
            "exit_codes": {"ok": [0]}}}}"#,
    );
    std::fs::set_permissions(
        p.path().join("bin/slow.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let line = format!("{}\n", "x".repeat(4000));
    p.file("heavy.txt", &line.repeat(8));
    for f in LIGHT {
        p.file(f, &line);
    }
    p
}

/// Each shard's files and the analyzer's time in it.
fn shards(p: &Project, n: u32) -> Vec<(BTreeSet<String>, u64)> {
    (1..=n)
        .map(|k| {
            let report = p
                .bgtask(&[
                    "run",
                    "slow",
                    "--no-cache",
                    "--format",
                    "json",
                    "--shard",
                    &format!("{k}/{n}"),
                ])
                .code(0)
                .json();
            assert_eq!(report["scope"], format!("shard {k}/{n}"));
            let files = finding_paths(&report);
            let ms = run_of(&report, "slow")["duration_ms"].as_u64().unwrap();
            (files, ms)
        })
        .collect()
}

/// The files a report's findings are on.
fn finding_paths(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"]["path"].as_str().unwrap().to_owned())
        .collect()
}

/// Every file in exactly one shard.
#[track_caller]
fn partition(shards: &[(BTreeSet<String>, u64)]) {
    let mut seen = BTreeSet::new();
    for (files, _) in shards {
        for f in files {
            assert!(seen.insert(f.clone()), "{f} in two shards: {shards:?}");
        }
    }
    let all: BTreeSet<String> = LIGHT
        .iter()
        .map(|f| (*f).to_owned())
        .chain(["heavy.txt".to_owned()])
        .collect();
    assert_eq!(seen, all, "{shards:?}");
}

/// The slowest shard's time over the mean.
#[expect(clippy::cast_precision_loss, reason = "milliseconds of a test run")]
fn skew(shards: &[(BTreeSet<String>, u64)]) -> f64 {
    let max = shards.iter().map(|s| s.1).max().unwrap() as f64;
    let mean = shards.iter().map(|s| s.1).sum::<u64>() as f64 / shards.len() as f64;
    max / mean
}

/// The shard (1-based) of `path` by hash alone, as `--shard` splits what
/// it has no time for.
fn hashed(path: &str, n: u32) -> u32 {
    let h = blake3::hash(path.as_bytes());
    let v = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap());
    u32::try_from(v % u64::from(n)).unwrap() + 1
}

#[test]
fn shards_take_equal_time_by_the_times_recorded_at_earlier_commits() {
    let p = skewed();
    p.commit_all("first");
    // Nothing recorded yet: the path hash splits. The second shard sees
    // the first's fresh records, but they were made at the commit both
    // analyse, so it plans without them like the first did.
    let by_hash = shards(&p, 2);
    partition(&by_hash);
    for (k, (files, _)) in by_hash.iter().enumerate() {
        for f in files {
            assert_eq!(hashed(f, 2), u32::try_from(k).unwrap() + 1, "{f}");
        }
    }
    // At the next commit those records are what every shard sees alike.
    p.commit_all("second");
    let balanced = shards(&p, 2);
    partition(&balanced);
    let heavy_with = balanced
        .iter()
        .find(|(files, _)| files.contains("heavy.txt"))
        .map(|(files, _)| files.len())
        .unwrap();
    assert!(heavy_with <= 2, "the heavy file nearly alone: {balanced:?}");
    let (hash, lpt) = (skew(&by_hash), skew(&balanced));
    eprintln!("slowest shard / mean: path hash {hash:.2}, balanced {lpt:.2}");
    assert!(
        lpt < hash && lpt < 1.25,
        "balanced {lpt:.2} vs hash {hash:.2}: {balanced:?} / {by_hash:?}"
    );
    // The same records give the same split again.
    assert_eq!(
        shards(&p, 2).into_iter().map(|s| s.0).collect::<Vec<_>>(),
        balanced.into_iter().map(|s| s.0).collect::<Vec<_>>()
    );
}

const CI_VARS: &[&str] = &[
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "CIRCLE_NODE_INDEX",
    "CIRCLE_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB",
    "BUILDKITE_PARALLEL_JOB_COUNT",
];

fn run_auto(p: &Project, vars: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = p.command(&["run", "slow", "--shard", "auto", "--format", "json"]);
    for v in CI_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shard_auto_reads_gitlab_circleci_and_buildkite_or_says_what_it_missed() {
    let p = skewed();
    for (vars, want) in [
        (
            &[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")],
            "shard 2/3",
        ),
        (
            &[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "3")],
            "shard 1/3",
        ),
        (
            &[
                ("BUILDKITE_PARALLEL_JOB", "2"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "3"),
            ],
            "shard 3/3",
        ),
    ] {
        let (code, report, stderr) = run_auto(&p, vars);
        assert_eq!(code, 0, "{vars:?}: {stderr}");
        assert_eq!(report["scope"], want, "{vars:?}");
    }
    let (code, _, stderr) = run_auto(&p, &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(code, 64, "{stderr}");
    for needle in [
        "CI_NODE_INDEX",
        "CIRCLE_NODE_INDEX",
        "BUILDKITE_PARALLEL_JOB",
        "GitHub",
        "--shard K/N",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let (code, _, stderr) = run_auto(&p, &[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "3")]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("counts from 1"), "{stderr}");
}

/// `report merge` checks that shard reports add up to one run: the same
/// split in each (shards that restored different caches split the files
/// differently: some analysed twice, others never), every shard once.
#[test]
fn report_merge_refuses_shards_that_split_differently_or_are_missing() {
    let p = skewed();
    p.commit_all("first");
    shards(&p, 2); // records times at this commit
    p.commit_all("second");
    let shard = |project: &Project, k: u32, out: &str| {
        let path = p.path().join(out);
        project
            .bgtask(&[
                "run",
                "slow",
                "--format",
                "json",
                "--shard",
                &format!("{k}/2"),
                "-o",
                path.to_str().unwrap(),
            ])
            .code(0);
        let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        report["shard"].clone()
    };
    let one = shard(&p, 1, "one.json");
    let two = shard(&p, 2, "two.json");
    assert_eq!(one["split"], two["split"], "{one} {two}");
    assert_eq!((&one["units"], &one["timed"]), (&10.into(), &10.into()));
    let merged = p.bgtask(&[
        "report", "merge", "one.json", "two.json", "--format", "json",
    ]);
    merged.code(0);
    assert!(merged.json().get("shard").is_none(), "a whole run");

    // A shard from a job that restored no cache: split by path hash.
    let elsewhere = skewed();
    elsewhere.commit_all("first");
    let other = shard(&elsewhere, 2, "other.json");
    assert_ne!(one["split"], other["split"]);
    assert_eq!(other["timed"], 0);
    for (reports, want) in [
        (
            &["one.json", "other.json"][..],
            "split the files differently",
        ),
        (&["one.json"][..], "no report of shard 2/2"),
        (&["one.json", "one.json"][..], "are both shard 1/2"),
    ] {
        let mut args = vec!["report", "merge"];
        args.extend_from_slice(reports);
        let out = p.bgtask(&args);
        out.code(65);
        assert!(out.stderr.contains(want), "{reports:?}: {}", out.stderr);
    }
}

/// With a team cache, a shard on a fresh machine (no local cache) takes
/// the times recorded with the per-file entries CI's last run shared: the
/// same split in every shard, balanced, and each shard's results from the
/// team cache.
#[test]
fn shards_on_fresh_machines_balance_by_the_team_caches_times() {
    let store = tempfile::tempdir().unwrap();
    let with_store = |p: &Project, commit: &str| {
        let cfg = p
            .read(".background-tasks.json")
            .replace(r#""exit_codes""#, r#""cache_per_file": true, "exit_codes""#);
        let cfg = format!(
            r#"{{"cache": {{"remote": {{"url": "file://{}", "write": "ci"}}}}, {}"#,
            store.path().display(),
            cfg.trim_start().trim_start_matches('{')
        );
        p.config(&cfg);
        p.commit_all(commit);
    };
    let secret = ("BGTASK_CACHE_SECRET", "team");
    let ci = skewed();
    with_store(&ci, "main's last commit");
    let out = ci
        .command(&["run", "slow", "--format", "json"])
        .envs([secret, ("CI", "true")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("11 results stored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut splits = Vec::new();
    let mut files = BTreeSet::new();
    for k in 1..=2 {
        let fresh = skewed();
        // The next commit: the CI run's times are from before it.
        with_store(&fresh, "a pull request");
        let out = fresh
            .command(&[
                "run",
                "slow",
                "--format",
                "json",
                "--shard",
                &format!("{k}/2"),
            ])
            .env(secret.0, secret.1)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["shard"]["timed"], 10, "{report:#}");
        let slow = run_of(&report, "slow");
        assert_eq!(slow["invocations"], 0, "from the team cache: {slow:#}");
        let mine = finding_paths(&report);
        if mine.contains("heavy.txt") {
            assert!(mine.len() <= 2, "the heavy file nearly alone: {mine:?}");
        }
        assert!(mine.is_disjoint(&files), "{mine:?} {files:?}");
        files.extend(mine);
        splits.push(report["shard"]["split"].clone());
    }
    assert_eq!(files.len(), 10);
    assert_eq!(splits[0], splits[1]);
}
