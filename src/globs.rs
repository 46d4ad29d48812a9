//! Path globs as users write them in config.
//!
//! Owns one matching rule used everywhere (analyzer `files`, task `paths`,
//! watch excludes): a pattern without `/` matches a file's name at any depth
//! (`*.py`, like `.gitignore`); a pattern with `/` matches the whole
//! repo-relative path, where `*` stops at `/` and `**` crosses directories.
//! A leading `/` anchors a pattern at the root. Brace alternatives
//! (`*.{js,ts}`) work in both.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    by_name: GlobSet,
    by_path: GlobSet,
}

impl Globs {
    /// Compiles `patterns`; the error names the bad pattern and why.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Globs, GlobError> {
        let mut by_name = GlobSetBuilder::new();
        let mut by_path = GlobSetBuilder::new();
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let glob = compile(pattern).map_err(|e| GlobError {
                index,
                pattern: pattern.to_owned(),
                reason: e.kind().to_string(),
            })?;
            if pattern.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| b.build().expect("globs compiled one by one");
        Ok(Globs {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            by_name: build(by_name),
            by_path: build(by_path),
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
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.by_name.is_match(name) || self.by_path.is_match(rel)
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
