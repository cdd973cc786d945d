//! The parts of the new mount API (Linux 5.12 and later) the container set-up uses and
//! rustix does not wrap: `mount_setattr(2)`, plus small helpers around detached mounts.
//!
//! A detached mount is a mount that belongs to no namespace yet: `open_tree(2)` with
//! `OPEN_TREE_CLONE` copies one, `fsmount(2)` creates one. The shim builds them with the
//! host's credentials, and the container's PID 1 attaches them with `move_mount(2)`, so PID
//! 1 never resolves a host path, and in a user namespace needs no access to one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

/// `MS_PRIVATE` for [`MountAttr::propagation`].
pub const PROPAGATION_PRIVATE: u64 = libc::MS_PRIVATE;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
#[derive(Debug, Default)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// Changes the attributes of the mount `fd` refers to, and of the mounts below it if
/// `recursive`.
pub fn mount_setattr(fd: impl AsFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a valid empty C string, `attr` points to a live `struct
    // mount_attr` of the size passed, and the kernel only reads it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Flags for [`mount_setattr`], from rustix's names.
pub fn attr_flags(flags: MountAttrFlags) -> u64 {
    u64::from(flags.bits())
}

/// Makes a detached copy of the mount at `path` (with the mounts below it if `recursive`),
/// private so that nothing mounted on either side later propagates to the other.
pub fn clone_tree(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let fd = open_tree(rustix::fs::CWD, path, flags)?;
    let private = MountAttr {
        propagation: PROPAGATION_PRIVATE,
        ..MountAttr::default()
    };
    mount_setattr(&fd, recursive, &private)?;
    Ok(fd)
}

/// Attaches the detached mount `mount` on top of the file or directory `target`.
pub fn attach(mount: impl AsFd, target: impl AsFd) -> io::Result<()> {
    move_mount(
        mount,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(io::Error::from)
}

/// Mounts a new file system of type `fstype`, detached. `options` are `key=value` or bare
/// flag names, as in a mount(8) option string.
pub fn mount_fs(
    fstype: &str,
    source: &str,
    options: &[&str],
    attributes: MountAttrFlags,
) -> io::Result<OwnedFd> {
    let context = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&context, "source", source)?;
    for option in options {
        match option.split_once('=') {
            Some((key, value)) => fsconfig_set_string(&context, key, value)?,
            None => fsconfig_set_flag(&context, *option)?,
        }
    }
    fsconfig_create(&context)?;
    Ok(fsmount(
        &context,
        FsMountFlags::FSMOUNT_CLOEXEC,
        attributes,
    )?)
}
