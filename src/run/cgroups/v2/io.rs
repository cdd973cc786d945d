//! The v2 io controller: `io.weight` (or `io.bfq.weight` where only BFQ offers one), and bytes
//! read and written from `io.stat`.

use std::path::Path;

use tracing::warn;

use super::super::files;
use super::super::resources::blkio_to_io_weight;
use super::super::{Resources, Result, Stats};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    let Some(weight) = resources.blkio_weight else {
        return Ok(());
    };
    if files::exists(dir, "io.weight") {
        return files::write(
            dir,
            "io.weight",
            format!("default {}", blkio_to_io_weight(weight)),
        );
    }
    if files::exists(dir, "io.bfq.weight") {
        // BFQ's weight keeps the v1 range 1–1000.
        return files::write(dir, "io.bfq.weight", weight);
    }
    warn!("no block I/O scheduler offers a weight here; --blkio-weight is ignored");
    Ok(())
}

/// Sums `rbytes=` and `wbytes=` over the devices of `io.stat`, whose lines read
/// `MAJOR:MINOR rbytes=N wbytes=N rios=N …`.
pub fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    let Some(text) = files::read(dir, "io.stat")? else {
        return Ok(());
    };
    let mut read = 0;
    let mut write = 0;
    for field in text.split_whitespace() {
        if let Some(bytes) = field.strip_prefix("rbytes=") {
            read += bytes.parse::<u64>().unwrap_or(0);
        } else if let Some(bytes) = field.strip_prefix("wbytes=") {
            write += bytes.parse::<u64>().unwrap_or(0);
        }
    }
    stats.io_read_bytes = Some(read);
    stats.io_write_bytes = Some(write);
    Ok(())
}
