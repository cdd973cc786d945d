//! `/dev` for the container: a fresh tmpfs with the device nodes the OCI runtime spec lists as
//! default, its standard symlinks, and private `devpts`, `shm` and `mqueue` mounts.

use std::os::fd::OwnedFd;

use nix::mount::MsFlags;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode};

use super::rootfs::{dir_in_root, mount_in};
use crate::fs_error::FsError;

/// Name, major, minor: the OCI runtime spec's default devices (config-linux.md).
const NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

pub fn populate(root: &OwnedFd) -> Result<(), FsError> {
    let nosuid = MsFlags::MS_NOSUID;
    mount_in(
        root,
        "dev",
        "tmpfs",
        "tmpfs",
        nosuid | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // Reopen: the descriptor from before the mount refers to the directory underneath.
    let dev = dir_in_root(root, "dev")?;
    for (name, major, minor) in NODES {
        make_node(&dev, name, major, minor)?;
    }
    for (name, target) in LINKS {
        rfs::symlinkat(target, &dev, name)
            .map_err(|errno| dev_error("creating symlink", name, errno))?;
    }

    let noexec = nosuid | MsFlags::MS_NOEXEC;
    let pts_options = "newinstance,ptmxmode=0666,mode=0620,gid=5";
    mount_in(
        root,
        "dev/pts",
        "devpts",
        "devpts",
        noexec,
        Some(pts_options),
    )?;
    let shm_flags = noexec | MsFlags::MS_NODEV;
    mount_in(
        root,
        "dev/shm",
        "shm",
        "tmpfs",
        shm_flags,
        Some("mode=1777,size=65536k"),
    )?;
    mount_in(root, "dev/mqueue", "mqueue", "mqueue", shm_flags, None)?;
    Ok(())
}

fn make_node(dev: &OwnedFd, name: &str, major: u32, minor: u32) -> Result<(), FsError> {
    let mode = Mode::from_raw_mode(0o666);
    rfs::mknodat(
        dev,
        name,
        FileType::CharacterDevice,
        mode,
        rfs::makedev(major, minor),
    )
    .map_err(|errno| dev_error("creating device", name, errno))?;
    // mknod(2) applies the umask; the spec wants 0666.
    rfs::chmodat(dev, name, mode, AtFlags::empty())
        .map_err(|errno| dev_error("setting mode of", name, errno))
}

fn dev_error(action: &'static str, name: &str, errno: rustix::io::Errno) -> FsError {
    FsError::new(action, format!("/dev/{name}"), errno.into())
}
