//! The container's mounts, set up by its PID 1 in its own mount namespace, then
//! `pivot_root(2)` into them.
//!
//! Mount points inside the image are opened with `openat2(2)` and `RESOLVE_IN_ROOT`, so a
//! symlink in the image (say `/proc -> /etc` or `/dev -> /../../host`) resolves as if the
//! rootfs were `/` and can never lead a mount out of it. Mounts then go onto the opened
//! directory through its `/proc/self/fd` path.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, pivot_root};
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::devices;
use super::spec::InitSpec;
use super::Error;
use crate::fs_error::{FsContext, FsError};

const DIR_PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Mounts the rootfs and its special file systems, and makes it the root.
pub fn prepare(spec: &InitSpec) -> Result<(), Error> {
    // Nothing mounted from here on may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .at("making mounts private in", "/")?;
    if let Some(overlay) = &spec.overlay {
        overlay.mount(&spec.rootfs)?;
    }
    let root = rfs::open(&spec.rootfs, DIR_PATH_FLAGS, Mode::empty())
        .map_err(|errno| FsError::new("opening", &spec.rootfs, errno.into()))?;

    let nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_in(&root, "proc", "proc", "proc", nodev_noexec, None)?;
    mount_in(
        &root,
        "sys",
        "sysfs",
        "sysfs",
        nodev_noexec | MsFlags::MS_RDONLY,
        None,
    )?;
    devices::populate(&root)?;
    pivot(&spec.rootfs)
}

/// Opens the directory `path` inside `root`, creating missing components with mode 0755.
pub fn dir_in_root(root: &OwnedFd, path: &str) -> Result<OwnedFd, FsError> {
    match rfs::openat2(root, path, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(errno) => return Err(in_root_error("opening", path, errno)),
    }
    let mut walked = PathBuf::new();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let parent = if walked.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &walked
        };
        let parent_fd = rfs::openat2(root, parent, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT)
            .map_err(|errno| in_root_error("opening", &parent.to_string_lossy(), errno))?;
        match rfs::mkdirat(&parent_fd, component, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(in_root_error("creating", path, errno)),
        }
        walked.push(component);
    }
    rfs::openat2(root, path, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT)
        .map_err(|errno| in_root_error("opening", path, errno))
}

fn in_root_error(action: &'static str, path: &str, errno: Errno) -> FsError {
    FsError::new(action, Path::new("/").join(path), errno.into())
}

/// Mounts `source` of type `fstype` on the directory `path` inside `root`.
pub fn mount_in(
    root: &OwnedFd,
    path: &str,
    source: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), FsError> {
    let target = dir_in_root(root, path)?;
    let fd_path = format!("/proc/self/fd/{}", target.as_raw_fd());
    mount(Some(source), fd_path.as_str(), Some(fstype), flags, data)
        .at("mounting", Path::new("/").join(path))
}

/// Makes `rootfs` the root and detaches the old one, without needing a directory for it:
/// after `pivot_root(".", ".")` the old root sits on top of the new one and can be unmounted.
fn pivot(rootfs: &Path) -> Result<(), Error> {
    chdir(rootfs).at("changing directory to", rootfs)?;
    pivot_root(".", ".").at("pivoting root to", rootfs)?;
    umount2(".", MntFlags::MNT_DETACH).at("detaching the old root from", rootfs)?;
    chdir("/").at("changing directory to", "/")?;
    Ok(())
}
