//! The router: which tasks a resolved trigger starts, and on which files.
//! Pure — a function of the worktree's projects, each task's trust and the
//! trigger — so it is tested here without a daemon. The core applies what
//! it returns: an offer to the queue (after leaving out a task's own
//! writes, which needs state), a note for a task that would run but is not
//! trusted.
//!
//! A trigger's files go to the tasks of the innermost project holding each
//! (`config::Projects`), and to a task only when they concern it
//! ([`Relevance`]): the task's `paths`/`exclude_paths` allow them and one
//! of its analyzers reads them. A save of `README.md` does not wake the
//! linters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::{Config, Projects, Task, TriggerKind};
use crate::event::TriggerSource;
use crate::globs::{Globs, slashed};
use crate::trust::TaskTrust;

/// One trigger, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub kind: TriggerKind,
    /// `None`: the whole project.
    pub files: Option<BTreeSet<PathBuf>>,
    pub source: TriggerSource,
    /// Tasks the trigger asked to skip (`BGTASK_SKIP`).
    pub skip: Vec<String>,
    /// Only this task (a cron time or idle spell is a task's own).
    pub only: Option<String>,
}

/// What a trigger asks of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Offer the task (by key) a job on these files, relative to the
    /// worktree (`None`: the whole project).
    Offer {
        key: String,
        files: Option<BTreeSet<PathBuf>>,
    },
    /// The task would run, but is not trusted as it is now.
    Untrusted { key: String, state: TaskTrust },
}

/// The tasks `trigger` starts, by their keys, in the projects' order. A
/// task missing from `trust` is not offered.
pub fn route(
    projects: &Projects,
    trust: &BTreeMap<String, TaskTrust>,
    trigger: &Resolved,
) -> Vec<Routed> {
    let owned = trigger.files.as_ref().map(|all| by_project(projects, all));
    let mut out = Vec::new();
    for (key, project, task) in projects.tasks() {
        if !task.enabled
            || !task.triggers.contains(&trigger.kind)
            || trigger.skip.iter().any(|s| *s == key || *s == task.name)
            || trigger.only.as_ref().is_some_and(|o| *o != key)
        {
            continue;
        }
        let files = match &owned {
            None => None,
            Some(owned) => {
                let relevance = Relevance::new(&project.config, task);
                let mine: BTreeSet<PathBuf> = owned
                    .get(project.dir.as_path())
                    .into_iter()
                    .flatten()
                    .filter(|f| project.relative(f).is_some_and(|f| relevance.concerns(f)))
                    .map(|f| (*f).clone())
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                Some(mine)
            }
        };
        match trust.get(&key) {
            Some(TaskTrust::Trusted) => out.push(Routed::Offer { key, files }),
            Some(state) => out.push(Routed::Untrusted {
                key,
                state: state.clone(),
            }),
            None => {}
        }
    }
    out
}

/// A batch's files by the project that holds each (still relative to the
/// worktree: jobs and their history name files from the worktree's top).
fn by_project<'a>(
    projects: &'a Projects,
    files: &'a BTreeSet<PathBuf>,
) -> BTreeMap<&'a Path, Vec<&'a PathBuf>> {
    let mut out: BTreeMap<&Path, Vec<&PathBuf>> = BTreeMap::new();
    for f in files {
        out.entry(projects.owner(f).dir.as_path())
            .or_default()
            .push(f);
    }
    out
}

/// Which changed files concern a task: the task's `paths`/`exclude_paths`
/// allow them and one of its analyzers reads them (its `files`, `requires`
/// or tool config).
pub struct Relevance<'a> {
    task: &'a Task,
    analyzers: Vec<(Option<&'a Globs>, Option<&'a Globs>, Globs)>,
}

