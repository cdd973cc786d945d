//! `layerfs run` and the commands that manage containers: a small runtime that isolates a
//! process with all seven namespace kinds and a cgroup, and supervises it.
//!
//! ```text
//! layerfs run ──▶ shim (container-shim) ──▶ helper ──▶ PID 1 ──exec──▶ command
//!   create.rs        shim.rs                 spawn.rs    init.rs, rootfs/
//! ```
//!
//! - `create` checks the request, writes `containers/<id>/` (see `state`), and starts the
//!   shim from a read-only copy of the binary (`binary`).
//! - `shim` supervises one container for its whole life, independent of `run`: it creates
//!   the cgroup (`cgroups`), the user namespace (`userns`) and the detached mounts
//!   (`rootfs`), starts PID 1 (`spawn`), and cleans up when PID 1 exits.
//! - PID 1 (`init`) unshares the mount, UTS, IPC, network and cgroup namespaces, builds the
//!   root file system, resolves the user, drops capabilities (`capabilities`), sets limits
//!   (`rlimits`), and executes the command, or with `--init` forks it (`reaper`).
//! - `control` implements `kill`, `stop`, `pause`, `resume` and `rm` on recorded state.

mod attach;
mod binary;
pub mod capabilities;
pub mod cgroups;
pub mod config;
mod console;
mod control;
mod create;
pub mod env_file;
mod exec;
mod failure;
mod init;
mod mount_api;
mod net;
mod process_id;
mod reaper;
pub mod rlimits;
pub mod rootfs;
mod shim;
mod signals;
mod spawn;
pub mod spec;
pub mod state;
pub mod user;
pub mod userns;

use std::path::PathBuf;

use crate::fs_error::FsError;
use crate::image::InvalidConfig;
use crate::mount;
use crate::store;
use layerfs_registry::Platform;
use spec::InvalidProcess;

pub use control::{kill, pause, remove, resume, stop};
pub use create::{run, Outcome, RunOptions};
pub use shim::container_shim;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error(transparent)]
    Store(#[from] store::Error),

    #[error(transparent)]
    Mount(#[from] mount::Error),

    #[error(transparent)]
    Config(#[from] InvalidConfig),

    #[error(transparent)]
    Process(#[from] InvalidProcess),

    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),

    #[error(transparent)]
    Resources(#[from] cgroups::resources::InvalidResources),

    #[error(transparent)]
    Ulimit(#[from] rlimits::InvalidUlimit),

    #[error("resolving the container user: {0}")]
    User(#[from] user::UserError),

    #[error("executable file not found in $PATH: {0}")]
    CommandNotFound(String),

    #[error("cannot execute {path}: {reason}", path = .path.display())]
    CannotExecute { path: PathBuf, reason: String },

    #[error(
        "cannot execute {path}: exec format error: the image's platform ({image}) does not \
         match the host's ({host}); run an image for {host}, or register an emulator for \
         {image} with binfmt_misc (such as qemu-user-static)",
        path = .path.display()
    )]
    ForeignPlatform {
        path: PathBuf,
        image: Box<Platform>,
        host: Box<Platform>,
    },

    #[error(
        "cannot mount the container's {target}: in the image it resolves to {resolved}, and \
         layerfs mounts nothing inside /proc or /sys",
        resolved = .resolved.display()
    )]
    KernelFsTarget {
        target: &'static str,
        resolved: PathBuf,
    },

    #[error("argument or environment string contains a NUL byte: {0:?}")]
    InvalidString(String),

    #[error("{action}: {source}")]
    System {
        action: &'static str,
        source: std::io::Error,
    },

    #[error("starting the container's shim: {0}")]
    Spawn(std::io::Error),

    #[error("invalid container spec: {0}")]
    InvalidSpec(String),

    /// A failure reported from inside the container, with the exit code it maps to.
    #[error("{message}")]
    Container { code: u8, message: String },

    #[error("the helper that starts PID 1 exited without reporting why")]
    HelperFailed,

    #[error("the container's shim exited before the container started")]
    ShimGone,

    #[error("invalid cgroup parent {}: it must not contain ..", .0.display())]
    InvalidCgroupParent(PathBuf),

    #[error("-d cannot be combined with -i or -t: layerfs has no attach command")]
    DetachedAttach,

    #[error("invalid container name {0:?}: use letters, digits, _ . and -, starting with a letter or digit, at least two characters")]
    InvalidName(String),

    #[error("the name {name:?} is already used by container {id}; remove it or choose another")]
    NameInUse { name: String, id: String },

    #[error("no such container: {0}")]
    NoSuchContainer(String),

    #[error("{0:?} matches more than one container ID; give more characters")]
    AmbiguousContainer(String),

    #[error("container {0} is not running")]
    NotRunning(String),

    #[error("container {0} is running: stop it first, or remove it with -f")]
    StillRunning(String),

    #[error("the shim of container {0} did not exit after the container stopped")]
    ShimStuck(String),

    #[error("container {0} is still starting after 30 s; its shim may be stuck")]
    StillStarting(String),
}

impl Error {
    /// Returns the exit code Docker uses for each kind of failure: 127 when the command does
    /// not exist, 126 when it cannot be executed, 125 when the container could not be set up.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CommandNotFound(_) => 127,
            Error::CannotExecute { .. } | Error::ForeignPlatform { .. } => 126,
            Error::Container { code, .. } => *code,
            _ => 125,
        }
    }
}

/// Attaches what was being attempted to a system call's error.
pub(crate) trait SysContext<T> {
    fn sys(self, action: &'static str) -> Result<T>;
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn sys(self, action: &'static str) -> Result<T> {
        self.map_err(|source| Error::System { action, source })
    }
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, action: &'static str) -> Result<T> {
        self.map_err(|errno| Error::System {
            action,
            source: errno.into(),
        })
    }
}

impl<T> SysContext<T> for rustix::io::Result<T> {
    fn sys(self, action: &'static str) -> Result<T> {
        self.map_err(|errno| Error::System {
            action,
            source: errno.into(),
        })
    }
}
