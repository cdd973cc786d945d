//! Opening paths inside the container's root file system without ever leaving it.
//!
//! Every path is resolved with `openat2(2)` and `RESOLVE_IN_ROOT`, so a symlink in the image
//! (say `/proc -> /etc` or `/dev -> /../../host`) resolves as if the rootfs were `/` and can
//! never lead a mount out of it. Mounts then go onto the opened file descriptor with
//! `move_mount(2)`, never onto a path that could be swapped in between.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::MountAttrFlags;

use super::super::mount_api::{attach, mount_fs};
use crate::fs_error::FsError;

const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);
const DIR_PATH_FLAGS: OFlags = PATH_FLAGS.union(OFlags::DIRECTORY);
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// The directory `path` inside `root`, created with mode 0755 (and its parents) if missing.
pub fn dir(root: impl AsFd, path: &str) -> Result<OwnedFd, FsError> {
    let root = root.as_fd();
    let path = if path.is_empty() { "." } else { path };
    match rfs::openat2(root, path, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(errno) => return Err(error("opening", path, errno)),
    }
    let mut walked = PathBuf::new();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let parent = if walked.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &walked
        };
        let parent_fd = rfs::openat2(root, parent, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT)
            .map_err(|errno| error("opening", &parent.to_string_lossy(), errno))?;
        match rfs::mkdirat(&parent_fd, component, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(error("creating", path, errno)),
        }
        walked.push(component);
    }
    rfs::openat2(root, path, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT)
        .map_err(|errno| error("opening", path, errno))
}

/// The file `path` inside `root`, created empty if missing: a mount point for a file.
pub fn file(root: impl AsFd, path: &str) -> Result<OwnedFd, FsError> {
    let root = root.as_fd();
    let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    };
    let parent_fd = dir(root, parent)?;
    let create = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    match rfs::openat(&parent_fd, name, create, Mode::from_raw_mode(0o644)) {
        Ok(_) | Err(Errno::EXIST) | Err(Errno::ISDIR) => {}
        Err(errno) => return Err(error("creating", path, errno)),
    }
    rfs::openat2(root, path, PATH_FLAGS, Mode::empty(), IN_ROOT)
        .map_err(|errno| error("opening", path, errno))
}

/// `path` inside `root` if it exists.
pub fn existing(root: impl AsFd, path: &str) -> Result<Option<OwnedFd>, FsError> {
    match rfs::openat2(root.as_fd(), path, PATH_FLAGS, Mode::empty(), IN_ROOT) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(error("opening", path, errno)),
    }
}

pub fn error(action: &'static str, path: &str, errno: Errno) -> FsError {
    FsError::new(action, Path::new("/").join(path), errno.into())
}

/// Mounts a new `fstype` file system on the directory `path` inside `root`.
pub fn mount_new(
    root: impl AsFd,
    path: &str,
    fstype: &str,
    options: &[&str],
    attributes: MountAttrFlags,
) -> Result<(), FsError> {
    let target = dir(root, path)?;
    let mount = mount_fs(fstype, fstype, options, attributes)
        .map_err(|error| FsError::new("creating a mount for", Path::new("/").join(path), error))?;
    attach(&mount, &target)
        .map_err(|error| FsError::new("mounting", Path::new("/").join(path), error))
}
