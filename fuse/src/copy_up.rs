//! Copy-up: before the first change to an entry of a lower layer, the entry is copied to the
//! upper layer with its parents, keeping type, content, mode, owner, times and xattrs, as
//! overlayfs does (fs/overlayfs/copy_up.c). The copy is built in the work directory and
//! renamed into place, so the upper layer never contains a partial file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid,
};
use rustix::io::{Errno, Result};

use crate::fs::{NodeInfo, OverlayFs};
use crate::inode::ROOT;
use crate::layers::{at_path, Layer};
use crate::xattr;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Returns a fresh name for an entry under construction in the work directory.
pub fn temp_name() -> String {
    let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("#{:x}-{count}", std::process::id())
}

impl OverlayFs {
    /// Copies node `id`, and the directories above it, to the upper layer unless they are
    /// there already.
    /// NOTE: overlayfs also records the lower file in `trusted.overlay.origin`, so that a
    /// later kernel mount of this upper layer keeps its inode number; copies made here lack
    /// it, and show their upper inode number there. `data` is false when the caller is about to truncate the file to zero.
    /// The caller holds the namespace lock exclusively.
    pub(crate) fn copy_up(&self, id: u64, data: bool) -> Result<()> {
        let info = self.info(id)?;
        if info.layer == Layer::Upper {
            return Ok(());
        }
        let parent = self.parent_of(id)?;
        self.copy_up(parent, true)?;

        let stat = self.stat(&info)?;
        let temp = temp_name();
        let result = self
            .build_copy(&info, &stat, &temp, data)
            .and_then(|()| self.move_into_upper(&temp, &info.path));
        if result.is_err() {
            remove_temp(self, &temp);
        }
        result?;

        let copied = rfs::statat(
            self.stack.fd(Layer::Upper),
            &info.path,
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        self.nodes
            .lock()
            .unwrap()
            .copied_up(id, copied.st_dev, copied.st_ino);
        Ok(())
    }

    /// Returns the directory node that contains the name `id` is reached by.
    pub(crate) fn parent_of(&self, id: u64) -> Result<u64> {
        if id == ROOT {
            return Ok(ROOT);
        }
        let nodes = self.nodes.lock().unwrap();
        let node = nodes.get(id).ok_or(Errno::STALE)?;
        let (parent, _) = node.links.first().ok_or(Errno::STALE)?;
        Ok(*parent)
    }

    /// Builds the copy of `info` as `temp` in the work directory.
    fn build_copy(&self, info: &NodeInfo, stat: &Stat, temp: &str, data: bool) -> Result<()> {
        let work = self.stack.work_fd();
        let source = self.stack.fd(info.layer);
        let path = at_path(&info.path);
        let mode = Mode::from_raw_mode(stat.st_mode & 0o7777);
        let file_type = FileType::from_raw_mode(stat.st_mode);
        match file_type {
            FileType::Directory => rfs::mkdirat(work, temp, Mode::from_raw_mode(0o700))?,
            FileType::RegularFile => copy_file(source, path, work, temp, data)?,
            FileType::Symlink => {
                let target = rfs::readlinkat(source, path, Vec::new())?;
                rfs::symlinkat(target.as_c_str(), work, temp)?;
            }
            _ => rfs::mknodat(
                work,
                temp,
                file_type,
                Mode::from_raw_mode(0o600),
                stat.st_rdev,
            )?,
        }
        set_owner(work, temp, stat.st_uid, stat.st_gid)?;
        if file_type != FileType::Symlink {
            // After chown, which clears set-user-ID and set-group-ID bits.
            rfs::chmodat(work, temp, mode, AtFlags::empty())?;
        }
        let from = self.stack.path(info.layer, &info.path);
        xattr::copy_all(&from, &self.stack.work_path(temp))?;
        set_times(work, temp, stat)
    }

    /// Renames the finished copy to `path` in the upper layer. The parent directory keeps
    /// its times: a copy-up is no change to it in the merged view.
    fn move_into_upper(&self, temp: &str, path: &Path) -> Result<()> {
        let upper = self.stack.fd(Layer::Upper);
        let parent = at_path(path.parent().unwrap_or(Path::new("")));
        let parent_stat = rfs::statat(upper, parent, AtFlags::SYMLINK_NOFOLLOW)?;
        rfs::renameat(self.stack.work_fd(), temp, upper, path)?;
        set_times(upper, parent, &parent_stat)
    }
}

fn copy_file(
    source_dir: impl rustix::fd::AsFd,
    path: &Path,
    work: impl rustix::fd::AsFd,
    temp: &str,
    data: bool,
) -> Result<()> {
    let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    let target = rfs::openat(work, temp, create, Mode::from_raw_mode(0o600))?;
    if !data {
        return Ok(());
    }
    let read = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let source = rfs::openat(source_dir, path, read, Mode::empty())?;
    loop {
        match rfs::copy_file_range(&source, None, &target, None, 1 << 30)? {
            0 => return Ok(()),
            _ => continue,
        }
    }
}

pub fn set_owner(dir: impl rustix::fd::AsFd, name: &str, uid: u32, gid: u32) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    rfs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
}

fn set_times(dir: impl rustix::fd::AsFd, name: impl rustix::path::Arg, stat: &Stat) -> Result<()> {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: stat.st_atime as _,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: stat.st_mtime as _,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    };
    rfs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
}

/// Removes a half-built entry from the work directory after a failure.
fn remove_temp(fs: &OverlayFs, temp: &str) {
    let work = fs.stack.work_fd();
    if rfs::unlinkat(work, temp, AtFlags::empty()).is_err() {
        let _ = rfs::unlinkat(work, temp, AtFlags::REMOVEDIR);
    }
}
