//! Per-file entries of the result cache, for analyzers whose findings on a
//! file depend on that file alone (`cache_per_file`: bandit, radon).
//!
//! Beside the whole run's entry, each target's findings are stored under a
//! key of that file and the tool's config files (`ResultCache::file_keys`).
//! A run that misses the whole entry looks every file up (here, then in the
//! team's cache), starts the tool on the misses only and stores each of
//! their results. So one changed file re-runs that file, and a save (a run
//! over one file) meets the entries a whole-project run made, CI's
//! included. The team's cache is asked for the files (one lookup each,
//! [`CONCURRENT_LOOKUPS`] at once) only when it answered the whole run's
//! lookup quickly (`TeamCache::answers_quickly`): against a slow store,
//! a hundred lookups would cost more than analysing the files here. (A
//! shard, looking its files up before any whole-run lookup, asks anyway:
//! all its lookups are bounded by the run's 2 s.)
//!
//! Only a clean or findings run is split, and only when every finding
//! names one of the files it was given: anything else (a partial run, a
//! finding on another file or on none) stores no per-file entries, and
//! those files are analysed again next time.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;

use super::cache::{FileParts, Keys, ResultCache, Timing};
use super::team::TeamCache;
use crate::analyze::{AnalyzerDef, Finding, RunStatus, sort_findings};
use crate::event::{AnalyzerRun, ToolInfo};

/// Lookups in flight at once, per analyzer.
const CONCURRENT_LOOKUPS: usize = 64;

/// An analyzer's targets split into those with a per-file entry and those
/// to analyse.
#[derive(Debug)]
pub(super) struct PerFile {
    /// The results of the targets with an entry.
    hits: Vec<AnalyzerRun>,
    /// The targets to analyse, with their keys.
    misses: Vec<(PathBuf, Keys)>,
}

/// Where the entries are: this worktree's cache, the team's.
pub(super) struct Caches<'a> {
    pub local: &'a ResultCache,
    pub team: Option<&'a TeamCache>,
}

impl Caches<'_> {
    /// The per-file result stored under `keys` here, else in the team's
    /// cache (then stored here too).
    async fn get(&self, keys: &Keys) -> Option<AnalyzerRun> {
        if let Some(run) = self.local.get(&keys.local, false) {
            return Some(run);
        }
        let team = self.team.filter(|t| t.answers_quickly())?;
        let bytes = team.fetch_one_of_many(keys.shared.as_deref()?).await?;
        self.local.import(&keys.local, &bytes, false)
    }
}

/// Looks each of `targets` up; `configs` are the tool's config files
/// (part of every key), `env` the environment stamp of a tool that
/// imports the project, `parts` the files' parts of keys already read.
pub(super) async fn lookup(
    caches: &Caches<'_>,
    def: &AnalyzerDef,
    tool: Option<&ToolInfo>,
    root: &Path,
    (targets, configs): (&[PathBuf], &[PathBuf]),
    env: Option<String>,
    parts: Arc<FileParts>,
) -> PerFile {
    let keys = {
        let (def, tool, root) = (def.clone(), tool.cloned(), root.to_owned());
        let (targets, configs) = (targets.to_vec(), configs.to_vec());
        tokio::task::spawn_blocking(move || {
            ResultCache::file_keys(
                &def,
                tool.as_ref(),
                &root,
                (&configs, &targets),
                env.as_deref(),
                &parts,
            )
        })
        .await
        .expect("hashing files does not panic")
    };
    let found: Vec<(usize, Option<AnalyzerRun>)> =
        futures_util::stream::iter(keys.iter().cloned().enumerate())
            .map(|(i, k)| async move { (i, caches.get(&k).await) })
            .buffer_unordered(CONCURRENT_LOOKUPS)
            .collect()
            .await;
    let mut hits = Vec::new();
    let mut found: HashMap<usize, AnalyzerRun> = found
        .into_iter()
        .filter_map(|(i, run)| Some((i, run?)))
        // Only what `store` writes is a file's result.
        .filter(|(_, run)| matches!(run.status, RunStatus::Clean | RunStatus::Findings))
        .collect();
    let mut misses = Vec::new();
    for (i, (target, keys)) in targets.iter().zip(keys).enumerate() {
        match found.remove(&i) {
            Some(run) => hits.push(run),
            None => misses.push((target.clone(), keys)),
        }
    }
    PerFile { hits, misses }
}

impl PerFile {
    /// The targets the tool has to analyse.
    pub fn to_run(&self) -> Vec<PathBuf> {
        self.misses.iter().map(|(p, _)| p.clone()).collect()
    }

