//! The container's root file system: the image's layers and the container's writable layer
//! as one detached mount, made by the shim.
//!
//! This is the single place that decides what the root file system is made of. Everything
//! after it (PID 1 attaching the mount and building `/proc`, `/dev` and the rest on top)
//! only needs a detached mount. With kernel overlayfs the shim creates the overlay here.
//! With the FUSE driver, a daemon `run` started already serves the merged view on the
//! mount point, and the shim clones that mount.
//!
//! The mount is made with the shim's credentials, those of root on the host. overlayfs uses
//! the mounter's credentials for its own access to the layers, so it reads the
//! `trusted.overlay.*` attributes that mark opaque directories even when the container runs
//! in a user namespace, where those attributes are invisible.
//!
//! With `--userns`, each lower layer is first cloned as an idmapped mount and passed to
//! overlayfs as a file descriptor. A file owned by 0 in the image then shows as owned by the
//! container's root, whose host ID is the start of the range. Files the container creates
//! are written to the upper layer with those host IDs. Idmapped mounts need Linux 5.12, and
//! layers passed as descriptors a recent kernel; this was tested on 6.18. Where either is
//! missing, `set_idmapped_lowers` falls back to plain layers.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen,
    FsMountFlags, FsOpenFlags, MountAttrFlags,
};
use tracing::{debug, warn};

use super::super::mount_api::{attr_flags, clone_tree, mount_setattr, MountAttr};
use super::super::spec::RootfsSource;
use super::super::userns::UserNamespace;
use crate::fs_error::FsError;
use crate::mount::Overlay;

/// Mounts the container's root file system, detached: the overlay of the image's layers
/// under the writable layer, or a clone of the FUSE daemon's mount. Device nodes in the
/// image cannot be opened through it (nodev), because `/dev` gets its own nodes.
///
/// A `volatile` overlay (Linux 5.10) never syncs its upper layer. When the last process of
/// the container exits, unmounting an ordinary overlay syncs the whole file system under
/// the upper layer, which took tens of milliseconds on a busy machine. A container removed
/// at exit (`--rm`) has no use for that durability, so its overlay is volatile. As a cost,
/// fsync(2) in such a container does not make data durable.
pub fn mount_rootfs(
    source: &RootfsSource,
    mount_point: &Path,
    userns: Option<&UserNamespace>,
    volatile: bool,
) -> Result<OwnedFd, FsError> {
    let overlay = match source {
        RootfsSource::Overlay(overlay) => overlay,
        RootfsSource::Fuse => return clone_fuse_mount(mount_point, userns),
    };
    let upper = overlay
        .upper
        .as_ref()
        .expect("containers have a writable layer");
    let fail = |action, error: rustix::io::Errno| FsError::new(action, &upper.upper, error.into());
    let context = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|errno| fail("opening an overlay context for", errno))?;
    fsconfig_set_string(&context, "source", "overlay")
        .map_err(|errno| fail("configuring the overlay for", errno))?;

    // The idmapped layers are detached mounts: they must stay open until the overlay is
    // created, or closing them dissolves them before overlayfs clones them.
    let idmapped = match userns {
        Some(userns) => set_idmapped_lowers(&context, overlay, userns),
        None => None,
    };
    if idmapped.is_none() {
        set_lowers(&context, overlay)
            .map_err(|errno| fail("setting the lower layers of", errno))?;
    }
    fsconfig_set_string(&context, "upperdir", &upper.upper)
        .map_err(|errno| fail("setting the upper layer", errno))?;
    fsconfig_set_string(&context, "workdir", &upper.work)
        .map_err(|errno| fail("setting the work directory of", errno))?;
    if volatile && fsconfig_set_flag(&context, "volatile").is_err() {
        debug!("this kernel's overlayfs has no volatile option");
    }
    fsconfig_create(&context).map_err(|errno| fail("creating the overlay on", errno))?;
    drop(idmapped);
    fsmount(
        &context,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(|errno| fail("mounting the overlay on", errno))
}

