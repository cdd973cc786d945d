//! `unlink` and `rmdir`. A name that only the upper layer contains is removed from it, and a
//! name that a lower layer shows gets a whiteout in the upper layer instead (overlayfs's
//! fs/overlayfs/dir.c, `ovl_remove_and_whiteout`). An upper directory is moved to the work
//! directory before it is emptied of the whiteouts it may hold, so the merged view never
//! shows it half-removed.

use std::ffi::OsStr;
use std::path::Path;

use rustix::fd::AsFd;
use rustix::fs::{self as rfs, AtFlags, Dir, Mode, OFlags, RenameFlags};
use rustix::io::{Errno, Result};

use crate::copy_up::temp_name;
use crate::format::make_whiteout;
use crate::fs::{NodeInfo, OverlayFs};
use crate::layers::Layer;
use crate::lookup::lower_has;
use crate::readdir::is_empty;

impl OverlayFs {
    /// Removes `name` from directory `parent`: a directory if `dir`, else anything else.
    pub(crate) fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Result<()> {
        let _writing = self.writable_namespace()?;
        let parent_info = self.dir_info(parent)?;
        let target = self.child(&parent_info, name)?.ok_or(Errno::NOENT)?;
        match (dir, target.is_dir()) {
            (true, false) => return Err(Errno::NOTDIR),
            (false, true) => return Err(Errno::ISDIR),
            _ => {}
        }
        if dir && !is_empty(&self.stack, target.dir_layers(), &target.path)? {
            return Err(Errno::NOTEMPTY);
        }

        self.copy_up(parent, true)?;
        let parent_info = self.dir_info(parent)?;
        let whiteout = lower_has(&self.stack, &parent_info.lowers, &parent_info.path, name)?;
        match target.layer {
            Layer::Upper => self.remove_upper(&target, whiteout)?,
            Layer::Lower(_) => self.put_whiteout(&target.path, false)?,
        }
        let mut nodes = self.nodes.lock().unwrap();
        nodes.unlink(target.id, parent, name);
        nodes.changed(parent);
        Ok(())
    }

    /// Removes the upper entry `target`, leaving a whiteout in its place if `whiteout`.
    fn remove_upper(&self, target: &NodeInfo, whiteout: bool) -> Result<()> {
        let upper = self.stack.fd(Layer::Upper);
        if !target.is_dir() {
            return match whiteout {
                true => self.put_whiteout(&target.path, false),
                false => rfs::unlinkat(upper, &target.path, AtFlags::empty()),
            };
        }
        let temp = match whiteout {
            true => self.put_whiteout(&target.path, true).map(|()| None)?,
            false => {
                let temp = temp_name();
                rfs::renameat(upper, &target.path, self.stack.work_fd(), &temp)?;
                Some(temp)
            }
        };
        // After an exchange the directory sits in the work directory under the temp name
        // the whiteout had; `put_whiteout` removed it already in that case.
        if let Some(temp) = temp {
            remove_tree(self.stack.work_fd(), OsStr::new(&temp))?;
        }
        Ok(())
    }

    /// Puts a whiteout at `path` in the upper layer, built in the work directory and renamed
    /// into place. `exchange` swaps it with an upper directory there, which is then removed.
    pub(crate) fn put_whiteout(&self, path: &Path, exchange: bool) -> Result<()> {
        let work = self.stack.work_fd();
        let upper = self.stack.fd(Layer::Upper);
        let temp = temp_name();
        make_whiteout(work, OsStr::new(&temp))?;
        let flags = match exchange {
            true => RenameFlags::EXCHANGE,
            false => RenameFlags::empty(),
        };
        if let Err(errno) = rfs::renameat_with(work, &temp, upper, path, flags) {
            let _ = rfs::unlinkat(work, &temp, AtFlags::empty());
            return Err(errno);
        }
        if exchange {
            remove_tree(work, OsStr::new(&temp))?;
        }
        Ok(())
    }
}

/// Removes `name` in `dir` and everything below it, without following symlinks.
pub fn remove_tree(dir: impl AsFd, name: &OsStr) -> Result<()> {
    match rfs::unlinkat(&dir, name, AtFlags::empty()) {
        Err(Errno::ISDIR) => {}
        other => return other,
    }
    empty_dir(&dir, name)?;
    rfs::unlinkat(&dir, name, AtFlags::REMOVEDIR)
}

/// Removes everything in the directory `name` of `dir`.
pub fn empty_dir(dir: impl AsFd, name: &OsStr) -> Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, Mode::empty())?;
    let mut names = Vec::new();
    let mut reader = Dir::read_from(&fd)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            names.push(std::ffi::OsString::from(
                <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(child),
            ));
        }
    }
    for child in names {
        remove_tree(&fd, &child)?;
    }
    Ok(())
}
