//! CI shards: which of N parallel jobs analyses which files.
//!
//! `--shard K/N` splits the work so that the shards take about the same
//! time. Every unit of work — a file (for all the per-file analyzers that
//! look at it), or a whole project-mode analyzer — with a recorded time
//! (see [`Times`], read from the result cache) is placed by
//! longest-processing-time-first: the longest first, each onto the shard
//! with the least time so far (ties: the lower shard, and among units of
//! equal time the smaller path first). Units never timed fall back to a
//! hash of their path (or analyzer name), which is also the whole split
//! when nothing was recorded.
//!
//! The N jobs never talk to each other: each computes the whole partition
//! and keeps its part, so each must see the same inputs — the same file
//! list and the same records. That is why the records are the result
//! cache the CI restores for every job (not what a job has just run), and
//! why records made at the commit being analysed are left out (one shard's
//! fresh results would otherwise change another's plan).
//!
//! Owns the split, narrowing a run's plan to one shard, and `--shard
//! auto`'s reading of the CI's variables; not the recording of times (the
//! cache's) nor what each analyzer's work is (`plan.rs`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::plan::{Planned, Work};
use crate::analyze::RunStatus;
use crate::config::raw::Mode;

/// `--shard K/N`: this is job K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let err = || format!("expected K/N with 1 <= K <= N, like 2/4, or `auto`; got `{s}`");
        let (k, n) = s.split_once('/').ok_or_else(err)?;
        let index: u32 = k.trim().parse().map_err(|_| err())?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        if index == 0 || count == 0 || index > count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The `--shard` argument: `K/N`, or `auto` (from the CI's variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

impl FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<ShardArg, String> {
        if s.trim() == "auto" {
            Ok(ShardArg::Auto)
        } else {
            s.parse().map(ShardArg::Fixed)
        }
    }
}

impl ShardArg {
    /// The shard it names; `auto` reads `env` (the CI's variables).
    pub fn resolve(self, env: &BTreeMap<String, String>) -> Result<Shard, AutoShardError> {
        match self {
            ShardArg::Fixed(s) => Ok(s),
            ShardArg::Auto => from_ci_env(env),
        }
    }
}

/// One CI system's pair of variables for parallel jobs.
struct CiVars {
    ci: &'static str,
    index: &'static str,
    total: &'static str,
    /// The index of the first job: GitLab counts from 1, the others from 0.
    first: u32,
}

const CI_VARS: &[CiVars] = &[
    CiVars {
        ci: "GitLab",
        index: "CI_NODE_INDEX",
        total: "CI_NODE_TOTAL",
        first: 1,
    },
    CiVars {
        ci: "CircleCI",
        index: "CIRCLE_NODE_INDEX",
        total: "CIRCLE_NODE_TOTAL",
        first: 0,
    },
    CiVars {
        ci: "Buildkite",
        index: "BUILDKITE_PARALLEL_JOB",
        total: "BUILDKITE_PARALLEL_JOB_COUNT",
        first: 0,
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoShardError {
    #[error(
        "--shard auto found no parallel-job variables: looked for CI_NODE_INDEX and CI_NODE_TOTAL (GitLab `parallel:`), CIRCLE_NODE_INDEX and CIRCLE_NODE_TOTAL (CircleCI `parallelism:`), BUILDKITE_PARALLEL_JOB and BUILDKITE_PARALLEL_JOB_COUNT (Buildkite `parallelism:`); GitHub Actions sets none: pass --shard K/N from the job's matrix, like `--shard ${{{{ matrix.shard }}}}/4`"
    )]
    NotSet,
    #[error(
        "--shard auto: {ci}'s {index}={index_value:?} and {total}={total_value:?} do not name a job ({index} counts from {first}, and is below {total}{plus})"
    )]
    Invalid {
        ci: &'static str,
        index: &'static str,
        index_value: String,
        total: &'static str,
        total_value: String,
        first: u32,
        plus: &'static str,
    },
}

