//! Path globs as users write them in config.
//!
//! Owns one matching rule used everywhere (analyzer `files`, task `paths`,
//! watch excludes): a pattern without `/` matches a file's name at any depth
//! (`*.py`, like `.gitignore`); a pattern with `/` matches the whole
//! repo-relative path, where `*` stops at `/` and `**` crosses directories.
//! A leading `/` anchors a pattern at the root. Brace alternatives
//! (`*.{js,ts}`) work in both.

use std::sync::OnceLock;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiled patterns. Each pattern is checked when the config is read; the
/// matcher (a regex automaton, the costly part) is built on first use, so
/// analyzers that are not run cost nothing.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    /// Each glob, and whether it matches the whole path (else the name).
    globs: Vec<(Glob, bool)>,
    sets: OnceLock<(GlobSet, GlobSet)>,
}

impl Globs {
    /// Checks `patterns`; the error names the bad pattern and why.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Globs, GlobError> {
        let mut globs = Vec::with_capacity(patterns.len());
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let glob = compile(pattern).map_err(|e| GlobError {
                index,
                pattern: pattern.to_owned(),
                reason: e.kind().to_string(),
            })?;
            globs.push((glob, pattern.contains('/')));
        }
        Ok(Globs {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            globs,
            sets: OnceLock::new(),
        })
    }

    fn sets(&self) -> &(GlobSet, GlobSet) {
        self.sets.get_or_init(|| {
            let mut by_name = GlobSetBuilder::new();
            let mut by_path = GlobSetBuilder::new();
            for (glob, whole_path) in &self.globs {
                if *whole_path {
                    by_path.add(glob.clone());
                } else {
                    by_name.add(glob.clone());
                }
            }
            let build = |b: GlobSetBuilder| b.build().unwrap_or_else(|_| GlobSet::empty());
            (build(by_name), build(by_path))
        })
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `rel` is repo-relative with `/` separators.
    pub fn is_match(&self, rel: &str) -> bool {
        let (by_name, by_path) = self.sets();
        let name = rel.rsplit('/').next().unwrap_or(rel);
        by_name.is_match(name) || by_path.is_match(rel)
    }
}

/// A path as globs see it (`/`-separated); borrowed when it already is.
pub fn slashed(p: &std::path::Path) -> std::borrow::Cow<'_, str> {
    match p.to_string_lossy() {
        std::borrow::Cow::Borrowed(s) if !s.contains('\\') => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.replace('\\', "/")),
    }
}

fn compile(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern.trim_start_matches('/'))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid glob `{pattern}`: {reason}")]
pub struct GlobError {
    /// Position of the bad pattern in the list.
    pub index: usize,
    pub pattern: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        let rows: &[(&[&str], &str, bool)] = &[
            (&["*.py"], "a.py", true),
            (&["*.py"], "src/deep/a.py", true),
            (&["**/*.py"], "a.py", true),
            (&["**/*.py"], "src/a.py", true),
            (&["src/*.py"], "src/a.py", true),
            (&["src/*.py"], "src/x/a.py", false),
            (&["src/**"], "src/x/a.py", true),
            (&["/src/*.py"], "src/a.py", true),
            (&["*.{js,ts}"], "web/app.ts", true),
            (&["*.{js,ts}"], "web/app.tsx", false),
            (&["test_*.py"], "tests/test_a.py", true),
            (&["package-lock.json"], "package-lock.json", true),
            (&["package-lock.json"], "sub/package-lock.json", true),
            (&["/package-lock.json"], "sub/package-lock.json", false),
            (&[], "a.py", false),
        ];
        for (patterns, path, want) in rows {
            let g = Globs::new(patterns).unwrap();
            assert_eq!(g.is_match(path), *want, "{patterns:?} vs {path}");
        }
    }

    #[test]
    fn bad_pattern_is_named() {
        let err = Globs::new(&["ok/*.py", "src/[a"]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.to_string().contains("`src/[a`"), "{err}");
    }
}
