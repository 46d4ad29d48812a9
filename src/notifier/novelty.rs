//! Which findings of a run are new and which are fixed, against what
//! earlier runs of the same task found, by the tiered matching of
//! `analyze/identity.rs` (the tool's stable id, the flagged line's code,
//! its context and scope; the fingerprint for findings recorded before
//! identities). Plain data in, plain data out; `db.rs` reads the earlier
//! runs.
//!
//! What is known for a file comes from the latest earlier run (in which no
//! analyzer failed) that looked at that file, so a run on a few saved files
//! neither makes the rest look fixed nor makes old findings look new again.
//! Findings without a file (dependency audits) count as known whichever
//! run found them. "Fixed" counts only known findings in what this run
//! looked at.

use std::collections::{HashMap, HashSet};

use super::event::{RunFinding, RunFinished};
use crate::analyze::identity::{Tracked, compare_tracked};
use crate::analyze::{Finding, Identity};

/// A finding an earlier run recorded, as much as matching needs.
#[derive(Debug, Clone, Default)]
pub struct PriorFinding {
    pub fingerprint: String,
    pub path: Option<String>,
    pub analyzer: String,
    pub rule: String,
    pub message: String,
    pub line: Option<u32>,
    /// `None` for findings recorded before identities existed.
    pub identity: Option<Identity>,
}

impl PriorFinding {
    fn tracked(&self) -> Tracked<'_> {
        Tracked {
            analyzer: &self.analyzer,
            rule: &self.rule,
            path: self.path.as_deref(),
            line: self.line,
            message: &self.message,
            fingerprint: &self.fingerprint,
            identity: self.identity.as_ref(),
        }
    }
}

impl RunFinding {
    fn tracked(&self) -> Tracked<'_> {
        Tracked {
            analyzer: &self.analyzer,
            rule: &self.rule,
            path: self.path.as_deref(),
            line: self.line,
            message: &self.message,
            fingerprint: &self.fingerprint,
            identity: self.identity.as_ref(),
        }
    }
}

/// An earlier run of the task: what it looked at and what it found.
#[derive(Debug, Clone, Default)]
pub struct PriorRun {
    /// `None`: the whole project.
    pub scope: Option<Vec<String>>,
    pub findings: Vec<PriorFinding>,
    /// HEAD's commit when it ran, when recorded.
    pub head: Option<String>,
}

/// What was known before a run: for each file, the findings of the latest
/// earlier run that looked at it.
#[derive(Debug, Clone, Default)]
pub struct Known {
    fingerprints: HashSet<String>,
    /// The known findings, for matching and "fixed".
    entries: Vec<PriorFinding>,
    /// HEAD's commit at the newest prior run that recorded one.
    since: Option<String>,
    /// Files renamed since (old path → new), found by `follow_renames`.
    renames: HashMap<String, String>,
}

impl Known {
    /// Folds prior runs, newest first, until a whole-project run covers the
    /// rest. `None` when there was no earlier run: everything is new.
    pub fn from_prior(prior: impl IntoIterator<Item = PriorRun>) -> Option<Known> {
        let mut known = Known::default();
        let mut covered: HashSet<String> = HashSet::new();
        let mut any = false;
        for run in prior {
            any = true;
            if known.since.is_none() {
                known.since.clone_from(&run.head);
            }
            let scope: Option<HashSet<&str>> = run
                .scope
                .as_ref()
                .map(|s| s.iter().map(String::as_str).collect());
            for f in &run.findings {
                let take = match (&scope, &f.path) {
                    // Findings without a file (dependency audits) are
                    // evidence whichever run produced them.
                    (_, None) => true,
                    (None, Some(p)) => !covered.contains(p),
                    (Some(s), Some(p)) => s.contains(p.as_str()) && !covered.contains(p),
                };
                if take && known.fingerprints.insert(f.fingerprint.clone()) {
                    known.entries.push(f.clone());
                }
            }
            match scope {
                None => break,
                Some(s) => covered.extend(s.into_iter().map(str::to_owned)),
            }
        }
        any.then_some(known)
    }

    /// Follows the files git renamed since the newest prior run (only when
    /// HEAD moved: a commit, checkout or merge), so a renamed file's
    /// findings continue under the new path rather than being fixed
    /// there and new here.
    pub fn follow_renames(&mut self, root: &std::path::Path) {
        let Some(since) = &self.since else { return };
        let now = crate::git::GitDirs::find(root).and_then(|d| d.head());
        if now.as_ref() == Some(since) {
            return;
        }
        match crate::git::renames(root, since) {
            Ok(r) => self.renames = r,
            Err(e) => tracing::debug!(error = %e, "no renames since {since}"),
        }
    }

