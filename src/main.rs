//! The `layerfs` command. Argument parsing and exit codes live here and in `cli`; the work is
//! done by the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(error) => exit_for_usage(error),
    };
    cli::init_logging(&args);
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

/// Prints a usage error (or the help or version text clap produced) and exits. `run` reports
/// usage errors with 125, as `docker run` does, so that they cannot be mistaken for the exit
/// code of a container; other commands use clap's 2.
fn exit_for_usage(error: clap::Error) -> ! {
    let in_run = subcommand_name().as_deref() == Some("run");
    if error.use_stderr() && in_run {
        let _ = error.print();
        std::process::exit(125);
    }
    error.exit()
}

/// The first argument that is neither an option nor the value of a global option.
fn subcommand_name() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" | "--config" => {
                args.next();
            }
            option if option.starts_with('-') => {}
            name => return Some(name.to_owned()),
        }
    }
    None
}
