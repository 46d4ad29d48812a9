//! Planning a run: which analyzers, on which files, or why not.
//!
//! Pure logic over the config, the project's file list and an optional
//! selection (`--changed`, `--files`, a shard). An analyzer listed by several
//! tasks runs once, on the union of the files those tasks allow.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::analyze::{AnalyzerDef, RunStatus};
use crate::config::Config;
use crate::config::raw::Mode;
use crate::globs::Globs;
use crate::globs::slashed as rel;

/// `--shard K/N`: this is job K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let err = || format!("expected K/N with 1 <= K <= N, like 2/4; got `{s}`");
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

impl Shard {
    /// Deterministic across machines: a hash of the bytes, not of a `HashMap`.
    fn owns(self, key: &[u8]) -> bool {
        let h = blake3::hash(key);
        let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
        n % u64::from(self.count) == u64::from(self.index - 1)
    }
}

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
        /// Files whose content keys the result cache.
        relevant: Vec<PathBuf>,
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
    /// Every file of the project (the walk).
    pub files: &'a [PathBuf],
    /// Only these files, when the user selected some.
    pub selection: Option<&'a BTreeSet<PathBuf>>,
    /// Selected files that no longer exist (deleted, or renamed away):
    /// nothing for a per-file analyzer to run on, but looked at all the
    /// same, so their findings end.
    pub gone: Option<&'a BTreeSet<PathBuf>>,
    pub shard: Option<Shard>,
    /// Skip analyzers that need the network.
    pub offline: bool,
}

fn matches(g: Option<&Globs>, p: &str) -> bool {
    g.is_some_and(|g| g.is_match(p))
}

pub fn plan(inputs: &Inputs<'_>, wanted: BTreeMap<String, (Vec<String>, bool)>) -> Vec<Planned> {
    wanted
        .into_iter()
        .map(|(name, (tasks, explicit))| {
            let def = inputs.config.analyzers[&name].clone();
            let work = work_for(inputs, &def, &tasks, explicit);
            Planned { def, tasks, work }
        })
        .collect()
}

fn skip(status: RunStatus, reason: impl Into<String>) -> Work {
    Work::Skip {
        status,
        reason: reason.into(),
    }
}

