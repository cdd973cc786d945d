//! `layerfs mount` and `layerfs umount`: an image's merged root filesystem on a directory of
//! the host, read-only or with a fresh writable layer.
//!
//! Two drivers present the image: the kernel's overlayfs (the default), and layerfs's own
//! FUSE file system served by a background daemon (`fuse`), for hosts or containers where
//! an overlay mount is not allowed.
//!
//! Each mount has a directory `mounts/<id>/` in the store with `mount.json` (the target and
//! what to clean up) and, for a writable mount, `upper/` and `work/`. The FUSE driver adds
//! its daemon's files there (see `fuse`). `umount` finds the record by target path, so it
//! also cleans up after a mount that is already gone or whose daemon died.

mod fuse;
mod overlay;

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::fs_error::{FsContext, FsError};
use crate::store::{self, random_id, ImageRecord, Store};
use crate::unpack::remove_tree;

pub use fuse::{run_daemon, start as start_fuse_daemon, stop as stop_fuse_daemon};
pub use overlay::{Overlay, UpperDirs};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error(transparent)]
    Store(#[from] store::Error),

    #[error(
        "layer {chain_id} of image {reference} is missing from the store; pull the image again"
    )]
    MissingLayer { reference: String, chain_id: String },

    #[error("image {0} has no layers to mount")]
    NoLayers(String),

    #[error("{0} is not a layerfs mount")]
    NotMounted(PathBuf),

    #[error("{0} is busy: a process has files open or its working directory below it")]
    Busy(PathBuf),

    #[error("mount target {0} is not an empty directory")]
    TargetNotEmpty(PathBuf),

    #[error(transparent)]
    Fuse(#[from] layerfs_fuse::Error),

    #[error("the FUSE daemon failed to start ({message}); its log is {log}")]
    DaemonFailed { log: PathBuf, message: String },

    #[error("the FUSE daemon of {0} did not exit after the unmount")]
    DaemonStuck(PathBuf),
}

/// The driver presenting the merged image on the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    /// The kernel's overlayfs.
    #[default]
    Overlay,
    /// layerfs's FUSE file system, served by a daemon process; opens cost no request and
    /// the kernel caches file pages.
    Fuse,
    /// The FUSE file system with every open passed through to the real file (Linux 6.9 and
    /// later): an open costs a request, reads and writes cost none.
    FusePassthrough,
}

impl Driver {
    pub fn is_fuse(self) -> bool {
        self != Driver::Overlay
    }

    /// Returns the way the FUSE driver serves opens.
    pub fn fuse_open(self) -> layerfs_fuse::OpenMode {
        match self {
            Driver::FusePassthrough => layerfs_fuse::OpenMode::Passthrough,
            _ => layerfs_fuse::OpenMode::Cached,
        }
    }
}

/// What `mounts/<id>/mount.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    pub id: String,
    pub target: PathBuf,
    pub reference: String,
    pub writable: bool,
    /// `mount` created the target directory, so `umount` removes it.
    pub created_target: bool,
    #[serde(default)]
    pub driver: Driver,
    /// The FUSE daemon's process ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// What `unmount` left in place.
#[derive(Debug)]
pub struct Unmounted {
    /// The writable layer, when asked to keep it.
    pub kept_upper: Option<PathBuf>,
}

/// Returns the layer directories of an image, topmost first.
pub fn image_layers(store: &Store, image: &ImageRecord) -> Result<Vec<PathBuf>> {
    if image.layers.is_empty() {
        return Err(Error::NoLayers(image.reference.clone()));
    }
    let mut lowers = Vec::with_capacity(image.layers.len() + 1);
    for layer in image.layers.iter().rev() {
        if !store.has_layer(&layer.chain_id) {
            return Err(Error::MissingLayer {
                reference: image.reference.clone(),
                chain_id: layer.chain_id.to_string(),
            });
        }
        lowers.push(store.layer_diff(&layer.chain_id));
    }
    Ok(lowers)
}

/// The overlay of an image's layers, with `upper` on top if given.
pub fn image_overlay(
    store: &Store,
    image: &ImageRecord,
    upper: Option<UpperDirs>,
) -> Result<Overlay> {
    let mut lowers = image_layers(store, image)?;
    if lowers.len() == 1 && upper.is_none() {
        lowers.push(store.empty_dir());
    }
    Ok(Overlay { lowers, upper })
}

/// Mounts `image` on `target` with `driver`, creating `target` if it does not exist.
pub fn mount_image(
    store: &Store,
    image: &ImageRecord,
    target: &Path,
    writable: bool,
    driver: Driver,
) -> Result<MountRecord> {
    let created_target = prepare_target(target)?;
    let target = target.canonicalize().at("resolving", target)?;
    let id = random_id(16);
    let dir = store.mounts_dir().join(&id);
    let record = MountRecord {
        id,
        target: target.clone(),
        reference: image.reference.clone(),
        writable,
        created_target,
        driver,
        pid: None,
    };
    let result = create_and_mount(store, image, &dir, record);
    if result.is_err() {
        let _ = remove_tree(&dir);
        if created_target {
            let _ = fs::remove_dir(&target);
        }
    }
    result
}

