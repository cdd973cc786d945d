//! Disk usage of a snapshot's own directory, as containerd's Usage call reports it.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fs_error::{FsContext, FsError};

/// Resources a snapshot uses itself, without its parents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Allocated bytes (`st_blocks` × 512), each inode counted once.
    pub size: u64,
    pub inodes: u64,
    /// Sum of the sizes of regular files: the store's `unpacked_size` of a layer.
    pub file_bytes: u64,
}

/// Measures the tree at `root` without following symlinks, counting hardlinked files once,
/// as containerd's own snapshotters do (continuity's `fs.DiskUsage`).
pub fn disk_usage(root: &Path) -> Result<Usage, FsError> {
    let mut usage = Usage::default();
    let mut seen = HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let metadata = fs::metadata(&dir).at("measuring", &dir)?;
        add(&mut usage, &mut seen, &metadata);
        for entry in fs::read_dir(&dir).at("listing", &dir)? {
            let entry = entry.at("listing", &dir)?;
            let path = entry.path();
            let metadata = fs::symlink_metadata(&path).at("measuring", &path)?;
            if metadata.is_dir() {
                pending.push(path);
            } else {
                add(&mut usage, &mut seen, &metadata);
            }
        }
    }
    Ok(usage)
}

fn add(usage: &mut Usage, seen: &mut HashSet<(u64, u64)>, metadata: &fs::Metadata) {
    if !seen.insert((metadata.dev(), metadata.ino())) {
        return;
    }
    usage.inodes += 1;
    usage.size += metadata.blocks() * 512;
    if metadata.is_file() {
        usage.file_bytes += metadata.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_hardlinks_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/a"), vec![7u8; 10_000]).unwrap();
        fs::hard_link(root.join("sub/a"), root.join("b")).unwrap();
        std::os::unix::fs::symlink("sub/a", root.join("c")).unwrap();

        let usage = disk_usage(root).unwrap();
        assert_eq!(usage.inodes, 4, "root, sub, a (= b), c");
        assert_eq!(usage.file_bytes, 10_000);
        assert!(usage.size >= 10_000, "{usage:?}");
    }
}
