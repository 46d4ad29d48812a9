//! What an analyzer's globs make of the project's whole file list: whether
//! a file it `requires` is there, the tool's config files, and the files
//! it would look at. Matching 100 000 paths against the globs takes tens
//! of milliseconds, and the daemon plans every job with the same kept list
//! (`index.rs`) until a file comes or goes — a checkout that rewrites
//! 10 000 files changes none of it. So a scan is kept for as long as the
//! very list it was made of lives, by the list's identity (a `Weak`, which
//! keeps its address from being reused), and made again for a new list.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::analyze::AnalyzerDef;
use crate::config::Task;
use crate::globs::{Globs, slashed as rel};

/// Scans kept (a few analyzers, a list or two).
const KEPT: usize = 32;

#[derive(Debug)]
pub struct Scan {
    /// No file is `required`, or one is there.
    pub requires_met: bool,
    /// The tool's config files and the files that make it apply (they key
    /// the cache), sorted.
    pub configs: Vec<PathBuf>,
    /// The files it would look at (its `files` globs and its tasks'
    /// paths), as positions in the list: a small kept copy.
    candidates: Candidates,
}

#[derive(Debug)]
enum Candidates {
    All,
    Some(Vec<u32>),
}

impl Scan {
    /// Every file of the list is a candidate.
    pub fn takes_all(&self) -> bool {
        matches!(self.candidates, Candidates::All)
    }

    /// The candidate files, in the list's order.
    pub fn candidates<'a>(
        &'a self,
        files: &'a [PathBuf],
    ) -> Box<dyn Iterator<Item = &'a PathBuf> + 'a> {
        match &self.candidates {
            Candidates::All => Box::new(files.iter()),
            Candidates::Some(at) => Box::new(at.iter().filter_map(|&i| files.get(i as usize))),
        }
    }
}

/// Whether any of `g` matches.
pub fn matches(g: Option<&Globs>, p: &str) -> bool {
    g.is_some_and(|g| g.is_match(p))
}

/// Whether one of the analyzer's tasks (or an explicit request) lets it
/// look at `r`.
pub fn allowed(tasks: &[&Task], explicit: bool, r: &str) -> bool {
    explicit
        || tasks.is_empty()
        || tasks.iter().any(|t| {
            t.paths.as_ref().is_none_or(|g| g.is_match(r)) && !matches(t.exclude_paths.as_ref(), r)
        })
}

/// The analyzer's config-file globs.
pub fn config_globs(def: &AnalyzerDef) -> Globs {
    Globs::new(&def.config_files).unwrap_or_else(|_| Globs::new::<&str>(&[]).expect("empty globs"))
}

type Entry = (Weak<Vec<PathBuf>>, String, Arc<Scan>);

static KEPT_SCANS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The scan of `files` for `def` as used by `tasks`: kept, or made now.
pub fn scan(
    files: &Arc<Vec<PathBuf>>,
    def: &AnalyzerDef,
    tasks: &[&Task],
    explicit: bool,
) -> Arc<Scan> {
    let key = key(def, tasks, explicit);
    {
        let mut kept = KEPT_SCANS.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|(list, _, _)| list.strong_count() > 0);
        if let Some((_, _, s)) = kept
            .iter()
            .find(|(list, k, _)| *k == key && std::ptr::eq(list.as_ptr(), Arc::as_ptr(files)))
        {
            return s.clone();
        }
    }
    let made = Arc::new(make(files, def, tasks, explicit));
    let mut kept = KEPT_SCANS.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() >= KEPT {
        kept.remove(0);
    }
    kept.push((Arc::downgrade(files), key, made.clone()));
    made
}

/// What the scan depends on besides the list.
fn key(def: &AnalyzerDef, tasks: &[&Task], explicit: bool) -> String {
    let mut k = format!("{}\0{explicit}", def.digest);
    for t in tasks {
        for (what, g) in [("+", &t.paths), ("-", &t.exclude_paths)] {
            k.push('\0');
            k.push_str(what);
            if let Some(g) = g {
                k.push_str(&g.patterns().join("\u{1}"));
            }
        }
    }
    k
}

fn make(files: &[PathBuf], def: &AnalyzerDef, tasks: &[&Task], explicit: bool) -> Scan {
    let config_files = config_globs(def);
    let mut requires_met = def.requires.is_none();
    let mut configs = Vec::new();
    let mut at = Vec::new();
    for (i, p) in files.iter().enumerate() {
        let r = rel(p);
        let required = matches(def.requires.as_ref(), &r);
        requires_met |= required;
        if required || config_files.is_match(&r) {
            configs.push(p.clone());
        }
        if matches(def.files.as_ref(), &r) && allowed(tasks, explicit, &r) {
            at.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
    }
    let candidates = if at.len() == files.len() {
        Candidates::All
    } else {
        Candidates::Some(at)
    };
    Scan {
        requires_met,
        configs,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> crate::config::Config {
        crate::config::from_text(std::path::Path::new("c.json"), text).unwrap()
    }

    #[test]
    fn a_scan_is_kept_while_its_list_lives_and_only_for_the_same_globs() {
        let c = config(
            r#"{"tasks": {"t": {"analyzers": ["radon"], "paths": ["src/**"]}, "u": {"analyzers": ["radon"]}}}"#,
        );
        let def = &c.analyzers["radon"];
        let files: Arc<Vec<PathBuf>> = Arc::new(
            ["a.py", "docs/x.md", "src/b.py", "src/c.txt"]
                .iter()
                .map(PathBuf::from)
                .collect(),
        );
        let t = vec![&c.tasks["t"]];
        let first = scan(&files, def, &t, false);
        let names: Vec<&PathBuf> = first.candidates(&files).collect();
        assert_eq!(names, [&PathBuf::from("src/b.py")]);
        assert!(Arc::ptr_eq(&first, &scan(&files, def, &t, false)), "kept");
        // Other tasks' paths: a scan of its own.
        let u = vec![&c.tasks["u"]];
        let other = scan(&files, def, &u, false);
        let all: Vec<&PathBuf> = other.candidates(&files).collect();
        assert_eq!(all, [&PathBuf::from("a.py"), &PathBuf::from("src/b.py")]);
        // The same paths in another list: made again.
        let copy = Arc::new(files.as_ref().clone());
        assert!(!Arc::ptr_eq(&first, &scan(&copy, def, &t, false)));
        // A list dropped: its scans go with it at the next look.
        let gone = Arc::downgrade(&copy);
        drop(copy);
        scan(&files, def, &t, false);
        let kept = KEPT_SCANS.lock().unwrap();
        assert!(!kept.iter().any(|(list, _, _)| list.ptr_eq(&gone)));
    }
}
