//! The `layerfs` command. Argument parsing and exit codes live here and in `cli`; the work is
//! done by the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    cli::init_logging(&args);
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("layerfs: {:#}", failure.error);
            ExitCode::from(failure.exit_code)
        }
    }
}