fn create_and_mount(
    store: &Store,
    image: &ImageRecord,
    dir: &Path,
    mut record: MountRecord,
) -> Result<MountRecord> {
    fs::create_dir(dir).at("creating mount directory", dir)?;
    let upper = if record.writable {
        let dirs = UpperDirs {
            upper: dir.join("upper"),
            work: dir.join("work"),
        };
        fs::create_dir(&dirs.upper).at("creating", &dirs.upper)?;
        fs::create_dir(&dirs.work).at("creating", &dirs.work)?;
        Some(dirs)
    } else {
        None
    };
    write_record(dir, &record)?;
    match record.driver {
        Driver::Overlay => {
            let overlay = image_overlay(store, image, upper)?;
            debug!(target = %record.target.display(), options = %overlay.options(), "mounting");
            overlay.mount(&record.target)?;
        }
        Driver::Fuse | Driver::FusePassthrough => {
            let layers = fuse_layers(store, image, upper)?;
            debug!(target = %record.target.display(), "mounting with FUSE");
            let open = record.driver.fuse_open();
            record.pid = Some(fuse::start(dir, &record.target, &layers, open)?);
            write_record(dir, &record)?;
        }
    }
    Ok(record)
}

/// Returns the layers of `image` as the FUSE driver takes them, with `upper` on top if
/// given.
pub fn fuse_layers(
    store: &Store,
    image: &ImageRecord,
    upper: Option<UpperDirs>,
) -> Result<layerfs_fuse::Layers> {
    Ok(layerfs_fuse::Layers {
        lowers: image_layers(store, image)?,
        upper: upper.map(|dirs| layerfs_fuse::UpperDirs {
            upper: dirs.upper,
            work: dirs.work,
        }),
    })
}

fn write_record(dir: &Path, record: &MountRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).expect("mount records serialize");
    store::write_file_atomic(&dir.join("mount.json"), &json)?;
    Ok(())
}

/// Returns whether the directory had to be created.
fn prepare_target(target: &Path) -> Result<bool> {
    match fs::read_dir(target) {
        Ok(mut entries) => match entries.next() {
            None => Ok(false),
            Some(_) => Err(Error::TargetNotEmpty(target.to_path_buf())),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            // Only DIR itself: `umount` removes what `mount` created, and parents would stay.
            match fs::create_dir(target) {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    let parent = target.parent().unwrap_or(Path::new("/"));
                    let reason = format!("its parent {} does not exist", parent.display());
                    let error = std::io::Error::new(std::io::ErrorKind::NotFound, reason);
                    Err(FsError::new("creating mount target", target, error).into())
                }
                Err(error) => Err(FsError::new("creating mount target", target, error).into()),
            }
        }
        Err(error) => Err(FsError::new("opening mount target", target, error).into()),
    }
}

/// Unmounts the layerfs mount on `target` and removes its store directory, keeping the
/// writable layer if `keep` is set.
pub fn unmount(store: &Store, target: &Path, keep: bool) -> Result<Unmounted> {
    let target = resolve_target(target)?;
    let (dir, record) = find_mount(store, &target)?;
    match umount2(&target, MntFlags::empty()) {
        Ok(()) => {}
        Err(Errno::EBUSY) => return Err(Error::Busy(target)),
        Err(Errno::EINVAL) => warn!(target = %target.display(), "already unmounted; cleaning up"),
        Err(errno) => return Err(FsError::new("unmounting", &target, errno.into()).into()),
    }
    if record.driver.is_fuse() {
        fuse::wait_for_exit(&dir)?;
    }

    let kept_upper = if keep && record.writable {
        let upper = dir.join("upper");
        remove_tree(&dir.join("work"))?;
        fs::remove_file(dir.join("mount.json")).at("removing", dir.join("mount.json"))?;
        Some(upper)
    } else {
        remove_tree(&dir)?;
        None
    };
    if record.created_target {
        fs::remove_dir(&target).at("removing mount target", &target)?;
    }
    Ok(Unmounted { kept_upper })
}

/// Returns the absolute path of a mount target. The target of a FUSE mount whose daemon died
/// cannot be resolved itself (ENOTCONN), so its parent is resolved instead.
fn resolve_target(target: &Path) -> Result<PathBuf> {
    let error = match target.canonicalize() {
        Ok(target) => return Ok(target),
        Err(error) => error,
    };
    match error.raw_os_error() {
        Some(libc::ENOENT) => Err(Error::NotMounted(target.to_path_buf())),
        Some(libc::ENOTCONN) => {
            let parent = target.parent().unwrap_or(Path::new("."));
            let parent = match parent.as_os_str().is_empty() {
                true => Path::new("."),
                false => parent,
            };
            let name = target
                .file_name()
                .ok_or(Error::NotMounted(target.to_path_buf()))?;
            Ok(parent.canonicalize().at("resolving", parent)?.join(name))
        }
        _ => Err(FsError::new("resolving", target, error).into()),
    }
}

/// Every mount record in the store.
pub fn list_mounts(store: &Store) -> Result<Vec<(PathBuf, MountRecord)>> {
    let mounts = store.mounts_dir();
    let mut records = Vec::new();
    for entry in fs::read_dir(&mounts).at("listing", &mounts)? {
        let dir = entry.at("listing", &mounts)?.path();
        let path = dir.join("mount.json");
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        let record: MountRecord =
            serde_json::from_slice(&bytes).map_err(|error| store::Error::Corrupt {
                what: format!("mount record {}", path.display()),
                reason: error.to_string(),
            })?;
        records.push((dir, record));
    }
    Ok(records)
}

fn find_mount(store: &Store, target: &Path) -> Result<(PathBuf, MountRecord)> {
    list_mounts(store)?
        .into_iter()
        .find(|(_, record)| record.target == target)
        .ok_or_else(|| Error::NotMounted(target.to_path_buf()))
}
