//! The `bgtask` binary: logging, argument parsing, and turning the result
//! into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A git hook's shim: straight to the tiny client, before argument
    // parsing and logging (git waits for it on every commit).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() > 2 && args[1] == "hook" && args[2] != "--gate" {
        return ExitCode::from(bgtask::hooks::client::main(&args[2..]));
    }
    quiet_on_closed_pipe();
    let cli = match bgtask::cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                bgtask::exit::USAGE
            } else {
                bgtask::exit::OK
            });
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BGTASK_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(bgtask::cli::default_log_level(&cli))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match bgtask::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = bgtask::cli::exit_code(&err);
            if code == bgtask::exit::CLOSED_PIPE {
                return ExitCode::from(code);
            }
            let mut chain = err.chain();
            if let Some(top) = chain.next() {
                anstream::eprintln!("error: {top}");
            }
            for cause in chain {
                anstream::eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code)
        }
    }
}

/// `bgtask history | head`: printing to a pipe whose reader left panics
/// in Rust's print macros (and in the completion generator); end quietly
/// instead, as a program that SIGPIPE ended would.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.contains("Broken pipe") || payload.contains("kind: BrokenPipe") {
            std::process::exit(i32::from(bgtask::exit::CLOSED_PIPE));
        }
        default(info);
    }));
}
