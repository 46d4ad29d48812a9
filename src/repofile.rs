//! Reading files a repository holds, safely: whatever bgtask reads because
//! a worktree contains it (the config and its local override, the tool
//! config files hashed for trust, `package.json`, report files analyzers
//! leave in the tree) may be hostile — a symlink to `/dev/zero`, a FIFO, a
//! 50 MB file — since one `git pull` can put it there (RELIABILITY 26).
//!
//! So such a file is opened without blocking (a FIFO would hang `open`),
//! without following a symlink that leads out of the worktree, must be a
//! regular file, and is read under a size cap; hashing streams it, so any
//! size costs bounded memory. Owns only this; what a caller does with a
//! refusal (a config error, a trust line) is the caller's.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a repository file was not read.
#[derive(Debug, thiserror::Error)]
pub enum RepoFileError {
    #[error("`{}` is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("`{}` is {size} bytes, over the {} cap", path.display(), human(*cap))]
    TooLarge { path: PathBuf, size: u64, cap: u64 },
    #[error("`{}` is a symbolic link out of the worktree (to `{}`)", path.display(), target.display())]
    OutsideWorktree { path: PathBuf, target: PathBuf },
    #[error("`{rel}` is not a path inside the worktree")]
    NotRelative { rel: String },
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `1 MiB`, `64 KiB`, `12 bytes`.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// What a symbolic link inside the worktree resolves to, when it leads
/// out of it; `None` for a regular path or a link that stays inside.
fn escape(root: &Path, path: &Path) -> Option<PathBuf> {
    let meta = path.symlink_metadata().ok()?;
    let parent_resolved = path
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .zip(root.canonicalize().ok())
        .is_some_and(|(p, r)| p.starts_with(r));
    if !meta.file_type().is_symlink() && parent_resolved {
        return None;
    }
    let root = root.canonicalize().ok()?;
    match path.canonicalize() {
        Ok(target) if target.starts_with(&root) => None,
        Ok(target) => Some(target),
        // A dangling link: whatever it names, it is not ours to read.
        Err(_) => Some(std::fs::read_link(path).unwrap_or_default()),
    }
}

/// Opens `path` for reading: `Ok(None)` when it does not exist. Never
/// blocks, never follows a link out of the worktree at `root` (`None`: a
/// file the user named, links followed), and refuses anything but a
/// regular file. Returns the file and its size.
pub fn open(root: Option<&Path>, path: &Path) -> Result<Option<(File, u64)>, RepoFileError> {
    let io = |source: std::io::Error| RepoFileError::Io {
        path: path.to_owned(),
        source,
    };
    match path.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
        Ok(_) => {}
    }
    if let Some(target) = root.and_then(|root| escape(root, path)) {
        return Err(RepoFileError::OutsideWorktree {
            path: path.to_owned(),
            target,
        });
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(RepoFileError::NotRegular {
            path: path.to_owned(),
        });
    }
    Ok(Some((file, meta.len())))
}

/// The whole file, at most `cap` bytes of it (a file that grows while it
/// is read is cut at the cap and refused too).
pub fn read(root: Option<&Path>, path: &Path, cap: u64) -> Result<Option<Vec<u8>>, RepoFileError> {
    let Some((file, size)) = open(root, path)? else {
        return Ok(None);
    };
    let too_large = |size| RepoFileError::TooLarge {
        path: path.to_owned(),
        size,
        cap,
    };
    if size > cap {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RepoFileError::Io {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > cap {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(
    root: Option<&Path>,
    path: &Path,
    cap: u64,
) -> Result<Option<String>, RepoFileError> {
    read(root, path, cap)?
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|e| RepoFileError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
            })
        })
        .transpose()
}

/// The lines of the file at `rel`, a path relative to the worktree at
/// `root`, read as [`read`] reads (no link out of the worktree, nothing but
/// a regular file, at most `cap` bytes), invalid UTF-8 replaced. An
/// absolute `rel` or one with `..` is refused before anything is opened.
pub fn read_lines(root: &Path, rel: &str, cap: u64) -> Result<Option<Vec<String>>, RepoFileError> {
    let inside = Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside || rel.is_empty() {
        return Err(RepoFileError::NotRelative {
            rel: rel.to_owned(),
        });
    }
    Ok(read(Some(root), &root.join(rel), cap)?.map(|bytes| {
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }))
}

/// The file's content hash (blake3), streamed: bounded memory at any size.
pub fn hash(root: Option<&Path>, path: &Path) -> Result<Option<blake3::Hash>, RepoFileError> {
    let Some((mut file, _)) = open(root, path)? else {
        return Ok(None);
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(RepoFileError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    Ok(Some(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_files_are_refused_quickly_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("ok.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.json")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("out.json")).unwrap();
        std::os::unix::fs::symlink("ok.json", root.join("in.json")).unwrap();
        let fifo = root.join("fifo.json");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::fs::write(root.join("big.json"), vec![b' '; 3000]).unwrap();

        let read = |name: &str| read(Some(root), &root.join(name), 2048);
        assert_eq!(read("ok.json").unwrap().unwrap(), b"{}");
        assert_eq!(read("in.json").unwrap().unwrap(), b"{}");
        assert!(read("missing.json").unwrap().is_none());
        let e = read("zero.json").unwrap_err();
        assert!(matches!(e, RepoFileError::OutsideWorktree { .. }), "{e}");
        assert!(e.to_string().contains("zero.json"), "{e}");
        assert!(matches!(
            read("out.json").unwrap_err(),
            RepoFileError::OutsideWorktree { .. }
        ));
        let e = read("fifo.json").unwrap_err();
        assert!(matches!(e, RepoFileError::NotRegular { .. }), "{e}");
        let e = read("big.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "`{}` is 3000 bytes, over the 2 KiB cap",
                root.join("big.json").display()
            )
        );
        assert!(matches!(
            read(".").unwrap_err(),
            RepoFileError::NotRegular { .. }
        ));
        assert!(hash(Some(root), &root.join("big.json")).unwrap().is_some());
        assert!(hash(Some(root), &root.join("fifo.json")).is_err());
        assert!(matches!(
            super::read(None, &root.join("zero.json"), 10).unwrap_err(),
            RepoFileError::NotRegular { .. }
        ));
    }

    #[test]
    fn lines_are_read_only_from_inside_the_worktree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.py"), b"one\r\ntw\xffo\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
        std::os::unix::fs::symlink("../../secret.txt", root.join("src/out.py")).unwrap();
        assert_eq!(
            read_lines(&root, "src/a.py", 100).unwrap().unwrap(),
            ["one", "tw\u{fffd}o"]
        );
        assert!(read_lines(&root, "src/gone.py", 100).unwrap().is_none());
        for rel in ["../secret.txt", "src/../../secret.txt", "/etc/hostname", ""] {
            let e = read_lines(&root, rel, 100).unwrap_err();
            assert!(matches!(e, RepoFileError::NotRelative { .. }), "{rel}: {e}");
        }
        assert!(matches!(
            read_lines(&root, "src/out.py", 100).unwrap_err(),
            RepoFileError::OutsideWorktree { .. }
        ));
    }

    #[test]
    fn a_worktree_reached_through_a_symlink_is_still_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/a.json"), "1").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let root = dir.path().join("link");
        assert_eq!(
            read(Some(&root), &root.join("a.json"), 10)
                .unwrap()
                .unwrap(),
            b"1"
        );
    }
}
