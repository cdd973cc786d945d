//! The merged file system's state, and the lookups every operation starts with.
//!
//! Concurrency: operations that only read the merged namespace (lookup, getattr, readdir,
//! open of an upper or unmodified file) take `namespace` shared and run in parallel on the
//! worker threads. Operations that change it (copy-up and every write operation) take it
//! exclusively, so a path computed from the inode table stays valid until the operation
//! ends. The inode table itself is only locked for short sections without I/O.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use fuser::{FileAttr, FileType};
use rustix::fs::{self as rfs, AtFlags, Stat};
use rustix::io::{Errno, Result};

use crate::attr::file_attr;
use crate::handles::Handles;
use crate::inode::{Node, Nodes};
use crate::layers::{at_path, Layer, Layers, Stack};
use crate::lookup::{find, DirLayers};

/// The way opens are served; see [`crate::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Opens cost no request, and the kernel keeps file pages cached across opens.
    Cached,
    /// Every open is a request; the kernel reads and writes the real file directly.
    Passthrough,
}

/// Settings of a mount.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads reading requests from the kernel.
    pub threads: usize,
    pub open: OpenMode,
    /// How long the kernel may cache names and attributes. Layers do not change while
    /// mounted and every change to the upper layer passes through this file system, so this
    /// can be long.
    pub ttl: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            // Requests that miss the page cache wait for the disk, so more threads than cores
            // keep more reads in flight: on a 2-core machine, reading a cold Debian tree took
            // about 0.6 as long with 8 threads as with 2 (benches/fuse.rs).
            threads: std::thread::available_parallelism().map_or(8, |n| (4 * n.get()).clamp(4, 16)),
            open: OpenMode::Cached,
            ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

pub struct OverlayFs {
    pub(crate) stack: Stack,
    pub(crate) nodes: Mutex<Nodes>,
    namespace: RwLock<()>,
    pub(crate) handles: Handles,
    pub(crate) ttl: Duration,
    /// Whether passthrough was requested and the kernel agreed to it.
    pub(crate) passthrough: AtomicBool,
    pub(crate) options: Options,
}

/// A node's state copied out of the inode table, for I/O without holding its lock.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: u64,
    pub kind: FileType,
    pub layer: Layer,
    pub lowers: Vec<usize>,
    pub path: PathBuf,
}

impl NodeInfo {
    fn new(id: u64, node: &Node, path: PathBuf) -> NodeInfo {
        NodeInfo {
            id,
            kind: node.kind,
            layer: node.layer,
            lowers: node.lowers.clone(),
            path,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }

    pub fn dir_layers(&self) -> DirLayers<'_> {
        DirLayers {
            upper: self.layer == Layer::Upper,
            lowers: &self.lowers,
        }
    }

    /// Returns whether other layers take part in this directory, which overlayfs calls a
    /// merge directory.
    pub fn is_merged(&self) -> bool {
        is_merged(self.kind, self.layer, &self.lowers)
    }
}

pub fn is_merged(kind: FileType, layer: Layer, lowers: &[usize]) -> bool {
    kind == FileType::Directory
        && match layer {
            Layer::Upper => !lowers.is_empty(),
            Layer::Lower(_) => lowers.len() > 1,
        }
}

impl OverlayFs {
    pub fn new(layers: &Layers, options: Options) -> crate::Result<OverlayFs> {
        let stack = Stack::open(layers)?;
        let root_layer = if stack.writable() {
            Layer::Upper
        } else {
            Layer::Lower(0)
        };
        let root_lowers = (0..stack.lower_count()).collect();
        let nodes = Nodes::new(stack.home_device(), root_layer, root_lowers);
        Ok(OverlayFs {
            stack,
            nodes: Mutex::new(nodes),
            namespace: RwLock::new(()),
            handles: Handles::default(),
            ttl: options.ttl,
            passthrough: AtomicBool::new(false),
            options,
        })
    }

    pub(crate) fn reading(&self) -> RwLockReadGuard<'_, ()> {
        self.namespace.read().unwrap()
    }

    pub(crate) fn writing(&self) -> RwLockWriteGuard<'_, ()> {
        self.namespace.write().unwrap()
    }

    /// Takes the namespace lock for a change, or fails with EROFS on a read-only mount.
    pub(crate) fn writable_namespace(&self) -> Result<RwLockWriteGuard<'_, ()>> {
        if !self.stack.writable() {
            return Err(Errno::ROFS);
        }
        Ok(self.writing())
    }

    pub(crate) fn passthrough(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }

    /// Returns the state of node `id`, or ESTALE once the kernel forgot it or all its names
    /// are gone.
    pub(crate) fn info(&self, id: u64) -> Result<NodeInfo> {
        let nodes = self.nodes.lock().unwrap();
        let node = nodes.get(id).ok_or(Errno::STALE)?;
        let path = nodes.path(id).ok_or(Errno::STALE)?;
        Ok(NodeInfo::new(id, node, path))
    }

    /// Returns the state of directory node `id`, or ENOTDIR.
    pub(crate) fn dir_info(&self, id: u64) -> Result<NodeInfo> {
        let info = self.info(id)?;
        if !info.is_dir() {
            return Err(Errno::NOTDIR);
        }
        Ok(info)
    }

    pub(crate) fn stat(&self, info: &NodeInfo) -> Result<Stat> {
        rfs::statat(
            self.stack.fd(info.layer),
            at_path(&info.path),
            AtFlags::SYMLINK_NOFOLLOW,
        )
    }

    pub(crate) fn attr(&self, info: &NodeInfo) -> Result<FileAttr> {
        let stat = self.stat(info)?;
        Ok(file_attr(info.id, &stat, info.is_merged()))
    }

    /// Looks up `name` in directory `parent` and counts a lookup of the node found.
    pub(crate) fn lookup_name(&self, parent: u64, name: &OsStr) -> Result<Option<FileAttr>> {
        let dir = self.dir_info(parent)?;
        let Some((found, stat)) = find(&self.stack, dir.dir_layers(), &dir.path, name)? else {
            return Ok(None);
        };
        let merged = is_merged(found.kind, found.layer, &found.lowers);
        let id = self.nodes.lock().unwrap().remember(parent, name, found);
        Ok(Some(file_attr(id, &stat, merged)))
    }

    /// Looks up `name` in `parent` without counting a lookup.
    pub(crate) fn child(&self, parent: &NodeInfo, name: &OsStr) -> Result<Option<NodeInfo>> {
        let Some((found, _)) = find(&self.stack, parent.dir_layers(), &parent.path, name)? else {
            return Ok(None);
        };
        let id = self
            .nodes
            .lock()
            .unwrap()
            .number_found(parent.id, name, &found);
        Ok(Some(NodeInfo {
            id,
            kind: found.kind,
            layer: found.layer,
            lowers: found.lowers,
            path: parent.path.join(name),
        }))
    }

    pub(crate) fn forget(&self, id: u64, count: u64) {
        self.nodes.lock().unwrap().forget(id, count);
    }
}
