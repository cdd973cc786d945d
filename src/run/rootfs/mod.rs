//! The container's mounts: prepared as detached mounts by the shim, attached and completed by
//! PID 1 in its own mount namespace, which then `pivot_root(2)`s into them.
//!
//! Splitting the work this way means the mounts that need the host (the image's overlay,
//! bind sources, device nodes) are made with the host's credentials, and PID 1, which may be
//! in a user namespace, never resolves a host path. See [`in_root`] for how targets inside
//! the image are resolved.

pub mod devices;
pub mod image;
mod in_root;
pub mod kernel_fs;
pub mod network_files;
pub mod volumes;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, fchdir, pivot_root};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::mount::MountAttrFlags;

use super::console;
use super::mount_api::{attach, attr_flags, clone_tree, mount_setattr, MountAttr};
use super::spec::{InitSpec, Network, RootfsSource};
use super::userns::UserNamespace;
use super::Error;
use crate::fs_error::{FsContext, FsError};
use kernel_fs::CgroupFs;
use volumes::VolumeSource;

/// The detached mounts the shim prepares for one container.
pub struct PreparedMounts {
    /// The root file system, from [`image::mount_rootfs`].
    pub rootfs: OwnedFd,
    /// The directory the root file system is attached to, `containers/<id>/rootfs`. PID 1
    /// makes it its working directory before unsharing its mount namespace (see
    /// [`enter_mount_point`]).
    pub mount_point: OwnedFd,
    pub devices: Vec<(&'static str, OwnedFd)>,
    /// One per `spec.volumes`, in order.
    pub volumes: Vec<VolumeSource>,
    /// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, by target.
    pub network_files: Vec<(&'static str, OwnedFd)>,
    /// A read-only copy of the host's `/sys`, where PID 1 may not mount sysfs.
    pub host_sys: Option<OwnedFd>,
}

impl PreparedMounts {
    /// Makes every detached mount the container needs, from the container's directory `dir`.
    /// Runs in the shim, as host root.
    pub fn prepare(
        spec: &InitSpec,
        source: &RootfsSource,
        dir: &Path,
        userns: Option<&UserNamespace>,
        volatile: bool,
    ) -> Result<PreparedMounts, Error> {
        let mount_point = &dir.join("rootfs");
        let rootfs = image::mount_rootfs(source, mount_point, userns, volatile)?;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mount_point = rfs::open(mount_point, flags, Mode::empty())
            .map_err(|errno| FsError::new("opening", mount_point, errno.into()))?;
        let volumes = spec
            .volumes
            .iter()
            .map(volumes::clone_source)
            .collect::<Result<_, _>>()?;
        let host_sys = match (userns, spec.network) {
            (Some(_), Network::Host) => Some(read_only_host_sys()?),
            _ => None,
        };
        Ok(PreparedMounts {
            rootfs,
            mount_point,
            devices: devices::host_nodes()?,
            volumes,
            network_files: network_files::clone(dir, spec.read_only)?,
            host_sys,
        })
    }
}

fn read_only_host_sys() -> Result<OwnedFd, FsError> {
    let sys =
        clone_tree(Path::new("/sys"), true).map_err(|e| FsError::new("cloning", "/sys", e))?;
    let read_only = MountAttr {
        attr_set: attr_flags(MountAttrFlags::MOUNT_ATTR_RDONLY),
        ..MountAttr::default()
    };
    mount_setattr(&sys, true, &read_only)
        .map_err(|e| FsError::new("making read-only", "/sys", e))?;
    Ok(sys)
}

/// Makes the mount point PID 1's working directory. A descriptor opened before unshare(2)
/// keeps referring to the old mount namespace, where attaching to it fails, but unshare(2)
/// moves the working directory into the new one. fchdir(2) needs search permission on the
/// directory only, not on the store path above it, which PID 1 in a user namespace may lack.
pub fn enter_mount_point(mounts: &PreparedMounts) -> Result<(), Error> {
    fchdir(&mounts.mount_point).at("changing directory to", "the rootfs mount point")?;
    Ok(())
}

/// Builds the container's file system tree on the root file system, all but its cgroup
/// mounts (see [`finish`]), and returns the root. Runs in PID 1, in its new mount namespace.
pub fn build(spec: &InitSpec, mounts: PreparedMounts) -> Result<OwnedFd, Error> {
    // Nothing mounted from here on may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .at("making mounts private in", "/")?;
    let root = mounts.rootfs;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mount_point = rfs::open(".", flags, Mode::empty())
        .map_err(|errno| FsError::new("opening", "the rootfs mount point", errno.into()))?;
    attach(&root, &mount_point).at("attaching the root file system to", "rootfs")?;

    kernel_fs::mount_proc(&root)?;
    kernel_fs::mount_sys(&root, mounts.host_sys)?;
    devices::populate(&root, mounts.devices)?;
    for (volume, source) in spec.volumes.iter().zip(mounts.volumes) {
        volumes::attach_volume(&root, &volume.target, source)?;
    }
    for tmpfs in &spec.tmpfs {
        volumes::mount_tmpfs(&root, tmpfs)?;
    }
    // After the user's mounts, as Docker orders mounts by depth: a volume on /etc gets the
    // files mounted inside it.
    network_files::mount(&root, spec, mounts.network_files)?;
    kernel_fs::restrict(&root)?;
    // Created here, as Docker does, so that it exists even on a read-only root file system.
    in_root::dir(&root, &spec.process.cwd)?;
    Ok(root)
}

/// Mounts the cgroup file systems, opens the terminal, and makes `root` the root. A cgroup
/// mount shows the cgroup namespace of its mounter, so this runs once PID 1 has its own.
/// Returns the terminal's secondary side when the spec requests one.
pub fn finish(
    spec: &InitSpec,
    root: OwnedFd,
    cgroup_fs: &CgroupFs,
    console_socket: Option<&OwnedFd>,
) -> Result<Option<OwnedFd>, Error> {
    kernel_fs::mount_cgroups(&root, cgroup_fs)?;
    let terminal = match (spec.terminal, console_socket) {
        (Some(size), Some(socket)) => Some(console::create(&root, size, socket)?),
        _ => None,
    };
    if spec.read_only {
        let read_only = MountAttr {
            attr_set: attr_flags(MountAttrFlags::MOUNT_ATTR_RDONLY),
            ..MountAttr::default()
        };
        mount_setattr(&root, false, &read_only).at("making read-only", "/")?;
    }
    pivot(&root)?;
    Ok(terminal)
}

/// Opens the mount point for the terminal at `/dev/console`, creating it if missing.
pub fn console_target(root: impl AsFd) -> Result<OwnedFd, FsError> {
    in_root::file(root, "dev/console")
}

/// Makes `root` the root and detaches the old one, without needing a directory for it:
/// after `pivot_root(".", ".")` the old root sits on top of the new one and can be unmounted.
fn pivot(root: impl AsFd) -> Result<(), Error> {
    fchdir(root.as_fd()).at("changing directory to", "the root file system")?;
    pivot_root(".", ".").at("pivoting root to", "the root file system")?;
    umount2(".", MntFlags::MNT_DETACH).at("detaching the old root from", "/")?;
    chdir("/").at("changing directory to", "/")?;
    Ok(())
}
