//! Creating entries: files, directories, device nodes, FIFOs, sockets, symlinks and hard
//! links, always in the upper layer.
//!
//! As in overlayfs, a new entry is built in the work directory with its final owner and
//! mode, then renamed into place, replacing any whiteout of the same name. A directory
//! created where a whiteout hid a lower entry is made opaque, so nothing of the old
//! directory shows through.

use std::ffi::OsStr;
use std::path::Path;

use fuser::FileAttr;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::{Errno, Result};

use crate::attr::file_attr;
use crate::copy_up::{set_owner, temp_name};
use crate::format::{is_whiteout, set_opaque};
use crate::fs::{NodeInfo, OverlayFs};
use crate::inode::Found;
use crate::layers::Layer;
use crate::lookup::find;

/// An entry to create.
pub enum NewEntry<'a> {
    File {
        mode: u32,
    },
    Dir {
        mode: u32,
    },
    /// A device node, FIFO or socket: `mode` includes the file type.
    Special {
        mode: u32,
        device: u64,
    },
    Symlink {
        target: &'a Path,
    },
}

/// The user creating an entry, from the request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl OverlayFs {
    /// Creates `name` in directory `parent` and returns its attributes, counting a lookup.
    pub(crate) fn create_entry(
        &self,
        parent: u64,
        name: &OsStr,
        entry: NewEntry<'_>,
        caller: Caller,
    ) -> Result<(NodeInfo, FileAttr)> {
        let _writing = self.writable_namespace()?;
        self.copy_up(parent, true)?;
        let dir = self.prepare_name(parent, name)?;
        let (gid, setgid_dir) = self.new_group(&dir, caller)?;
        let temp = temp_name();
        let work = self.stack.work_fd();

        let is_dir = matches!(entry, NewEntry::Dir { .. });
        let result = build(work, &temp, &entry).and_then(|()| {
            set_owner(work, &temp, caller.uid, gid)?;
            if let Some(mode) = entry.permissions(setgid_dir) {
                rfs::chmodat(work, &temp, Mode::from_raw_mode(mode), AtFlags::empty())?;
            }
            self.move_into_place(&temp, &dir.path.join(name), is_dir)
        });
        if result.is_err() {
            let _ = rfs::unlinkat(work, &temp, AtFlags::empty());
            let _ = rfs::unlinkat(work, &temp, AtFlags::REMOVEDIR);
        }
        result?;
        self.nodes.lock().unwrap().changed(parent);
        self.remember_upper(parent, name)
    }

    /// Makes a new name for node `id` in directory `parent`, copying the node up first.
    pub(crate) fn link(&self, id: u64, parent: u64, name: &OsStr) -> Result<FileAttr> {
        let _writing = self.writable_namespace()?;
        if self.info(id)?.is_dir() {
            return Err(Errno::PERM);
        }
        self.copy_up(id, true)?;
        self.copy_up(parent, true)?;
        let dir = self.prepare_name(parent, name)?;
        let source = self.info(id)?;
        let temp = temp_name();
        let upper = self.stack.fd(Layer::Upper);
        rfs::linkat(
            upper,
            &source.path,
            self.stack.work_fd(),
            &temp,
            AtFlags::empty(),
        )?;
        if let Err(errno) = self.move_into_place(&temp, &dir.path.join(name), false) {
            let _ = rfs::unlinkat(self.stack.work_fd(), &temp, AtFlags::empty());
            return Err(errno);
        }
        self.nodes.lock().unwrap().changed(parent);
        Ok(self.remember_upper(parent, name)?.1)
    }

    /// Checks that `name` is free in the merged view of `parent`, and returns `parent`.
    fn prepare_name(&self, parent: u64, name: &OsStr) -> Result<NodeInfo> {
        let dir = self.dir_info(parent)?;
        if find(&self.stack, dir.dir_layers(), &dir.path, name)?.is_some() {
            return Err(Errno::EXIST);
        }
        Ok(dir)
    }

    /// Returns the group of a new entry in `dir`, and whether `dir` is set-group-ID. New
    /// entries of such a directory take its group, and new directories inherit the bit, as
    /// the kernel's `inode_init_owner` does.
    fn new_group(&self, dir: &NodeInfo, caller: Caller) -> Result<(u32, bool)> {
        let stat = self.stat(dir)?;
        match stat.st_mode & libc::S_ISGID != 0 {
            true => Ok((stat.st_gid, true)),
            false => Ok((caller.gid, false)),
        }
    }

    /// Renames `temp` from the work directory to `path` in the upper layer, replacing a
    /// whiteout there. A directory cannot replace a whiteout by rename(2), so it is
    /// exchanged with it and made opaque first, and the whiteout is removed after.
    fn move_into_place(&self, temp: &str, path: &Path, is_dir: bool) -> Result<()> {
        let work = self.stack.work_fd();
        let upper = self.stack.fd(Layer::Upper);
        let whiteout = match rfs::statat(upper, path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => is_whiteout(&stat),
            Err(Errno::NOENT) => false,
            Err(errno) => return Err(errno),
        };
        if !(is_dir && whiteout) {
            return rfs::renameat(work, temp, upper, path);
        }
        set_opaque(&self.stack.work_path(temp))?;
        rfs::renameat_with(work, temp, upper, path, RenameFlags::EXCHANGE)?;
        rfs::unlinkat(work, temp, AtFlags::empty())
    }

    /// Counts a lookup of the upper entry `name` in `parent` and returns its attributes.
    fn remember_upper(&self, parent: u64, name: &OsStr) -> Result<(NodeInfo, FileAttr)> {
        let dir = self.dir_info(parent)?;
        let path = dir.path.join(name);
        let stat = rfs::statat(
            self.stack.fd(Layer::Upper),
            &path,
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        let kind = crate::attr::kind(stat.st_mode);
        let found = Found {
            kind,
            layer: Layer::Upper,
            lowers: Vec::new(),
            device: stat.st_dev,
            inode: stat.st_ino,
            links: stat.st_nlink,
        };
        let id = self.nodes.lock().unwrap().remember(parent, name, found);
        let info = NodeInfo {
            id,
            kind,
            layer: Layer::Upper,
            lowers: Vec::new(),
            path,
        };
        Ok((info, file_attr(id, &stat, false)))
    }
}

impl NewEntry<'_> {
    /// Returns the permission bits to set after chown, or `None` for a symlink, whose
    /// permissions are fixed.
    fn permissions(&self, setgid_dir: bool) -> Option<u32> {
        match *self {
            NewEntry::File { mode } | NewEntry::Special { mode, .. } => Some(mode & 0o7777),
            NewEntry::Dir { mode } if setgid_dir => Some((mode & 0o7777) | libc::S_ISGID),
            NewEntry::Dir { mode } => Some(mode & 0o7777),
            NewEntry::Symlink { .. } => None,
        }
    }
}

/// Creates the bare entry `temp` in the work directory, owned by root with private
/// permissions until its owner and mode are set.
fn build(work: impl rustix::fd::AsFd, temp: &str, entry: &NewEntry<'_>) -> Result<()> {
    let private = Mode::from_raw_mode(0o600);
    match entry {
        NewEntry::File { .. } => {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
            rfs::openat(work, temp, flags, private).map(drop)
        }
        NewEntry::Dir { .. } => rfs::mkdirat(work, temp, Mode::from_raw_mode(0o700)),
        NewEntry::Special { mode, device } => {
            let file_type = rfs::FileType::from_raw_mode(*mode);
            rfs::mknodat(work, temp, file_type, private, *device)
        }
        NewEntry::Symlink { target } => rfs::symlinkat(*target, work, temp),
    }
}
