//! The `layerfs` command. Argument parsing and exit codes live here and in `cli`; the work is
//! done by the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    cli::init_logging(args.debug);
    match cli::dispatch(args) {
        Ok(code) => code,
        // A reader that went away (`layerfs images | head -1`) is not a failure.
        Err(failure) if cli::is_broken_pipe(&failure.error) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("layerfs: {:#}", failure.error);
            ExitCode::from(failure.exit_code)
        }
    }
}
