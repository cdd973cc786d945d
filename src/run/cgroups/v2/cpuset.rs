//! The v2 cpuset controller. Unlike v1, an empty `cpuset.cpus` means the parent's CPUs, so
//! nothing needs copying down.

use std::path::Path;

use super::super::files;
use super::super::{Resources, Result};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(cpus) = &resources.cpuset_cpus {
        files::write(dir, "cpuset.cpus", cpus)?;
    }
    Ok(())
}
