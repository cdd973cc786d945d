//! The content store: verified blobs, unpacked layers and image records under one root.
//!
//! ```text
//! <root>/                                  default /var/lib/layerfs
//! ├── blobs/sha256/<hex>                   manifests, indexes, configs, compressed layers
//! ├── layers/sha256/<chain-id-hex>/
//! │   ├── diff/                            the layer's tree in overlayfs form
//! │   └── layer.json                       diff ID, blob digest, size, parent chain ID
//! ├── images/<escaped reference>.json      image records: reference → manifest and layers
//! ├── mounts/<id>/                         `layerfs mount`: mount.json, upper/, work/
//! ├── containers/<id>/                     `layerfs run`: upper/, work/, rootfs/, hosts…
//! ├── snapshots/                           `layerfs snapshotter`: metadata.redb, <id>/fs
//! ├── locks/                               flock files, one per blob or layer being written
//! ├── pins/<id>.json                       blobs and layers a running pull still needs
//! ├── tmp/                                 staging; invisible to every reader
//! └── empty/                               stays empty: the second lower of a one-layer
//!                                          read-only overlay, which needs two
//! ```
//!
//! Unpacked layers are keyed by chain ID rather than diff ID, as in containerd, because what
//! a layer's directory holds can depend on the layers below it (a hardlink to a lower file,
//! a parent directory's metadata). Two images sharing a base share its directories.
//!
//! # Atomicity and durability
//!
//! Every blob, layer and record is first written under `tmp/`, verified, then renamed into
//! place, so a reader sees either nothing or the whole verified object. A rename that finds
//! the object already present counts as success. Blob and record files are fsync'd before
//! their rename. Layer trees are not fsync'd file by file: one `syncfs(2)` on the store's
//! filesystem runs before a layer is renamed into place, so a crash cannot leave a visible
//! layer with missing contents.
//!
//! # Locking
//!
//! Writers of one blob or layer serialize on an exclusive `flock(2)` on
//! `locks/<kind>-<hex>.lock` and check for the object again once they hold the lock, so two
//! pulls of overlapping images fetch each blob once. Every writer also holds a shared lock on
//! `locks/tmp.lock` while it has entries under `tmp/`. A writer that gets the lock exclusively
//! at start-up knows that no one else is writing, and removes what killed processes left in
//! `tmp/` and `pins/`. Readers take no locks: they only ever see complete objects.
//!
//! # Garbage collection
//!
//! `rmi` and `prune` delete what no image record, snapshot or live pin refers to (see
//! [`gc`]). A pull pins the blobs and layers it will use before it relies on them. The
//! collector takes each object's writer lock before deleting it, so a pull running alongside
//! a collection never loses an object it has counted on.

mod blobs;
mod gc;
mod images;
mod layers;
mod lock;
mod pins;

use std::fs;
use std::path::{Path, PathBuf};

use layerfs_registry::Digest;

use crate::fs_error::{FsContext, FsError};

pub use blobs::StagedBlob;
pub use gc::Collected;
pub use images::{ImageRecord, LayerEntry};
pub use layers::{ChainId, LayerRecord, StagedLayer};
pub use lock::{LockKind, StoreLock};
pub use pins::{Pin, Pinned};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error("{what} in the store is corrupt: {reason}")]
    Corrupt { what: String, reason: String },

    #[error("no layerfs store at {0}: nothing has been pulled there yet")]
    NoStore(PathBuf),

    #[error("image {0} is not in the store; pull it first with `layerfs pull`")]
    ImageNotFound(String),

    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{what} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
}

/// A handle on a store root. Cheap to clone; holds no open files.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

const SUBDIRS: [&str; 9] = [
    "blobs/sha256",
    "layers/sha256",
    "images",
    "mounts",
    "containers",
    "locks",
    "pins",
    "tmp",
    "empty",
];

impl Store {
    /// Opens the store at `root`, creating its directories if needed.
    pub fn open(root: &Path) -> Result<Store> {
        for subdir in SUBDIRS {
            let path = root.join(subdir);
            fs::create_dir_all(&path).at("creating store directory", &path)?;
        }
        let root = root.canonicalize().at("resolving store root", root)?;
        Ok(Store { root })
    }

    /// Opens the store at `root` without creating anything.
    pub fn open_existing(root: &Path) -> Result<Store> {
        if !root.join("images").is_dir() {
            return Err(Error::NoStore(root.to_path_buf()));
        }
        let root = root.canonicalize().at("resolving store root", root)?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// An empty directory, for overlays that need one more lower directory.
    pub fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    pub fn mounts_dir(&self) -> PathBuf {
        self.root.join("mounts")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }
}

/// A random lowercase-hex identifier of `len` characters, for containers, mounts and
/// staging entries.
pub fn random_id(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    getrandom::fill(&mut bytes).expect("the kernel's random source is available");
    let mut id = hex::encode(bytes);
    id.truncate(len);
    id
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    use std::io::Write;

    let dir = path.parent().expect("store paths have a parent");
    let tmp = dir.join(format!(".tmp-{}", random_id(16)));
    let result = (|| {
        let mut file = fs::File::create(&tmp).at("creating", &tmp)?;
        file.write_all(bytes).at("writing", &tmp)?;
        file.sync_all().at("syncing", &tmp)?;
        fs::rename(&tmp, path).at("renaming into place", path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
