//! `layerfs snapshotter`: containerd's snapshots service (a proxy snapshotter plug-in) backed
//! by the layerfs store, so that containerd and layerfs share unpacked layers.
//!
//! containerd asks a snapshotter for directories to unpack layers into and to run containers
//! on. It talks to this one over gRPC on a unix socket (`grpc`), and keeps its own record of
//! snapshots per namespace; the keys that arrive here are its rewritten ones,
//! `<namespace>/<sequence>/<key>`.
//!
//! ```text
//! <store root>/snapshots/
//! ├── metadata.redb           snapshot records: kind, parent, labels, times (`metadata`)
//! └── <id>/                   one directory per snapshot, numbered from 1
//!     ├── fs/                 active: the upper directory; committed: the layer itself, or a
//!     │                       symlink to the store layer (`../../layers/sha256/<hex>/diff`)
//!     ├── work/               overlayfs work directory of an active snapshot
//!     └── fuse-<id>/          FUSE driver: config, log and lock of the daemon of one mount
//! ```
//!
//! # Shared layers
//!
//! containerd labels the snapshot it prepares for unpacking a layer with the layer's chain
//! ID (`containerd.io/snapshot.ref`). When the store already holds that chain, pulled by
//! `layerfs pull` or unpacked through this snapshotter before, Prepare commits it at once and
//! returns AlreadyExists, so containerd neither fetches nor applies the layer. When
//! containerd commits a layer that carries the label, its tree moves into the store's
//! `layers/` directory, where `layerfs pull` finds it and `layerfs mount` and `run` use it.
//! See `snapshots` for the lifecycle and `layers` for the store side.
//!
//! # FUSE driver
//!
//! With `driver = "fuse"` in the `[snapshotter]` section of the layerfs config, or `"auto"`
//! where a test mount of kernel overlayfs in the store fails at start-up, a snapshot with
//! parents gets a `fuse3.layerfs` mount rather than an overlay: the same `lowerdir`,
//! `upperdir` and `workdir`, served by layerfs's FUSE driver. Whoever performs the mount
//! (containerd, its runc shim, or a client such as `ctr run`, which reads the image's
//! `/etc/group` through a temporary mount) runs `mount.fuse3` (Debian package fuse3), which
//! runs `layerfs overlay` (see `fuse_helper`). So both programs must be on their PATH, for
//! example through a symlink `/usr/local/bin/layerfs`. A daemon per mount serves it until
//! it is unmounted. At start-up the snapshotter checks that `/dev/fuse` opens, and warns
//! if either program is missing from its own PATH.
//!
//! # containerd configuration
//!
//! ```toml
//! version = 2
//!
//! [proxy_plugins]
//!   [proxy_plugins.layerfs]
//!     type = "snapshot"
//!     address = "/run/layerfs/snapshotter.sock"   # `layerfs snapshotter --address`
//!
//! # Kubernetes nodes: the CRI plugin pulls and runs pods' images through layerfs.
//! [plugins."io.containerd.grpc.v1.cri".containerd]
//!   snapshotter = "layerfs"
//! ```

mod driver;
mod filter;
mod fuse_helper;
mod grpc;
mod layers;
mod metadata;
mod mounts;
mod snapshots;
mod usage;

use std::path::PathBuf;

use crate::fs_error::FsError;
use crate::store;

pub use filter::{Filter, InvalidFilter};
pub use fuse_helper::{mount_with_daemon, parse_options, HelperError, HelperMount};
pub use grpc::{serve, ServeError};
pub use metadata::{Kind, SnapshotInfo};
pub use mounts::{Mount, MountDriver};
pub use snapshots::Snapshotter;
pub use usage::Usage;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The label containerd's unpacker sets on the snapshot of each layer: its chain ID.
pub const REFERENCE_LABEL: &str = "containerd.io/snapshot.ref";

/// Each variant maps to the gRPC status code containerd's client code branches on (see
/// `grpc::status`), because containerd's unpacker and garbage collector treat NotFound,
/// AlreadyExists and FailedPrecondition as expected outcomes rather than failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("snapshot {0} does not exist")]
    NotFound(String),

    #[error("snapshot {0} already exists")]
    AlreadyExists(String),

    /// The chain of a snapshot being prepared is already committed, under `name`.
    #[error("layer {chain_id} is already committed as snapshot {name}")]
    LayerExists { chain_id: String, name: String },

    #[error("snapshot {key} is {actual}, but the operation needs an {expected} snapshot")]
    WrongKind {
        key: String,
        expected: &'static str,
        actual: Kind,
    },

    #[error("parent {0} is not a committed snapshot")]
    ParentNotCommitted(String),

    #[error("snapshot {0} has children; remove them first")]
    HasChildren(String),

    #[error("invalid snapshot key {0:?}: {1}")]
    InvalidKey(String, &'static str),

    #[error("cannot update field {0:?}: only labels can change")]
    ImmutableField(String),

    #[error(transparent)]
    Filter(#[from] InvalidFilter),

    #[error("store root {0} contains ',' or ':', which overlayfs options cannot carry")]
    UnsafeRoot(PathBuf),

    #[error(
        "the FUSE mount driver needs {path}, which cannot be opened ({reason}); load the fuse \
         kernel module or set driver = \"overlay\""
    )]
    FuseDevice { path: PathBuf, reason: String },

    #[error(
        "no mount driver works: kernel overlayfs fails on the store, and {path} cannot be \
         opened ({reason})"
    )]
    NoMountDriver { path: PathBuf, reason: String },

    #[error("snapshot metadata database {path}: {message}")]
    Metadata { path: PathBuf, message: String },

    #[error("snapshot metadata database {0} is in use by another layerfs snapshotter")]
    MetadataLocked(PathBuf),

    #[error("snapshot record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },

    #[error(transparent)]
    Store(#[from] store::Error),

    #[error(transparent)]
    Fs(#[from] FsError),
}
