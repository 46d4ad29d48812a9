//! Turning an analyzer's `args` template into argv arrays, never shell
//! strings.
//!
//! `{files}` becomes one argument per file (a path starting with `-` gets a
//! `./` so no tool reads it as an option); `{files_file}`, `{output}`,
//! `{output_dir}` and `{root}` are substituted inside arguments. Long file
//! lists are split into batches below the OS argument limit (and the
//! definition's `batch_size`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Paths for one invocation.
pub struct Slots<'a> {
    pub root: &'a Path,
    pub output: &'a Path,
    pub output_dir: &'a Path,
    pub files_file: &'a Path,
}

/// One argument per file, guarded against option injection.
fn file_arg(p: &Path) -> OsString {
    if p.as_os_str().as_bytes().first() == Some(&b'-') {
        Path::new(".").join(p).into_os_string()
    } else {
        p.as_os_str().to_owned()
    }
}

pub fn expand(template: &[String], files: &[PathBuf], slots: &Slots<'_>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(template.len() + files.len());
    for arg in template {
        if arg == "{files}" {
            out.extend(files.iter().map(|p| file_arg(p)));
            continue;
        }
        let s = arg
            .replace("{output_dir}", &slots.output_dir.to_string_lossy())
            .replace("{output}", &slots.output.to_string_lossy())
            .replace("{files_file}", &slots.files_file.to_string_lossy())
            .replace("{root}", &slots.root.to_string_lossy());
        out.push(s.into());
    }
    out
}

/// The newline-separated list written to `{files_file}`.
pub fn files_list(files: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files {
        out.extend_from_slice(file_arg(f).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Splits `files` so each batch's arguments stay within `byte_budget` bytes
/// (counting each argument's pointer and terminator) and `max_files` files.
pub fn batches(
    files: &[PathBuf],
    max_files: Option<usize>,
    byte_budget: usize,
) -> Vec<Vec<PathBuf>> {
    let max_files = max_files.unwrap_or(usize::MAX).max(1);
    let mut out: Vec<Vec<PathBuf>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for f in files {
        let cost = f.as_os_str().len() + 3 + 1 + std::mem::size_of::<usize>();
        if !current.is_empty() && (current.len() >= max_files || bytes + cost > byte_budget) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += cost;
        current.push(f.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Bytes of argv a batch may use: a quarter of `ARG_MAX` (the rest is the
/// environment, the template and headroom).
pub fn default_budget() -> usize {
    (crate::run::arg_max() / 4).clamp(16 * 1024, 1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn placeholders_and_dash_files() {
        let slots = Slots {
            root: Path::new("/r"),
            output: Path::new("/t/out.json"),
            output_dir: Path::new("/t"),
            files_file: Path::new("/t/files"),
        };
        let tpl: Vec<String> = [
            "-o",
            "{output}",
            "--output={output}",
            "--dir={output_dir}",
            "@{files_file}",
            "--",
            "{files}",
        ]
        .map(str::to_owned)
        .to_vec();
        let argv = expand(&tpl, &p(&["a.py", "-rf.py", "dir with space/b.py"]), &slots);
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "-o",
                "/t/out.json",
                "--output=/t/out.json",
                "--dir=/t",
                "@/t/files",
                "--",
                "a.py",
                "./-rf.py",
                "dir with space/b.py"
            ]
        );
        assert_eq!(files_list(&p(&["-x", "y"])), b"./-x\ny\n");
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let files: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("f{i}.py"))).collect();
        let by_count = batches(&files, Some(4), usize::MAX);
        assert_eq!(by_count.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let per_file = "f0.py".len() + 3 + 1 + std::mem::size_of::<usize>();
        let by_bytes = batches(&files, None, per_file * 3);
        assert_eq!(
            by_bytes.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        assert_eq!(batches(&files, None, 1).len(), 10, "one file always fits");
        assert!(batches(&[], None, 100).is_empty());
    }
}
