//! `file:` URIs to worktree paths: the absolute path a URI names
//! (percent-decoded), and the repo-relative path of a document inside the
//! worktree, the key its findings are stored under. Owns nothing else; the
//! server echoes the editor's own URIs back and never builds one.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The absolute path a `file:` URI names; `None` for other schemes, a
/// remote host or a malformed escape.
pub fn to_path(uri: &str) -> Option<PathBuf> {
    let rest = strip_prefix_ignore_case(uri, "file://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(at) if rest[..at].eq_ignore_ascii_case("localhost") => &rest[at..],
        _ => return None,
    };
    let bytes = decode(path)?;
    Some(PathBuf::from(OsString::from_vec(bytes)))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Percent-decoding, to bytes (a path need not be UTF-8).
fn decode(s: &str) -> Option<Vec<u8>> {
    let raw = s.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The repo-relative path (`/`-separated) of the document at `uri` in the
/// worktree at `root` (canonical); `None` outside it. Links in the
/// document's path are resolved when the file exists.
pub fn relative(root: &Path, uri: &str) -> Option<String> {
    let path = to_path(uri)?;
    let path = path.canonicalize().unwrap_or(path);
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(p) => p.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_name_paths() {
        let cases: &[(&str, Option<&str>)] = &[
            ("file:///home/a/src/x.py", Some("/home/a/src/x.py")),
            ("FILE:///home/a/x.py", Some("/home/a/x.py")),
            ("file://localhost/home/a/x.py", Some("/home/a/x.py")),
            (
                "file:///home/a/my%20file%C3%A9.py",
                Some("/home/a/my fileé.py"),
            ),
            ("file:///home/a/x.py#L3", Some("/home/a/x.py")),
            ("file://server/share/x.py", None),
            ("untitled:Untitled-1", None),
            ("https://example.com/x.py", None),
            ("file:///home/a/bad%2", None),
            ("file:///home/a/bad%zz", None),
        ];
        for (uri, want) in cases {
            assert_eq!(to_path(uri), want.map(PathBuf::from), "{uri}");
        }
    }

    #[test]
    fn documents_are_keyed_by_their_repo_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src/shop")).unwrap();
        std::fs::write(root.join("src/shop/orders.py"), "").unwrap();
        let uri = |p: &Path| format!("file://{}", p.display());
        assert_eq!(
            relative(&root, &uri(&root.join("src/shop/orders.py"))).as_deref(),
            Some("src/shop/orders.py")
        );
        assert_eq!(
            relative(&root, &uri(&root.join("not/yet.py"))).as_deref(),
            Some("not/yet.py")
        );
        assert_eq!(relative(&root, &uri(&root)), None);
        assert_eq!(relative(&root, "file:///elsewhere/x.py"), None);
    }
}