/// Clones the FUSE daemon's mount. NOTE: the clone is not idmapped: in a user namespace the
/// image's files show as owned by nobody (65534), as with the fallback for overlayfs.
fn clone_fuse_mount(
    mount_point: &Path,
    userns: Option<&UserNamespace>,
) -> Result<OwnedFd, FsError> {
    if userns.is_some() {
        warn!(
            "the FUSE driver's mount is not idmapped, so the image's files will show as owned \
             by the overflow user (65534) inside the user namespace"
        );
    }
    clone_tree(mount_point, false).map_err(|error| FsError::new("cloning", mount_point, error))
}

/// Adds the lower layers one by one (`lowerdir+`, Linux 6.8), or as one `lowerdir` list on
/// older kernels.
fn set_lowers(context: &OwnedFd, overlay: &Overlay) -> rustix::io::Result<()> {
    let mut lowers = overlay.lowers.iter();
    if let Some(first) = lowers.next() {
        if fsconfig_set_string(context, "lowerdir+", first).is_err() {
            let joined: Vec<String> = overlay.lowers.iter().map(|dir| escape(dir)).collect();
            return fsconfig_set_string(context, "lowerdir", joined.join(":"));
        }
    }
    for lower in lowers {
        fsconfig_set_string(context, "lowerdir+", lower)?;
    }
    Ok(())
}

/// Escapes the `:` that separates lower directories, and the backslash that escapes it.
fn escape(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, ':' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Passes each lower layer as an idmapped mount, and returns those mounts. Returns `None`,
/// having configured nothing, where the kernel or the store's file system cannot do it.
fn set_idmapped_lowers(
    context: &OwnedFd,
    overlay: &Overlay,
    userns: &UserNamespace,
) -> Option<Vec<OwnedFd>> {
    let mut mounts = Vec::with_capacity(overlay.lowers.len());
    for lower in &overlay.lowers {
        match idmapped(lower, userns) {
            Ok(mount) => mounts.push(mount),
            Err(error) => {
                fallback_warning(lower, &error);
                return None;
            }
        }
    }
    let mut remaining = mounts.iter();
    if let Some(first) = remaining.next() {
        if let Err(errno) = fsconfig_set_fd(context, "lowerdir+", first) {
            fallback_warning(&overlay.lowers[0], &errno.into());
            return None;
        }
    }
    for (mount, lower) in remaining.zip(&overlay.lowers[1..]) {
        if let Err(errno) = fsconfig_set_fd(context, "lowerdir+", mount) {
            // Some layers are already configured, so the paths cannot follow; the overlay
            // creation reports the failure.
            warn!(layer = %lower.display(), "passing an idmapped layer to overlayfs: {errno}");
        }
    }
    debug!(layers = overlay.lowers.len(), "idmapped the image's layers");
    Some(mounts)
}

fn idmapped(dir: &Path, userns: &UserNamespace) -> std::io::Result<OwnedFd> {
    let mount = clone_tree(dir, false)?;
    let idmap = MountAttr {
        attr_set: attr_flags(MountAttrFlags::MOUNT_ATTR_IDMAP),
        userns_fd: userns.as_fd().as_raw_fd() as u64,
        ..MountAttr::default()
    };
    mount_setattr(&mount, false, &idmap)?;
    Ok(mount)
}

/// NOTE: without idmapped layers the image's files keep their host owners, which the user
/// namespace does not map: inside, they show as owned by nobody (65534), and the
/// container's root may read only what is world-readable and write nothing of the image's.
fn fallback_warning(layer: &Path, error: &std::io::Error) {
    warn!(
        layer = %layer.display(),
        "idmapped layers are not available ({error}); the image's files will show as owned \
         by nobody inside the user namespace"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_marks_separators() {
        assert_eq!(escape(Path::new("/a:b\\c,d")), "/a\\:b\\\\c,d");
    }
}
