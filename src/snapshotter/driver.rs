//! Choosing how snapshots are mounted: the `driver` key of the `[snapshotter]` config section.

use std::fs::{self, OpenOptions};
use std::path::Path;

use nix::mount::{umount2, MntFlags};
use tracing::{debug, warn};

use super::mounts::Merge;
use super::{Error, MountDriver, Result};
use crate::fs_error::FsContext;
use crate::mount::{Overlay, UpperDirs};
use crate::store::{random_id, Store};
use crate::unpack::remove_tree;

/// The device through which a FUSE daemon serves the kernel.
const FUSE_DEVICE: &str = "/dev/fuse";

/// The programs that containerd runs for a `fuse3.layerfs` mount, found on its PATH.
const FUSE_PROGRAMS: [&str; 2] = ["mount.fuse3", "layerfs"];

/// Resolves `auto` to the driver that works on this host and store, and checks that the
/// FUSE driver can work where it is chosen.
pub fn resolve(store: &Store, driver: MountDriver) -> Result<Merge> {
    resolve_with(store, driver, Path::new(FUSE_DEVICE))
}

fn resolve_with(store: &Store, driver: MountDriver, fuse_device: &Path) -> Result<Merge> {
    let overlay_failed = match driver {
        MountDriver::Overlay => return Ok(Merge::Overlay),
        MountDriver::Fuse => false,
        MountDriver::Auto if overlay_works(store)? => return Ok(Merge::Overlay),
        MountDriver::Auto => true,
    };
    if let Err(error) = OpenOptions::new().read(true).write(true).open(fuse_device) {
        let path = fuse_device.to_path_buf();
        let reason = error.to_string();
        return Err(match overlay_failed {
            true => Error::NoMountDriver { path, reason },
            false => Error::FuseDevice { path, reason },
        });
    }
    warn_missing_programs();
    Ok(Merge::Fuse)
}

/// Warns about each program of [`FUSE_PROGRAMS`] missing from this process's PATH. containerd
/// may run with another PATH, so a missing program is no error here.
fn warn_missing_programs() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for program in FUSE_PROGRAMS {
        let found = std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
        if !found {
            warn!(
                program,
                "not found on PATH; containerd needs it on its PATH to mount snapshots with FUSE"
            );
        }
    }
}

/// Mounts a one-layer writable overlay under the store's `tmp/` and unmounts it again. The
/// upper directory lives on the store's file system, which overlayfs rejects as upper on some
/// hosts (no `d_type`, no trusted xattrs, overlayfs itself), and some kernels lack overlayfs.
fn overlay_works(store: &Store) -> Result<bool> {
    let dir = store.tmp_dir().join(format!("probe-{}", random_id(16)));
    let upper = UpperDirs {
        upper: dir.join("upper"),
        work: dir.join("work"),
    };
    let target = dir.join("merged");
    for path in [&dir, &upper.upper, &upper.work, &target] {
        fs::create_dir(path).at("creating", path)?;
    }
    let overlay = Overlay {
        lowers: vec![store.empty_dir()],
        upper: Some(upper),
    };
    let works = match overlay.mount(&target) {
        Ok(()) => {
            umount2(&target, MntFlags::MNT_DETACH).at("unmounting", &target)?;
            debug!("kernel overlayfs works on the store");
            true
        }
        Err(error) => {
            warn!(%error, "kernel overlayfs does not work on the store");
            false
        }
    };
    remove_tree(&dir)?;
    Ok(works)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_driver_picks_overlay_here() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(resolve(&store, MountDriver::Auto).unwrap(), Merge::Overlay);
        let leftovers = fs::read_dir(store.tmp_dir()).unwrap().count();
        assert_eq!(leftovers, 0, "the probe left entries in tmp/");
    }

    /// overlayfs rejects an overlayfs mount as upper file system, so a store inside one is a
    /// store where kernel overlayfs cannot be used.
    #[test]
    fn auto_driver_falls_back_to_fuse() {
        let dir = tempfile::tempdir().unwrap();
        let upper = UpperDirs {
            upper: dir.path().join("upper"),
            work: dir.path().join("work"),
        };
        let merged = dir.path().join("merged");
        for path in [
            &dir.path().join("lower"),
            &upper.upper,
            &upper.work,
            &merged,
        ] {
            fs::create_dir(path).unwrap();
        }
        let overlay = Overlay {
            lowers: vec![dir.path().join("lower")],
            upper: Some(upper),
        };
        overlay.mount(&merged).unwrap();

        let store = Store::open(&merged.join("store")).unwrap();
        let merge = resolve(&store, MountDriver::Auto);
        umount2(&merged, MntFlags::MNT_DETACH).unwrap();
        assert_eq!(merge.unwrap(), Merge::Fuse);
    }

    #[test]
    fn fuse_driver_opens_fuse_device() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(resolve(&store, MountDriver::Fuse).unwrap(), Merge::Fuse);
    }

    #[test]
    fn fuse_driver_needs_fuse_device() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let missing = dir.path().join("fuse");
        let error = resolve_with(&store, MountDriver::Fuse, &missing).unwrap_err();
        assert!(matches!(error, Error::FuseDevice { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("No such file or directory"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn overlay_driver_skips_fuse_device() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let missing = dir.path().join("fuse");
        let merge = resolve_with(&store, MountDriver::Overlay, &missing).unwrap();
        assert_eq!(merge, Merge::Overlay);
    }
}
