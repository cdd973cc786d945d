//! The v1 blkio controller: proportional weight where the I/O scheduler offers one
//! (`blkio.weight` with CFQ, `blkio.bfq.weight` with BFQ), and bytes read and written.

use std::path::Path;

use tracing::warn;

use super::super::files;
use super::super::{Resources, Result, Stats};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    let Some(weight) = resources.blkio_weight else {
        return Ok(());
    };
    match ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|name| files::exists(dir, name))
    {
        Some(name) => files::write(dir, name, weight),
        None => {
            // As Docker does: the weight needs CFQ or BFQ, and many disks use neither.
            warn!("no block I/O scheduler offers a weight here; --blkio-weight is ignored");
            Ok(())
        }
    }
}

/// Sums the `Read` and `Write` lines of `blkio.throttle.io_service_bytes_recursive`, whose
/// lines are `MAJOR:MINOR OPERATION BYTES`, with a `Total` line at the end.
pub fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    let name = "blkio.throttle.io_service_bytes_recursive";
    let Some(text) = files::read(dir, name)? else {
        return Ok(());
    };
    let (read, write) = sum_service_bytes(&text);
    stats.io_read_bytes = Some(read);
    stats.io_write_bytes = Some(write);
    Ok(())
}

fn sum_service_bytes(text: &str) -> (u64, u64) {
    let mut read = 0;
    let mut write = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_device, operation, bytes] = fields[..] else {
            continue;
        };
        let bytes: u64 = bytes.parse().unwrap_or(0);
        match operation {
            "Read" => read += bytes,
            "Write" => write += bytes,
            _ => {}
        }
    }
    (read, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_bytes_sum_over_devices() {
        let text = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:16 Read 100\nTotal 4708\n";
        assert_eq!(sum_service_bytes(text), (4196, 512));
    }
}
