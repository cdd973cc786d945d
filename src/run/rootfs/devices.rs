//! `/dev` for the container: a fresh tmpfs holding the device nodes the OCI runtime spec
//! lists as default (config-linux.md), its standard symlinks, and private `devpts`, `shm`
//! and `mqueue` mounts.
//!
//! The nodes are bind mounts of the host's own nodes, cloned by the shim, rather than nodes
//! made with mknod(2), because a process in a user namespace may not make device nodes.
//! This way the tmpfs can be `nodev`, so a node the container makes with its CAP_MKNOD
//! cannot be opened, whatever the cgroup version. (On cgroup v1 the devices controller also limits
//! which nodes may be opened.)

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs as rfs;
use rustix::mount::MountAttrFlags;

use super::super::mount_api::{attach, clone_tree};
use super::in_root;
use crate::fs_error::FsError;

/// The default devices of the OCI runtime spec.
const NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

const LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// Detached bind mounts of the host's default device nodes, made by the shim.
pub fn host_nodes() -> Result<Vec<(&'static str, OwnedFd)>, FsError> {
    NODES
        .into_iter()
        .map(|name| {
            let path = Path::new("/dev").join(name);
            let mount = clone_tree(&path, false).map_err(|e| FsError::new("cloning", &path, e))?;
            Ok((name, mount))
        })
        .collect()
}

/// Builds `/dev` in `root` from the nodes [`host_nodes`] cloned.
pub fn populate(root: impl AsFd, nodes: Vec<(&'static str, OwnedFd)>) -> Result<(), FsError> {
    let root = root.as_fd();
    let nosuid = MountAttrFlags::MOUNT_ATTR_NOSUID;
    let nodev = MountAttrFlags::MOUNT_ATTR_NODEV;
    let noexec = MountAttrFlags::MOUNT_ATTR_NOEXEC;
    let tmpfs_options = ["mode=755", "size=65536k"];
    let strict_atime = MountAttrFlags::MOUNT_ATTR_STRICTATIME;
    in_root::mount_new(
        root,
        "dev",
        "tmpfs",
        &tmpfs_options,
        nosuid | nodev | strict_atime,
    )?;

    for (name, mount) in nodes {
        let path = format!("dev/{name}");
        let target = in_root::file(root, &path)?;
        attach(&mount, &target).map_err(|e| FsError::new("mounting", format!("/{path}"), e))?;
    }
    let dev = in_root::dir(root, "dev")?;
    for (name, target) in LINKS {
        rfs::symlinkat(target, &dev, name)
            .map_err(|errno| in_root::error("creating symlink", &format!("dev/{name}"), errno))?;
    }

    let pts_options = ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"];
    in_root::mount_new(root, "dev/pts", "devpts", &pts_options, nosuid | noexec)?;
    let shm_options = ["mode=1777", "size=65536k"];
    in_root::mount_new(
        root,
        "dev/shm",
        "tmpfs",
        &shm_options,
        nosuid | nodev | noexec,
    )?;
    in_root::mount_new(root, "dev/mqueue", "mqueue", &[], nosuid | nodev | noexec)?;
    Ok(())
}
