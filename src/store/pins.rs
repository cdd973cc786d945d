//! Pins: what a running pull is about to use, so that a concurrent garbage collection keeps it.
//!
//! A pin is a file `pins/<id>.json` listing layers and blobs, held under an exclusive
//! `flock(2)` for as long as the pull runs. The file gets its name only after it is locked and
//! written. So a collector that can lock a pin concludes that its writer died, and removes it.
//! A pin also keeps a shared lock on `tmp/`, so the start-up sweep of a writer that finds
//! itself alone (see [`Store::lock_tmp`]) may remove every pin file, staged or named.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

use layerfs_registry::Digest;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{random_id, ChainId, Result, Store, StoreLock};
use crate::fs_error::{FsContext, FsError};

/// Contents of a pin file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PinContents {
    layers: Vec<ChainId>,
    blobs: Vec<Digest>,
}

/// A held pin; dropping it removes the file and releases the lock.
pub struct Pin {
    path: PathBuf,
    _lock: Flock<File>,
    _tmp: StoreLock,
}

/// Everything the live pins name.
#[derive(Debug, Default)]
pub struct Pinned {
    pub layers: HashSet<ChainId>,
    pub blobs: HashSet<Digest>,
}

impl Store {
    pub(super) fn pins_dir(&self) -> PathBuf {
        self.root.join("pins")
    }

    /// Pins `layers` and `blobs` until the returned value is dropped.
    pub fn pin(&self, layers: &[ChainId], blobs: &[Digest]) -> Result<Pin> {
        let tmp = self.lock_tmp()?;
        let dir = self.pins_dir();
        let id = random_id(16);
        let staging = dir.join(format!(".{id}.tmp"));
        let file = File::create_new(&staging).at("creating pin", &staging)?;
        let mut lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| FsError::new("locking pin", &staging, errno.into()))?;

        let contents = PinContents {
            layers: layers.to_vec(),
            blobs: blobs.to_vec(),
        };
        let json = serde_json::to_vec(&contents).expect("pins serialize");
        lock.write_all(&json).at("writing pin", &staging)?;
        let path = dir.join(format!("{id}.json"));
        fs::rename(&staging, &path).at("naming pin", &path)?;
        Ok(Pin {
            path,
            _lock: lock,
            _tmp: tmp,
        })
    }

    /// Reads every live pin, and removes those whose writer is gone.
    pub fn pinned(&self) -> Result<Pinned> {
        let dir = self.pins_dir();
        let mut pinned = Pinned::default();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(pinned),
            Err(error) => return Err(FsError::new("listing", &dir, error).into()),
        };
        for entry in entries {
            let path = entry.at("listing", &dir)?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let Some(contents) = read_live_pin(&path)? else {
                continue;
            };
            pinned.layers.extend(contents.layers);
            pinned.blobs.extend(contents.blobs);
        }
        Ok(pinned)
    }
}

/// Returns the pin's contents if its writer still has it locked, and removes a stale pin.
fn read_live_pin(path: &std::path::Path) -> Result<Option<PinContents>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(FsError::new("opening pin", path, error).into()),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_stale) => {
            fs::remove_file(path).at("removing stale pin", path)?;
            Ok(None)
        }
        Err((_, Errno::EWOULDBLOCK)) => {
            let bytes = fs::read(path).at("reading pin", path)?;
            // A pin is written before it is named, so it always parses; an unreadable one is
            // treated as pinning nothing rather than stopping the collection.
            Ok(Some(serde_json::from_slice(&bytes).unwrap_or_default()))
        }
        Err((_, errno)) => Err(FsError::new("locking pin", path, errno.into()).into()),
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_live_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = ChainId::new(None, &Digest::of(b"layer"));
        let blob = Digest::of(b"blob");
        let pin = store
            .pin(std::slice::from_ref(&layer), std::slice::from_ref(&blob))
            .unwrap();

        let pinned = store.pinned().unwrap();
        assert!(pinned.layers.contains(&layer));
        assert!(pinned.blobs.contains(&blob));

        drop(pin);
        let pinned = store.pinned().unwrap();
        assert!(pinned.layers.is_empty());
        assert!(pinned.blobs.is_empty());
    }

    #[test]
    fn stale_pins_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let contents = r#"{"layers":[],"blobs":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}"#;
        let stale = dir.path().join("pins/0123.json");
        fs::write(&stale, contents).unwrap();

        let pinned = store.pinned().unwrap();
        assert!(pinned.blobs.is_empty());
        assert!(!stale.exists());
    }
}
