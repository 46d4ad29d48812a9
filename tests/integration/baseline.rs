//! Holding the line: `bgtask baseline write`, then `bgtask run --new-only`
//! on real git histories — code moved, reindented, renamed, one finding
//! added or one fixed — and every format agreeing on what is new; and
//! baselines that are missing, not ours, newer or corrupt.

use serde_json::Value;

use crate::harness::Project;

const ORDERS: &str = "src/shop/orders.py";

/// The fixture with a baseline of bandit's findings, committed.
fn with_baseline() -> (Project, usize) {
    let p = Project::fixture("python-app");
    p.commit_all("init");
    p.bgtask(&["baseline", "write", "bandit"]).code(0);
    let shown = p.bgtask(&["baseline", "show", "--json"]).json();
    let n = usize::try_from(shown["findings"].as_u64().unwrap()).unwrap();
    assert!(n > 3, "{shown}");
    assert!(shown["commit"].is_string(), "{shown}");
    p.commit_all("baseline");
    (p, n)
}

fn new_only(p: &Project, format: &str) -> (i32, String) {
    let run = p.bgtask(&[
        "run",
        "bandit",
        "--new-only",
        "--fail-on",
        "low",
        "--format",
        format,
    ]);
    (run.code, run.stdout)
}

fn states(report: &Value) -> (usize, usize, usize) {
    let c = &report["baseline"];
    let count = |s: &str| {
        c["states"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| *x == s)
            .count()
    };
    (
        count("new"),
        count("unchanged"),
        c["absent"].as_array().unwrap().len(),
    )
}

#[test]
fn moved_renamed_and_one_added_is_exactly_one_new() {
    let (p, n) = with_baseline();
    let (code, out) = new_only(&p, "json");
    assert_eq!(code, 0, "nothing new yet: {out}");
    assert_eq!(states(&serde_json::from_str(&out).unwrap()), (0, n, 0));

    // Move everything down, add one real problem, and rename the file.
    let old = p.read(ORDERS);
    p.file(
        ORDERS,
        &format!("def risky(text):\n    return eval(text)\n\n\n{old}"),
    );
    p.git(&["mv", ORDERS, "src/shop/order_handling.py"]);
    let (code, out) = new_only(&p, "json");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1, "{}", report["verdict"]);
    assert_eq!(states(&report), (1, n, 0), "{}", report["verdict"]);
    assert!(
        report["verdict"].as_str().unwrap().contains("1 new"),
        "{}",
        report["verdict"]
    );

    // Every format says the same.
    let (_, sarif) = new_only(&p, "sarif");
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    crate::reports::check_sarif(&sarif);
    let results: Vec<&Value> = sarif["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["results"].as_array().unwrap())
        .collect();
    let new: Vec<&Value> = results
        .iter()
        .copied()
        .filter(|r| r["baselineState"] == "new")
        .collect();
    assert_eq!(new.len(), 1, "{sarif}");
    assert_eq!(new[0]["ruleId"], "B307");
    assert_eq!(
        results
            .iter()
            .filter(|r| r["baselineState"] == "unchanged")
            .count(),
        n
    );
    let (_, github) = new_only(&p, "github");
    assert_eq!(
        github.lines().filter(|l| l.starts_with("::")).count(),
        1,
        "{github}"
    );
    let (_, console) = new_only(&p, "console");
    assert!(
        console.contains("B307") && !console.contains("B602"),
        "{console}"
    );
    let (_, markdown) = new_only(&p, "markdown");
    assert!(
        markdown.contains("B307") && markdown.contains("compared with"),
        "{markdown}"
    );
}

#[test]
fn a_fix_is_reported_fixed_and_passes_and_a_reformat_is_nothing_new() {
    let (p, n) = with_baseline();
    // Reformat around the flagged lines and inside them.
    let text = p
        .read(ORDERS)
        .replace("\n\n\n", "\n\n\n\n")
        .replace("subprocess.call(", "subprocess.call(  ");
    p.file(ORDERS, &text);
    let (code, out) = new_only(&p, "json");
    assert_eq!(code, 0, "{out}");
    assert_eq!(states(&serde_json::from_str(&out).unwrap()), (0, n, 0));
    // Fix the shell call.
    let mut fixed: String = text
        .lines()
        .filter(|l| !l.contains("shell=True"))
        .collect::<Vec<_>>()
        .join("\n");
    fixed.push('\n');
    p.file(ORDERS, &fixed);
    let (code, out) = new_only(&p, "json");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{}", report["verdict"]);
    assert_eq!(states(&report), (0, n - 1, 1));
    assert_eq!(report["baseline"]["absent"][0]["rule"], "B602");
    // On a few files, what the run did not look at is neither new nor fixed.
    let run = p.bgtask(&[
        "run",
        "bandit",
        "--new-only",
        "--files",
        "src/shop/__init__.py",
        "--format",
        "json",
    ]);
    assert_eq!(states(&run.json()).2, 0, "{}", run.stdout);
}

#[test]
fn a_baseline_that_is_missing_not_ours_newer_or_corrupt_is_said() {
    let p = Project::fixture("python-app");
    p.commit_all("init");
    let run = p.bgtask(&["run", "bandit", "--new-only"]);
    assert_eq!(run.code, 65, "{}", run.stderr);
    assert!(
        run.stderr.contains("bgtask baseline write"),
        "{}",
        run.stderr
    );
    for (text, says) in [
        (r#"{"version": 2}"#, "not a bgtask baseline"),
        (
            r#"{"bgtask_baseline": 99, "written_by": "x", "findings": []}"#,
            "newer",
        ),
        (
            "{\n  \"bgtask_baseline\": 1,\n  \"findings\": [oops]\n}",
            ".bgtask-baseline.json:3:",
        ),
    ] {
        p.file(".bgtask-baseline.json", text);
        let run = p.bgtask(&["run", "bandit", "--new-only"]);
        assert_eq!(run.code, 65, "{text}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{text}: {}", run.stderr);
    }
}

#[test]
fn a_branch_is_compared_with_its_merge_base_which_is_analysed_once() {
    let p = Project::fixture("python-app");
    p.commit_all("init");
    p.git(&["checkout", "-q", "-b", "feature"]);
    let old = p.read(ORDERS);
    p.file(
        ORDERS,
        &format!("def risky(text):\n    return eval(text)\n\n\n{old}"),
    );
    p.commit_all("feature: one more problem, the rest moved down");
    let args = [
        "run",
        "bandit",
        "--baseline-ref",
        "main",
        "--fail-on",
        "low",
        "--format",
        "json",
    ];
    let first = p.bgtask(&args);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first.stderr.contains("temporary worktree"),
        "{}",
        first.stderr
    );
    let (new, unchanged, absent) = states(&first.json());
    assert_eq!((new, absent), (1, 0), "{}", first.stdout);
    assert!(unchanged > 3);
    assert!(
        first.json()["baseline"]["against"]
            .as_str()
            .unwrap()
            .starts_with("main (merge base ")
    );
    // The temporary worktree is gone; a second run reads the cached baseline.
    assert_eq!(p.git(&["worktree", "list"]).lines().count(), 1);
    let second = p.bgtask(&args);
    assert!(second.stderr.contains("cached"), "{}", second.stderr);
    assert_eq!(states(&second.json()), (1, unchanged, 0));
    // A revision git does not know is a usage error.
    let bad = p.bgtask(&["run", "bandit", "--baseline-ref", "nope"]);
    assert_eq!(bad.code, 64, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("unknown revision `nope`"),
        "{}",
        bad.stderr
    );
}
