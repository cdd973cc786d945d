//! `opendir`, `readdir` and `readdirplus` over the listing of [`crate::readdir`].

use std::ffi::OsString;

use fuser::{FileAttr, FileType};
use rustix::io::{Errno, Result};

use crate::fs::OverlayFs;
use crate::handles::OpenDir;
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
    pub(crate) fn open_dir(&self, id: u64) -> Result<u64> {
        let _reading = self.reading();
        let dir = self.dir_info(id)?;
        let parent = {
            let nodes = self.nodes.lock().unwrap();
            let node = nodes.get(id).ok_or(Errno::STALE)?;
            node.links.first().map_or(ROOT, |(parent, _)| *parent)
        };
        let mut entries = vec![
            dot_entry(".", id),
            dot_entry("..", parent),
        ];
        entries.extend(list(&self.stack, dir.dir_layers(), &dir.path, numbering(&self.nodes))?);
        Ok(self.handles.add_dir(OpenDir { node: id, entries }))
    }

    /// The entries of directory handle `handle` from `offset` on, with their offsets.
    pub(crate) fn read_dir(&self, handle: u64, offset: u64) -> Result<Vec<(u64, FileType, u64, OsString)>> {
        let dir = self.handles.dir(handle).ok_or(Errno::BADF)?;
        let entries = dir.entries.iter().enumerate().skip(offset as usize);
        Ok(entries
            .map(|(index, entry)| (entry.ino, entry.kind, index as u64 + 1, entry.name.clone()))
            .collect())
    }

    /// Sends the entries of directory handle `handle` from `offset` on, each with its
    /// attributes, to `add` until it returns true (the reply is full). Every entry sent but
    /// `.` and `..` counts as a lookup.
    pub(crate) fn read_dir_plus(
        &self,
        handle: u64,
        offset: u64,
        mut add: impl FnMut(&PlusEntry) -> bool,
    ) -> Result<()> {
        let dir = self.handles.dir(handle).ok_or(Errno::BADF)?;
        let _reading = self.reading();
        for (index, entry) in dir.entries.iter().enumerate().skip(offset as usize) {
            let Some(plus) = self.plus_entry(dir.node, entry, index as u64 + 1)? else {
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
        // The entry may have gone since `opendir`: then there are no attributes to send.
        let attr = self.lookup_name(dir, &entry.name)?;
        Ok(attr.map(|attr| PlusEntry {
            name: entry.name.clone(),
            offset,
            attr,
            counted: true,
        }))
    }

    pub(crate) fn release_dir(&self, handle: u64) {
        self.handles.remove_dir(handle);
    }
}

fn dot_entry(name: &str, ino: u64) -> DirEntry {
    DirEntry {
        name: name.into(),
        kind: FileType::Directory,
        ino,
    }
}