fn work_for(inputs: &Inputs<'_>, def: &AnalyzerDef, tasks: &[String], explicit: bool) -> Work {
    if inputs.offline && def.network {
        return skip(
            RunStatus::NotApplicable,
            "needs the network; skipped by --offline",
        );
    }
    let all: Vec<(std::borrow::Cow<'_, str>, &PathBuf)> =
        inputs.files.iter().map(|p| (rel(p), p)).collect();
    if let Some(req) = &def.requires
        && !all.iter().any(|(r, _)| req.is_match(r))
    {
        return skip(
            RunStatus::NotApplicable,
            format!("no {} in the project", req.patterns().join(" or ")),
        );
    }
    // A file passes if any of the analyzer's tasks (or an explicit request) allows it.
    let task_defs: Vec<&crate::config::Task> = tasks
        .iter()
        .filter_map(|t| inputs.config.tasks.get(t))
        .collect();
    let allowed = |r: &str| {
        explicit
            || task_defs.is_empty()
            || task_defs.iter().any(|t| {
                t.paths.as_ref().is_none_or(|g| g.is_match(r))
                    && !matches(t.exclude_paths.as_ref(), r)
            })
    };
    let config_files = Globs::new(&def.config_files)
        .unwrap_or_else(|_| Globs::new::<&str>(&[]).expect("empty globs"));
    // Tool config (and the files that make it apply) key the cache too.
    let configs: Vec<PathBuf> = all
        .iter()
        .filter(|(r, _)| config_files.is_match(r) || matches(def.requires.as_ref(), r))
        .map(|(_, p)| (*p).clone())
        .collect();
    // The walk's files come sorted: a sort only when configs are added
    // or selected files were (a cache key hashes them in order).
    let with_configs = |mut files: Vec<PathBuf>| {
        if !configs.is_empty() || !files.is_sorted() {
            files.extend(configs.iter().cloned());
            files.sort();
            files.dedup();
        }
        files
    };
    let candidate = |r: &str| matches(def.files.as_ref(), r) && allowed(r);
    match def.mode {
        Mode::Batch => batch_work(inputs, def, &all, &candidate, with_configs),
        Mode::Project => {
            if let Some(sel) = inputs.selection {
                let touched = sel.iter().any(|p| {
                    let r = rel(p);
                    matches(def.files.as_ref(), &r)
                        || matches(def.requires.as_ref(), &r)
                        || config_files.is_match(&r)
                });
                if !touched {
                    return skip(
                        RunStatus::NotApplicable,
                        "none of the selected files concern it",
                    );
                }
            }
            if let Some(shard) = inputs.shard
                && !shard.owns(def.name.as_bytes())
            {
                return skip(
                    RunStatus::NotApplicable,
                    format!("runs in another shard than {shard}"),
                );
            }
            let sources: Vec<PathBuf> = all
                .iter()
                .filter(|(r, _)| candidate(r))
                .map(|(_, p)| (*p).clone())
                .collect();
            Work::Run {
                targets: Vec::new(),
                relevant: with_configs(sources),
            }
        }
    }
}

/// A batch analyzer's files: the candidates, narrowed to the selection
/// (explicitly selected files count even when the walk ignores them) and
/// the shard.
fn batch_work(
    inputs: &Inputs<'_>,
    def: &AnalyzerDef,
    all: &[(std::borrow::Cow<'_, str>, &PathBuf)],
    candidate: &dyn Fn(&str) -> bool,
    with_configs: impl Fn(Vec<PathBuf>) -> Vec<PathBuf>,
) -> Work {
    let mut targets: Vec<PathBuf> = all
        .iter()
        .filter(|(r, p)| candidate(r) && inputs.selection.is_none_or(|s| s.contains(*p)))
        .map(|(_, p)| (*p).clone())
        .collect();
    let is_gone = |p: &PathBuf| inputs.gone.is_some_and(|g| g.contains(p));
    let mut gone = 0;
    if let Some(sel) = inputs.selection {
        for p in sel {
            if targets.contains(p) || !candidate(&rel(p)) {
                continue;
            }
            if is_gone(p) {
                gone += 1;
            } else {
                targets.push(p.clone());
            }
        }
        targets.sort();
    }
    if targets.is_empty() && gone > 0 {
        return skip(
            RunStatus::Clean,
            format!(
                "{gone} selected file{} deleted: nothing left to analyse there",
                if gone == 1 { " was" } else { "s were" }
            ),
        );
    }
    if let Some(shard) = inputs.shard {
        targets.retain(|p| shard.owns(p.as_os_str().as_encoded_bytes()));
        if targets.is_empty() {
            return skip(
                RunStatus::NotApplicable,
                format!("no matching files in shard {shard}"),
            );
        }
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
    let relevant = with_configs(targets.clone());
    Work::Run { targets, relevant }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::from_text(std::path::Path::new("c.json"), text).unwrap()
    }

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
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

        let sel: BTreeSet<PathBuf> = paths(&["src/b.py", "web/x.js"]).into_iter().collect();
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
        let sel: BTreeSet<PathBuf> = paths(&["src/gone.py"]).into_iter().collect();
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
        let files: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("m{i}.py")))
            .collect();
        let mut seen = BTreeSet::new();
        for k in 1..=3 {
            let inputs = Inputs {
                config: &c,
                files: &files,
                selection: None,
                gone: None,
                shard: Some(Shard { index: k, count: 3 }),
                offline: false,
            };
            let planned = plan(&inputs, resolve(&c, &["t".into()], &[]).unwrap());
            for t in run_targets(&planned[0]) {
                assert!(seen.insert(t), "a file in two shards");
            }
        }
        assert_eq!(seen.len(), 200);
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "x", "1/0", "1-2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
