//! `bgtask-hook`: what the git hook shims run (`bgtask hook` without the
//! rest of bgtask). A binary of its own because git waits for it on every
//! commit: without the CLI, the runtime, SQLite and the notifiers it is a
//! fraction of `bgtask`'s size and starts in a fraction of its time.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut given = std::env::args_os();
    let argv0 = std::path::PathBuf::from(given.next().unwrap_or_default());
    let args: Vec<std::ffi::OsString> = given.collect();
    // `.git/hooks/post-commit` can be a link to this binary: then it is
    // the hook itself.
    if bgtask::hooks::linked::invoked_as(&argv0).is_some() {
        return ExitCode::from(bgtask::hooks::linked::run(&argv0, &args));
    }
    ExitCode::from(bgtask::hooks::client::main(&args))
}
