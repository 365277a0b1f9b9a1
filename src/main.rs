//! The `custody` command line. Library code reports typed errors; this edge
//! turns them into messages and exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(&args);
    match custody::clock::init() {
        Ok(None) => {}
        Ok(Some(start)) => tracing::warn!(
            "{} is set: FOR TESTS ONLY. This process's clock started at {} instead of the \
             real time, and everything it records (receipt times, deadlines, retention, \
             audit) carries that false time",
            custody::clock::TEST_NOW_VAR,
            custody::time_fmt::rfc3339(start)
        ),
        Err(e) => {
            eprintln!("custody: {e}");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("custody: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            // Errors can quote stored or remote text.
            eprintln!("custody: {}", custody::text::escape(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
