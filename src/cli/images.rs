use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use layerfs::image::ImageConfig;
use layerfs::store::{ImageRecord, Store};
use layerfs_registry::Reference;
use serde::Serialize;

use super::{print_line, Context, Failure};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// One row of `layerfs images`.
#[derive(Debug, Serialize)]
struct ImageRow {
    reference: String,
    repository: String,
    tag: Option<String>,
    digest: String,
    id: String,
    platform: String,
    created: Option<String>,
    /// Unpacked size of all layers, in bytes.
    size: u64,
}

pub fn images(context: &Context, args: ImagesArgs) -> Result<ExitCode, Failure> {
    let records = context.store.list_images()?;
    let mut rows = Vec::with_capacity(records.len());
    for record in &records {
        rows.push(image_row(&context.store, record)?);
    }
    if args.json {
        print_line(serde_json::to_string_pretty(&rows)?)?;
    } else {
        print_table(&rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what `images` prints for an empty store, for a store root that does not exist.
pub fn print_empty(command: &super::Command) -> Result<ExitCode, Failure> {
    let super::Command::Images(args) = command else {
        unreachable!("only images prints an empty listing");
    };
    if args.json {
        print_line("[]")?;
    } else {
        print_table(&[])?;
    }
    Ok(ExitCode::SUCCESS)
}

fn image_row(store: &Store, record: &ImageRecord) -> anyhow::Result<ImageRow> {
    let reference: Reference = record.reference.parse()?;
    let config = ImageConfig::parse(&store.read_blob(&record.config)?, &record.config)?;
    let mut size = 0;
    for layer in &record.layers {
        size += store.read_layer_record(&layer.chain_id)?.unpacked_size;
    }
    Ok(ImageRow {
        reference: record.reference.clone(),
        repository: reference.name(),
        tag: reference.tag().map(str::to_owned),
        digest: record
            .index
            .as_ref()
            .unwrap_or(&record.manifest)
            .to_string(),
        id: record.id().to_string(),
        platform: record.platform.to_string(),
        created: config.created().map(str::to_owned),
        size,
    })
}

fn print_table(rows: &[ImageRow]) -> std::io::Result<()> {
    let now = Utc::now();
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.repository.clone(),
                row.tag.clone().unwrap_or_else(|| "<none>".to_owned()),
                row.id.trim_start_matches("sha256:")[..12].to_owned(),
                row.platform.clone(),
                row.created
                    .as_deref()
                    .map_or("unknown".to_owned(), |c| ago(c, now)),
                human_size(row.size),
            ]
        })
        .collect();
    let header = [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "PLATFORM",
        "CREATED",
        "SIZE",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        print_line(cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// "3 days ago", from an RFC 3339 time.
fn ago(created: &str, now: DateTime<Utc>) -> String {
    let Ok(time) = DateTime::parse_from_rfc3339(created) else {
        return created.to_owned();
    };
    let seconds = (now - time.with_timezone(&Utc)).num_seconds().max(0);
    let units = [
        (365 * 86400, "year"),
        (30 * 86400, "month"),
        (7 * 86400, "week"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ];
    for (size, name) in units {
        let count = seconds / size;
        if count > 0 {
            let plural = if count == 1 { "" } else { "s" };
            return format!("{count} {name}{plural} ago");
        }
    }
    "just now".to_owned()
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_table() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (4_300_000, "4.3 MB"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(human_size(bytes), expected);
        }
    }

    #[test]
    fn ago_table() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("2026-12-04T11:59:30Z", "just now"),
            ("2026-12-04T10:00:00Z", "2 hours ago"),
            ("2026-11-20T12:00:00Z", "2 weeks ago"),
            ("2024-12-04T12:00:00Z", "2 years ago"),
            ("not a time", "not a time"),
        ];
        for (created, expected) in cases {
            assert_eq!(ago(created, now), expected, "created {created}");
        }
    }
}
