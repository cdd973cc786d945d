//! layerfs: a container image store with a registry client, overlay mounts and a small
//! runtime.
//!
//! The modules follow the path an image takes: `pull` fetches it through
//! `layerfs_registry` into the `store`, `unpack` turns each layer into a directory, `mount`
//! composes those directories into a root filesystem, and `run` starts a process in it.

pub mod config;
pub mod fs_error;
pub mod image;
pub mod mount;
pub mod pull;
pub mod run;
pub mod snapshotter;
pub mod store;
pub mod unpack;
