//! Replies to the kernel: errors as errno values, entries with their time to live, and the
//! `init`, `open` and `create` answers that depend on how opens are served.

use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, ReplyCreate, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyXattr, Request,
};
use tracing::debug;

use crate::create::{Caller, NewEntry};
use crate::fs::{NodeInfo, OpenMode, OverlayFs};

pub const GENERATION: Generation = Generation(0);

/// Capabilities asked of the kernel when it offers them: attributes with directory
/// listings, cached symlink targets, parallel lookups in one directory, and directories
/// read without `opendir`.
const WANTED: [InitFlags; 5] = [
    InitFlags::FUSE_DO_READDIRPLUS,
    InitFlags::FUSE_READDIRPLUS_AUTO,
    InitFlags::FUSE_CACHE_SYMLINKS,
    InitFlags::FUSE_PARALLEL_DIROPS,
    InitFlags::FUSE_NO_OPENDIR_SUPPORT,
];

pub fn errno(errno: rustix::io::Errno) -> Errno {
    Errno::from_i32(errno.raw_os_error())
}

pub fn caller(request: &Request) -> Caller {
    Caller {
        uid: request.uid(),
        gid: request.gid(),
    }
}

/// Returns the reply to a lookup of a missing name. Node ID 0 makes the kernel cache the
/// absence for the entry timeout, as the kernel overlay's negative dentries do.
pub fn negative_entry() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

impl OverlayFs {
    pub(crate) fn reply_entry(&self, result: rustix::io::Result<FileAttr>, reply: ReplyEntry) {
        match result {
            Ok(attr) => reply.entry(&self.ttl, &attr, GENERATION),
            Err(error) => reply.error(errno(error)),
        }
    }

    pub(crate) fn new_entry(
        &self,
        request: &Request,
        parent: INodeNo,
        name: &OsStr,
        entry: NewEntry<'_>,
    ) -> rustix::io::Result<FileAttr> {
        self.create_entry(parent.0, name, entry, caller(request))
            .map(|(_, attr)| attr)
    }
}

pub fn reply_empty(result: rustix::io::Result<()>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(errno(error)),
    }
}

pub fn reply_xattr(result: rustix::io::Result<Vec<u8>>, size: u32, reply: ReplyXattr) {
    match result {
        Ok(value) if size == 0 => reply.size(value.len() as u32),
        Ok(value) if value.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(value) => reply.data(&value),
        Err(error) => reply.error(errno(error)),
    }
}

impl OverlayFs {
    /// Asks the kernel for the capabilities this file system uses, as far as it offers them.
    pub(crate) fn negotiate(&self, config: &mut KernelConfig) {
        for flag in WANTED {
            if let Err(missing) = config.add_capabilities(flag) {
                debug!(?missing, "kernel lacks a FUSE capability");
            }
        }
        match self.options.open {
            OpenMode::Cached => {
                let _ = config.add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT);
            }
            OpenMode::Passthrough => {
                // O_TRUNC delivered with `open`, so a copy-up for truncation skips the data.
                let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
                if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                    && config.set_max_stack_depth(1).is_ok()
                {
                    self.passthrough.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    pub(crate) fn reply_open(&self, id: u64, flags: i32, reply: ReplyOpen) {
        if self.options.open == OpenMode::Cached {
            // See `open`: from now on the kernel opens files without a request.
            reply.error(Errno::ENOSYS);
            return;
        }
        let backing = |fd: rustix::fd::BorrowedFd<'_>| reply.open_backing(fd);
        match self.open_file(id, flags, &backing) {
            Ok(opened) => match &opened.backing {
                Some(backing) => {
                    reply.opened_passthrough(FileHandle(opened.handle), opened.flags, backing)
                }
                None => reply.opened(FileHandle(opened.handle), opened.flags),
            },
            Err(error) => reply.error(errno(error)),
        }
    }

    /// Replies to `create` with the new file, opened as `flags` ask.
    pub(crate) fn reply_create(
        &self,
        created: rustix::io::Result<(NodeInfo, FileAttr)>,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (info, attr) = match created {
            Ok(created) => created,
            Err(error) => return reply.error(errno(error)),
        };
        if self.options.open == OpenMode::Cached {
            // The kernel needs a handle here; requests on it come as if without one.
            let flags = FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH;
            reply.created(&self.ttl, &attr, GENERATION, FileHandle(0), flags);
            return;
        }
        let backing = |fd: rustix::fd::BorrowedFd<'_>| reply.open_backing(fd);
        let opened = match self.open_info(&info, flags, &backing) {
            Ok(opened) => opened,
            Err(error) => return reply.error(errno(error)),
        };
        let handle = FileHandle(opened.handle);
        match &opened.backing {
            Some(backing) => {
                let ttl = &self.ttl;
                reply.created_passthrough(ttl, &attr, GENERATION, handle, opened.flags, backing)
            }
            None => reply.created(&self.ttl, &attr, GENERATION, handle, opened.flags),
        }
    }
}
