//! `bgtask-hook`: what the git hook shims run (`bgtask hook` without the
//! rest of bgtask). A binary of its own because git waits for it on every
//! commit: without the CLI, the runtime, SQLite and the notifiers it is a
//! fraction of `bgtask`'s size and starts in a fraction of its time.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    ExitCode::from(bgtask::hooks::client::main(&args))
}
