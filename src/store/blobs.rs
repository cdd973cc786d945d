//! Blobs: immutable files named by the sha256 of their bytes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use layerfs_registry::{Digest, Sha256Writer};

use super::{random_id, Error, Result, Store};
use crate::fs_error::FsContext;

impl Store {
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a whole blob, checking that its bytes still hash to `digest`.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).at("reading blob", &path)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads a whole blob like [`Store::read_blob`], or returns `None` if the store lacks it.
    pub fn try_read_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        match self.read_blob(digest) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::Fs(error)) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Stores `bytes` as the blob `digest`, after checking that they hash to it.
    pub fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut staged = self.stage_blob()?;
        staged.write_all(bytes).at("writing", &staged.path)?;
        staged.commit(digest, bytes.len() as u64, &format!("blob {digest}"))
    }

    /// Opens a temp file that becomes a blob once [`StagedBlob::commit`] verifies it.
    pub fn stage_blob(&self) -> Result<StagedBlob> {
        let path = self.tmp_dir().join(format!("blob-{}", random_id(16)));
        let file = File::create_new(&path).at("creating", &path)?;
        Ok(StagedBlob {
            store: self.clone(),
            path,
            file: Some(file),
            hasher: Sha256Writer::new(),
            committed: false,
        })
    }
}

/// A blob being written. Hashes what it is given; removed on drop unless committed.
pub struct StagedBlob {
    store: Store,
    path: PathBuf,
    file: Option<File>,
    hasher: Sha256Writer,
    committed: bool,
}

impl StagedBlob {
    /// The temp file under `tmp/`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Verifies size and digest, then renames the file to its place under `blobs/`. `what`
    /// names the blob in errors ("layer sha256:… of docker.io/library/alpine:3.20").
    pub fn commit(mut self, digest: &Digest, size: u64, what: &str) -> Result<()> {
        let file = self.file.take().expect("a staged blob is committed once");
        let (actual, actual_size) = std::mem::take(&mut self.hasher).finish();
        if actual_size != size {
            return Err(Error::SizeMismatch {
                what: what.to_owned(),
                expected: size,
                actual: actual_size,
            });
        }
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: what.to_owned(),
                expected: digest.clone(),
                actual,
            });
        }
        file.sync_all().at("syncing", &self.path)?;
        let target = self.store.blob_path(digest);
        fs::rename(&self.path, &target).at("renaming blob into place", &target)?;
        self.committed = true;
        Ok(())
    }
}

impl Write for StagedBlob {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().expect("a committed blob is not written");
        let written = file.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}
