//! `readdir` and `readdirplus` over the listing of [`crate::readdir`], kept per directory
//! until it changes.
//!
//! Directories are never opened: `opendir` fails with ENOSYS, after which the kernel sends
//! no more `opendir` or `releasedir` requests and caches listings itself (Linux 5.1 and
//! later), so a second walk of a tree costs no request at all.

use std::ffi::OsString;
use std::sync::Arc;

use fuser::{FileAttr, FileType};
use rustix::io::{Errno, Result};

use crate::fs::OverlayFs;
use crate::inode::ROOT;
use crate::readdir::{list, numbering, DirEntry};

/// One entry of a `readdirplus` reply.
pub struct PlusEntry {
    pub name: OsString,
    pub offset: u64,
    pub attr: FileAttr,
    /// Whether the reply counts as a lookup of the entry; `.` and `..` do not.
    pub counted: bool,
}

impl OverlayFs {
    /// Returns the listing of directory `id`, `.` and `..` first.
    fn listing(&self, id: u64) -> Result<Arc<Vec<DirEntry>>> {
        let parent = {
            let nodes = self.nodes.lock().unwrap();
            let node = nodes.get(id).ok_or(Errno::STALE)?;
            if let Some(listing) = &node.listing {
                return Ok(listing.clone());
            }
            node.links.first().map_or(ROOT, |(parent, _)| *parent)
        };
        let dir = self.dir_info(id)?;
        let mut entries = vec![dot_entry(".", id), dot_entry("..", parent)];
        entries.extend(list(
            &self.stack,
            dir.dir_layers(),
            &dir.path,
            numbering(&self.nodes),
        )?);
        let listing = Arc::new(entries);
        if let Some(node) = self.nodes.lock().unwrap().get_mut(id) {
            node.listing = Some(listing.clone());
        }
        Ok(listing)
    }

    /// Returns the entries of directory `id` from `offset` on, with the offset after each.
    pub(crate) fn read_dir(
        &self,
        id: u64,
        offset: u64,
    ) -> Result<Vec<(u64, FileType, u64, OsString)>> {
        let _reading = self.reading();
        let listing = self.listing(id)?;
        let entries = listing.iter().enumerate().skip(offset as usize);
        Ok(entries
            .map(|(index, entry)| (entry.ino, entry.kind, index as u64 + 1, entry.name.clone()))
            .collect())
    }

    /// Sends the entries of directory `id` from `offset` on, each with its attributes, to
    /// `add` until it returns true (the reply is full). Every entry sent but `.` and `..`
    /// counts as a lookup.
    pub(crate) fn read_dir_plus(
        &self,
        id: u64,
        offset: u64,
        mut add: impl FnMut(&PlusEntry) -> bool,
    ) -> Result<()> {
        let _reading = self.reading();
        let listing = self.listing(id)?;
        for (index, entry) in listing.iter().enumerate().skip(offset as usize) {
            let Some(plus) = self.plus_entry(id, entry, index as u64 + 1)? else {
                continue;
            };
            if add(&plus) {
                if plus.counted {
                    self.forget(plus.attr.ino.0, 1);
                }
                break;
            }
        }
        Ok(())
    }

    fn plus_entry(&self, dir: u64, entry: &DirEntry, offset: u64) -> Result<Option<PlusEntry>> {
        if entry.name == "." || entry.name == ".." {
            let info = self.info(entry.ino).or_else(|_| self.info(dir))?;
            let mut attr = self.attr(&info)?;
            attr.ino = fuser::INodeNo(entry.ino);
            return Ok(Some(PlusEntry {
                name: entry.name.clone(),
                offset,
                attr,
                counted: false,
            }));
        }
        // The entry may have gone since the listing was taken: then there are no attributes
        // to send.
        let attr = self.lookup_name(dir, &entry.name)?;
        Ok(attr.map(|attr| PlusEntry {
            name: entry.name.clone(),
            offset,
            attr,
            counted: true,
        }))
    }
}

fn dot_entry(name: &str, ino: u64) -> DirEntry {
    DirEntry {
        name: name.into(),
        kind: FileType::Directory,
        ino,
    }
}
