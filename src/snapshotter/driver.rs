//! Choosing how snapshots are mounted: the `driver` key of the `[snapshotter]` config section.

use std::fs;

use nix::mount::{umount2, MntFlags};
use tracing::{debug, warn};

use super::{Error, MountDriver, Result};
use crate::fs_error::FsContext;
use crate::mount::{Overlay, UpperDirs};
use crate::store::{random_id, Store};
use crate::unpack::remove_tree;

/// Resolves `auto` to the driver that works on this host and store.
///
/// NOTE: layerfs's FUSE driver is not part of this build yet, so `fuse`, and `auto` where
/// kernel overlayfs fails, stop the snapshotter at start-up. With the driver, snapshots with
/// parents get `fuse3.layerfs` mounts that containerd runs through `mount.fuse3`.
pub fn resolve(store: &Store, driver: MountDriver) -> Result<MountDriver> {
    match driver {
        MountDriver::Overlay => Ok(MountDriver::Overlay),
        MountDriver::Fuse => Err(Error::FuseUnavailable),
        MountDriver::Auto if overlay_works(store)? => Ok(MountDriver::Overlay),
        MountDriver::Auto => Err(Error::FuseUnavailable),
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
        assert_eq!(
            resolve(&store, MountDriver::Auto).unwrap(),
            MountDriver::Overlay
        );
        let leftovers = fs::read_dir(store.tmp_dir()).unwrap().count();
        assert_eq!(leftovers, 0, "the probe left entries in tmp/");
    }

    #[test]
    fn fuse_driver_reports_missing_driver() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let error = resolve(&store, MountDriver::Fuse).unwrap_err();
        assert!(matches!(error, Error::FuseUnavailable), "{error}");
    }
}
