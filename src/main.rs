//! The `bgtask` binary: logging, argument parsing, and turning the result
//! into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BGTASK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let cli = match bgtask::cli::Cli::try_parse() {
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
    match bgtask::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = bgtask::cli::exit_code(&err);
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
