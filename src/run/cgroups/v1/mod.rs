//! cgroup v1: one hierarchy per controller (or per group of co-mounted controllers), each
//! with its own directory for the container, and one file per controller here.
//!
//! See the kernel's Documentation/admin-guide/cgroup-v1/ for each controller's files.

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod memory;
mod pids;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::files;
use super::{Error, Resources, Result, Stats};

/// The v1 controllers layerfs uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Pids,
    Blkio,
    Freezer,
    Devices,
}

impl Controller {
    pub fn from_name(name: &str) -> Option<Controller> {
        Some(match name {
            "cpu" => Controller::Cpu,
            "cpuacct" => Controller::Cpuacct,
            "cpuset" => Controller::Cpuset,
            "memory" => Controller::Memory,
            "pids" => Controller::Pids,
            "blkio" => Controller::Blkio,
            "freezer" => Controller::Freezer,
            "devices" => Controller::Devices,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Blkio => "blkio",
            Controller::Freezer => "freezer",
            Controller::Devices => "devices",
        }
    }
}

/// A container's directory in each v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<(Controller, PathBuf)>,
}

impl Cgroup {
    /// Creates `relative` below each hierarchy's mount point and applies `resources`.
    pub fn create(
        hierarchies: &[(Controller, PathBuf)],
        relative: &Path,
        resources: &Resources,
    ) -> Result<Cgroup> {
        let cgroup = Cgroup {
            dirs: hierarchies
                .iter()
                .map(|(controller, mount)| (*controller, mount.join(relative)))
                .collect(),
        };
        cgroup.check_required(resources)?;
        debug!(relative = %relative.display(), "creating cgroup v1 directories");
        let result = cgroup.populate(hierarchies, relative, resources);
        if let Err(error) = result {
            if let Err(cleanup) = cgroup.remove() {
                warn!("removing the half-created cgroup: {cleanup}");
            }
            return Err(error);
        }
        Ok(cgroup)
    }

    fn check_required(&self, resources: &Resources) -> Result<()> {
        let required = [
            ("--memory", resources.memory.is_some(), Controller::Memory),
            ("--cpus", resources.cpu_quota.is_some(), Controller::Cpu),
            (
                "--cpu-shares",
                resources.v1_cpu_shares().is_some(),
                Controller::Cpu,
            ),
            (
                "--cpuset-cpus",
                resources.cpuset_cpus.is_some(),
                Controller::Cpuset,
            ),
            ("--pids", resources.pids.is_some(), Controller::Pids),
        ];
        for (option, requested, controller) in required {
            if requested && self.dir(controller).is_none() {
                return Err(Error::MissingV1Controller {
                    option,
                    controller: controller.name(),
                });
            }
        }
        Ok(())
    }

    fn populate(
        &self,
        hierarchies: &[(Controller, PathBuf)],
        relative: &Path,
        resources: &Resources,
    ) -> Result<()> {
        for (controller, mount) in hierarchies {
            if self.dir(*controller) == Some(&mount.join(relative)) {
                create_path(mount, relative, *controller == Controller::Cpuset)?;
            }
        }
        if let Some(dir) = self.dir(Controller::Cpuset) {
            cpuset::apply(dir, resources)?;
        }
        if let Some(dir) = self.dir(Controller::Memory) {
            memory::apply(dir, resources)?;
        }
        if let Some(dir) = self.dir(Controller::Cpu) {
            cpu::apply(dir, resources)?;
        }
        if let Some(dir) = self.dir(Controller::Pids) {
            pids::apply(dir, resources)?;
        }
        match self.dir(Controller::Blkio) {
            Some(dir) => blkio::apply(dir, resources)?,
            None if resources.blkio_weight.is_some() => {
                warn!("the blkio controller is not mounted; --blkio-weight is ignored")
            }
            None => {}
        }
        if let Some(dir) = self.dir(Controller::Devices) {
            devices::apply(dir)?;
        }
        Ok(())
    }

    pub fn dir(&self, controller: Controller) -> Option<&PathBuf> {
        self.dirs
            .iter()
            .find(|(known, _)| *known == controller)
            .map(|(_, dir)| dir)
    }

    /// Lists each directory once, since co-mounted controllers share one.
    pub fn unique_dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = Vec::new();
        for (_, dir) in &self.dirs {
            if !dirs.contains(&dir.as_path()) {
                dirs.push(dir);
            }
        }
        dirs
    }

    pub fn add(&self, pid: i32) -> Result<()> {
        for dir in self.unique_dirs() {
            files::write(dir, "cgroup.procs", pid)?;
        }
        Ok(())
    }

    pub fn freeze(&self) -> Result<()> {
        freezer::freeze(self.required_dir(Controller::Freezer, "pausing")?)
    }

    pub fn thaw(&self) -> Result<()> {
        freezer::thaw(self.required_dir(Controller::Freezer, "resuming")?)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match self.dir(Controller::Freezer) {
            Some(dir) => freezer::is_frozen(dir),
            None => Ok(false),
        }
    }

    fn required_dir(&self, controller: Controller, option: &'static str) -> Result<&Path> {
        self.dir(controller)
            .map(PathBuf::as_path)
            .ok_or(Error::MissingV1Controller {
                option,
                controller: controller.name(),
            })
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        if let Some(dir) = self.dir(Controller::Cpuacct) {
            cpu::accounting_stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.dir(Controller::Cpu) {
            cpu::bandwidth_stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.dir(Controller::Memory) {
            memory::stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.dir(Controller::Pids) {
            pids::stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.dir(Controller::Blkio) {
            blkio::stats(dir, &mut stats)?;
        }
        Ok(stats)
    }

    pub fn oom_kills(&self) -> Result<Option<u64>> {
        match self.dir(Controller::Memory) {
            Some(dir) => memory::oom_kills(dir),
            None => Ok(None),
        }
    }

    pub fn is_populated(&self) -> Result<bool> {
        for dir in self.unique_dirs() {
            if files::read(dir, "cgroup.procs")?.is_some_and(|procs| !procs.is_empty()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes the container's directories, never the parent they were created in.
    pub fn remove(&self) -> Result<()> {
        let mut first_error = None;
        for dir in self.unique_dirs() {
            if let Err(error) = files::remove_dir(dir) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Creates each missing directory from `mount` down to `mount/relative`. In the cpuset
/// hierarchy a new cgroup starts with no CPUs and no memory nodes, which would keep any task
/// out, so each level first gets its parent's.
fn create_path(mount: &Path, relative: &Path, is_cpuset: bool) -> Result<()> {
    let mut dir = mount.to_path_buf();
    for component in relative.components() {
        let parent = dir.clone();
        dir.push(component);
        files::create_dir(&dir)?;
        if is_cpuset {
            cpuset::inherit(&parent, &dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
