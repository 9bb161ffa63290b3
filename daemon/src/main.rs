//! `postern`: see `postern --help` and SPEC §1.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = postern::cli::Args::parse();
    match postern::cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // Anything that reaches here is a runtime failure (exit 2), one line.
            eprintln!("postern: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
