//! `postern`: see `postern --help` and SPEC §1.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match postern::cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; a bad command line is a user error (1),
            // not clap's default 2, which SPEC reserves for runtime failures.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match postern::cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // Anything that reaches here is a runtime failure (exit 2), one line.
            postern::cli::output::error_line(&format!("{e:#}"));
            ExitCode::from(2)
        }
    }
}
