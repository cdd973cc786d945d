//! Open files, by the handle number given to the kernel in passthrough mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::BackingId;
use rustix::fd::OwnedFd;

pub struct OpenFile {
    pub node: u64,
    /// The real file: read and written directly when the open is not passed through, and
    /// used for `fsync`, `fstat` and truncation in either case.
    pub file: Arc<OwnedFd>,
    /// Held while the kernel passes this open's reads and writes through to the real file.
    pub backing: Option<Arc<BackingId>>,
}

#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
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
}
