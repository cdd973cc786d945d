//! `layerfs run`: a process in a fresh root filesystem, in new mount, UTS, IPC, network and PID
//! namespaces.
//!
//! `run` prepares `containers/<id>/` in the store (a writable layer over the image) and starts
//! `layerfs container-init` through `/proc/self/exe`, unsharing the namespaces just before
//! that exec. Starting a new process rather than forking keeps the namespace work in a
//! single-threaded process, whatever threads pulling started. The container's mounts live
//! only in its mount namespace, so they disappear with its last process. `run` then removes
//! the mount point and work directory, and with `--rm` the writable layer too.
//!
//! With the FUSE driver, `run` starts the FUSE daemon on `containers/<id>/rootfs` in the
//! host's namespaces before the container, because the daemon must not become a process of
//! the container. The container's mount namespace inherits that mount. Once the container
//! has exited, `run` unmounts it and waits for the daemon.

mod devices;
mod exec;
mod init;
mod net;
mod rootfs;
mod signals;
pub mod spec;
pub mod user;

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sched::{unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::fs_error::{FsContext, FsError};
use crate::image::{ImageConfig, InvalidConfig};
use crate::mount::{self, fuse_layers, image_overlay, Driver, UpperDirs};
use crate::store::{self, random_id, write_file_atomic, ImageRecord, Store};
use crate::unpack::remove_tree;
use spec::{resolve_process, InitSpec, NoCommand, Overrides, SPEC_ENV};

pub use init::container_init;

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
    NoCommand(#[from] NoCommand),

    #[error("resolving the container user: {0}")]
    User(#[from] user::UserError),

    #[error("executable file not found in $PATH: {0}")]
    CommandNotFound(String),

    #[error("cannot execute {path}: {reason}", path = .path.display())]
    CannotExecute { path: PathBuf, reason: String },

    #[error("argument or environment string contains a NUL byte: {0:?}")]
    InvalidString(String),

    #[error("starting the container: {0}")]
    Spawn(std::io::Error),

    #[error("invalid container init spec: {0}")]
    InvalidSpec(String),
}

impl Error {
    /// Maps the failure to Docker's exit codes: 127 when the command does not exist, 126 when
    /// it cannot be executed, 125 when the container could not be set up.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CommandNotFound(_) => 127,
            Error::CannotExecute { .. } => 126,
            _ => 125,
        }
    }
}

/// Settings of one `layerfs run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub overrides: Overrides,
    /// Remove the writable layer when the container exits.
    pub remove: bool,
    /// Defaults to the first 12 characters of the container ID.
    pub hostname: Option<String>,
    /// The driver presenting the image as the container's root.
    pub driver: Driver,
}

/// Contents of `containers/<id>/container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub image: String,
    pub args: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// The records of every container in the store, running or exited.
pub fn list_containers(store: &Store) -> Result<Vec<ContainerRecord>> {
    let dir = store.containers_dir();
    let mut records = Vec::new();
    for entry in fs::read_dir(&dir).at("listing", &dir)? {
        let path = entry.at("listing", &dir)?.path().join("container.json");
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        let record = serde_json::from_slice(&bytes).map_err(|error| store::Error::Corrupt {
            what: format!("container record {}", path.display()),
            reason: error.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Runs a container of `image` and waits for it. Returns its exit code, 128 + N when a signal
/// N killed it.
pub fn run(store: &Store, image: &ImageRecord, options: &RunOptions) -> Result<u8> {
    let config = ImageConfig::parse(&store.read_blob(&image.config)?, &image.config)?;
    let id = random_id(64);
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_owned());
    let process = resolve_process(&config, &options.overrides, &hostname)?;

    let dir = store.containers_dir().join(&id);
    let (overlay, fuse) = match options.driver {
        Driver::Overlay => (
            Some(image_overlay(store, image, Some(upper_dirs(&dir)))?),
            None,
        ),
        Driver::Fuse | Driver::FusePassthrough => (
            None,
            Some(fuse_layers(store, image, Some(upper_dirs(&dir)))?),
        ),
    };
    let spec = InitSpec {
        hostname,
        rootfs: dir.join("rootfs"),
        overlay,
        process,
    };
    let fuse = fuse.map(|layers| (layers, options.driver.fuse_open()));
    let result = create_and_start(image, &dir, spec, &id, fuse.as_ref());
    let cleanup = cleanup(&dir, options.remove);
    let code = result?;
    cleanup?;
    Ok(code)
}

fn upper_dirs(dir: &Path) -> UpperDirs {
    UpperDirs {
        upper: dir.join("upper"),
        work: dir.join("work"),
    }
}

fn create_and_start(
    image: &ImageRecord,
    dir: &Path,
    spec: InitSpec,
    id: &str,
    fuse: Option<&(layerfs_fuse::Layers, layerfs_fuse::OpenMode)>,
) -> Result<u8> {
    fs::create_dir(dir).at("creating container directory", dir)?;
    for sub in ["upper", "work", "rootfs"] {
        let path = dir.join(sub);
        fs::create_dir(&path).at("creating", &path)?;
    }
    let record = ContainerRecord {
        id: id.to_owned(),
        image: image.reference.clone(),
        args: spec.process.args.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
    };
    let json = serde_json::to_vec_pretty(&record).expect("container records serialize");
    write_file_atomic(&dir.join("container.json"), &json)?;
    let Some((layers, open)) = fuse else {
        return start_init(&spec);
    };
    // NOTE: if `run` itself is killed (SIGKILL), the daemon keeps serving the rootfs on the
    // host until `umount containers/<id>/rootfs` or a SIGTERM to it; overlay mounts, which
    // live in the container's mount namespace, need no such cleanup.
    mount::start_fuse_daemon(dir, &spec.rootfs, layers, *open)?;
    let code = start_init(&spec);
    mount::stop_fuse_daemon(dir, &spec.rootfs)?;
    code
}

/// Starts `layerfs container-init` in new namespaces and waits for it.
fn start_init(spec: &InitSpec) -> Result<u8> {
    let json = serde_json::to_string(spec).expect("init specs serialize");
    let namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWPID;
    let mut command = Command::new("/proc/self/exe");
    command.arg("container-init").env(SPEC_ENV, json);
    // SAFETY: the closure runs between fork and exec and only makes two system calls, which
    // is allowed in a forked child of a multi-threaded process.
    unsafe {
        command.pre_exec(move || {
            unshare(namespaces)?;
            prctl::set_pdeathsig(Signal::SIGKILL)?;
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(Error::Spawn)?;
    debug!(pid = child.id(), "started container init");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    signals::forward_to(pid).map_err(|errno| Error::Spawn(errno.into()))?;
    let status = child.wait().map_err(Error::Spawn)?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128 + signal as u8,
        (None, None) => 125,
    })
}

/// Removes what only a running container needs; with `remove`, everything.
fn cleanup(dir: &Path, remove: bool) -> Result<()> {
    if remove {
        remove_tree(dir)?;
        return Ok(());
    }
    remove_tree(&dir.join("work"))?;
    remove_tree(&dir.join("rootfs"))?;
    Ok(())
}
