//! Expected merged trees, written by hand, and their comparison with a mounted tree.
//!
//! A tree lists every path the merged view must show, with its type, content, mode, owner,
//! mtime and xattrs, and the groups of paths that must be one inode. The comparison reports
//! every path missing, unexpected or different, and any two paths that share an inode
//! without being listed together.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::tar::MTIME;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One expected or observed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds and nanoseconds; `None` where any time is right (a directory made on the spot).
    pub mtime: Option<(i64, u32)>,
    /// Xattrs other than `trusted.overlay.*`, which overlayfs hides from the merged view.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The file must have holes: fewer bytes allocated than its size.
    pub sparse: bool,
}

/// The merged view a case must produce.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Keyed by path relative to the root, as bytes; the empty path is the root, compared
    /// only when listed.
    nodes: BTreeMap<Vec<u8>, Node>,
    /// Groups of paths that are one inode.
    links: Vec<Vec<Vec<u8>>>,
    last: Option<Vec<u8>>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    fn add(mut self, path: impl AsRef<[u8]>, kind: Kind, mode: u32) -> Tree {
        let path = path.as_ref().to_vec();
        let node = Node {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: Some((MTIME, 0)),
            xattrs: BTreeMap::new(),
            sparse: false,
        };
        self.nodes.insert(path.clone(), node);
        self.last = Some(path);
        self
    }

    pub fn root(self, mode: u32) -> Tree {
        self.add("", Kind::Dir, mode)
    }

    pub fn dir(self, path: impl AsRef<[u8]>, mode: u32) -> Tree {
        self.add(path, Kind::Dir, mode)
    }

    pub fn file(self, path: impl AsRef<[u8]>, mode: u32, content: &[u8]) -> Tree {
        self.add(path, Kind::File(content.to_vec()), mode)
    }

    pub fn symlink(self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Tree {
        self.add(path, Kind::Symlink(target.as_ref().to_vec()), 0o777)
    }

    pub fn node(self, path: impl AsRef<[u8]>, kind: Kind, mode: u32) -> Tree {
        self.add(path, kind, mode)
    }

    /// Modifies the path added last.
    fn last(mut self, change: impl FnOnce(&mut Node)) -> Tree {
        let path = self.last.clone().expect("a path was added");
        change(self.nodes.get_mut(&path).expect("the last path is listed"));
        self
    }

    pub fn owner(self, uid: u32, gid: u32) -> Tree {
        self.last(|node| {
            node.uid = uid;
            node.gid = gid;
        })
    }

    pub fn mtime(self, seconds: i64, nanos: u32) -> Tree {
        self.last(|node| node.mtime = Some((seconds, nanos)))
    }

    /// Lets the path added last have any mtime: a directory made on the spot.
    pub fn any_mtime(self) -> Tree {
        self.last(|node| node.mtime = None)
    }

    pub fn xattr(self, name: &str, value: &[u8]) -> Tree {
        self.last(|node| {
            node.xattrs.insert(name.as_bytes().to_vec(), value.to_vec());
        })
    }

    pub fn sparse(self) -> Tree {
        self.last(|node| node.sparse = true)
    }

    /// Requires the listed paths to be one inode.
    pub fn same_inode<P: AsRef<[u8]>>(mut self, paths: &[P]) -> Tree {
        self.links
            .push(paths.iter().map(|path| path.as_ref().to_vec()).collect());
        self
    }

    /// Lists every difference between this tree and the one mounted at `root`. The list is
    /// empty when they are equal.
    pub fn differences(&self, root: &Path) -> Vec<String> {
        let observed = snapshot(root);
        let mut lines = Vec::new();
        for (path, expected) in &self.nodes {
            match observed.nodes.get(path) {
                None => lines.push(format!("missing: {}", show(path))),
                Some(actual) => compare(path, expected, actual, &mut lines),
            }
        }
        for path in observed.nodes.keys() {
            if !path.is_empty() && !self.nodes.contains_key(path) {
                lines.push(format!("unexpected: {}", show(path)));
            }
        }
        self.compare_inodes(&observed, &mut lines);
        lines
    }

    fn compare_inodes(&self, observed: &Snapshot, lines: &mut Vec<String>) {
        let group_of = |path: &Vec<u8>| self.links.iter().position(|group| group.contains(path));
        for group in &self.links {
            let inodes: Vec<Option<&u64>> =
                group.iter().map(|path| observed.inodes.get(path)).collect();
            if inodes.windows(2).any(|pair| pair[0] != pair[1]) {
                let names: Vec<String> = group.iter().map(|path| show(path)).collect();
                lines.push(format!("not one inode: {}", names.join(", ")));
            }
        }
        let mut by_inode: BTreeMap<u64, Vec<&Vec<u8>>> = BTreeMap::new();
        for (path, inode) in &observed.inodes {
            by_inode.entry(*inode).or_default().push(path);
        }
        for paths in by_inode.values().filter(|paths| paths.len() > 1) {
            let groups: Vec<Option<usize>> = paths.iter().map(|path| group_of(path)).collect();
            if groups
                .iter()
                .any(|group| group.is_none() || *group != groups[0])
            {
                let names: Vec<String> = paths.iter().map(|path| show(path)).collect();
                lines.push(format!("unexpectedly one inode: {}", names.join(", ")));
            }
        }
    }
}

