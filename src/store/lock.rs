//! `flock(2)` locks on files under `locks/`. A lock is released when its file is closed, so a
//! killed process never leaves one held.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use layerfs_registry::Digest;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tracing::debug;

use super::{Result, Store};
use crate::fs_error::{FsContext, FsError};

/// What a lock protects, which keeps blob and layer locks of one digest apart.
#[derive(Debug, Clone, Copy)]
pub enum LockKind {
    Blob,
    Layer,
}

/// A held lock; dropping it releases the lock.
pub struct StoreLock {
    _lock: Flock<File>,
}

impl Store {
    /// Takes the exclusive lock for writing the object `digest`, waiting while another process
    /// holds it. This blocks: call it from a blocking thread.
    pub fn lock(&self, kind: LockKind, digest: &Digest) -> Result<StoreLock> {
        let prefix = match kind {
            LockKind::Blob => "blob",
            LockKind::Layer => "layer",
        };
        let path = self
            .locks_dir()
            .join(format!("{prefix}-{}.lock", digest.hex()));
        let lock = flock(&path, FlockArg::LockExclusive)?;
        Ok(StoreLock { _lock: lock })
    }

    /// Takes a shared lock on `tmp/` for as long as the caller stages entries there. If no
    /// other writer is running, first removes entries that killed writers left behind.
    pub fn lock_tmp(&self) -> Result<StoreLock> {
        let path = self.locks_dir().join("tmp.lock");
        let file = open_lock_file(&path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                self.sweep_tmp()?;
                lock.relock(FlockArg::LockShared)
                    .at("taking shared lock", &path)?;
                Ok(StoreLock { _lock: lock })
            }
            Err((file, Errno::EWOULDBLOCK)) => {
                let lock = Flock::lock(file, FlockArg::LockShared)
                    .map_err(|(_, errno)| errno)
                    .at("taking shared lock", &path)?;
                Ok(StoreLock { _lock: lock })
            }
            Err((_, errno)) => Err(io::Error::from(errno))
                .at("taking lock", &path)
                .map_err(Into::into),
        }
    }

    /// Removes staging entries and pins: with the exclusive lock, no writer that made them
    /// is still running.
    fn sweep_tmp(&self) -> Result<(), FsError> {
        for dir in [self.tmp_dir(), self.pins_dir()] {
            for entry in fs::read_dir(&dir).at("listing", &dir)? {
                let path = entry.at("listing", &dir)?.path();
                debug!(path = %path.display(), "removing what a killed writer left");
                crate::unpack::remove_tree(&path)?;
            }
        }
        Ok(())
    }
}

fn open_lock_file(path: &Path) -> Result<File, FsError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .at("opening lock file", path)
}

fn flock(path: &Path, arg: FlockArg) -> Result<Flock<File>, FsError> {
    let file = open_lock_file(path)?;
    Flock::lock(file, arg)
        .map_err(|(_, errno)| errno)
        .at("taking lock", path)
}
