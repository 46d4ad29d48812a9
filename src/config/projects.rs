//! The projects of a worktree. Every `.background-tasks.json` defines a
//! project rooted at its directory; a file belongs to the innermost project
//! that contains it. The worktree's own project (its top directory, with
//! its config or the built-in default) is always there, and its config
//! alone decides what is the daemon's as a whole: execution, triggers,
//! notifications, retention. A nested config inherits nothing.
//!
//! One daemon serves them all. It knows a nested project's task by a key
//! that names the project, `services/api:lint` (task names cannot hold a
//! `:` or a `/`), and the worktree project's tasks by their plain names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CONFIG_FILE, Config, ConfigError, LOCAL_CONFIG_FILE};

/// One project: where it is and its own config.
#[derive(Debug, Clone)]
pub struct Project {
    /// Relative to the worktree; empty for the worktree's own project.
    pub dir: PathBuf,
    pub config: Arc<Config>,
}

impl Project {
    /// `services/api`, or `.` for the worktree's own project.
    pub fn name(&self) -> String {
        if self.dir.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            self.dir.to_string_lossy().into_owned()
        }
    }

    /// The key its task `task` goes by in the daemon.
    pub fn key(&self, task: &str) -> String {
        if self.dir.as_os_str().is_empty() {
            task.to_owned()
        } else {
            format!("{}:{task}", self.dir.to_string_lossy())
        }
    }

    pub fn is_worktree(&self) -> bool {
        self.dir.as_os_str().is_empty()
    }

    /// `file` (relative to the worktree) relative to this project.
    pub fn relative<'a>(&self, file: &'a Path) -> Option<&'a Path> {
        file.strip_prefix(&self.dir).ok()
    }
}

/// The worktree's project and the nested ones.
#[derive(Debug, Clone)]
pub struct Projects {
    /// The worktree's own project first, then the nested ones by path.
    list: Vec<Project>,
}

impl Projects {
    /// A worktree with one project.
    pub fn single(config: Config) -> Projects {
        Projects {
            list: vec![Project {
                dir: PathBuf::new(),
                config: Arc::new(config),
            }],
        }
    }

    /// The worktree's project and the nested ones, configs given.
    pub fn with(root: Config, nested: Vec<(PathBuf, Config)>) -> Projects {
        let mut projects = Projects::single(root);
        projects
            .list
            .extend(nested.into_iter().map(|(dir, config)| Project {
                dir,
                config: Arc::new(config),
            }));
        projects
    }

    /// The worktree's project (its config given) and the projects in
    /// `nested` (directories relative to `top`, each holding a config).
    /// The first bad config is the error; it names its file.
    pub fn load(top: &Path, root: Config, nested: &[PathBuf]) -> Result<Projects, ConfigError> {
        let mut projects = Projects::single(root);
        let mut nested: Vec<&PathBuf> = nested
            .iter()
            .filter(|d| !d.as_os_str().is_empty())
            .collect();
        nested.sort();
        nested.dedup();
        for dir in nested {
            let config = super::load(&top.join(dir))?;
            projects.list.push(Project {
                dir: dir.clone(),
                config: Arc::new(config),
            });
        }
        Ok(projects)
    }

    pub fn worktree(&self) -> &Project {
        &self.list[0]
    }

    pub fn all(&self) -> &[Project] {
        &self.list
    }

    /// Whether the worktree has projects below its top.
    pub fn has_nested(&self) -> bool {
        self.list.len() > 1
    }

    /// The innermost project holding `file` (relative to the worktree).
    pub fn owner(&self, file: &Path) -> &Project {
        self.list
            .iter()
            .filter(|p| file.starts_with(&p.dir))
            .max_by_key(|p| p.dir.components().count())
            .unwrap_or(&self.list[0])
    }

    /// The project of a task key and the task's own name in it.
    pub fn task<'k>(&self, key: &'k str) -> Option<(&Project, &'k str)> {
        let (project, name) = match key.rsplit_once(':') {
            None => (&self.list[0], key),
            Some((dir, name)) => (
                self.list[1..].iter().find(|p| p.dir.as_os_str() == dir)?,
                name,
            ),
        };
        project
            .config
            .tasks
            .contains_key(name)
            .then_some((project, name))
    }

    /// Every task's key, with its project and definition.
    pub fn tasks(&self) -> impl Iterator<Item = (String, &Project, &super::Task)> {
        self.list.iter().flat_map(|p| {
            p.config
                .tasks
                .iter()
                .map(move |(name, task)| (p.key(name), p, task))
        })
    }

    /// The worktree's config with every nested project's tasks added under
    /// their keys: what the daemon schedules by. A nested task's analyzers
    /// are its project's (look them up with [`Projects::task`]).
    pub fn combined(&self) -> Config {
        let mut config = (*self.list[0].config).clone();
        for p in &self.list[1..] {
            for (name, task) in &p.config.tasks {
                let key = p.key(name);
                let mut task = task.clone();
                task.name.clone_from(&key);
                config.tasks.insert(key, task);
            }
            config.files.extend(p.config.files.iter().cloned());
        }
        config
    }
}

/// Whether a save names the config of a project below the worktree's top
/// (the root's own are watched on their own).
pub fn names_nested_config(files: &[std::path::PathBuf]) -> bool {
    files.iter().any(|f| {
        f.components().count() > 1
            && f.file_name()
                .is_some_and(|n| n == CONFIG_FILE || n == LOCAL_CONFIG_FILE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tasks: &str) -> Config {
        let text = format!(r#"{{"version": 1, "tasks": {{{tasks}}}}}"#);
        super::super::from_text(Path::new("x.json"), &text).expect("valid config")
    }

    fn projects() -> Projects {
        let mut p = Projects::single(config(r#""lint": {"analyzers": ["pylint"]}"#));
        for dir in ["services/api", "services/api/worker", "packages/web"] {
            p.list.push(Project {
                dir: PathBuf::from(dir),
                config: Arc::new(config(r#""lint": {"analyzers": ["eslint"]}"#)),
            });
        }
        p
    }

    #[test]
    fn a_file_belongs_to_the_innermost_project() {
        let p = projects();
        let owner = |f: &str| p.owner(Path::new(f)).name();
        assert_eq!(owner("setup.py"), ".");
        assert_eq!(owner("services/api/app.py"), "services/api");
        assert_eq!(owner("services/api/worker/jobs.py"), "services/api/worker");
        assert_eq!(
            owner("services/apiary/x.py"),
            ".",
            "a prefix is not a parent"
        );
        assert_eq!(owner("packages/web/src/a.js"), "packages/web");
    }

    #[test]
    fn keys_name_the_project_and_find_it_again() {
        let p = projects();
        let keys: Vec<String> = p.tasks().map(|(k, _, _)| k).collect();
        assert_eq!(
            keys,
            [
                "lint",
                "services/api:lint",
                "services/api/worker:lint",
                "packages/web:lint"
            ]
        );
        let (project, name) = p.task("services/api/worker:lint").expect("known");
        assert_eq!(
            (project.name().as_str(), name),
            ("services/api/worker", "lint")
        );
        assert_eq!(p.task("lint").map(|(p, _)| p.name()), Some(".".into()));
        assert!(p.task("services/api:nope").is_none());
        assert!(p.task("elsewhere:lint").is_none());
        let combined = p.combined();
        assert_eq!(combined.tasks.len(), 4);
        assert_eq!(
            combined.tasks["packages/web:lint"].name,
            "packages/web:lint"
        );
        assert_eq!(
            combined.tasks["packages/web:lint"].analyzers,
            ["eslint"],
            "a nested task keeps its own analyzers"
        );
    }
}