fn compare(path: &[u8], expected: &Node, actual: &Node, lines: &mut Vec<String>) {
    let mut differs = Vec::new();
    if expected.kind != actual.kind {
        differs.push(format!("kind {:?} != {:?}", expected.kind, actual.kind));
    }
    if expected.mode != actual.mode {
        differs.push(format!("mode {:o} != {:o}", expected.mode, actual.mode));
    }
    if (expected.uid, expected.gid) != (actual.uid, actual.gid) {
        differs.push(format!(
            "owner {}:{} != {}:{}",
            expected.uid, expected.gid, actual.uid, actual.gid
        ));
    }
    if expected.mtime.is_some() && expected.mtime != actual.mtime {
        differs.push(format!("mtime {:?} != {:?}", expected.mtime, actual.mtime));
    }
    if expected.xattrs != actual.xattrs {
        differs.push(format!(
            "xattrs {:?} != {:?}",
            expected.xattrs, actual.xattrs
        ));
    }
    if expected.sparse && !actual.sparse {
        differs.push("has no holes".to_owned());
    }
    if !differs.is_empty() {
        lines.push(format!("differs: {}: {}", show(path), differs.join("; ")));
    }
}

/// Formats a path for messages: printable bytes as they are, others escaped.
pub fn show(path: &[u8]) -> String {
    match path.is_empty() {
        true => "/".to_owned(),
        false => format!("/{}", path.escape_ascii()),
    }
}

/// The observed tree: every node, and the inode of every non-directory.
struct Snapshot {
    nodes: BTreeMap<Vec<u8>, Node>,
    inodes: BTreeMap<Vec<u8>, u64>,
}

fn snapshot(root: &Path) -> Snapshot {
    let mut snapshot = Snapshot {
        nodes: BTreeMap::new(),
        inodes: BTreeMap::new(),
    };
    visit(root, Vec::new(), &mut snapshot);
    snapshot
}

fn visit(path: &Path, relative: Vec<u8>, snapshot: &mut Snapshot) {
    let meta = fs::symlink_metadata(path)
        .unwrap_or_else(|error| panic!("inspecting {}: {error}", path.display()));
    let file_type = meta.file_type();
    let kind = if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_symlink() {
        Kind::Symlink(fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec())
    } else if file_type.is_file() {
        Kind::File(fs::read(path).unwrap())
    } else if file_type.is_char_device() {
        Kind::Char(major(meta.rdev()), minor(meta.rdev()))
    } else if file_type.is_block_device() {
        Kind::Block(major(meta.rdev()), minor(meta.rdev()))
    } else if file_type.is_fifo() {
        Kind::Fifo
    } else {
        panic!(
            "{}: a socket cannot come from a tar archive",
            path.display()
        );
    };
    let node = Node {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: Some((meta.mtime(), meta.mtime_nsec() as u32)),
        xattrs: xattrs(path),
        sparse: file_type.is_file() && meta.blocks() * 512 < meta.size(),
    };
    if !file_type.is_dir() {
        snapshot.inodes.insert(relative.clone(), meta.ino());
    }
    snapshot.nodes.insert(relative.clone(), node);
    if file_type.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let mut child = relative.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name.as_bytes());
            visit(&path.join(&name), child, snapshot);
        }
    }
}

fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut values = BTreeMap::new();
    for name in xattr::list(path).unwrap() {
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).unwrap() {
            values.insert(name.as_bytes().to_vec(), value);
        }
    }
    values
}

fn major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32
}

fn minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32
}

/// Everything below `dir` with its type, mode, owner, mtime, content and xattrs: equal before
/// and after a case when the case touched nothing there.
pub fn fingerprint(dir: &Path) -> Vec<String> {
    let observed = snapshot(dir);
    observed
        .nodes
        .iter()
        .map(|(path, node)| format!("{} {node:?}", show(path)))
        .collect()
}