/// The variables `--shard auto` reads, from the process environment
/// (only those: one that is not UTF-8 reads as unset).
pub fn ci_env() -> BTreeMap<String, String> {
    CI_VARS
        .iter()
        .flat_map(|v| [v.index, v.total])
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .collect()
}

/// This job's shard from the CI's variables in `env`: those of the first
/// CI system that sets either of its pair (`CI_NODE_*`, then
/// `CIRCLE_NODE_*`, then `BUILDKITE_PARALLEL_JOB*`).
pub fn from_ci_env(env: &BTreeMap<String, String>) -> Result<Shard, AutoShardError> {
    let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    for v in CI_VARS {
        let (index, total) = (get(v.index), get(v.total));
        if index.is_none() && total.is_none() {
            continue;
        }
        let parsed = index
            .and_then(|i| i.parse::<u32>().ok())
            .zip(total.and_then(|t| t.parse::<u32>().ok()));
        let shard = parsed.and_then(|(i, count)| {
            let index = i.checked_add(1)?.checked_sub(v.first)?;
            (index >= 1 && index <= count).then_some(Shard { index, count })
        });
        return shard.ok_or_else(|| AutoShardError::Invalid {
            ci: v.ci,
            index: v.index,
            index_value: index.unwrap_or_default().to_owned(),
            total: v.total,
            total_value: total.unwrap_or_default().to_owned(),
            first: v.first,
            plus: if v.first == 1 { " or equal to it" } else { "" },
        });
    }
    Err(AutoShardError::NotSet)
}

/// A unit of work placed as a whole on one shard.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// A project-mode analyzer (one run for the whole project).
    Project(String),
    /// A file, for every per-file analyzer that looks at it.
    File(PathBuf),
}

impl Unit {
    /// The hashed bytes of the fallback: the analyzer's name or the path.
    fn key(&self) -> &[u8] {
        match self {
            Unit::Project(name) => name.as_bytes(),
            Unit::File(path) => path.as_os_str().as_encoded_bytes(),
        }
    }
}

/// Recorded analysis times, in microseconds: per analyzer and file for
/// per-file analyzers, per analyzer for project-mode ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Times {
    /// Analyzer → file → time.
    pub files: HashMap<String, HashMap<PathBuf, u64>>,
    /// Analyzer → time of its run.
    pub projects: HashMap<String, u64>,
}

impl Times {
    pub fn file(&self, analyzer: &str, path: &Path) -> Option<u64> {
        self.files.get(analyzer)?.get(path).copied()
    }

    pub fn project(&self, analyzer: &str) -> Option<u64> {
        self.projects.get(analyzer).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.projects.is_empty()
    }
}

/// The shard (1-based) of a unit by the hash of its key alone: the same
/// on every machine (the bytes' hash, not a `HashMap`'s).
pub fn hashed(unit: &Unit, count: u32) -> u32 {
    let h = blake3::hash(unit.key());
    let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
    u32::try_from(n % u64::from(count)).expect("below a u32") + 1
}

