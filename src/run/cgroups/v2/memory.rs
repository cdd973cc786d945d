//! The v2 memory controller: `memory.max`, and `memory.swap.max`, which counts swap alone
//! (v1's memsw counted memory plus swap).

use std::path::Path;

use super::super::files;
use super::super::{Resources, Result, Stats};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    let Some(memory) = resources.memory else {
        return Ok(());
    };
    files::write(dir, "memory.max", memory)?;
    if !files::exists(dir, "memory.swap.max") {
        return Ok(());
    }
    match resources.swap_total()?.flatten() {
        Some(total) => files::write(dir, "memory.swap.max", total - memory),
        None => files::write(dir, "memory.swap.max", "max"),
    }
}

pub fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.memory_bytes = files::read_u64(dir, "memory.current")?;
    // memory.peak exists from Linux 5.19.
    stats.memory_peak_bytes = files::read_u64(dir, "memory.peak")?;
    stats.memory_limit_bytes = files::read_u64(dir, "memory.max")?;
    stats.oom_kills = oom_kills(dir)?;
    Ok(())
}

pub fn oom_kills(dir: &Path) -> Result<Option<u64>> {
    files::read_keyed(dir, "memory.events", "oom_kill")
}