    /// Whether a finding with this fingerprint is known (set membership,
    /// without the tiers of [`diff`]).
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
    }

    /// For each of `findings`, whether it continues a known finding, by
    /// the tiers [`diff`] uses (what a front end's "new only" asks).
    pub fn knows(&self, findings: &[Finding]) -> Vec<bool> {
        let baseline: Vec<Tracked<'_>> = self.entries.iter().map(PriorFinding::tracked).collect();
        let current: Vec<Tracked<'_>> = findings.iter().map(Tracked::from).collect();
        compare_tracked(&baseline, &current, &self.renames)
            .current
            .iter()
            .map(Option::is_some)
            .collect()
    }
}

/// A run's findings against what was known.
#[derive(Debug, PartialEq, Eq)]
pub struct Diff {
    /// Indices into the run's findings.
    pub new: Vec<usize>,
    /// Known findings, in what this run analysed, that are gone.
    pub fixed: usize,
}

/// The run's findings matched with the known ones: for each of the run's
/// findings the known one it continues, and the known ones, in what `run`
/// analysed, that it no longer found.
fn matched<'k>(run: &RunFinished, known: &'k Known) -> (Vec<Option<usize>>, Vec<&'k PriorFinding>) {
    let baseline: Vec<Tracked<'_>> = known.entries.iter().map(PriorFinding::tracked).collect();
    let current: Vec<Tracked<'_>> = run.findings.iter().map(RunFinding::tracked).collect();
    let m = compare_tracked(&baseline, &current, &known.renames);
    let scope: Option<HashSet<&str>> = run
        .scope
        .as_ref()
        .map(|s| s.iter().map(String::as_str).collect());
    let gone = m
        .absent
        .iter()
        .map(|&i| &known.entries[i])
        .filter(|f| match (&scope, &f.path) {
            (None, _) => true,
            (Some(s), Some(p)) => s.contains(p.as_str()),
            (Some(_), None) => false,
        })
        .collect();
    (m.current, gone)
}

/// The known findings, in what `run` analysed, that it no longer found.
pub fn fixed<'k>(run: &RunFinished, known: &'k Known) -> Vec<&'k PriorFinding> {
    matched(run, known).1
}

