//! `layerfs stats`: one reading of the cgroup figures of running containers.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use layerfs::run::cgroups::{human_bytes, Stats};
use layerfs::run::state::{self, Container};
use serde::Serialize;

use super::ps::print_table;
use super::{Context, Failure};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one JSON object per container, on one line each.
    #[arg(long)]
    json: bool,

    /// Containers, by name, ID or ID prefix [default: every running container].
    containers: Vec<String>,
}

#[derive(Serialize)]
struct Reading<'a> {
    id: &'a str,
    name: Option<&'a str>,
    #[serde(flatten)]
    stats: Stats,
}

pub fn stats(context: &Context, args: StatsArgs) -> Result<ExitCode, Failure> {
    let containers: Vec<Container> = if args.containers.is_empty() {
        state::list(&context.store)?
            .into_iter()
            .filter(Container::is_running)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|key| state::find(&context.store, key))
            .collect::<Result<_, _>>()?
    };
    let mut readings = Vec::new();
    for container in &containers {
        let cgroup = container
            .state
            .cgroup
            .as_ref()
            .filter(|_| container.is_running())
            .ok_or_else(|| layerfs::run::Error::NotRunning(container.display_name().to_owned()))?;
        let stats = cgroup
            .stats()
            .with_context(|| format!("reading the figures of {}", container.display_name()))?;
        readings.push((container, stats));
    }
    if args.json {
        for (container, stats) in readings {
            let reading = Reading {
                id: &container.record.id,
                name: container.record.name.as_deref(),
                stats,
            };
            println!(
                "{}",
                serde_json::to_string(&reading).expect("stats serialize")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "CONTAINER ID",
        "NAME",
        "CPU TIME",
        "MEM USAGE / LIMIT",
        "MEM PEAK",
        "PIDS",
        "BLOCK I/O",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = readings.iter().map(|(c, s)| row(c, s)).collect();
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

fn row(container: &Container, stats: &Stats) -> [String; 7] {
    let dash = || "-".to_owned();
    let bytes = |value: Option<u64>| value.map_or_else(dash, human_bytes);
    let limit = stats
        .memory_limit_bytes
        .map_or_else(|| "unlimited".to_owned(), human_bytes);
    [
        container.short_id().to_owned(),
        container.record.name.clone().unwrap_or_default(),
        stats
            .cpu_usage_ns
            .map_or_else(dash, |ns| format!("{:.2}s", ns as f64 / 1e9)),
        stats
            .memory_bytes
            .map_or_else(dash, |usage| format!("{} / {limit}", human_bytes(usage))),
        bytes(stats.memory_peak_bytes),
        stats.pids.map_or_else(dash, |p| p.to_string()),
        match (stats.io_read_bytes, stats.io_write_bytes) {
            (Some(read), Some(write)) => format!("{} / {}", human_bytes(read), human_bytes(write)),
            _ => dash(),
        },
    ]
}
