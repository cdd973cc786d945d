//! Opening files, and the I/O the kernel does not do by itself.
//!
//! In [`OpenMode::Cached`] (the default) `open` fails with ENOSYS, after which the kernel
//! opens files without a request (Linux 3.14 and later) and keeps their pages cached across
//! opens. Reads it cannot serve from its cache, and all writes, come without a handle, and
//! they use a real file kept open per node. The first write copies the file up.
//!
//! In [`OpenMode::Passthrough`] (Linux 6.9 and later) every open is a request, answered
//! with a backing file that the kernel then reads and writes itself; only `open`,
//! `release` and `fsync` reach this process. Opening for writing copies the file up first,
//! as overlayfs does.
//!
//! [`OpenMode::Cached`]: crate::fs::OpenMode::Cached
//! [`OpenMode::Passthrough`]: crate::fs::OpenMode::Passthrough

use std::io;
use std::sync::Arc;

use fuser::{BackingId, FopenFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self as rfs, FallocateFlags, Mode, OFlags, SeekFrom};
use rustix::io::{Errno, Result};
use tracing::warn;

use crate::fs::{NodeInfo, OverlayFs};
use crate::handles::OpenFile;
use crate::layers::{at_path, Layer};

/// The reply to `open` and `create`.
pub struct Opened {
    pub handle: u64,
    pub flags: FopenFlags,
    pub backing: Option<Arc<BackingId>>,
}

