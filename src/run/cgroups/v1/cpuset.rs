//! The v1 cpuset controller: `cpuset.cpus` and the inheritance every new cpuset needs.

use std::path::Path;

use super::super::files;
use super::super::{Resources, Result};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(cpus) = &resources.cpuset_cpus {
        files::write(dir, "cpuset.cpus", cpus)?;
    }
    Ok(())
}

/// Copies `cpuset.cpus` and `cpuset.mems` from `parent` into `dir` where `dir`'s are empty.
pub fn inherit(parent: &Path, dir: &Path) -> Result<()> {
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let current = files::read(dir, name)?.unwrap_or_default();
        if current.is_empty() {
            let inherited = files::read(parent, name)?.unwrap_or_default();
            files::write(dir, name, inherited)?;
        }
    }
    Ok(())
}
