//! cgroup v2: one tree, one directory per container, controllers enabled top-down through
//! each parent's `cgroup.subtree_control`, and one file per controller here.
//!
//! See the kernel's Documentation/admin-guide/cgroup-v2.rst for each file.

mod cpu;
mod cpuset;
mod freezer;
mod io;
mod memory;
mod pids;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::files;
use super::{Error, Resources, Result, Stats};

/// The controllers layerfs enables for its cgroups when the root offers them.
const CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub dir: PathBuf,
}

impl Cgroup {
    /// Creates `root/relative`, enabling in every level above it the controllers that the
    /// root offers, and applies `resources`.
    pub fn create(root: &Path, relative: &Path, resources: &Resources) -> Result<Cgroup> {
        let available = files::read(root, "cgroup.controllers")?.unwrap_or_default();
        check_required(root, &available, resources)?;
        let enabled: Vec<&str> = CONTROLLERS
            .into_iter()
            .filter(|c| available.split(' ').any(|a| a == *c))
            .collect();
        debug!(relative = %relative.display(), ?enabled, "creating cgroup v2 directory");

        let cgroup = Cgroup {
            dir: root.join(relative),
        };
        let result =
            create_path(root, relative, &enabled).and_then(|()| cgroup.apply(resources, &enabled));
        if let Err(error) = result {
            if let Err(cleanup) = cgroup.remove() {
                warn!("removing the half-created cgroup: {cleanup}");
            }
            return Err(error);
        }
        Ok(cgroup)
    }

    fn apply(&self, resources: &Resources, enabled: &[&str]) -> Result<()> {
        let dir = &self.dir;
        if enabled.contains(&"cpuset") {
            cpuset::apply(dir, resources)?;
        }
        if enabled.contains(&"memory") {
            memory::apply(dir, resources)?;
        }
        if enabled.contains(&"cpu") {
            cpu::apply(dir, resources)?;
        }
        if enabled.contains(&"pids") {
            pids::apply(dir, resources)?;
        }
        if enabled.contains(&"io") {
            io::apply(dir, resources)?;
        } else if resources.blkio_weight.is_some() {
            warn!("the io controller is not available; --blkio-weight is ignored");
        }
        Ok(())
    }

    pub fn add(&self, pid: i32) -> Result<()> {
        files::write(&self.dir, "cgroup.procs", pid)
    }

    pub fn freeze(&self) -> Result<()> {
        freezer::set(&self.dir, true)
    }

    pub fn thaw(&self) -> Result<()> {
        freezer::set(&self.dir, false)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        freezer::is_frozen(&self.dir)
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        cpu::stats(&self.dir, &mut stats)?;
        memory::stats(&self.dir, &mut stats)?;
        pids::stats(&self.dir, &mut stats)?;
        io::stats(&self.dir, &mut stats)?;
        Ok(stats)
    }

    pub fn oom_kills(&self) -> Result<Option<u64>> {
        memory::oom_kills(&self.dir)
    }

    pub fn is_populated(&self) -> Result<bool> {
        Ok(files::read_keyed(&self.dir, "cgroup.events", "populated")? == Some(1))
    }

    pub fn remove(&self) -> Result<()> {
        files::remove_dir(&self.dir)
    }
}

/// Rejects options whose controller the root does not offer, before anything is created.
fn check_required(root: &Path, available: &str, resources: &Resources) -> Result<()> {
    let required = [
        ("--memory", resources.memory.is_some(), "memory"),
        ("--cpus", resources.cpu_quota.is_some(), "cpu"),
        ("--cpu-shares", resources.v2_cpu_weight().is_some(), "cpu"),
        ("--cpuset-cpus", resources.cpuset_cpus.is_some(), "cpuset"),
        ("--pids", resources.pids.is_some(), "pids"),
    ];
    for (option, requested, controller) in required {
        if requested && !available.split(' ').any(|a| a == controller) {
            return Err(Error::MissingV2Controller {
                option,
                controller,
                root: root.to_path_buf(),
                available: available.to_owned(),
            });
        }
    }
    Ok(())
}

/// Creates each missing level of `relative` below `root` and enables `controllers` in every
/// level that has children, the root included: a controller is usable in a cgroup only if
/// its parent's `cgroup.subtree_control` lists it.
fn create_path(root: &Path, relative: &Path, controllers: &[&str]) -> Result<()> {
    let mut dir = root.to_path_buf();
    for component in relative.components() {
        enable(&dir, controllers)?;
        dir.push(component);
        files::create_dir(&dir)?;
    }
    Ok(())
}

fn enable(dir: &Path, controllers: &[&str]) -> Result<()> {
    let current = files::read(dir, "cgroup.subtree_control")?.unwrap_or_default();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !current.split(' ').any(|enabled| enabled == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    files::write(dir, "cgroup.subtree_control", missing.join(" "))
}

#[cfg(test)]
mod tests;
