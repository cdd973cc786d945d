//! The mount itself: `/dev/fuse` opened and mounted with mount(2), as libfuse does when it
//! runs as root.
//!
//! layerfs mounts the device itself, rather than letting fuser do it, so that the mount is
//! unmounted only while its connection is live. fuser 0.18 unmounts the target path when its
//! session ends, even after someone else unmounted it, because its check of the connection
//! reads `POLLERR` the wrong way round. By then the path may contain a newer mount, which it
//! would remove. containerd 1.6 does exactly that when the runc shim's reaper collects its
//! mount helper's exit status (`ECHILD`): it unmounts the helper's mount and runs the helper
//! again on the same target.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

const DEVICE: &str = "/dev/fuse";

/// Opens `/dev/fuse` and mounts it on `target`, owned by the caller's uid and gid.
pub fn mount_device(target: &Path, read_only: bool) -> io::Result<OwnedFd> {
    let device: File = OpenOptions::new().read(true).write(true).open(DEVICE)?;
    let metadata = fs::metadata(target)?;
    let root_type = metadata.mode() & libc::S_IFMT;
    let data = format!(
        "fd={},rootmode={root_type:o},user_id={},group_id={},default_permissions,allow_other",
        device.as_raw_fd(),
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let data = std::ffi::CString::new(data).expect("mount data has no NUL");
    // Without MS_NODEV and MS_NOSUID, as overlayfs mounts for containers are.
    let mut flags = MountFlags::empty();
    if read_only {
        flags |= MountFlags::RDONLY;
    }
    mount("layerfs", target, "fuse", flags, data.as_c_str())?;
    Ok(device.into())
}

/// Returns whether the connection of `device` is live. The kernel ends it when the mount is
/// gone, and `poll(2)` then reports `POLLERR`.
pub fn connected(device: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(device, PollFlags::empty())];
    match poll(&mut fds, Some(&Timespec::default())) {
        Ok(0) => true,
        Ok(_) => !fds[0].revents().contains(PollFlags::ERR),
        Err(_) => false,
    }
}

/// Detaches the mount on `target` if the connection of `device` is still live, which makes
/// it the mount that `device` serves.
pub fn unmount_if_connected(device: impl AsFd, target: &Path) {
    if connected(device.as_fd()) {
        let _ = unmount(target, UnmountFlags::DETACH);
    }
}
