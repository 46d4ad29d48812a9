//! How long producing a cached result took ([`Timing`], stored with each
//! entry: per target file for a per-file analyzer), and reading those
//! records back for `--shard`'s balance (`shard.rs`). The record is
//! optional: entries written before it existed read as "time unknown", and
//! nothing in the key changed for it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::cache::ResultCache;
use super::shard::Times;

/// What a file weighs beyond its bytes when a batch's time is shared out
/// (opening it, the tool's per-file setup): empty files are not free.
const PER_FILE_BYTES: u64 = 512;

/// How long producing an entry's result took, for balancing CI shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub analyzer: String,
    /// HEAD when it ran (none outside git or before the first commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Wall time of the analyzer's whole run, in microseconds: what a
    /// project-mode analyzer (one run for the project) is balanced by.
    pub total_us: u64,
    /// A per-file analyzer's time per target file (repo-relative), in
    /// microseconds; empty for a project-mode analyzer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, u64>,
}

impl Timing {
    /// A project-mode analyzer's run.
    pub fn project(analyzer: &str, commit: Option<String>, total: Duration) -> Timing {
        Timing {
            analyzer: analyzer.to_owned(),
            commit,
            total_us: micros(total),
            files: BTreeMap::new(),
        }
    }

    /// A per-file analyzer's run: each invocation's wall time shared out
    /// among the files it was given, `size` of each telling how.
    ///
    /// In proportion to size (plus [`PER_FILE_BYTES`]), not equally:
    /// linters and scanners read and parse every byte they are given, so
    /// in one batch a 3 000-line module costs far more than an
    /// `__init__.py`. An equal share would give every file of a batch the
    /// batch's average, and the shards could then only be balanced by
    /// file counts; with the size, a large file keeps its weight wherever
    /// the next split puts it. (A batch of one is timed exactly.)
    pub fn batches(
        analyzer: &str,
        commit: Option<String>,
        total: Duration,
        batches: &[(Vec<PathBuf>, Duration)],
        size: impl Fn(&Path) -> u64,
    ) -> Timing {
        let mut files = BTreeMap::new();
        for (batch, wall) in batches {
            let weights: Vec<u64> = batch.iter().map(|p| size(p) + PER_FILE_BYTES).collect();
            let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
            for (p, w) in batch.iter().zip(weights) {
                let share = u128::from(micros(*wall)) * u128::from(w) / sum.max(1);
                files.insert(
                    p.to_string_lossy().into_owned(),
                    u64::try_from(share).unwrap_or(u64::MAX),
                );
            }
        }
        Timing {
            analyzer: analyzer.to_owned(),
            commit,
            total_us: micros(total),
            files,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl ResultCache {
    /// The times recorded in the entries, leaving out those made at
    /// `skip_commit` (the commit a shard analyses: other shards of the same
    /// commit may be writing theirs right now). Of several records of one
    /// analyzer (and file), the newest counts; equally new ones are told
    /// apart by the entry's key, so the same entries give the same times
    /// on every machine. Entries are read whatever their age: the age
    /// limit depends on the clock, which is not the same on every CI job.
    pub fn times(&self, skip_commit: Option<&str>) -> Times {
        /// An entry with only what is needed here (the run is skipped).
        #[derive(Deserialize)]
        struct Timed {
            created: SystemTime,
            #[serde(default)]
            timing: Option<Timing>,
        }
        type Newest = (SystemTime, String, u64);
        fn keep(slot: &mut Option<Newest>, candidate: Newest) {
            if slot
                .as_ref()
                .is_none_or(|s| (s.0, &s.1) < (candidate.0, &candidate.1))
            {
                *slot = Some(candidate);
            }
        }
        let mut files: HashMap<String, HashMap<PathBuf, Option<Newest>>> = HashMap::new();
        let mut projects: HashMap<String, Option<Newest>> = HashMap::new();
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Times::default();
        };
        for e in dir.flatten() {
            let path = e.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let Some((created, t)) = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Timed>(&b).ok())
                .and_then(|e| Some((e.created, e.timing?)))
            else {
                continue;
            };
            if skip_commit.is_some() && t.commit.as_deref() == skip_commit {
                continue;
            }
            if t.files.is_empty() {
                let slot = projects.entry(t.analyzer).or_default();
                keep(slot, (created, key.to_owned(), t.total_us));
            } else {
                let per_file = files.entry(t.analyzer).or_default();
                for (file, us) in t.files {
                    keep(
                        per_file.entry(PathBuf::from(file)).or_default(),
                        (created, key.to_owned(), us),
                    );
                }
            }
        }
        let time = |slot: Option<Newest>| slot.map(|(_, _, us)| us);
        Times {
            files: files
                .into_iter()
                .map(|(a, per_file)| {
                    let per_file = per_file
                        .into_iter()
                        .filter_map(|(p, s)| Some((p, time(s)?)))
                        .collect();
                    (a, per_file)
                })
                .collect(),
            projects: projects
                .into_iter()
                .filter_map(|(a, s)| Some((a, time(s)?)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cache::tests::clean_run;

    #[test]
    fn a_batch_time_is_shared_by_size_and_a_project_time_is_whole() {
        let sizes = |p: &Path| match p.to_str() {
            Some("big.py") => 10 * 1024 - PER_FILE_BYTES,
            Some("empty.py") => 0,
            _ => 1024 - PER_FILE_BYTES,
        };
        let batches = vec![
            (
                vec![PathBuf::from("big.py"), PathBuf::from("small.py")],
                Duration::from_millis(1100),
            ),
            (vec![PathBuf::from("empty.py")], Duration::from_millis(7)),
        ];
        let t = Timing::batches(
            "bandit",
            Some("c1".into()),
            Duration::from_secs(1),
            &batches,
            sizes,
        );
        assert_eq!(t.total_us, 1_000_000);
        let us = |f: &str| t.files[f];
        assert_eq!((us("big.py"), us("small.py")), (1_000_000, 100_000));
        assert_eq!(us("empty.py"), 7_000, "a batch of one is timed exactly");
        let p = Timing::project("pytest", None, Duration::from_millis(1500));
        assert_eq!((p.total_us, p.files.len()), (1_500_000, 0));
    }

    #[test]
    fn times_come_from_the_newest_record_and_not_from_this_commit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path());
        let timing = |commit: &str, us: u64, project: bool| {
            let mut t = Timing::project(
                if project { "pytest" } else { "bandit" },
                Some(commit.into()),
                Duration::from_micros(us),
            );
            if !project {
                t.files.insert("a.py".into(), us);
            }
            Some(t)
        };
        cache.put("k1", &clean_run("bandit"), timing("old", 100, false));
        std::thread::sleep(Duration::from_millis(5));
        cache.put("k2", &clean_run("bandit"), timing("older", 200, false));
        cache.put("k3", &clean_run("pytest"), timing("old", 9000, true));
        cache.put("k4", &clean_run("bandit"), timing("head", 999, false));
        cache.put("k5", &clean_run("pytest"), timing("head", 1, true));
        let times = cache.times(Some("head"));
        assert_eq!(times.file("bandit", Path::new("a.py")), Some(200), "newest");
        assert_eq!(times.project("pytest"), Some(9000));
        assert_eq!(times.file("bandit", Path::new("b.py")), None);
        assert_eq!(cache.times(Some("head")), times, "the same each time");
        assert_eq!(cache.times(None).project("pytest"), Some(1));
    }
}