/// Registers a real file with the kernel as a passthrough backing file.
pub type OpenBacking<'a> = &'a dyn Fn(BorrowedFd<'_>) -> io::Result<BackingId>;

/// Returns whether open(2) flags request changes to the file.
pub fn opens_for_writing(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

impl OverlayFs {
    pub(crate) fn open_file(
        &self,
        id: u64,
        flags: i32,
        backing: OpenBacking<'_>,
    ) -> Result<Opened> {
        let write = opens_for_writing(flags);
        if write {
            let _writing = self.writable_namespace()?;
            self.check_passthrough_write(id)?;
            let truncate = flags & libc::O_TRUNC != 0;
            self.copy_up(id, !truncate)?;
        }
        let _reading = self.reading();
        let info = self.info(id)?;
        self.open_info(&info, flags, backing)
    }

    /// Opens the real file of `info` and registers the handle.
    pub(crate) fn open_info(
        &self,
        info: &NodeInfo,
        flags: i32,
        backing: OpenBacking<'_>,
    ) -> Result<Opened> {
        let write = opens_for_writing(flags);
        let (file, writable) = self.open_real(info, flags)?;
        let backing = match self.passthrough() {
            true => self.share_backing(info.id, (&file, writable), write, backing)?,
            false => None,
        };
        // `flush` does nothing here, so the kernel need not send it on every close.
        let flags = FopenFlags::FOPEN_NOFLUSH
            | match &backing {
                Some(_) => FopenFlags::empty(),
                None => FopenFlags::FOPEN_KEEP_CACHE,
            };
        let handle = self.handles.add_file(OpenFile {
            node: info.id,
            file: Arc::new(file),
            backing: backing.clone(),
        });
        Ok(Opened {
            handle,
            flags,
            backing,
        })
    }

    /// Opens the real file: read-only in a lower layer, read-write in the upper layer so that
    /// one passthrough backing file serves every open of it. Returns whether it is writable.
    fn open_real(&self, info: &NodeInfo, flags: i32) -> Result<(OwnedFd, bool)> {
        let fd = self.stack.fd(info.layer);
        let path = at_path(&info.path);
        let base = OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let truncate = match flags & libc::O_TRUNC != 0 {
            true => OFlags::TRUNC,
            false => OFlags::empty(),
        };
        if info.layer == Layer::Upper {
            let read_write = base | OFlags::RDWR | truncate;
            match rfs::openat(fd, path, read_write, Mode::empty()) {
                Ok(file) => return Ok((file, true)),
                // A running executable cannot be opened for writing.
                Err(Errno::TXTBSY) if !opens_for_writing(flags) => {}
                Err(errno) => return Err(errno),
            }
        }
        let file = rfs::openat(fd, path, base | OFlags::RDONLY, Mode::empty())?;
        Ok((file, false))
    }

    /// Fails with ETXTBSY an open for writing of node `id` while handles pass through to a
    /// read-only backing file: the kernel would have to pass the new open through to that
    /// same file.
    /// NOTE: overlayfs allows this, and reads through the older handles then see the copied-up
    /// file. The default open mode, without passthrough, behaves as overlayfs does.
    fn check_passthrough_write(&self, id: u64) -> Result<()> {
        let nodes = self.nodes.lock().unwrap();
        let Some(node) = nodes.get(id) else {
            return Ok(());
        };
        if node.backing.upgrade().is_some() && !node.backing_writable {
            return Err(Errno::TXTBSY);
        }
        Ok(())
    }

    /// Returns the backing file for a new passthrough open of node `id`: the one its other
    /// opens share, or a new one made from `file` (and whether it is open for writing), or
    /// `None` when the kernel rejected it.
    fn share_backing(
        &self,
        id: u64,
        (file, writable): (&OwnedFd, bool),
        write: bool,
        open_backing: OpenBacking<'_>,
    ) -> Result<Option<Arc<BackingId>>> {
        let mut nodes = self.nodes.lock().unwrap();
        let node = nodes.get_mut(id).ok_or(Errno::STALE)?;
        if let Some(shared) = node.backing.upgrade() {
            if write && !node.backing_writable {
                return Err(Errno::TXTBSY);
            }
            node.passthrough_opens += 1;
            return Ok(Some(shared));
        }
        match open_backing(file.as_fd()) {
            Ok(backing) => {
                let backing = Arc::new(backing);
                node.backing = Arc::downgrade(&backing);
                node.backing_writable = writable;
                node.stale_backing = false;
                node.passthrough_opens += 1;
                Ok(Some(backing))
            }
            Err(error) => {
                warn!(%error, "kernel rejected the passthrough backing file; serving reads and writes in this process");
                self.passthrough
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    pub(crate) fn release(&self, handle: u64) {
        let Some(open) = self.handles.remove_file(handle) else {
            return;
        };
        if open.backing.is_some() {
            let mut nodes = self.nodes.lock().unwrap();
            if let Some(node) = nodes.get_mut(open.node) {
                node.passthrough_opens = node.passthrough_opens.saturating_sub(1);
                if node.passthrough_opens == 0 {
                    node.stale_backing = false;
                }
            }
        }
    }

    /// Returns the real file for an I/O request on node `id`: its handle's, or the node's own
    /// when the request came without a handle.
    fn request_file(&self, id: u64, handle: u64, write: bool) -> Result<Arc<OwnedFd>> {
        match self.handles.file(handle) {
            Some(open) => Ok(open.file.clone()),
            None => self.node_file(id, write),
        }
    }

    /// Returns the real file of node `id`, kept open for requests without a handle. For
    /// writing, the node is copied up first.
    fn node_file(&self, id: u64, write: bool) -> Result<Arc<OwnedFd>> {
        if let Some(file) = self.nodes.lock().unwrap().file(id, write) {
            return Ok(file);
        }
        if write {
            let _writing = self.writable_namespace()?;
            self.copy_up(id, true)?;
            self.open_node_file(id, libc::O_RDWR)
        } else {
            let _reading = self.reading();
            self.open_node_file(id, libc::O_RDONLY)
        }
    }

    fn open_node_file(&self, id: u64, flags: i32) -> Result<Arc<OwnedFd>> {
        let info = self.info(id)?;
        let (file, writable) = self.open_real(&info, flags)?;
        let file = Arc::new(file);
        self.nodes
            .lock()
            .unwrap()
            .keep_file(id, file.clone(), writable);
        Ok(file)
    }

    pub(crate) fn read(&self, id: u64, handle: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let file = self.request_file(id, handle, false)?;
        let mut buffer = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buffer.len() {
            let read = rustix::io::pread(&file, &mut buffer[filled..], offset + filled as u64)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        buffer.truncate(filled);
        Ok(buffer)
    }

    pub(crate) fn write(&self, id: u64, handle: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let file = self.request_file(id, handle, true)?;
        let mut written = 0;
        while written < data.len() {
            written += rustix::io::pwrite(&file, &data[written..], offset + written as u64)?;
        }
        Ok(written as u32)
    }

    pub(crate) fn fsync(&self, id: u64, handle: u64, data_only: bool) -> Result<()> {
        let file = self.request_file(id, handle, false)?;
        match data_only {
            true => rfs::fdatasync(&file),
            false => rfs::fsync(&file),
        }
    }

    pub(crate) fn lseek(&self, id: u64, handle: u64, offset: i64, whence: i32) -> Result<i64> {
        let file = self.request_file(id, handle, false)?;
        let position = match whence {
            libc::SEEK_DATA => SeekFrom::Data(offset as u64),
            libc::SEEK_HOLE => SeekFrom::Hole(offset as u64),
            libc::SEEK_SET => SeekFrom::Start(offset as u64),
            libc::SEEK_END => SeekFrom::End(offset),
            _ => return Err(Errno::INVAL),
        };
        Ok(rfs::seek(&file, position)? as i64)
    }

    pub(crate) fn fallocate(
        &self,
        id: u64,
        handle: u64,
        range: (u64, u64),
        mode: i32,
    ) -> Result<()> {
        let file = self.request_file(id, handle, true)?;
        let mode = FallocateFlags::from_bits_retain(mode as u32);
        rfs::fallocate(&file, mode, range.0, range.1)
    }
}
