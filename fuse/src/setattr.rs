//! `setattr` (chmod, chown, truncate, utimens) and `statfs`. Changing any attribute copies
//! the entry up first, as overlayfs does.

use std::time::SystemTime;

use fuser::{FileAttr, TimeOrNow};
use rustix::fs::{self as rfs, AtFlags, Gid, Mode, OFlags, StatVfs, Timespec, Timestamps, Uid};
use rustix::io::Result;

use crate::fs::OverlayFs;
use crate::layers::{at_path, Layer};

/// The changes of one `setattr` request; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct AttrChanges {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    /// The open file the request came through, if any.
    pub handle: Option<u64>,
}

impl OverlayFs {
    pub(crate) fn set_attr(&self, id: u64, changes: AttrChanges) -> Result<FileAttr> {
        let _writing = self.writable_namespace()?;
        self.copy_up(id, changes.size != Some(0))?;
        let info = self.info(id)?;
        let upper = self.stack.fd(Layer::Upper);
        let path = at_path(&info.path);

        if changes.uid.is_some() || changes.gid.is_some() {
            let uid = changes.uid.map(Uid::from_raw);
            let gid = changes.gid.map(Gid::from_raw);
            rfs::chownat(upper, path, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
        }
        if let Some(mode) = changes.mode {
            rfs::chmodat(
                upper,
                path,
                Mode::from_raw_mode(mode & 0o7777),
                AtFlags::empty(),
            )?;
        }
        if let Some(size) = changes.size {
            self.truncate(&info.path, changes.handle, size)?;
        }
        if changes.atime.is_some() || changes.mtime.is_some() {
            let times = Timestamps {
                last_access: timespec(changes.atime),
                last_modification: timespec(changes.mtime),
            };
            rfs::utimensat(upper, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        }
        self.attr(&info)
    }

    fn truncate(&self, path: &std::path::Path, handle: Option<u64>, size: u64) -> Result<()> {
        // The handle's file may be a lower file opened before the copy-up, or read-only.
        let open = handle.and_then(|handle| self.handles.file(handle));
        if let Some(open) = open.filter(|open| rfs::ftruncate(&open.file, size).is_ok()) {
            drop(open);
            return Ok(());
        }
        let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = rfs::openat(self.stack.fd(Layer::Upper), path, flags, Mode::empty())?;
        rfs::ftruncate(&file, size)
    }

    pub(crate) fn statfs(&self) -> Result<StatVfs> {
        let top = match self.stack.writable() {
            true => Layer::Upper,
            false => Layer::Lower(0),
        };
        rfs::fstatvfs(self.stack.fd(top))
    }
}

fn timespec(time: Option<TimeOrNow>) -> Timespec {
    let nanoseconds = match time {
        None => rfs::UTIME_OMIT,
        Some(TimeOrNow::Now) => rfs::UTIME_NOW,
        Some(TimeOrNow::SpecificTime(time)) => return system_time(time),
    };
    Timespec {
        tv_sec: 0,
        tv_nsec: nanoseconds,
    }
}

fn system_time(time: SystemTime) -> Timespec {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => Timespec {
            tv_sec: since.as_secs() as _,
            tv_nsec: since.subsec_nanos() as _,
        },
        Err(error) => {
            let before = error.duration();
            let mut seconds = -(before.as_secs() as i64);
            let mut nanoseconds = before.subsec_nanos() as i64;
            if nanoseconds > 0 {
                seconds -= 1;
                nanoseconds = 1_000_000_000 - nanoseconds;
            }
            Timespec {
                tv_sec: seconds as _,
                tv_nsec: nanoseconds as _,
            }
        }
    }
}
