//! Finishing findings once an analyzer is done: anchoring findings without
//! a location to the file that explains them (a vulnerable package to its
//! line in `requirements.txt` or `package-lock.json`, a failed `npm test` to
//! `package.json`), and giving every finding its identity and fingerprint
//! from the text around the flagged line (`analyze/identity.rs`). Reports
//! need both: SARIF consumers require a location, and "new since last run"
//! needs fingerprints that survive unrelated edits.

use std::collections::HashMap;
use std::path::Path;

use crate::analyze::identity::{self, Source};
use crate::analyze::{AnalyzerDef, Finding, Location};

/// The analyzer's first `requires` entry that is a plain path and exists.
fn anchor_file(def: &AnalyzerDef, root: &Path) -> Option<String> {
    def.requires.as_ref()?.patterns().iter().find_map(|p| {
        let plain = p.trim_start_matches('/');
        let literal = !plain.contains(['*', '?', '[', '{']);
        (literal && root.join(plain).is_file()).then(|| plain.to_owned())
    })
}

/// Normalised Python distribution name (PEP 503).
fn pep503(name: &str) -> String {
    name.to_lowercase().replace(['_', '.'], "-")
}

/// 1-based line of `package` in a manifest.
fn package_line(text: &str, manifest: &str, package: &str) -> Option<u32> {
    let is_json = Path::new(manifest)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let found = if is_json {
        let needle = format!("\"node_modules/{package}\"");
        let plain = format!("\"{package}\"");
        text.lines().position(|l| l.contains(&needle)).or_else(|| {
            text.lines()
                .position(|l| l.trim_start().starts_with(&plain))
        })
    } else {
        let want = pep503(package);
        text.lines().position(|l| {
            let l = l.trim_start();
            let end = l
                .find(|c: char| !(c.is_alphanumeric() || "-_.".contains(c)))
                .unwrap_or(l.len());
            !l.starts_with('#') && end > 0 && pep503(&l[..end]) == want
        })
    };
    found.and_then(|i| u32::try_from(i + 1).ok())
}

/// The text of a repo-relative file, lossily decoded; `None` when it cannot
/// be read (gone, a link out of the worktree, over the cap).
fn read(root: &Path, path: &str) -> Option<String> {
    crate::repofile::read(Some(root), &root.join(path), 8 << 20)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub fn finish(findings: &mut [Finding], def: &AnalyzerDef, root: &Path) {
    let mut texts: HashMap<String, Option<String>> = HashMap::new();
    if let Some(file) = anchor_file(def, root) {
        for f in findings.iter_mut().filter(|f| f.location.is_none()) {
            let text = texts
                .entry(file.clone())
                .or_insert_with(|| read(root, &file));
            let line = match (&f.package, text) {
                (Some(pkg), Some(text)) => package_line(text, &file, &pkg.name),
                _ => None,
            };
            f.location = Some(Location::at(file.clone(), line.unwrap_or(0), None));
        }
    }
    // Identities need the text of every file a finding points into.
    let mut sources: HashMap<String, Source> = HashMap::new();
    for f in findings.iter().filter(|f| f.line().is_some()) {
        let Some(path) = f.path() else { continue };
        if sources.contains_key(path) {
            continue;
        }
        let text = texts.remove(path).unwrap_or_else(|| read(root, path));
        if let Some(text) = text {
            sources.insert(path.to_owned(), Source::new(path, &text));
        }
    }
    identity::identify(findings, &sources);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::parsers::testing::builtin;
    use crate::analyze::{Package, Severity};

    #[test]
    fn package_lines_in_manifests() {
        let req = "# pinned\nRequests==2.19.0\nzope.interface>=5\nurllib3 ; python_version>'3'\n";
        assert_eq!(package_line(req, "requirements.txt", "requests"), Some(2));
        assert_eq!(
            package_line(req, "requirements.txt", "zope-interface"),
            Some(3)
        );
        assert_eq!(package_line(req, "requirements.txt", "urllib3"), Some(4));
        assert_eq!(package_line(req, "requirements.txt", "idna"), None);
        let lock = "{\n  \"packages\": {\n    \"node_modules/lodash\": {\n      \"version\": \"4.17.20\"\n";
        assert_eq!(package_line(lock, "package-lock.json", "lodash"), Some(3));
    }

    #[test]
    fn audit_findings_are_anchored_and_fingerprinted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("requirements.txt"),
            "flask\nrequests==2.19.0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.py"), "x = 1\nx = 1\n").unwrap();
        let mut f1 = Finding::new("pip-audit", "PYSEC-1", Severity::High, "vuln");
        f1.package = Some(Package {
            name: "requests".into(),
            version: None,
            fixed_in: vec![],
        });
        let same = |line| {
            Finding::new("pip-audit", "R", Severity::Low, "m").at(Location::at("a.py", line, None))
        };
        let mut findings = vec![f1, same(1), same(2)];
        finish(&mut findings, &builtin("pip-audit"), dir.path());
        assert_eq!(
            findings[0].location,
            Some(Location::at("requirements.txt", 2, None))
        );
        assert!(findings.iter().all(|f| !f.fingerprint.is_empty()));
        // Same rule on two identical lines: different occurrences.
        assert_ne!(findings[1].fingerprint, findings[2].fingerprint);
        assert!(findings[1].fingerprint.ends_with(":0") && findings[2].fingerprint.ends_with(":1"));
    }
}
