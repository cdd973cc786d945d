//! Control groups for containers, on cgroup v1 or cgroup v2, chosen when the container starts.
//!
//! Each container gets one cgroup, `<parent>/<id>` (parent `layerfs` by default), below the
//! root of every hierarchy it uses: one directory per v1 controller hierarchy, or one
//! directory in the v2 tree. The four things cgroups are for map to this module as follows:
//!
//! - limits and prioritization: [`Resources`], written when the cgroup is created;
//! - accounting: [`Cgroup::stats`] and [`Cgroup::oom_kills`];
//! - control: [`Cgroup::freeze`] and [`Cgroup::thaw`];
//! - lifetime: [`Cgroup::remove`] once the container's last process has exited.
//!
//! Every function takes the hierarchy roots as arguments, so tests point them at a temporary
//! directory laid out like cgroupfs. Only processes this crate started are ever written to
//! `cgroup.procs`, and only cgroups below the layerfs parent are created or limited.

mod files;
mod hierarchy;
pub mod resources;
mod stats;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use hierarchy::{Hierarchies, Preference, Version};
pub use resources::{CpuQuota, Resources, SwapLimit};
pub use stats::{human_bytes, Stats};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {path}: {source}", path = .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("writing {value:?} to {path}: {source}", path = .path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },

    #[error("unexpected content in {path}: {text:?}", path = .path.display())]
    Parse { path: PathBuf, text: String },

    #[error("no cgroup file system is mounted (see /proc/self/mountinfo)")]
    NotMounted,

    #[error("cgroup {0} was requested, but no such hierarchy is mounted")]
    VersionNotMounted(Version),

    #[error("{option} needs the cgroup v1 {controller} controller, which is not mounted")]
    MissingV1Controller {
        option: &'static str,
        controller: &'static str,
    },

    #[error(
        "{option} needs the cgroup v2 {controller} controller, which {root} does not offer \
         (its cgroup.controllers lists: {available})",
        root = .root.display()
    )]
    MissingV2Controller {
        option: &'static str,
        controller: &'static str,
        root: PathBuf,
        available: String,
    },

    #[error("{0}")]
    InvalidResources(#[from] resources::InvalidResources),

    #[error("{path} did not reach state {expected} (still {actual})", path = .path.display())]
    FreezeTimedOut {
        path: PathBuf,
        expected: &'static str,
        actual: String,
    },
}

/// A container's cgroup, on either version. Serializable, so that `layerfs stats`, `pause`
/// and `rm` find it again from the container's state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum Cgroup {
    V1(v1::Cgroup),
    V2(v2::Cgroup),
}

impl Cgroup {
    /// Creates `<parent>/<id>` in the chosen hierarchies and applies `resources`. On error,
    /// whatever was created is removed again.
    pub fn create(
        hierarchies: &Hierarchies,
        version: Version,
        relative: &Path,
        resources: &Resources,
    ) -> Result<Cgroup> {
        match version {
            Version::V1 => v1::Cgroup::create(&hierarchies.v1, relative, resources).map(Cgroup::V1),
            Version::V2 => {
                let root = hierarchies
                    .v2
                    .as_ref()
                    .ok_or(Error::VersionNotMounted(version))?;
                v2::Cgroup::create(root, relative, resources).map(Cgroup::V2)
            }
        }
    }

    pub fn version(&self) -> Version {
        match self {
            Cgroup::V1(_) => Version::V1,
            Cgroup::V2(_) => Version::V2,
        }
    }

    /// Moves the process `pid`, with all its threads, into the cgroup; its children start
    /// there.
    pub fn add(&self, pid: i32) -> Result<()> {
        match self {
            Cgroup::V1(cgroup) => cgroup.add(pid),
            Cgroup::V2(cgroup) => cgroup.add(pid),
        }
    }

    /// Stops every process of the cgroup, and returns once the kernel reports them stopped.
    pub fn freeze(&self) -> Result<()> {
        match self {
            Cgroup::V1(cgroup) => cgroup.freeze(),
            Cgroup::V2(cgroup) => cgroup.freeze(),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self {
            Cgroup::V1(cgroup) => cgroup.thaw(),
            Cgroup::V2(cgroup) => cgroup.thaw(),
        }
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match self {
            Cgroup::V1(cgroup) => cgroup.is_frozen(),
            Cgroup::V2(cgroup) => cgroup.is_frozen(),
        }
    }

    /// CPU, memory, pids and I/O figures; a figure the hierarchy does not offer is `None`.
    pub fn stats(&self) -> Result<Stats> {
        match self {
            Cgroup::V1(cgroup) => cgroup.stats(),
            Cgroup::V2(cgroup) => cgroup.stats(),
        }
    }

    /// Counts the processes the kernel's OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> Result<Option<u64>> {
        match self {
            Cgroup::V1(cgroup) => cgroup.oom_kills(),
            Cgroup::V2(cgroup) => cgroup.oom_kills(),
        }
    }

    /// Returns whether any process is still in the cgroup.
    pub fn is_populated(&self) -> Result<bool> {
        match self {
            Cgroup::V1(cgroup) => cgroup.is_populated(),
            Cgroup::V2(cgroup) => cgroup.is_populated(),
        }
    }

    /// Lists the directories the container's cgroup namespace shows as `/`.
    pub fn directories(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1(cgroup) => cgroup
                .unique_dirs()
                .into_iter()
                .map(Path::to_path_buf)
                .collect(),
            Cgroup::V2(cgroup) => vec![cgroup.dir.clone()],
        }
    }

    /// Removes the cgroup; its processes must have exited. Missing directories are fine.
    pub fn remove(&self) -> Result<()> {
        match self {
            Cgroup::V1(cgroup) => cgroup.remove(),
            Cgroup::V2(cgroup) => cgroup.remove(),
        }
    }
}
