//! `layerfs ps`: the containers in the store, with their image, command, age and status.

use std::process::ExitCode;

use clap::Args;
use layerfs::run::state::{self, now, Container, Status};

use super::{Context, Failure};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container; by default only running and paused ones.
    #[arg(short = 'a', long)]
    all: bool,

    /// Print only the container IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
}

pub fn ps(context: &Context, args: PsArgs) -> Result<ExitCode, Failure> {
    let containers: Vec<Container> = state::list(&context.store)?
        .into_iter()
        .filter(|c| args.all || c.is_running())
        .collect();
    if args.quiet {
        for container in &containers {
            println!("{}", container.short_id());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = now();
    let rows: Vec<[String; 6]> = containers.iter().map(|c| row(c, now)).collect();
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .map(String::from);
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

fn row(container: &Container, now: u64) -> [String; 6] {
    let record = &container.record;
    [
        container.short_id().to_owned(),
        record.image.clone(),
        command_column(&record.args),
        format!("{} ago", human_duration(now.saturating_sub(record.created))),
        status_column(container, now),
        record.name.clone().unwrap_or_default(),
    ]
}

/// Quotes the command and cuts it to 20 characters, as Docker shows it.
fn command_column(args: &[String]) -> String {
    let command = args.join(" ");
    let shown: String = if command.chars().count() > 20 {
        command.chars().take(19).chain(['…']).collect()
    } else {
        command
    };
    format!("\"{shown}\"")
}

fn status_column(container: &Container, now: u64) -> String {
    let since = |time: Option<u64>| human_duration(now.saturating_sub(time.unwrap_or(now)));
    match container.status() {
        Status::Created => "Created".to_owned(),
        Status::Running => format!("Up {}", since(container.state.started)),
        Status::Paused => format!("Up {} (Paused)", since(container.state.started)),
        Status::Exited { code } => {
            let code = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            match container.state.finished {
                Some(finished) => format!("Exited ({code}) {} ago", since(Some(finished))),
                None => format!("Exited ({code})"),
            }
        }
    }
}

/// Words a duration in seconds as Docker does: "Less than a second", "5 seconds",
/// "About a minute", "3 hours", "2 days"…
pub fn human_duration(seconds: u64) -> String {
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    match seconds {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_owned(),
        s if s < 3600 => format!("{minutes} minutes"),
        s if s < 7200 => "About an hour".to_owned(),
        s if s < 48 * 3600 => format!("{hours} hours"),
        s if s < 14 * 86400 => format!("{days} days"),
        s if s < 60 * 86400 => format!("{} weeks", days / 7),
        s if s < 730 * 86400 => format!("{} months", days / 30),
        _ => format!("{} years", days / 365),
    }
}

/// Prints left-aligned columns separated by three spaces.
pub fn print_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("   ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_table() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (45, "45 seconds"),
            (90, "About a minute"),
            (600, "10 minutes"),
            (3700, "About an hour"),
            (5 * 3600, "5 hours"),
            (3 * 86400, "3 days"),
            (21 * 86400, "3 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn long_commands_are_cut() {
        let args = ["sh", "-c", "while true; do sleep 1; done"].map(String::from);
        assert_eq!(command_column(&args), "\"sh -c while true; d…\"");
        assert_eq!(command_column(&["true".to_owned()]), "\"true\"");
    }
}
