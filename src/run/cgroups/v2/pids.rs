//! The v2 pids controller: `pids.max` caps the processes and threads of the cgroup.

use std::path::Path;

use super::super::files;
use super::super::{Resources, Result, Stats};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(pids) = resources.pids {
        files::write(dir, "pids.max", pids)?;
    }
    Ok(())
}

pub fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.pids = files::read_u64(dir, "pids.current")?;
    stats.pids_limit = files::read_u64(dir, "pids.max")?;
    Ok(())
}
