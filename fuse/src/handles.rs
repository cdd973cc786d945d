//! Open files and directories, by the handle number given to the kernel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::BackingId;
use rustix::fd::OwnedFd;

use crate::readdir::DirEntry;

pub struct OpenFile {
    pub node: u64,
    /// The real file: read and written directly when the open is not passed through, and
    /// used for `fsync`, `fstat` and truncation in either case.
    pub file: OwnedFd,
    /// Held while the kernel passes this open's reads and writes through to the real file.
    pub backing: Option<Arc<BackingId>>,
}

pub struct OpenDir {
    pub node: u64,
    /// The listing taken at `opendir`, `.` and `..` first; entry `i` has offset `i + 1`.
    pub entries: Vec<DirEntry>,
}

#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<OpenDir>>>,
}

impl Handles {
    fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add_file(&self, file: OpenFile) -> u64 {
        let handle = self.next();
        self.files.lock().unwrap().insert(handle, Arc::new(file));
        handle
    }

    pub fn file(&self, handle: u64) -> Option<Arc<OpenFile>> {
        self.files.lock().unwrap().get(&handle).cloned()
    }

    pub fn remove_file(&self, handle: u64) -> Option<Arc<OpenFile>> {
        self.files.lock().unwrap().remove(&handle)
    }

    pub fn add_dir(&self, dir: OpenDir) -> u64 {
        let handle = self.next();
        self.dirs.lock().unwrap().insert(handle, Arc::new(dir));
        handle
    }

    pub fn dir(&self, handle: u64) -> Option<Arc<OpenDir>> {
        self.dirs.lock().unwrap().get(&handle).cloned()
    }

    pub fn remove_dir(&self, handle: u64) {
        self.dirs.lock().unwrap().remove(&handle);
    }
}
