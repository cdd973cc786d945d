//! The kernel's file systems in the container: `/proc`, a read-only `/sys`, the container's
//! own cgroup at `/sys/fs/cgroup`, and the parts of `/proc` and `/sys` Docker hides.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, FileType};
use rustix::mount::{open_tree, MountAttrFlags, OpenTreeFlags};

use super::super::mount_api::{attach, attr_flags, mount_fs, mount_setattr, MountAttr};
use super::in_root;
use crate::fs_error::FsError;

/// Paths Docker masks (moby's `oci/defaults.go`): files get `/dev/null` mounted over them,
/// directories an empty read-only tmpfs. They expose the host's kernel memory, keys, timers
/// and hardware.
const MASKED: [&str; 12] = [
    "proc/asound",
    "proc/acpi",
    "proc/interrupts",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only: writing to them changes the host's kernel, not the
/// container's.
const READ_ONLY: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

/// The layout of `/sys/fs/cgroup` inside: the v1 hierarchies the container has a cgroup in
/// (a directory name and the controllers mounted there), or the v2 tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupFs {
    V1(Vec<(String, Vec<String>)>),
    V2,
}

const NOSUID_NODEV_NOEXEC: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_NOSUID
    .union(MountAttrFlags::MOUNT_ATTR_NODEV)
    .union(MountAttrFlags::MOUNT_ATTR_NOEXEC);
const READ_ONLY_FLAGS: MountAttrFlags =
    NOSUID_NODEV_NOEXEC.union(MountAttrFlags::MOUNT_ATTR_RDONLY);

pub fn mount_proc(root: impl AsFd) -> Result<(), FsError> {
    reject_symlink(root.as_fd(), "proc")?;
    in_root::mount_new(root, "proc", "proc", &[], NOSUID_NODEV_NOEXEC)
}

/// Rejects an image whose `path` is a symlink. Followed inside the root, `proc -> /` would
/// put the mount over the root itself; runc likewise mounts proc and sysfs only on a real
/// directory.
fn reject_symlink(root: BorrowedFd, path: &str) -> Result<(), FsError> {
    match rfs::statat(root, path, rfs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
            Err(FsError::new(
                "mounting",
                Path::new("/").join(path),
                std::io::Error::other("the image makes it a symlink, and it must be a directory"),
            ))
        }
        _ => Ok(()),
    }
}

/// Mounts a read-only sysfs, or attaches `host_sys`, the shim's read-only copy of the
/// host's `/sys`, where the container may not mount sysfs: a new sysfs shows the network
/// namespace of its mounter, which a user namespace may only do for a network namespace it
/// owns.
pub fn mount_sys(root: impl AsFd, host_sys: Option<OwnedFd>) -> Result<(), FsError> {
    reject_symlink(root.as_fd(), "sys")?;
    let Some(host_sys) = host_sys else {
        return in_root::mount_new(root, "sys", "sysfs", &[], READ_ONLY_FLAGS);
    };
    let target = in_root::dir(root, "sys")?;
    attach(&host_sys, &target).map_err(|e| FsError::new("mounting", "/sys", e))
}

/// Mounts the container's cgroup read-only at `/sys/fs/cgroup`. In the container's cgroup
/// namespace each hierarchy's root is the container's own cgroup.
pub fn mount_cgroups(root: impl AsFd, cgroup_fs: &CgroupFs) -> Result<(), FsError> {
    let root = root.as_fd();
    let path = "sys/fs/cgroup";
    if in_root::existing(root, path)?.is_none() {
        return Ok(());
    }
    let hierarchies = match cgroup_fs {
        CgroupFs::V2 => return in_root::mount_new(root, path, "cgroup2", &[], READ_ONLY_FLAGS),
        CgroupFs::V1(hierarchies) => hierarchies,
    };
    in_root::mount_new(root, path, "tmpfs", &["mode=755"], NOSUID_NODEV_NOEXEC)?;
    let tmpfs = in_root::dir(root, path)?;
    for (name, controllers) in hierarchies {
        let options: Vec<&str> = controllers.iter().map(String::as_str).collect();
        in_root::mount_new(
            root,
            &format!("{path}/{name}"),
            "cgroup",
            &options,
            READ_ONLY_FLAGS,
        )?;
        // Co-mounted controllers also get their own names, as on the host.
        for controller in controllers.iter().filter(|c| *c != name) {
            rfs::symlinkat(name.as_str(), &tmpfs, controller.as_str()).map_err(|errno| {
                in_root::error("creating symlink", &format!("{path}/{controller}"), errno)
            })?;
        }
    }
    let read_only = MountAttr {
        attr_set: attr_flags(MountAttrFlags::MOUNT_ATTR_RDONLY),
        ..MountAttr::default()
    };
    mount_setattr(&tmpfs, false, &read_only)
        .map_err(|e| FsError::new("making read-only", "/sys/fs/cgroup", e))
}

/// Masks [`MASKED`] and makes [`READ_ONLY`] read-only. Needs `/dev/null` in place.
pub fn restrict(root: impl AsFd) -> Result<(), FsError> {
    let root = root.as_fd();
    let null = in_root::existing(root, "dev/null")?.expect("/dev is populated first");
    for path in MASKED {
        if let Some(target) = in_root::existing(root, path)? {
            mask(&target, &null)
                .map_err(|e| FsError::new("masking", Path::new("/").join(path), e))?;
        }
    }
    for path in READ_ONLY {
        if let Some(target) = in_root::existing(root, path)? {
            read_only(&target)
                .map_err(|e| FsError::new("making read-only", Path::new("/").join(path), e))?;
        }
    }
    Ok(())
}

fn mask(target: &OwnedFd, null: &OwnedFd) -> std::io::Result<()> {
    let is_dir = FileType::from_raw_mode(rfs::fstat(target)?.st_mode) == FileType::Directory;
    let cover = if is_dir {
        mount_fs("tmpfs", "tmpfs", &["size=0"], READ_ONLY_FLAGS)?
    } else {
        clone_at(null.as_fd(), false)?
    };
    attach(&cover, target)
}

fn read_only(target: &OwnedFd) -> std::io::Result<()> {
    let copy = clone_at(target.as_fd(), true)?;
    let flags = MountAttr {
        attr_set: attr_flags(READ_ONLY_FLAGS),
        ..MountAttr::default()
    };
    mount_setattr(&copy, true, &flags)?;
    attach(&copy, target)
}

/// Makes a detached bind mount of what `fd` refers to.
fn clone_at(fd: BorrowedFd<'_>, recursive: bool) -> std::io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(open_tree(fd, "", flags)?)
}
