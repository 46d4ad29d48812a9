//! The flagged source lines of a run's findings, read from the worktree
//! now (through `repofile`: no link out of the worktree, no FIFO, under a
//! cap), each saying whether its file changed since the run started.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

/// Files larger than this are not read for their lines.
const CAP: u64 = 4 * 1024 * 1024;

/// Adds `source: {"text", "changed"}` to each finding of `report` (a
/// report as JSON) whose line can be read from the worktree at `root`.
pub fn attach(root: &Path, report: &mut Value) {
    let started = report["started"]
        .as_str()
        .and_then(|s| humantime::parse_rfc3339_weak(s).ok());
    let mut files: HashMap<String, Option<(Vec<String>, bool)>> = HashMap::new();
    let Some(findings) = report["findings"].as_array_mut() else {
        return;
    };
    for f in findings {
        let (Some(path), Some(line)) = (
            f["location"]["path"].as_str().map(str::to_owned),
            f["location"]["line"].as_u64(),
        ) else {
            continue;
        };
        let file = files
            .entry(path.clone())
            .or_insert_with(|| read(root, &path, started));
        let Some((lines, changed)) = file else {
            continue;
        };
        let index = usize::try_from(line)
            .unwrap_or(usize::MAX)
            .saturating_sub(1);
        if let Some(text) = lines.get(index) {
            f["source"] = json!({"text": text, "changed": changed});
        }
    }
}

/// The file's lines, and whether it was modified after `started`.
fn read(root: &Path, rel: &str, started: Option<SystemTime>) -> Option<(Vec<String>, bool)> {
    let lines = crate::repofile::read_lines(root, rel, CAP).ok()??;
    let modified = std::fs::metadata(root.join(rel))
        .and_then(|m| m.modified())
        .ok();
    // The run's start is stored to the second: a file written in the
    // second the run started is not counted as changed after it.
    let changed =
        matches!((modified, started), (Some(m), Some(s)) if m > s + Duration::from_secs(1));
    Some((lines, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_attached_and_a_later_change_is_said() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "one\ntwo # TODO\nthree\n").unwrap();
        let mut report = json!({
            "started": "2000-01-01T00:00:00Z",
            "findings": [
                {"location": {"path": "a.py", "line": 2}},
                {"location": {"path": "a.py", "line": 9}},
                {"location": {"path": "gone.py", "line": 1}},
                {"message": "no location"}
            ]
        });
        attach(dir.path(), &mut report);
        let f = &report["findings"];
        assert_eq!(
            f[0]["source"],
            json!({"text": "two # TODO", "changed": true})
        );
        assert!(f[1].get("source").is_none(), "past the end");
        assert!(f[2].get("source").is_none(), "no such file");
        assert!(f[3].get("source").is_none());
    }
}
