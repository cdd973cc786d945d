//! The v1 memory controller: `memory.limit_in_bytes` and, with swap accounting,
//! `memory.memsw.limit_in_bytes` (memory plus swap).

use std::path::Path;

use tracing::warn;

use super::super::files;
use super::super::{Resources, Result, Stats};

/// v1 reports "no limit" as the largest page-aligned `i64`; anything this large is no limit.
const UNLIMITED_FLOOR: u64 = 1 << 62;

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    let Some(memory) = resources.memory else {
        return Ok(());
    };
    // A new cgroup has no limits, so memory can be lowered before memsw: memsw must never
    // be below memory, and the kernel rejects writes that would make it so.
    files::write(dir, "memory.limit_in_bytes", memory)?;
    let total = resources.swap_total()?.flatten();
    if !files::exists(dir, "memory.memsw.limit_in_bytes") {
        if resources.memory_swap.is_some() {
            warn!("the kernel has no swap accounting; --memory-swap is ignored");
        }
        return Ok(());
    }
    match total {
        Some(total) => files::write(dir, "memory.memsw.limit_in_bytes", total),
        None => files::write(dir, "memory.memsw.limit_in_bytes", -1),
    }
}

pub fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.memory_bytes = files::read_u64(dir, "memory.usage_in_bytes")?;
    stats.memory_peak_bytes = files::read_u64(dir, "memory.max_usage_in_bytes")?;
    stats.memory_limit_bytes =
        files::read_u64(dir, "memory.limit_in_bytes")?.filter(|&limit| limit < UNLIMITED_FLOOR);
    stats.oom_kills = oom_kills(dir)?;
    Ok(())
}

/// The `oom_kill` count of `memory.oom_control` (Linux 4.13 and later).
pub fn oom_kills(dir: &Path) -> Result<Option<u64>> {
    files::read_keyed(dir, "memory.oom_control", "oom_kill")
}
