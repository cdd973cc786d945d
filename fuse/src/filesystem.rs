//! The FUSE protocol side: each request of fuser's `Filesystem` trait mapped to an operation
//! of [`OverlayFs`] and its result to a reply (see `reply`).

use std::ffi::OsStr;
use std::path::Path;
use std::time::SystemTime;

use fuser::{
    Errno, FileAttr, FileHandle, Filesystem, INodeNo, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use rustix::fs::{self as rfs, Mode, OFlags};

use crate::attr::decode_device;
use crate::create::NewEntry;
use crate::fs::OverlayFs;
use crate::layers::{at_path, Layer};
use crate::reply::{caller, errno, negative_entry, reply_empty, reply_xattr, GENERATION};
use crate::setattr::AttrChanges;

impl Filesystem for OverlayFs {
    fn init(&mut self, _request: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        self.negotiate(config);
        Ok(())
    }

    fn lookup(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _reading = self.reading();
        match self.lookup_name(parent.0, name) {
            Ok(Some(attr)) => reply.entry(&self.ttl, &attr, GENERATION),
            Ok(None) => reply.entry(&self.ttl, &negative_entry(), GENERATION),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn forget(&self, _request: &Request, ino: INodeNo, count: u64) {
        OverlayFs::forget(self, ino.0, count);
    }

    fn getattr(&self, _request: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _reading = self.reading();
        let by_path = self.info(ino.0).and_then(|info| self.attr(&info));
        let result = match (by_path, fh) {
            (Err(_), Some(fh)) => self.attr_of_handle(ino.0, fh.0),
            (result, _) => result,
        };
        match result {
            Ok(attr) => reply.attr(&self.ttl, &attr),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn setattr(
        &self,
        _request: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let changes = AttrChanges {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            handle: fh.map(|fh| fh.0),
        };
        match self.set_attr(ino.0, changes) {
            Ok(attr) => reply.attr(&self.ttl, &attr),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn readlink(&self, _request: &Request, ino: INodeNo, reply: ReplyData) {
        let _reading = self.reading();
        let result = self.info(ino.0).and_then(|info| {
            rfs::readlinkat(self.stack.fd(info.layer), at_path(&info.path), Vec::new())
        });
        match result {
            Ok(target) => reply.data(target.as_bytes()),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn mknod(
        &self,
        request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let entry = match rfs::FileType::from_raw_mode(mode) {
            rfs::FileType::RegularFile => NewEntry::File { mode },
            _ => NewEntry::Special {
                mode,
                device: decode_device(rdev),
            },
        };
        self.reply_entry(self.new_entry(request, parent, name, entry), reply);
    }

    fn mkdir(
        &self,
        request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let entry = NewEntry::Dir { mode };
        self.reply_entry(self.new_entry(request, parent, name, entry), reply);
    }

    fn unlink(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.remove(parent.0, name, false), reply);
    }

    fn rmdir(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.remove(parent.0, name, true), reply);
    }

    fn symlink(
        &self,
        request: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let entry = NewEntry::Symlink { target };
        self.reply_entry(self.new_entry(request, parent, link_name, entry), reply);
    }

    fn rename(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let flags = rfs::RenameFlags::from_bits_retain(flags.bits());
        let result = OverlayFs::rename(self, (parent.0, name), (newparent.0, newname), flags);
        reply_empty(result, reply);
    }

    fn link(
        &self,
        _request: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.reply_entry(OverlayFs::link(self, ino.0, newparent.0, newname), reply);
    }

    fn open(&self, _request: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.reply_open(ino.0, flags.0, reply);
    }

    fn read(
        &self,
        _request: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match OverlayFs::read(self, ino.0, fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn write(
        &self,
        _request: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match OverlayFs::write(self, ino.0, fh.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn flush(
        &self,
        _request: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing to do on close, and ENOSYS makes the kernel stop sending `flush`.
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _request: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        OverlayFs::release(self, fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _request: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(OverlayFs::fsync(self, ino.0, fh.0, datasync), reply);
    }

    fn opendir(&self, _request: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // See `dir`: directories are read without being opened.
        reply.error(Errno::ENOSYS);
    }

    fn readdir(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.read_dir(ino.0, offset) {
            Ok(entries) => {
                for (ino, kind, offset, name) in entries {
                    if reply.add(INodeNo(ino), offset, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(error) => reply.error(errno(error)),
        }
    }

    fn readdirplus(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let ttl = self.ttl;
        let result = self.read_dir_plus(ino.0, offset, |entry| {
            reply.add(
                entry.attr.ino,
                entry.offset,
                &entry.name,
                &ttl,
                &entry.attr,
                GENERATION,
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn releasedir(
        &self,
        _request: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.sync_dir(ino.0), reply);
    }

    fn statfs(&self, _request: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match OverlayFs::statfs(self) {
            Ok(stat) => reply.statfs(
                stat.f_blocks,
                stat.f_bfree,
                stat.f_bavail,
                stat.f_files,
                stat.f_ffree,
                stat.f_bsize as u32,
                stat.f_namemax as u32,
                stat.f_frsize as u32,
            ),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn setxattr(
        &self,
        _request: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.set_xattr(ino.0, name, value, flags), reply);
    }

    fn getxattr(
        &self,
        _request: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        reply_xattr(self.get_xattr(ino.0, name), size, reply);
    }

    fn listxattr(&self, _request: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        reply_xattr(self.list_xattrs(ino.0), size, reply);
    }

    fn removexattr(&self, _request: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.remove_xattr(ino.0, name), reply);
    }

    fn create(
        &self,
        request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let entry = NewEntry::File { mode };
        let created = self.create_entry(parent.0, name, entry, caller(request));
        self.reply_create(created, flags, reply);
    }

    fn fallocate(
        &self,
        _request: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(
            OverlayFs::fallocate(self, ino.0, fh.0, (offset, length), mode),
            reply,
        );
    }

    fn lseek(
        &self,
        _request: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match OverlayFs::lseek(self, ino.0, fh.0, offset, whence) {
            Ok(position) => reply.offset(position),
            Err(error) => reply.error(errno(error)),
        }
    }
}

impl OverlayFs {
    fn attr_of_handle(&self, id: u64, handle: u64) -> rustix::io::Result<FileAttr> {
        let open = self.handles.file(handle).ok_or(rustix::io::Errno::BADF)?;
        let stat = rfs::fstat(&open.file)?;
        Ok(crate::attr::file_attr(id, &stat, false))
    }

    fn sync_dir(&self, id: u64) -> rustix::io::Result<()> {
        let _reading = self.reading();
        let info = self.dir_info(id)?;
        if info.layer != Layer::Upper {
            return Ok(());
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rfs::openat(
            self.stack.fd(Layer::Upper),
            at_path(&info.path),
            flags,
            Mode::empty(),
        )?;
        rfs::fsync(&dir)
    }
}
