//! The layerfs binary as the shim and the container's PID 1 execute it: through a detached,
//! read-only bind mount of `/proc/self/exe`.
//!
//! CVE-2019-5736 let a container overwrite the host's runc binary by opening
//! `/proc/<pid>/exe` of a runtime process that had joined the container. Here the
//! container's PID 1 runs layerfs code until it executes the command, and with `--init` for
//! the container's whole life, so its `/proc/1/exe` is reachable from inside. Executing the
//! binary through a read-only mount makes that link resolve to the read-only mount, so
//! opening it for writing fails with EROFS. No process in the container may remount it,
//! because the mount was never attached to any namespace the container can reach. (runc later chose
//! a similar read-only mount over its earlier sealed memfd copy, which cost a copy of the
//! binary in memory per container.)

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::mount::MountAttrFlags;

use super::mount_api::{attr_flags, clone_tree, mount_setattr, MountAttr};

/// Opens the running binary through a read-only mount. Needs Linux 5.12 (mount_setattr).
pub fn open_read_only() -> io::Result<OwnedFd> {
    read_only_file(Path::new("/proc/self/exe"))
}

/// `path` through a detached read-only bind mount of it.
fn read_only_file(path: &Path) -> io::Result<OwnedFd> {
    let fd = clone_tree(path, false)?;
    let read_only = MountAttr {
        attr_set: attr_flags(
            MountAttrFlags::MOUNT_ATTR_RDONLY
                | MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV,
        ),
        ..MountAttr::default()
    };
    mount_setattr(&fd, false, &read_only)?;
    Ok(fd)
}

/// Returns a path that executes `fd`. execve(2) resolves it before it closes close-on-exec
/// file descriptors, so `fd` may be close-on-exec.
pub fn exec_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn read_only_file_rejects_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("binary");
        fs::write(&path, "contents").unwrap();
        let fd = read_only_file(&path).unwrap();
        let through_mount = exec_path(&fd);
        let error = fs::OpenOptions::new()
            .append(true)
            .open(&through_mount)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ReadOnlyFilesystem);
        assert_eq!(fs::read_to_string(&through_mount).unwrap(), "contents");
        fs::write(&path, "still writable here").unwrap();
    }
}