    /// Stores each analysed file's result (with its share of `timing`),
    /// offering it to the team's cache, when `run` (the tool's run over
    /// [`PerFile::to_run`], findings finished) can be split by file.
    pub fn store(&self, caches: &Caches<'_>, run: &AnalyzerRun, timing: Option<&Timing>) {
        let Some(mut by_file) = split(run, &self.misses) else {
            return;
        };
        for (path, keys) in &self.misses {
            let name = path.to_string_lossy();
            let findings = by_file.remove(name.as_ref()).unwrap_or_default();
            let status = if findings.is_empty() {
                RunStatus::Clean
            } else {
                RunStatus::Findings
            };
            let mut one = AnalyzerRun::skipped(
                &run.analyzer,
                run.category,
                Vec::new(),
                status,
                String::new(),
            );
            one.reason = None;
            one.findings = findings;
            one.files = 1;
            one.tool.clone_from(&run.tool);
            let timing = timing.and_then(|t| {
                let us = *t.files.get(name.as_ref())?;
                Some(Timing {
                    analyzer: t.analyzer.clone(),
                    commit: t.commit.clone(),
                    total_us: us,
                    files: [(name.clone().into_owned(), us)].into(),
                })
            });
            let stored = caches.local.put(&keys.local, &one, timing);
            if let (Some(team), Some(entry), Some(shared)) = (caches.team, stored, &keys.shared) {
                team.offer(shared.clone(), &entry);
            }
        }
    }

    /// `run` (over the misses; an empty clean run when there were none)
    /// with the hits' findings added: the analyzer's run over all its
    /// targets.
    pub fn combine(self, mut run: AnalyzerRun) -> AnalyzerRun {
        run.cached_files = self.hits.len();
        for hit in self.hits {
            if !hit.findings.is_empty() {
                run.status = run.status.combine(RunStatus::Findings);
            }
            run.findings.extend(hit.findings);
        }
        if run.status == RunStatus::Clean && !run.findings.is_empty() {
            run.status = RunStatus::Findings;
        }
        sort_findings(&mut run.findings);
        run
    }
}

/// `run`'s findings by file, when it can be split into the results of
/// `files`: clean or findings, every finding on one of them.
fn split(run: &AnalyzerRun, files: &[(PathBuf, Keys)]) -> Option<HashMap<String, Vec<Finding>>> {
    if !matches!(run.status, RunStatus::Clean | RunStatus::Findings) {
        return None;
    }
    let given: HashSet<String> = files
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    let mut by_file: HashMap<String, Vec<Finding>> = HashMap::new();
    for f in &run.findings {
        let path = f.path().filter(|p| given.contains(*p))?;
        by_file.entry(path.to_owned()).or_default().push(f.clone());
    }
    Some(by_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::parsers::testing::builtin;
    use crate::analyze::{Location, Severity};
    use crate::engine::cache::tests::clean_run;

    fn finding(path: Option<&str>) -> Finding {
        let mut f = Finding::new("bandit", "B101", Severity::Low, "assert");
        f.location = path.map(|p| Location::at(p, 1, None));
        f
    }

    fn run(status: RunStatus, findings: Vec<Finding>) -> AnalyzerRun {
        let mut r = clean_run("bandit");
        r.status = status;
        r.findings = findings;
        r
    }
    fn setup(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let targets = files.iter().map(|(n, _)| PathBuf::from(n)).collect();
        (dir, targets)
    }

    #[tokio::test]
    async fn each_file_is_stored_alone_and_a_changed_one_alone_misses() {
        let (dir, targets) = setup(&[("a.py", "assert 1\n"), ("b.py", "x = 1\n")]);
        let root = dir.path();
        let def = builtin("bandit");
        let local = ResultCache::new(root);
        let caches = Caches {
            local: &local,
            team: None,
        };
        let configs = [PathBuf::from("pyproject.toml")];
        let look = || {
            lookup(
                &caches,
                &def,
                None,
                root,
                (&targets, &configs),
                None,
                Arc::default(),
            )
        };
        let first = look().await;
        assert_eq!(first.to_run(), targets, "nothing stored yet");
        let mut timing = Timing::project("bandit", None, std::time::Duration::from_millis(9));
        timing.files.insert("a.py".into(), 7000);
        first.store(
            &caches,
            &run(RunStatus::Findings, vec![finding(Some("a.py"))]),
            Some(&timing),
        );
        let second = look().await;
        assert!(second.to_run().is_empty(), "{second:?}");
        let all = second.combine(run(RunStatus::Clean, vec![]));
        assert_eq!(
            (all.status, all.findings.len(), all.cached_files),
            (RunStatus::Findings, 1, 2)
        );
        assert_eq!(
            local.times(None).file("bandit", Path::new("a.py")),
            Some(7000)
        );

        std::fs::write(root.join("b.py"), "x = 2\n").unwrap();
        assert_eq!(look().await.to_run(), [PathBuf::from("b.py")]);
        std::fs::write(root.join("pyproject.toml"), "[tool.bandit]\n").unwrap();
        assert_eq!(
            look().await.to_run(),
            targets,
            "a config file is in every key"
        );
    }

    #[tokio::test]
    async fn a_run_that_cannot_be_split_by_file_stores_nothing() {
        let (dir, targets) = setup(&[("a.py", "assert 1\n")]);
        let root = dir.path();
        let def = builtin("bandit");
        let local = ResultCache::new(root);
        let caches = Caches {
            local: &local,
            team: None,
        };
        let look = || {
            lookup(
                &caches,
                &def,
                None,
                root,
                (&targets, &[]),
                None,
                Arc::default(),
            )
        };
        for unsplittable in [
            run(RunStatus::Partial, vec![]),
            run(RunStatus::Findings, vec![finding(Some("elsewhere.py"))]),
            run(RunStatus::Findings, vec![finding(None)]),
        ] {
            look().await.store(&caches, &unsplittable, None);
            assert_eq!(look().await.to_run(), targets, "{unsplittable:?}");
        }
    }
}
