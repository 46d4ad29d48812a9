//! Which findings of a run are new and which are fixed, by fingerprint,
//! against what earlier runs of the same task found. Plain data in, plain
//! data out; `db.rs` reads the earlier runs.
//!
//! What is known for a file comes from the latest earlier run (in which no
//! analyzer failed) that looked at that file, so a run on a few saved files
//! neither makes the rest look fixed nor makes old findings look new again.
//! Findings without a file (dependency audits) count as known whichever
//! run found them. "Fixed" counts only known findings in what this run
//! looked at.

use std::collections::HashSet;

use super::event::RunFinished;

/// An earlier run of the task: what it looked at and what it found
/// (fingerprint, path).
#[derive(Debug, Clone, Default)]
pub struct PriorRun {
    /// `None`: the whole project.
    pub scope: Option<Vec<String>>,
    pub findings: Vec<(String, Option<String>)>,
}

/// What was known before a run: for each file, the findings of the latest
/// earlier run that looked at it.
#[derive(Debug, Clone, Default)]
pub struct Known {
    fingerprints: HashSet<String>,
    /// (fingerprint, path) of the known findings, for "fixed".
    entries: Vec<(String, Option<String>)>,
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
            let scope: Option<HashSet<&str>> = run
                .scope
                .as_ref()
                .map(|s| s.iter().map(String::as_str).collect());
            for (fp, path) in &run.findings {
                let take = match (&scope, path) {
                    // Findings without a file (dependency audits) are
                    // evidence whichever run produced them.
                    (_, None) => true,
                    (None, Some(p)) => !covered.contains(p),
                    (Some(s), Some(p)) => s.contains(p.as_str()) && !covered.contains(p),
                };
                if take && known.fingerprints.insert(fp.clone()) {
                    known.entries.push((fp.clone(), path.clone()));
                }
            }
            match scope {
                None => break,
                Some(s) => covered.extend(s.into_iter().map(str::to_owned)),
            }
        }
        any.then_some(known)
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
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

/// The known findings, in what `run` analysed, that it no longer found
/// (fingerprint, path).
pub fn fixed<'k>(run: &RunFinished, known: &'k Known) -> Vec<&'k (String, Option<String>)> {
    let current: HashSet<&str> = run
        .findings
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    let scope: Option<HashSet<&str>> = run
        .scope
        .as_ref()
        .map(|s| s.iter().map(String::as_str).collect());
    known
        .entries
        .iter()
        .filter(|(fp, path)| {
            let in_scope = match (&scope, path) {
                (None, _) => true,
                (Some(s), Some(p)) => s.contains(p.as_str()),
                (Some(_), None) => false,
            };
            in_scope && !current.contains(fp.as_str())
        })
        .collect()
}

pub fn diff(run: &RunFinished, known: Option<&Known>) -> Diff {
    let Some(known) = known else {
        return Diff {
            new: (0..run.findings.len()).collect(),
            fixed: 0,
        };
    };
    let new = run
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| !known.contains(&f.fingerprint))
        .map(|(i, _)| i)
        .collect();
    let fixed = fixed(run, known).len();
    Diff { new, fixed }
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
                .map(|(fp, p)| ((*fp).to_owned(), p.map(str::to_owned)))
                .collect(),
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
}