impl<'a> Relevance<'a> {
    pub fn new(config: &'a Config, task: &'a Task) -> Relevance<'a> {
        let analyzers = task
            .analyzers
            .iter()
            .filter_map(|name| config.analyzers.get(name))
            .map(|def| {
                let configs = crate::engine::config_globs(def);
                (def.files.as_ref(), def.requires.as_ref(), configs)
            })
            .collect();
        Relevance { task, analyzers }
    }

    /// Whether `file` (relative to the task's project) concerns it.
    pub fn concerns(&self, file: &Path) -> bool {
        let r = slashed(file);
        let matches = |g: Option<&Globs>| g.is_some_and(|g| g.is_match(&r));
        if !self.task.paths.as_ref().is_none_or(|g| g.is_match(&r))
            || matches(self.task.exclude_paths.as_ref())
        {
            return false;
        }
        self.analyzers.iter().any(|(files, requires, configs)| {
            matches(*files) || matches(*requires) || configs.is_match(&r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tasks: &str, analyzers: &str) -> Config {
        let text = format!(r#"{{"tasks": {{{tasks}}}, "analyzers": {{{analyzers}}}}}"#);
        crate::config::from_text(Path::new("x.json"), &text).expect("valid config")
    }

    const PY: &str =
        r#""py": {"command": "true", "mode": "project", "files": ["*.py"], "parser": "exit-code"}"#;
    const JS: &str =
        r#""js": {"command": "true", "mode": "project", "files": ["*.js"], "parser": "exit-code"}"#;

    /// A top with a Python task, `api/` with a Python one, `web/` with a
    /// JavaScript one that also runs on commits.
    fn projects() -> Projects {
        Projects::with(
            config(r#""lint": {"analyzers": ["py"], "triggers": ["save"]}"#, PY),
            vec![
                (
                    PathBuf::from("api"),
                    config(r#""lint": {"analyzers": ["py"], "triggers": ["save"]}"#, PY),
                ),
                (
                    PathBuf::from("web"),
                    config(
                        r#""lint": {"analyzers": ["js"], "triggers": ["save", "commit"]}"#,
                        JS,
                    ),
                ),
            ],
        )
    }

    fn all_trusted(p: &Projects) -> BTreeMap<String, TaskTrust> {
        p.tasks().map(|(k, _, _)| (k, TaskTrust::Trusted)).collect()
    }

    fn trigger(kind: TriggerKind, files: Option<&[&str]>) -> Resolved {
        Resolved {
            kind,
            files: files.map(|f| f.iter().map(PathBuf::from).collect()),
            source: TriggerSource::Save,
            skip: Vec::new(),
            only: None,
        }
    }

    fn offers(routed: &[Routed]) -> Vec<(String, Vec<String>)> {
        routed
            .iter()
            .filter_map(|r| match r {
                Routed::Offer { key, files } => Some((
                    key.clone(),
                    files
                        .iter()
                        .flatten()
                        .map(|f| f.display().to_string())
                        .collect(),
                )),
                Routed::Untrusted { .. } => None,
            })
            .collect()
    }

    #[test]
    fn each_file_goes_to_the_innermost_project_whose_task_reads_it() {
        let p = projects();
        let save = trigger(
            TriggerKind::Save,
            Some(&[
                "tool.py",
                "api/app.py",
                "api/README.md",
                "web/index.js",
                "web/x.py",
            ]),
        );
        let routed = route(&p, &all_trusted(&p), &save);
        assert_eq!(
            offers(&routed),
            [
                ("lint".to_owned(), vec!["tool.py".to_owned()]),
                ("api:lint".to_owned(), vec!["api/app.py".to_owned()]),
                ("web:lint".to_owned(), vec!["web/index.js".to_owned()]),
            ],
            "web/x.py is web's, whose task reads no Python"
        );
        let commit = trigger(TriggerKind::Commit, Some(&["api/app.py", "web/index.js"]));
        assert_eq!(
            offers(&route(&p, &all_trusted(&p), &commit)),
            [("web:lint".to_owned(), vec!["web/index.js".to_owned()])]
        );
        let whole = trigger(TriggerKind::Commit, None);
        assert_eq!(
            offers(&route(&p, &all_trusted(&p), &whole)),
            [("web:lint".to_owned(), vec![])]
        );
    }

    #[test]
    fn untrusted_skipped_and_only_tasks() {
        let p = projects();
        let mut trust = all_trusted(&p);
        trust.insert(
            "api:lint".into(),
            TaskTrust::Changed {
                diff: vec!["+ file x".into()],
            },
        );
        trust.remove("web:lint");
        let mut save = trigger(
            TriggerKind::Save,
            Some(&["tool.py", "api/app.py", "web/index.js"]),
        );
        let routed = route(&p, &trust, &save);
        assert_eq!(
            offers(&routed),
            [("lint".to_owned(), vec!["tool.py".to_owned()])]
        );
        assert!(routed.contains(&Routed::Untrusted {
            key: "api:lint".into(),
            state: trust["api:lint"].clone(),
        }));
        // `BGTASK_SKIP=lint` skips the task of every project; a key, one.
        let trust = all_trusted(&p);
        save.skip = vec!["api:lint".into()];
        assert_eq!(offers(&route(&p, &trust, &save)).len(), 2);
        save.skip = vec!["lint".into()];
        assert!(route(&p, &trust, &save).is_empty());
        save.skip.clear();
        save.only = Some("web:lint".into());
        assert_eq!(offers(&route(&p, &trust, &save))[0].0, "web:lint");
    }
}
