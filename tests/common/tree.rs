//! Snapshots of directory trees, compared entry by entry: type, mode, owner, size, content,
//! symlink target, device number, extended attributes, and optionally link counts and inode
//! numbers.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

/// One entry as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub content: Option<String>,
    pub link: Option<String>,
    pub rdev: u64,
    pub mtime: i64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub nlink: u64,
    pub ino: u64,
}

/// Options for [`snapshot`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Compare {
    /// Compare modification times (directories included).
    pub mtime: bool,
    /// Compare extended attributes other than `trusted.overlay.*`.
    pub xattrs: bool,
    /// Also compare `trusted.overlay.opaque`, for upper directories.
    pub opaque: bool,
    /// Compare link counts.
    pub nlink: bool,
    /// Compare inode numbers.
    pub ino: bool,
}

/// Every entry below `root` (not `root` itself), keyed by its path relative to `root`.
pub fn snapshot(root: &Path, compare: Compare) -> BTreeMap<String, Entry> {
    let mut walker = Walker {
        root,
        compare,
        entries: BTreeMap::new(),
        hashes: HashMap::new(),
    };
    walker.walk(root);
    walker.entries
}

struct Walker<'a> {
    root: &'a Path,
    compare: Compare,
    entries: BTreeMap<String, Entry>,
    /// Content hashes by (device, inode): hardlinked files are read once.
    hashes: HashMap<(u64, u64), String>,
}

impl Walker<'_> {
    fn walk(&mut self, dir: &Path) {
        let mut children: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        children.sort();
        for path in children {
            let meta = fs::symlink_metadata(&path).unwrap();
            let relative = path
                .strip_prefix(self.root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let file_type = meta.file_type();
            let kind = if file_type.is_dir() {
                "dir"
            } else if file_type.is_symlink() {
                "symlink"
            } else if file_type.is_file() {
                "file"
            } else if file_type.is_char_device() {
                "char"
            } else if file_type.is_block_device() {
                "block"
            } else if file_type.is_fifo() {
                "fifo"
            } else {
                "socket"
            };
            let content = file_type.is_file().then(|| {
                let key = (meta.dev(), meta.ino());
                let hash = self.hashes.entry(key).or_insert_with(|| {
                    let bytes = fs::read(&path).unwrap();
                    hex::encode(Sha256::digest(&bytes))
                });
                hash.clone()
            });
            let link = file_type
                .is_symlink()
                .then(|| fs::read_link(&path).unwrap().to_string_lossy().into_owned());
            let entry = Entry {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                size: if file_type.is_file() { meta.size() } else { 0 },
                content,
                link,
                rdev: meta.rdev(),
                mtime: if self.compare.mtime { meta.mtime() } else { 0 },
                xattrs: if self.compare.xattrs {
                    xattrs(&path, self.compare.opaque)
                } else {
                    BTreeMap::new()
                },
                nlink: if self.compare.nlink { meta.nlink() } else { 0 },
                ino: if self.compare.ino { meta.ino() } else { 0 },
            };
            self.entries.insert(relative, entry);
            if file_type.is_dir() {
                self.walk(&path);
            }
        }
    }
}

fn xattrs(path: &Path, opaque: bool) -> BTreeMap<String, Vec<u8>> {
    let mut values = BTreeMap::new();
    let Ok(names) = xattr::list(path) else {
        return values;
    };
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let kept = opaque && name == "trusted.overlay.opaque";
        if name.starts_with("trusted.overlay.") && !kept {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(path, &name) {
            values.insert(name, value);
        }
    }
    values
}

/// The sets of paths below `root` that share an inode (hardlinks), each sorted, in order.
pub fn hardlink_groups(root: &Path) -> Vec<Vec<String>> {
    let entries = snapshot(
        root,
        Compare {
            ino: true,
            ..Compare::default()
        },
    );
    let mut groups: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (path, entry) in entries.into_iter().filter(|(_, e)| e.kind != "dir") {
        groups.entry(entry.ino).or_default().push(path);
    }
    let mut groups: Vec<Vec<String>> = groups.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups
}

/// Lines describing each difference between two snapshots; empty when they are equal.
pub fn differences(
    expected: &BTreeMap<String, Entry>,
    actual: &BTreeMap<String, Entry>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, entry) in expected {
        match actual.get(path) {
            None => lines.push(format!("missing: {path} ({})", entry.kind)),
            Some(other) if other != entry => lines.push(format!(
                "differs: {path}\n  expected {entry:?}\n  actual   {other:?}"
            )),
            Some(_) => {}
        }
    }
    for (path, entry) in actual {
        if !expected.contains_key(path) {
            lines.push(format!("unexpected: {path} ({})", entry.kind));
        }
    }
    lines
}

/// Sorted `path kind size` lines for every entry below `root`, skipping top-level names in
/// `exclude`.
pub fn listing(root: &Path, exclude: &[&str]) -> Vec<String> {
    let entries = snapshot(root, Compare::default());
    entries
        .into_iter()
        .filter(|(path, _)| {
            let top = path.split('/').next().unwrap_or("");
            !exclude.contains(&top)
        })
        .map(|(path, entry)| format!("{path} {} {}", entry.kind, entry.size))
        .collect()
}