pub fn diff(run: &RunFinished, known: Option<&Known>) -> Diff {
    let Some(known) = known else {
        return Diff {
            new: (0..run.findings.len()).collect(),
            fixed: 0,
        };
    };
    let (pairs, gone) = matched(run, known);
    Diff {
        new: (0..pairs.len()).filter(|&i| pairs[i].is_none()).collect(),
        fixed: gone.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Severity;
    use crate::config::NotifyPolicy;
    use crate::notifier::event::RunFinding;

    fn prior(scope: Option<&[&str]>, findings: &[(&str, Option<&str>)]) -> PriorRun {
        PriorRun {
            scope: scope.map(|s| s.iter().map(|p| (*p).to_owned()).collect()),
            findings: findings
                .iter()
                .map(|(fp, p)| PriorFinding {
                    fingerprint: (*fp).to_owned(),
                    path: p.map(str::to_owned),
                    ..PriorFinding::default()
                })
                .collect(),
            head: None,
        }
    }

    fn run(findings: &[(&str, &str)]) -> RunFinished {
        RunFinished {
            task: "t".to_owned(),
            run_id: 1,
            policy: NotifyPolicy::default(),
            scope: None,
            findings: findings
                .iter()
                .map(|(fp, path)| RunFinding {
                    fingerprint: (*fp).to_owned(),
                    severity: Severity::High,
                    analyzer: "a".to_owned(),
                    rule: "R".to_owned(),
                    message: "m".to_owned(),
                    path: Some((*path).to_owned()),
                    location: None,
                    line: None,
                    identity: None,
                })
                .collect(),
            failures: Vec::new(),
            not_installed: Vec::new(),
            verdict: String::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn file_scoped_runs_know_each_file_from_its_latest_run() {
        // Newest first: a run on x.py (finding a2), then a project run
        // (a1 in x.py, b in y.py, pkg without a file).
        let known = Known::from_prior([
            prior(Some(&["x.py"]), &[("a2", Some("x.py"))]),
            prior(
                None,
                &[("a1", Some("x.py")), ("b", Some("y.py")), ("pkg", None)],
            ),
        ])
        .unwrap();
        assert!(known.contains("a2") && known.contains("b") && known.contains("pkg"));
        assert!(!known.contains("a1"), "x.py is known from its latest run");
        // A run on y.py only: b is still there, nothing in x.py is "fixed".
        let mut r = run(&[("b", "y.py")]);
        r.scope = Some(vec!["y.py".to_owned()]);
        assert_eq!(
            diff(&r, Some(&known)),
            Diff {
                new: vec![],
                fixed: 0
            }
        );
        // A project run where a2 is gone: one fixed (and pkg too).
        r.scope = None;
        assert_eq!(diff(&r, Some(&known)).fixed, 2);
    }

    #[test]
    fn known_findings_by_the_tiers() {
        use std::collections::HashMap;

        use crate::analyze::Location;
        use crate::analyze::identity::{Source, identify};

        let found = |text: &str| {
            let mut v: Vec<Finding> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains("eval"))
                .map(|(i, _)| {
                    let n = u32::try_from(i + 1).unwrap();
                    Finding::new("bandit", "B307", Severity::Medium, "eval")
                        .at(Location::at("a.py", n, None))
                })
                .collect();
            identify(
                &mut v,
                &HashMap::from([("a.py".to_owned(), Source::new("a.py", text))]),
            );
            v
        };
        let before = found("def f():\n    eval(s)\n");
        let known = Known::from_prior([PriorRun {
            scope: None,
            findings: before
                .iter()
                .map(|f| PriorFinding {
                    fingerprint: f.fingerprint.clone(),
                    path: f.path().map(str::to_owned),
                    analyzer: f.analyzer.clone(),
                    rule: f.rule.clone(),
                    message: f.message.clone(),
                    line: f.line(),
                    identity: f.identity.clone(),
                })
                .collect(),
            head: None,
        }])
        .unwrap();
        // The same call added first in a new function: that one is new.
        let now = found("def g():\n    eval(s)\n\ndef f():\n    eval(s)\n");
        assert_eq!(known.knows(&now), [false, true]);
        assert!(
            known.contains(&now[0].fingerprint),
            "set membership says otherwise"
        );
    }

    #[test]
    fn without_earlier_runs_everything_is_new() {
        assert!(Known::from_prior(Vec::new()).is_none());
        let r = run(&[("a", "x.py"), ("b", "y.py")]);
        assert_eq!(
            diff(&r, None),
            Diff {
                new: vec![0, 1],
                fixed: 0
            }
        );
    }

    #[test]
    fn a_renamed_files_findings_continue_under_its_new_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sh = |script: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", script])
                .current_dir(root)
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}: {out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        let git = "git -c user.email=t@t -c user.name=t";
        let before = sh(&format!(
            "git init -q -b main && echo x > old.py && echo y > other.py && git add . && {git} commit -qm one && git rev-parse HEAD"
        ));
        let mut prior = prior(None, &[("fa", Some("old.py")), ("fb", Some("other.py"))]);
        prior.head = Some(before);
        for f in &mut prior.findings {
            "a".clone_into(&mut f.analyzer);
            "R".clone_into(&mut f.rule);
            "m".clone_into(&mut f.message);
        }
        let mut known = Known::from_prior([prior]).unwrap();
        // HEAD has not moved: git is not asked.
        known.follow_renames(root);
        assert!(known.renames.is_empty());
        sh(&format!("git mv old.py new.py && {git} commit -qm rename"));
        known.follow_renames(root);
        assert_eq!(
            known.renames.get("old.py").map(String::as_str),
            Some("new.py")
        );
        // The finding is found again under the new path (a new
        // fingerprint: the path is part of it): neither new nor fixed.
        let mut r = run(&[("fa2", "new.py"), ("fb", "other.py")]);
        r.scope = Some(vec!["old.py".to_owned(), "new.py".to_owned()]);
        assert_eq!(
            diff(&r, Some(&known)),
            Diff {
                new: vec![],
                fixed: 0
            }
        );
        // Without following renames it would be one of each.
        known.renames.clear();
        assert_eq!(
            diff(&r, Some(&known)),
            Diff {
                new: vec![0],
                fixed: 1
            }
        );
    }
}