/// Every unit's shard (1-based) out of `count`: longest recorded time
/// first onto the least loaded shard, then the units with no time
/// (`None`) by hash. Depends only on its arguments.
pub fn assign(units: &BTreeMap<Unit, Option<u64>>, count: u32) -> BTreeMap<Unit, u32> {
    let count = count.max(1);
    let mut timed: Vec<(&Unit, u64)> = units
        .iter()
        .filter_map(|(u, t)| t.map(|t| (u, t)))
        .collect();
    // Longest first; equal times in the units' (path) order.
    timed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut load = vec![0u64; count as usize];
    let mut out = BTreeMap::new();
    for (unit, time) in timed {
        let (least, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .expect("at least one shard");
        load[least] += time;
        out.insert(unit.clone(), u32::try_from(least).expect("below count") + 1);
    }
    for (unit, time) in units {
        if time.is_none() {
            out.insert(unit.clone(), hashed(unit, count));
        }
    }
    out
}

/// How a shard's run was split from the whole, recorded in its report so
/// that `bgtask report merge` can tell shards that split differently
/// (restored different caches: some files analysed twice, others never).
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ShardSplit {
    /// This shard, 1-based.
    pub index: u32,
    /// Of this many.
    pub count: u32,
    /// A digest of the whole assignment (every unit and its shard): the
    /// same in every shard of one run when they agree.
    pub split: String,
    /// Units of work (files, project-mode analyzers) in the whole run.
    pub units: usize,
    /// Of those, the ones placed by a recorded time (the rest by hash).
    pub timed: usize,
}

/// Narrows the whole run's plan (each analyzer's work, with its tool's
/// config files) to shard `s`. The split is made over every analyzer's
/// work at once, so all shards, each planning the whole run, agree on it.
pub(super) fn keep(
    planned: &mut [(Planned, Vec<PathBuf>)],
    s: Shard,
    times: Option<&Times>,
) -> ShardSplit {
    let empty = Times::default();
    let times = times.unwrap_or(&empty);
    // A file's time is the sum of its recorded times under each per-file
    // analyzer that looks at it; unknown when none was recorded.
    let mut units: BTreeMap<Unit, Option<u64>> = BTreeMap::new();
    for (p, _) in planned.iter() {
        let Work::Run { targets, .. } = &p.work else {
            continue;
        };
        let name = &p.def.name;
        match p.def.mode {
            Mode::Project => {
                units.insert(Unit::Project(name.clone()), times.project(name));
            }
            Mode::Batch => {
                for t in targets {
                    let time = times.file(name, t);
                    let unit = units.entry(Unit::File(t.clone())).or_default();
                    if let Some(time) = time {
                        *unit = Some(unit.unwrap_or(0) + time);
                    }
                }
            }
        }
    }
    let owner = assign(&units, s.count);
    let mut digest = blake3::Hasher::new();
    for (unit, shard) in &owner {
        digest.update(&[u8::from(matches!(unit, Unit::File(_)))]);
        digest.update(unit.key());
        digest.update(&[0]);
        digest.update(&shard.to_le_bytes());
    }
    let split = ShardSplit {
        index: s.index,
        count: s.count,
        split: digest.finalize().to_hex()[..16].to_owned(),
        units: units.len(),
        timed: units.values().filter(|t| t.is_some()).count(),
    };
    for (p, configs) in planned.iter_mut() {
        let Work::Run { targets, relevant } = &mut p.work else {
            continue;
        };
        match p.def.mode {
            Mode::Project => {
                if owner.get(&Unit::Project(p.def.name.clone())) != Some(&s.index) {
                    p.work = Work::Skip {
                        status: RunStatus::NotApplicable,
                        reason: format!("runs in another shard than {s}"),
                    };
                }
            }
            Mode::Batch => {
                targets.retain(|t| owner.get(&Unit::File(t.clone())) == Some(&s.index));
                if targets.is_empty() {
                    p.work = Work::Skip {
                        status: RunStatus::NotApplicable,
                        reason: format!("no matching files in shard {s}"),
                    };
                } else {
                    *relevant =
                        std::sync::Arc::new(super::plan::with_configs(configs, targets.clone()));
                }
            }
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn files(times: &[(&str, Option<u64>)]) -> BTreeMap<Unit, Option<u64>> {
        times
            .iter()
            .map(|(p, t)| (Unit::File(PathBuf::from(p)), *t))
            .collect()
    }

    /// Each shard's total time by `shard_of`, with `times` as the truth.
    fn loads(
        times: &BTreeMap<Unit, Option<u64>>,
        count: u32,
        shard_of: impl Fn(&Unit) -> u32,
    ) -> Vec<u64> {
        let mut load = vec![0; count as usize];
        for (u, t) in times {
            load[shard_of(u) as usize - 1] += t.unwrap_or(0);
        }
        load
    }

    /// The slowest shard over the mean.
    #[expect(clippy::cast_precision_loss, reason = "test loads are small")]
    fn skew(load: &[u64]) -> f64 {
        let max = *load.iter().max().unwrap() as f64;
        let mean = load.iter().sum::<u64>() as f64 / load.len() as f64;
        max / mean
    }

    #[test]
    fn parses_k_of_n_and_auto() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "x", "1/0", "1-2", "auto"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("auto".parse::<ShardArg>(), Ok(ShardArg::Auto));
        assert_eq!(
            "1/4".parse::<ShardArg>(),
            Ok(ShardArg::Fixed(Shard { index: 1, count: 4 }))
        );
        assert!("automatic".parse::<ShardArg>().is_err());
        assert_eq!(Shard { index: 1, count: 4 }.to_string(), "1/4");
    }

    #[test]
    fn auto_reads_each_ci_and_counts_from_its_first_job() {
        let table: &[(&[(&str, &str)], Shard)] = &[
            // GitLab's CI_NODE_INDEX counts from 1.
            (
                &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "4")],
                Shard { index: 1, count: 4 },
            ),
            (
                &[("CI_NODE_INDEX", "4"), ("CI_NODE_TOTAL", "4")],
                Shard { index: 4, count: 4 },
            ),
            // CircleCI and Buildkite count from 0.
            (
                &[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "3")],
                Shard { index: 1, count: 3 },
            ),
            (
                &[("CIRCLE_NODE_INDEX", "2"), ("CIRCLE_NODE_TOTAL", "3")],
                Shard { index: 3, count: 3 },
            ),
            (
                &[
                    ("BUILDKITE_PARALLEL_JOB", "1"),
                    ("BUILDKITE_PARALLEL_JOB_COUNT", "2"),
                ],
                Shard { index: 2, count: 2 },
            ),
            // Unrelated and empty variables are not looked at.
            (
                &[
                    ("CI_NODE_INDEX", ""),
                    ("GITHUB_ACTIONS", "true"),
                    ("BUILDKITE_PARALLEL_JOB", " 0 "),
                    ("BUILDKITE_PARALLEL_JOB_COUNT", "5"),
                ],
                Shard { index: 1, count: 5 },
            ),
        ];
        for (vars, want) in table {
            assert_eq!(from_ci_env(&env(vars)), Ok(*want), "{vars:?}");
            assert_eq!(ShardArg::Auto.resolve(&env(vars)), Ok(*want));
        }
        let fixed = ShardArg::Fixed(Shard { index: 2, count: 2 });
        assert_eq!(
            fixed.resolve(&env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "4")])),
            Ok(Shard { index: 2, count: 2 }),
            "K/N wins over the environment"
        );
    }

    #[test]
    fn auto_without_or_with_bad_variables_says_what_it_looked_for() {
        let err = from_ci_env(&env(&[("GITHUB_ACTIONS", "true")])).unwrap_err();
        assert_eq!(err, AutoShardError::NotSet);
        let text = err.to_string();
        for name in [
            "CI_NODE_INDEX",
            "CI_NODE_TOTAL",
            "CIRCLE_NODE_INDEX",
            "CIRCLE_NODE_TOTAL",
            "BUILDKITE_PARALLEL_JOB",
            "BUILDKITE_PARALLEL_JOB_COUNT",
            "GitHub",
            "--shard K/N",
            "${{ matrix.shard }}",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
        let bad: &[&[(&str, &str)]] = &[
            &[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "4")],
            &[("CI_NODE_INDEX", "5"), ("CI_NODE_TOTAL", "4")],
            &[("CI_NODE_INDEX", "1")],
            &[("CIRCLE_NODE_INDEX", "3"), ("CIRCLE_NODE_TOTAL", "3")],
            &[("CIRCLE_NODE_TOTAL", "3")],
            &[
                ("BUILDKITE_PARALLEL_JOB", "x"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "2"),
            ],
            &[
                ("BUILDKITE_PARALLEL_JOB", "0"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "0"),
            ],
        ];
        for vars in bad {
            let err = from_ci_env(&env(vars)).unwrap_err();
            assert!(
                matches!(err, AutoShardError::Invalid { .. }),
                "{vars:?}: {err}"
            );
        }
        assert_eq!(
            from_ci_env(&env(&[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "4")]))
                .unwrap_err()
                .to_string(),
            "--shard auto: GitLab's CI_NODE_INDEX=\"0\" and CI_NODE_TOTAL=\"4\" do not name a job (CI_NODE_INDEX counts from 1, and is below CI_NODE_TOTAL or equal to it)"
        );
    }

    #[test]
    fn lpt_puts_every_unit_in_exactly_one_shard_the_same_way_each_time() {
        let mut units: BTreeMap<Unit, Option<u64>> = (0..300)
            .map(|i| {
                let time = (i % 3 != 0).then_some((i * 7919) % 1000);
                (Unit::File(PathBuf::from(format!("src/m{i}.py"))), time)
            })
            .collect();
        units.insert(Unit::Project("pytest".into()), Some(5000));
        units.insert(Unit::Project("npm-audit".into()), None);
        for count in [1, 2, 3, 7] {
            let a = assign(&units, count);
            assert_eq!(a, assign(&units, count), "deterministic");
            assert_eq!(a.len(), units.len(), "every unit placed once");
            assert!(a.values().all(|s| (1..=count).contains(s)));
            // Insertion order does not matter: the same map from reversed input.
            let reversed: BTreeMap<Unit, Option<u64>> =
                units.iter().rev().map(|(u, t)| (u.clone(), *t)).collect();
            assert_eq!(assign(&reversed, count), a);
            // Units never timed go where the path hash puts them.
            for (u, t) in &units {
                if t.is_none() {
                    assert_eq!(a[u], hashed(u, count), "{u:?}");
                }
            }
        }
        // Ties are broken by path, the lower shard first.
        let tied = files(&[("b", Some(5)), ("a", Some(5)), ("c", Some(5))]);
        let a = assign(&tied, 2);
        let order: Vec<u32> = a.values().copied().collect();
        assert_eq!(order, [1, 2, 1], "a→1, b→2, c→1");
    }

    #[test]
    fn lpt_balances_a_skewed_project_better_than_the_hash() {
        // One file takes 10x the others.
        let mut times: Vec<(String, Option<u64>)> = (0..20)
            .map(|i| (format!("src/f{i:02}.py"), Some(100)))
            .collect();
        times.push(("src/huge.py".into(), Some(1000)));
        let units: BTreeMap<Unit, Option<u64>> = times
            .iter()
            .map(|(p, t)| (Unit::File(PathBuf::from(p)), *t))
            .collect();
        for count in [2, 3, 4] {
            let a = assign(&units, count);
            let balanced = loads(&units, count, |u| a[u]);
            let lpt = skew(&balanced);
            let hash = skew(&loads(&units, count, |u| hashed(u, count)));
            // No split beats the huge file alone or the mean; LPT is at
            // most one small file above that here.
            let bound = 1000.max(3000 / u64::from(count));
            assert!(
                *balanced.iter().max().unwrap() <= bound + 100,
                "{count} shards: {balanced:?}"
            );
            assert!(
                lpt < hash,
                "{count} shards: balanced {lpt:.2} vs hash {hash:.2}"
            );
        }
        // Three shards: the huge file alone, the others split 10/10 →
        // exactly even.
        let a = assign(&units, 3);
        assert_eq!(loads(&units, 3, |u| a[u]), [1000, 1000, 1000]);
    }

    #[test]
    fn with_nothing_recorded_the_split_is_the_path_hash() {
        let units = files(&[("a.py", None), ("b.py", None), ("c/d.py", None)]);
        let a = assign(&units, 3);
        for (u, s) in &a {
            assert_eq!(*s, hashed(u, 3));
        }
        assert!(Times::default().is_empty());
    }
}
