//! `layerfs stop`, `kill`, `rm`, `pause` and `resume`: one container operation each, on
//! containers named by name, ID or unique ID prefix. Each prints the name it was given once
//! done, as Docker does, and goes on with the next one after a failure.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use layerfs::run::state::{self, Container};
use layerfs::run::{self};
use nix::sys::signal::Signal;

use super::{Context, Failure};

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before sending SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,

    /// Containers, by name, ID or ID prefix.
    /// Containers, by name, ID or ID prefix.
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send, by name (TERM, SIGHUP) or number.
    #[arg(short = 's', long = "signal", default_value = "KILL", value_parser = parse_signal)]
    signal: Signal,

    /// Containers, by name, ID or ID prefix.
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers too.
    #[arg(short = 'f', long)]
    force: bool,

    /// Containers, by name, ID or ID prefix.
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Containers, by name, ID or ID prefix.
    #[arg(required = true)]
    containers: Vec<String>,
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| format!("unknown signal number {number}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse()
        .map_err(|_| format!("unknown signal {text:?}: give a name such as TERM or a number"))
}

pub fn stop(context: &Context, args: StopArgs) -> Result<ExitCode, Failure> {
    let timeout = Duration::from_secs(args.time);
    each(context, &args.containers, |c| run::stop(c, timeout))
}

pub fn kill(context: &Context, args: KillArgs) -> Result<ExitCode, Failure> {
    each(context, &args.containers, |c| run::kill(c, args.signal))
}

pub fn rm(context: &Context, args: RmArgs) -> Result<ExitCode, Failure> {
    each(context, &args.containers, |c| run::remove(c, args.force))
}

pub fn pause(context: &Context, args: NamesArgs) -> Result<ExitCode, Failure> {
    each(context, &args.containers, run::pause)
}

pub fn resume(context: &Context, args: NamesArgs) -> Result<ExitCode, Failure> {
    each(context, &args.containers, run::resume)
}

/// Applies `operation` to each container; fails at the end if any operation failed.
fn each(
    context: &Context,
    keys: &[String],
    operation: impl Fn(&Container) -> run::Result<()>,
) -> Result<ExitCode, Failure> {
    let mut failed = 0;
    for key in keys {
        match state::find(&context.store, key).and_then(|c| operation(&c)) {
            Ok(()) => println!("{key}"),
            Err(error) => {
                eprintln!("layerfs: {key}: {error}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_parsing_table() {
        let cases = [
            ("KILL", Some(Signal::SIGKILL)),
            ("term", Some(Signal::SIGTERM)),
            ("SIGHUP", Some(Signal::SIGHUP)),
            ("15", Some(Signal::SIGTERM)),
            ("NOPE", None),
            ("999", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_signal(text).ok(), expected, "{text}");
        }
    }
}
