//! The inode table: the nodes the kernel has looked up, by node ID, and how node IDs are
//! chosen.
//!
//! A node ID is also the inode number users see (fuser sends one value for both), so it is
//! chosen the way overlayfs chooses `st_ino` when all layers share a file system: the real
//! inode number of the topmost file, kept across copy-up. That makes numbers stable for the
//! whole mount, even after the kernel forgets a node, and hardlinked names share one.
//! Files on another device, and a real inode number that equals the root's node ID, get a
//! number from a separate range instead.
//!
//! One exception, in writable mounts: each name of a lower file with several hardlinks is a
//! node of its own, with a number from the separate range. overlayfs copies up only the name
//! a change goes through and leaves the others with the lower file, but FUSE requests such
//! as `setattr` name the node, not the name; separate nodes keep copy-up exact.
//! NOTE: overlayfs still reports one inode number for those names; fuser sends the node ID
//! as the inode number, so here they differ, and `du` or `tar` see separate files. Plain
//! `readdir` (not `readdirplus`) still reports the shared number as their `d_ino`.

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use fuser::{BackingId, FileType};
use rustix::fd::OwnedFd;

use crate::layers::Layer;
use crate::readdir::DirEntry;

pub const ROOT: u64 = 1;

/// Numbers handed out for files whose real inode number cannot be used; real inode numbers
/// of the file systems layers live on stay far below.
const REMAPPED_BASE: u64 = 1 << 63;

/// Real files kept open for requests that come without a handle; the oldest is closed
/// first. Bounded so that reading a large tree cannot exhaust file descriptors.
const MAX_OPEN_FILES: usize = 512;

pub struct Node {
    pub kind: FileType,
    /// The names this inode was found under, as (parent node, name); the first that still
    /// resolves gives its path. A directory has exactly one.
    pub links: Vec<(u64, OsString)>,
    /// The topmost layer holding this entry.
    pub layer: Layer,
    /// Directories only: the lower layers whose directory of this path is merged into it,
    /// topmost first.
    pub lowers: Vec<usize>,
    /// Lookups of this node that the kernel has not yet forgotten.
    pub lookups: u64,
    /// The passthrough backing file of the open handles of this node, if any are open.
    pub backing: Weak<BackingId>,
    /// Whether `backing` was opened for writing.
    pub backing_writable: bool,
    /// Open handles passed through to some backing file.
    pub passthrough_opens: usize,
    /// Set when `backing` is the lower file of a node copied up while passthrough handles
    /// were open. The kernel requires every open of an inode with a backing file to pass
    /// through to that same file, so new opens keep using it until those handles are closed.
    pub stale_backing: bool,
    /// The real file, kept open for reads and writes that come without a handle.
    pub file: Option<Arc<OwnedFd>>,
    /// Whether `file` was opened for writing.
    pub file_writable: bool,
    /// Directories only: the merged listing, `.` and `..` first, kept until the directory
    /// changes; entry `i` has offset `i + 1`.
    pub listing: Option<Arc<Vec<DirEntry>>>,
}

impl Node {
    fn new(kind: FileType, layer: Layer, lowers: Vec<usize>) -> Node {
        Node {
            kind,
            links: Vec::new(),
            layer,
            lowers,
            lookups: 0,
            backing: Weak::new(),
            backing_writable: false,
            passthrough_opens: 0,
            stale_backing: false,
            file: None,
            file_writable: false,
            listing: None,
        }
    }
}

/// The result of a lookup of a name, before it becomes a node.
pub struct Found {
    pub kind: FileType,
    pub layer: Layer,
    pub lowers: Vec<usize>,
    pub device: u64,
    pub inode: u64,
    pub links: u64,
}

/// The file or name a number from the separate range is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Remapped {
    /// A real file that cannot keep its inode number.
    File { device: u64, inode: u64 },
    /// One name of a lower file with several hardlinks, in a writable mount.
    Name { parent: u64, name: OsString },
}

pub struct Nodes {
    nodes: HashMap<u64, Node>,
    home_device: u64,
    /// Whether names of lower hardlinks are separate nodes; see the module documentation.
    split_hardlinks: bool,
    remapped: HashMap<Remapped, u64>,
    /// Copied-up files by real (device, inode), to the node ID of the file they copy.
    copied_up: HashMap<(u64, u64), u64>,
    /// Nodes whose `file` is open, oldest first.
    open_files: VecDeque<u64>,
}

