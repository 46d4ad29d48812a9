//! A repository's web pages: the page of a remote (`git@github.com:o/r.git`
//! → `https://github.com/o/r`) and the address of a file's line at a commit
//! on GitHub, GitLab (any host named `gitlab…`) and Bitbucket; any other
//! host is taken to lay out its pages like GitHub (GitHub Enterprise).
//! Pure: nothing here runs git.

use std::fmt::Write;

/// How a host lays out a file's page at a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forge {
    /// `/blob/{commit}/{path}#L{line}`.
    GitHub,
    /// `/-/blob/{commit}/{path}#L{line}`.
    GitLab,
    /// `/src/{commit}/{path}#lines-{line}`.
    Bitbucket,
}

impl Forge {
    fn of(repository: &str) -> Forge {
        let host = repository
            .split_once("://")
            .map_or(repository, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or("");
        if host.contains("gitlab") {
            Forge::GitLab
        } else if host.contains("bitbucket") {
            Forge::Bitbucket
        } else {
            Forge::GitHub
        }
    }
}

/// The web page of the repository a remote URL names: https, http, ssh,
/// git and scp-like (`git@host:owner/repo.git`) forms, credentials and
/// ports dropped. `None` for a local path, or a host whose pages we cannot
/// address by path (Azure DevOps).
pub fn web_url(remote: &str) -> Option<String> {
    let remote = remote.trim();
    let (scheme, authority, path) = if let Some((scheme, rest)) = remote.split_once("://") {
        let (authority, path) = rest.split_once('/')?;
        (scheme, authority, path)
    } else {
        // scp-like `[user@]host:path`: no slash before the colon.
        let (authority, path) = remote.split_once(':')?;
        if authority.is_empty() || authority.contains('/') {
            return None;
        }
        ("ssh", authority, path)
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (web_scheme, host) = match scheme {
        "https" | "http" => (scheme, host),
        // An ssh or git port is not the web server's.
        "ssh" | "git" | "git+ssh" | "ssh+git" => ("https", host.split(':').next().unwrap_or("")),
        _ => return None,
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let unsupported = host.contains("azure.com") || host.contains("visualstudio.com");
    if host.is_empty() || !path.contains('/') || unsupported {
        return None;
    }
    Some(format!("{web_scheme}://{host}/{path}"))
}

/// The page of `path` (relative to the repository's top, `/`-separated)
/// at `commit`, scrolled to `line` when there is one.
pub fn blob_url(repository: &str, commit: &str, path: &str, line: Option<u32>) -> String {
    let repository = repository.trim_end_matches('/');
    let path = encode_path(path);
    match (Forge::of(repository), line) {
        (Forge::GitHub, Some(l)) => format!("{repository}/blob/{commit}/{path}#L{l}"),
        (Forge::GitHub, None) => format!("{repository}/blob/{commit}/{path}"),
        (Forge::GitLab, Some(l)) => format!("{repository}/-/blob/{commit}/{path}#L{l}"),
        (Forge::GitLab, None) => format!("{repository}/-/blob/{commit}/{path}"),
        (Forge::Bitbucket, Some(l)) => format!("{repository}/src/{commit}/{path}#lines-{l}"),
        (Forge::Bitbucket, None) => format!("{repository}/src/{commit}/{path}"),
    }
}

/// Percent-encodes everything in a path but unreserved characters and `/`
/// (RFC 3986), for links and SARIF URIs.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_url_of_each_remote_form() {
        let rows = [
            (
                "https://github.com/example/app.git",
                Some("https://github.com/example/app"),
            ),
            (
                "https://github.com/example/app",
                Some("https://github.com/example/app"),
            ),
            (
                "https://github.com/example/app/",
                Some("https://github.com/example/app"),
            ),
            (
                "https://x-access-token:ghs_secret@github.com/example/app.git",
                Some("https://github.com/example/app"),
            ),
            (
                "git@github.com:example/app.git",
                Some("https://github.com/example/app"),
            ),
            (
                "github.com:example/app",
                Some("https://github.com/example/app"),
            ),
            (
                "ssh://git@github.com/example/app.git",
                Some("https://github.com/example/app"),
            ),
            (
                "ssh://git@git.example.com:2222/team/app.git",
                Some("https://git.example.com/team/app"),
            ),
            (
                "git://github.com/example/app.git",
                Some("https://github.com/example/app"),
            ),
            (
                "git@gitlab.com:group/sub/app.git",
                Some("https://gitlab.com/group/sub/app"),
            ),
            (
                "http://git.local:3000/team/app.git",
                Some("http://git.local:3000/team/app"),
            ),
            (
                "  https://github.com/example/app.git\n",
                Some("https://github.com/example/app"),
            ),
            ("/srv/git/app.git", None),
            ("../app", None),
            ("file:///srv/git/app.git", None),
            ("https://github.com/", None),
            ("https://dev.azure.com/org/project/_git/app", None),
            ("git@ssh.dev.azure.com:v3/org/project/app", None),
            ("", None),
        ];
        for (remote, want) in rows {
            assert_eq!(web_url(remote).as_deref(), want, "{remote}");
        }
    }

    #[test]
    fn blob_url_per_forge() {
        let rows = [
            (
                "https://github.com/example/app",
                Some(12),
                "https://github.com/example/app/blob/abc123/src/a.py#L12",
            ),
            (
                "https://github.com/example/app",
                None,
                "https://github.com/example/app/blob/abc123/src/a.py",
            ),
            (
                "https://gitlab.com/group/sub/app",
                Some(3),
                "https://gitlab.com/group/sub/app/-/blob/abc123/src/a.py#L3",
            ),
            (
                "https://gitlab.example.com/team/app/",
                None,
                "https://gitlab.example.com/team/app/-/blob/abc123/src/a.py",
            ),
            (
                "https://bitbucket.org/team/app",
                Some(7),
                "https://bitbucket.org/team/app/src/abc123/src/a.py#lines-7",
            ),
        ];
        for (repo, line, want) in rows {
            assert_eq!(blob_url(repo, "abc123", "src/a.py", line), want, "{repo}");
        }
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(
            blob_url(
                "https://github.com/o/r",
                "c",
                "dir with space/ü#1.py",
                Some(1)
            ),
            "https://github.com/o/r/blob/c/dir%20with%20space/%C3%BC%231.py#L1"
        );
    }
}
