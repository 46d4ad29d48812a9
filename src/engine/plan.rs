//! Planning a run: which analyzers, on which files, or why not.
//!
//! Pure logic over the config, the project's file list and an optional
//! selection (`--changed`, `--files`, a shard). An analyzer listed by several
//! tasks runs once, on the union of the files those tasks allow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::analyze::{AnalyzerDef, RunStatus};
use crate::config::Config;
use crate::config::raw::Mode;
use crate::globs::slashed as rel;

use super::scan::{self, matches};
#[cfg(test)]
use super::shard::Unit;
use super::shard::{self, Shard, Times};

#[derive(Debug, Clone)]
pub struct Planned {
    pub def: Arc<AnalyzerDef>,
    pub tasks: Vec<String>,
    pub work: Work,
}

#[derive(Debug, Clone)]
pub enum Work {
    Skip {
        status: RunStatus,
        reason: String,
    },
    Run {
        /// Files passed to a batch analyzer (empty for project analyzers).
        targets: Vec<PathBuf>,
        /// Files whose content keys the result cache (shared: a project
        /// analyzer's are often the whole list).
        relevant: Arc<Vec<PathBuf>>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("unknown task or analyzer `{name}`{suggestion}; tasks: {tasks}; analyzers: {analyzers}")]
pub struct UnknownName {
    pub name: String,
    /// ` (did you mean `security`?)`, or nothing.
    pub suggestion: String,
    pub tasks: String,
    pub analyzers: String,
}

/// ` (did you mean `NAME`?)` for the known name nearest to `name`, when one
/// is near enough to be a typo (as clap suggests subcommands).
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    known
        .into_iter()
        .map(|k| (strsim::jaro(name, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn unknown(config: &Config, name: &str) -> UnknownName {
    UnknownName {
        name: name.to_owned(),
        suggestion: did_you_mean(
            name,
            std::iter::once("all")
                .chain(config.tasks.keys().map(String::as_str))
                .chain(config.analyzers.keys().map(String::as_str)),
        ),
        tasks: std::iter::once("all")
            .chain(config.tasks.keys().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", "),
        analyzers: config
            .analyzers
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Splits command-line names into task names (including `all`) and analyzer
/// names; a task wins over an analyzer of the same name.
pub fn split_names(
    config: &Config,
    names: &[String],
) -> Result<(Vec<String>, Vec<String>), UnknownName> {
    let (mut tasks, mut analyzers) = (Vec::new(), Vec::new());
    for name in names {
        if name == "all" || config.tasks.contains_key(name) {
            tasks.push(name.clone());
        } else if config.analyzers.contains_key(name) {
            analyzers.push(name.clone());
        } else {
            return Err(unknown(config, name));
        }
    }
    Ok((tasks, analyzers))
}

/// What a job asks for, resolved: analyzer → (tasks, named directly).
pub fn resolve(
    config: &Config,
    tasks: &[String],
    analyzers: &[String],
) -> Result<BTreeMap<String, (Vec<String>, bool)>, UnknownName> {
    let mut out: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
    for name in analyzers {
        if !config.analyzers.contains_key(name) {
            return Err(unknown(config, name));
        }
        out.entry(name.clone()).or_default().1 = true;
    }
    for name in tasks {
        let chosen: Vec<&crate::config::Task> = if name == "all" {
            config.tasks.values().filter(|t| t.enabled).collect()
        } else {
            vec![
                config
                    .tasks
                    .get(name)
                    .ok_or_else(|| unknown(config, name))?,
            ]
        };
        for t in chosen {
            for a in &t.analyzers {
                let entry = out.entry(a.clone()).or_default();
                if !entry.0.contains(&t.name) {
                    entry.0.push(t.name.clone());
                }
            }
        }
    }
    Ok(out)
}

pub struct Inputs<'a> {
    pub config: &'a Config,
    /// Every file of the project (the walk, or the daemon's kept list).
    pub files: &'a Arc<Vec<PathBuf>>,
    /// Only these files, when the user selected some.
    pub selection: Option<&'a BTreeSet<PathBuf>>,
    /// Selected files that no longer exist (deleted, or renamed away):
    /// nothing for a per-file analyzer to run on, but looked at all the
    /// same, so their findings end.
    pub gone: Option<&'a BTreeSet<PathBuf>>,
    pub shard: Option<Shard>,
    /// Recorded times the shards are balanced by (see `shard.rs`); without
    /// them, the path hash splits.
    pub times: Option<&'a Times>,
    /// Skip analyzers that need the network.
    pub offline: bool,
}

pub fn plan(inputs: &Inputs<'_>, wanted: BTreeMap<String, (Vec<String>, bool)>) -> Vec<Planned> {
    plan_split(inputs, wanted).0
}

/// [`plan`], with how a shard's work was split from the whole.
pub fn plan_split(
    inputs: &Inputs<'_>,
    wanted: BTreeMap<String, (Vec<String>, bool)>,
) -> (Vec<Planned>, Option<shard::ShardSplit>) {
    let mut planned: Vec<(Planned, Vec<PathBuf>)> = wanted
        .into_iter()
        .map(|(name, (tasks, explicit))| {
            let def = inputs.config.analyzers[&name].clone();
            let (work, configs) = work_for(inputs, &def, &tasks, explicit);
            (Planned { def, tasks, work }, configs)
        })
        .collect();
    let split = inputs
        .shard
        .map(|s| shard::keep(&mut planned, s, inputs.times));
    (planned.into_iter().map(|(p, _)| p).collect(), split)
}

/// `files` with the tool's config files, sorted (a cache key hashes them
/// in order). The walk's files come sorted: a sort only when configs are
/// added or selected files were.
pub(super) fn with_configs(configs: &[PathBuf], mut files: Vec<PathBuf>) -> Vec<PathBuf> {
    if !configs.is_empty() || !files.is_sorted() {
        files.extend(configs.iter().cloned());
        files.sort();
        files.dedup();
    }
    files
}

fn skip(status: RunStatus, reason: impl Into<String>) -> Work {
    Work::Skip {
        status,
        reason: reason.into(),
    }
}

/// The analyzer's work over the whole run (before any shard), with the
/// tool's config files (to add back to the cache key's files once a shard
/// has narrowed the targets). What its globs make of the whole list is the
/// kept scan's (`scan.rs`); a selection is looked at file by file.
fn work_for(
    inputs: &Inputs<'_>,
    def: &AnalyzerDef,
    tasks: &[String],
    explicit: bool,
) -> (Work, Vec<PathBuf>) {
    if inputs.offline && def.network {
        return (
            skip(
                RunStatus::NotApplicable,
                "needs the network; skipped by --offline",
            ),
            Vec::new(),
        );
    }
    let task_defs: Vec<&crate::config::Task> = tasks
        .iter()
        .filter_map(|t| inputs.config.tasks.get(t))
        .collect();
    let scan = scan::scan(inputs.files, def, &task_defs, explicit);
    if let Some(req) = &def.requires
        && !scan.requires_met
    {
        return (
            skip(
                RunStatus::NotApplicable,
                format!("no {} in the project", req.patterns().join(" or ")),
            ),
            Vec::new(),
        );
    }
    // A file passes if any of the analyzer's tasks (or an explicit request) allows it.
    let candidate =
        |r: &str| matches(def.files.as_ref(), r) && scan::allowed(&task_defs, explicit, r);
    // Tool config (and the files that make it apply) key the cache too.
    let configs = scan.configs.clone();
    let work = match def.mode {
        Mode::Batch => batch_work(inputs, def, &scan, &candidate, &configs),
        Mode::Project => {
            if let Some(sel) = inputs.selection {
                let config_files = scan::config_globs(def);
                let touched = sel.iter().any(|p| {
                    let r = rel(p);
                    matches(def.files.as_ref(), &r)
                        || matches(def.requires.as_ref(), &r)
                        || config_files.is_match(&r)
                });
                if !touched {
                    return (
                        skip(
                            RunStatus::NotApplicable,
                            "none of the selected files concern it",
                        ),
                        Vec::new(),
                    );
                }
            }
            let relevant = if configs.is_empty() && scan.takes_all() {
                inputs.files.clone()
            } else {
                let sources: Vec<PathBuf> = scan.candidates(inputs.files).cloned().collect();
                Arc::new(with_configs(&configs, sources))
            };
            Work::Run {
                targets: Vec::new(),
                relevant,
            }
        }
    };
    (work, configs)
}

/// A batch analyzer's files: the candidates, or the selected ones
/// (explicitly selected files count even when the walk ignores them, and
/// deleted ones are counted, not run on).
fn batch_work(
    inputs: &Inputs<'_>,
    def: &AnalyzerDef,
    scan: &scan::Scan,
    candidate: &dyn Fn(&str) -> bool,
    configs: &[PathBuf],
) -> Work {
    let is_gone = |p: &PathBuf| inputs.gone.is_some_and(|g| g.contains(p));
    let mut gone = 0;
    let targets: Vec<PathBuf> = match inputs.selection {
        None => scan.candidates(inputs.files).cloned().collect(),
        Some(sel) => sel
            .iter()
            .filter(|p| candidate(&rel(p)))
            .filter(|p| {
                let there = !is_gone(p);
                gone += usize::from(!there);
                there
            })
            .cloned()
            .collect(),
    };
    if targets.is_empty() && gone > 0 {
        return skip(
            RunStatus::Clean,
            format!(
                "{gone} selected file{} deleted: nothing left to analyse there",
                if gone == 1 { " was" } else { "s were" }
            ),
        );
    }
    if targets.is_empty() {
        let what = def
            .files
            .as_ref()
            .map_or_else(String::new, |g| g.patterns().join(", "));
        let scope = if inputs.selection.is_some() {
            "selected"
        } else {
            "matching"
        };
        return skip(
            RunStatus::NotApplicable,
            format!("no {scope} files ({what})"),
        );
    }
    let relevant = Arc::new(with_configs(configs, targets.clone()));
    Work::Run { targets, relevant }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::from_text(std::path::Path::new("c.json"), text).unwrap()
    }

    fn paths(v: &[&str]) -> Arc<Vec<PathBuf>> {
        Arc::new(v.iter().map(PathBuf::from).collect())
    }

    fn run_targets(p: &Planned) -> Vec<String> {
        match &p.work {
            Work::Run { targets, .. } => targets.iter().map(|t| t.display().to_string()).collect(),
            Work::Skip { reason, .. } => vec![format!("skip: {reason}")],
        }
    }

    #[test]
    fn names_resolve_to_analyzers_with_their_tasks() {
        let c = config(
            r#"{"tasks": {"sec": {"analyzers": ["bandit", "pip-audit"]}, "lint": {"analyzers": ["bandit"]}}}"#,
        );
        let (tasks, analyzers) = split_names(&c, &["all".into(), "radon".into()]).unwrap();
        assert_eq!(
            (tasks, analyzers.clone()),
            (vec!["all".to_owned()], vec!["radon".to_owned()])
        );
        let r = resolve(&c, &["all".into()], &analyzers).unwrap();
        assert_eq!(
            r["bandit"],
            (vec!["lint".to_owned(), "sec".to_owned()], false)
        );
        assert_eq!(r["radon"], (vec![], true));
        let err = split_names(&c, &["nope".into()]).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unknown task or analyzer `nope`; tasks: all, lint, sec; analyzers: bandit,"
            ),
            "{err}"
        );
    }

    #[test]
    fn applicability_selection_and_task_paths() {
        let c = config(
            r#"{"tasks": {"t": {"analyzers": ["bandit", "pip-audit", "eslint", "pytest"], "exclude_paths": ["vendor/**"]}}}"#,
        );
        let files = paths(&[
            "src/a.py",
            "src/b.py",
            "vendor/v.py",
            "tests/test_a.py",
            "requirements.txt",
            "web/x.js",
        ]);
        let wanted = resolve(&c, &["t".into()], &[]).unwrap();
        let inputs = Inputs {
            config: &c,
            files: &files,
            selection: None,
            gone: None,
            shard: None,
            times: None,
            offline: false,
        };
        let planned = plan(&inputs, wanted.clone());
        let by: BTreeMap<&str, Vec<String>> = planned
            .iter()
            .map(|p| (p.def.name.as_str(), run_targets(p)))
            .collect();
        assert_eq!(by["bandit"], ["src/a.py", "src/b.py", "tests/test_a.py"]);
        assert_eq!(by["pip-audit"], Vec::<String>::new());
        assert_eq!(by["pytest"], Vec::<String>::new());
        assert!(
            by["eslint"][0].starts_with("skip: no /eslint.config.js or"),
            "{:?}",
            by["eslint"]
        );

        let sel: BTreeSet<PathBuf> = paths(&["src/b.py", "web/x.js"]).iter().cloned().collect();
        let inputs = Inputs {
            selection: Some(&sel),
            offline: true,
            ..inputs
        };
        let planned = plan(&inputs, wanted.clone());
        let by: BTreeMap<&str, Vec<String>> = planned
            .iter()
            .map(|p| (p.def.name.as_str(), run_targets(p)))
            .collect();
        assert_eq!(by["bandit"], ["src/b.py"]);
        assert_eq!(
            by["pip-audit"],
            ["skip: needs the network; skipped by --offline"]
        );
        assert_eq!(
            by["pytest"],
            Vec::<String>::new(),
            "a .py change reruns the suite"
        );

        // A deleted file: no per-file run on it, the project-wide ones run.
        let sel: BTreeSet<PathBuf> = paths(&["src/gone.py"]).iter().cloned().collect();
        let inputs = Inputs {
            selection: Some(&sel),
            gone: Some(&sel),
            ..inputs
        };
        let planned = plan(&inputs, wanted);
        let by: BTreeMap<&str, Vec<String>> = planned
            .iter()
            .map(|p| (p.def.name.as_str(), run_targets(p)))
            .collect();
        assert_eq!(
            by["bandit"],
            ["skip: 1 selected file was deleted: nothing left to analyse there"]
        );
        assert_eq!(by["pytest"], Vec::<String>::new(), "the suite reruns");
    }

    #[test]
    fn shards_partition_files_deterministically() {
        let c = config(r#"{"tasks": {"t": {"analyzers": ["bandit"]}}}"#);
        let files: Arc<Vec<PathBuf>> = Arc::new(
            (0..200)
                .map(|i| PathBuf::from(format!("m{i}.py")))
                .collect(),
        );
        let mut seen = BTreeSet::new();
        for k in 1..=3 {
            let inputs = Inputs {
                config: &c,
                files: &files,
                selection: None,
                gone: None,
                shard: Some(Shard { index: k, count: 3 }),
                times: None,
                offline: false,
            };
            let planned = plan(&inputs, resolve(&c, &["t".into()], &[]).unwrap());
            for t in run_targets(&planned[0]) {
                assert!(seen.insert(t), "a file in two shards");
            }
        }
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn shards_balance_files_and_project_analyzers_by_recorded_time() {
        let c = config(r#"{"tasks": {"t": {"analyzers": ["bandit", "pylint", "pytest"]}}}"#);
        let mut files: Vec<PathBuf> = (0..40)
            .map(|i| PathBuf::from(format!("m{i:02}.py")))
            .collect();
        files.push(PathBuf::from("test_m.py"));
        let files = Arc::new(files);
        let mut times = Times::default();
        // The suite is the longest unit, then m00.py (under both linters);
        // the rest take 10 each, but for a few never timed.
        times.projects.insert("pytest".into(), 5000);
        for linter in ["bandit", "pylint"] {
            let per_file = times.files.entry(linter.into()).or_default();
            for f in &files[..36] {
                per_file.insert(f.clone(), 10);
            }
            per_file.insert(files[0].clone(), 1500);
        }
        let wanted = resolve(&c, &["t".into()], &[]).unwrap();
        let mut owner: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut load = [0u64; 3];
        for k in 1..=3 {
            let inputs = Inputs {
                config: &c,
                files: &files,
                selection: None,
                gone: None,
                shard: Some(Shard { index: k, count: 3 }),
                times: Some(&times),
                offline: false,
            };
            for p in plan(&inputs, wanted.clone()) {
                let name = p.def.name.as_str();
                match &p.work {
                    Work::Run { targets, relevant } => {
                        if p.def.mode == Mode::Project {
                            owner.entry(name.into()).or_default().push(k);
                            load[k as usize - 1] += times.project(name).unwrap();
                            assert!(relevant.len() > 40, "the suite sees every file");
                        }
                        for t in targets {
                            owner
                                .entry(format!("{name} {}", t.display()))
                                .or_default()
                                .push(k);
                            load[k as usize - 1] += times.file(name, t).unwrap_or(0);
                        }
                    }
                    Work::Skip { reason, .. } => assert!(
                        reason == &format!("runs in another shard than {k}/3")
                            || reason == &format!("no matching files in shard {k}/3"),
                        "{reason}"
                    ),
                }
            }
        }
        // Each unit in exactly one shard; a file in the same one for both linters.
        assert_eq!(owner.len(), 1 + 2 * files.len());
        assert!(owner.values().all(|ks| ks.len() == 1), "{owner:?}");
        for f in files.iter() {
            let f = f.display();
            assert_eq!(owner[&format!("bandit {f}")], owner[&format!("pylint {f}")]);
        }
        // LPT: the suite alone, m00.py (3000 for both linters) next, the
        // 35 others (20 each) onto the lighter of the two.
        assert_eq!(owner["pytest"], [1]);
        assert_eq!(owner["bandit m00.py"], [2]);
        assert_eq!(load, [5000, 3000, 700], "{owner:?}");
        // Files never timed go by path hash.
        for f in &files[36..] {
            let unit = Unit::File(f.clone());
            assert_eq!(
                owner[&format!("bandit {}", f.display())],
                [shard::hashed(&unit, 3)]
            );
        }
    }
}