impl Nodes {
    pub fn new(home_device: u64, root_layer: Layer, root_lowers: Vec<usize>) -> Nodes {
        let mut root = Node::new(FileType::Directory, root_layer, root_lowers);
        root.lookups = 1;
        Nodes {
            nodes: HashMap::from([(ROOT, root)]),
            home_device,
            split_hardlinks: root_layer == Layer::Upper,
            remapped: HashMap::new(),
            copied_up: HashMap::new(),
            open_files: VecDeque::new(),
        }
    }

    pub fn get(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&id)
    }

    /// Returns the node ID, and so the inode number, of the real file (`device`, `inode`).
    pub fn number(&mut self, device: u64, inode: u64) -> u64 {
        if let Some(&id) = self.copied_up.get(&(device, inode)) {
            return id;
        }
        let usable = device == self.home_device && inode != ROOT && inode < REMAPPED_BASE;
        if usable {
            return inode;
        }
        self.remap(Remapped::File { device, inode })
    }

    /// Returns the node ID for `found`, the result of a lookup of `name` in `parent`.
    pub fn number_found(&mut self, parent: u64, name: &OsStr, found: &Found) -> u64 {
        let lower = matches!(found.layer, Layer::Lower(_));
        if self.split_hardlinks && lower && found.kind != FileType::Directory && found.links > 1 {
            let name = name.to_os_string();
            return self.remap(Remapped::Name { parent, name });
        }
        self.number(found.device, found.inode)
    }

    fn remap(&mut self, key: Remapped) -> u64 {
        let next = REMAPPED_BASE + self.remapped.len() as u64;
        *self.remapped.entry(key).or_insert(next)
    }

    /// Records a lookup of `name` in `parent`: creates the node or refreshes it, counts the
    /// lookup, and returns the node ID.
    pub fn remember(&mut self, parent: u64, name: &OsStr, found: Found) -> u64 {
        let id = self.number_found(parent, name, &found);
        let node = self
            .nodes
            .entry(id)
            .or_insert_with(|| Node::new(found.kind, found.layer, Vec::new()));
        node.kind = found.kind;
        node.layer = found.layer;
        node.lowers = found.lowers;
        node.lookups += 1;
        if !node.links.iter().any(|(p, n)| *p == parent && n == name) {
            if node.kind == FileType::Directory {
                node.links.clear();
            }
            node.links.push((parent, name.to_os_string()));
        }
        id
    }

    pub fn forget(&mut self, id: u64, count: u64) {
        if id == ROOT {
            return;
        }
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(count);
        if node.lookups == 0 {
            self.nodes.remove(&id);
        }
    }

    /// Returns the path of node `id` relative to the merged root, through the first of its
    /// names whose parents are all still in the table.
    pub fn path(&self, id: u64) -> Option<PathBuf> {
        if id == ROOT {
            return Some(PathBuf::new());
        }
        let node = self.nodes.get(&id)?;
        node.links
            .iter()
            .find_map(|(parent, name)| Some(self.path(*parent)?.join(name)))
    }

    /// Forgets the name `name` in `parent` of node `id`, after an unlink or a rename.
    pub fn unlink(&mut self, id: u64, parent: u64, name: &OsStr) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.links.retain(|(p, n)| !(*p == parent && n == name));
        }
    }

    /// Moves the name of node `id` from (`old_parent`, `old_name`) to (`new_parent`,
    /// `new_name`).
    pub fn rename(&mut self, id: u64, old: (u64, &OsStr), new: (u64, &OsStr)) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.links.retain(|(p, n)| !(*p == old.0 && n == old.1));
            node.links.insert(0, (new.0, new.1.to_os_string()));
        }
    }

    /// Records that node `id` now lives in the upper layer as the real file (`device`,
    /// `inode`), keeping its number.
    pub fn copied_up(&mut self, id: u64, device: u64, inode: u64) {
        self.copied_up.insert((device, inode), id);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.layer = Layer::Upper;
            node.stale_backing = node.passthrough_opens > 0;
            if !node.stale_backing {
                node.backing = Weak::new();
            }
            node.file = None;
        }
    }

    /// Returns the open real file of node `id`, if one is kept and allows the access.
    pub fn file(&self, id: u64, write: bool) -> Option<Arc<OwnedFd>> {
        let node = self.nodes.get(&id)?;
        if write && !node.file_writable {
            return None;
        }
        node.file.clone()
    }

    /// Keeps `file` open as the real file of node `id`, closing the oldest kept file when
    /// there are too many.
    pub fn keep_file(&mut self, id: u64, file: Arc<OwnedFd>, writable: bool) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        node.file = Some(file);
        node.file_writable = writable;
        self.open_files.retain(|&open| open != id);
        self.open_files.push_back(id);
        while self.open_files.len() > MAX_OPEN_FILES {
            let oldest = self.open_files.pop_front().expect("queue is not empty");
            if let Some(node) = self.nodes.get_mut(&oldest) {
                node.file = None;
            }
        }
    }

    /// Drops the cached listing of directory `id` after a change in it.
    pub fn changed(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.listing = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(inode: u64) -> Found {
        Found {
            kind: FileType::RegularFile,
            layer: Layer::Lower(0),
            lowers: Vec::new(),
            device: 7,
            inode,
            links: 1,
        }
    }

    #[test]
    fn numbers_are_real_inodes_on_home_device() {
        let mut nodes = Nodes::new(7, Layer::Lower(0), vec![0]);
        assert_eq!(nodes.number(7, 1234), 1234);
    }

    #[test]
    fn numbers_on_other_devices_are_remapped_stably() {
        let mut nodes = Nodes::new(7, Layer::Lower(0), vec![0]);
        let first = nodes.number(8, 1234);
        assert!(first >= REMAPPED_BASE);
        assert_eq!(nodes.number(8, 1234), first);
        assert_ne!(nodes.number(8, 1235), first);
    }

    #[test]
    fn inode_one_is_not_the_root() {
        let mut nodes = Nodes::new(7, Layer::Lower(0), vec![0]);
        assert_ne!(nodes.number(7, ROOT), ROOT);
    }

    #[test]
    fn copy_up_keeps_number() {
        let mut nodes = Nodes::new(7, Layer::Upper, vec![0]);
        let id = nodes.remember(ROOT, OsStr::new("a"), found(50));
        nodes.copied_up(id, 7, 90);
        assert_eq!(nodes.number(7, 90), 50);
    }

    #[test]
    fn hardlinks_share_node_when_read_only() {
        let mut nodes = Nodes::new(7, Layer::Lower(0), vec![0]);
        let linked = Found {
            links: 2,
            ..found(50)
        };
        assert_eq!(nodes.number_found(ROOT, OsStr::new("a"), &linked), 50);
        assert_eq!(nodes.number_found(ROOT, OsStr::new("b"), &linked), 50);
    }

    #[test]
    fn lower_hardlinks_split_when_writable() {
        let mut nodes = Nodes::new(7, Layer::Upper, vec![0]);
        let linked = Found {
            links: 2,
            ..found(50)
        };
        let a = nodes.number_found(ROOT, OsStr::new("a"), &linked);
        let b = nodes.number_found(ROOT, OsStr::new("b"), &linked);
        assert_ne!(a, b);
        assert_eq!(nodes.number_found(ROOT, OsStr::new("a"), &linked), a);
    }

    #[test]
    fn path_follows_renamed_parent() {
        let mut nodes = Nodes::new(7, Layer::Lower(0), vec![0]);
        let dir = nodes.remember(
            ROOT,
            OsStr::new("d"),
            Found {
                kind: FileType::Directory,
                ..found(60)
            },
        );
        let file = nodes.remember(dir, OsStr::new("f"), found(61));
        nodes.rename(dir, (ROOT, OsStr::new("d")), (ROOT, OsStr::new("e")));
        assert_eq!(nodes.path(file), Some(PathBuf::from("e/f")));
    }

    #[test]
    fn forget_drops_node_at_zero_lookups() {
        let mut nodes = Nodes::new(7, Layer::Lower(0), vec![0]);
        let id = nodes.remember(ROOT, OsStr::new("a"), found(50));
        nodes.remember(ROOT, OsStr::new("a"), found(50));
        nodes.forget(id, 1);
        assert!(nodes.get(id).is_some());
        nodes.forget(id, 1);
        assert!(nodes.get(id).is_none());
    }
}
