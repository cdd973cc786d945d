//! The one-pass layer pipeline. Bytes from the registry (or from a blob already stored) are
//! hashed, written to the staged blob, decompressed and unpacked as they arrive, on a blocking
//! thread; memory use is a bounded channel of chunks whatever the layer size.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use indicatif::ProgressBar;
use layerfs_registry::{Compression, Sha256Writer};
use tokio::sync::{mpsc, watch};

use super::{Error, LayerJob, Result};
use crate::fs_error::FsError;
use crate::store::{self, StagedBlob, StagedLayer, Store};
use crate::unpack::{self, Summary};

/// Chunks in flight between the network task and the unpacking thread.
pub const CHANNEL_CHUNKS: usize = 16;

/// Reads the chunks a network task sends. A registry error is parked in `failure` so that the
/// pipeline reports it as such rather than as the I/O error the tar reader sees.
pub struct ChannelReader {
    receiver: mpsc::Receiver<Result<Bytes, layerfs_registry::Error>>,
    current: Bytes,
    failure: Arc<Mutex<Option<layerfs_registry::Error>>>,
    cancelled: watch::Receiver<bool>,
}

impl ChannelReader {
    pub fn new(
        receiver: mpsc::Receiver<Result<Bytes, layerfs_registry::Error>>,
        cancelled: watch::Receiver<bool>,
    ) -> ChannelReader {
        ChannelReader {
            receiver,
            current: Bytes::new(),
            failure: Arc::default(),
            cancelled,
        }
    }

    pub fn failure(&self) -> Arc<Mutex<Option<layerfs_registry::Error>>> {
        self.failure.clone()
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if *self.cancelled.borrow() {
                return Err(io::Error::other(Error::Cancelled));
            }
            match self.receiver.blocking_recv() {
                // The feeder also closes the channel when the pull is cancelled.
                None if *self.cancelled.borrow() => return Err(io::Error::other(Error::Cancelled)),
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => {
                    let message = error.to_string();
                    *self
                        .failure
                        .lock()
                        .expect("no panics while holding this lock") = Some(error);
                    return Err(io::Error::other(message));
                }
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current.split_to(count));
        Ok(count)
    }
}

/// Hashes, counts and optionally stores the compressed bytes, and stops at the size the
/// descriptor promised so that an oversized blob cannot fill the disk.
struct CompressedTee<'a, R> {
    inner: R,
    hasher: Sha256Writer,
    blob: Option<&'a mut StagedBlob>,
    /// The error that made writing the blob fail. The decoder and the tar reader only pass on
    /// its message, so the error with its path is kept here.
    write_failure: Option<FsError>,
    limit: u64,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for CompressedTee<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let remaining = self.limit - self.hasher.len();
        if remaining == 0 {
            // Anything past the declared size is an error; a one-byte probe finds out.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(Oversized)),
            };
        }
        let window = buffer.len().min(remaining as usize);
        let count = self.inner.read(&mut buffer[..window])?;
        let bytes = &buffer[..count];
        self.hasher.update(bytes);
        if let Some(blob) = self.blob.as_mut() {
            if let Err(error) = io::Write::write_all(blob, bytes) {
                let message = error.to_string();
                self.write_failure = Some(FsError::new("writing blob", blob.path(), error));
                return Err(io::Error::other(message));
            }
        }
        self.bar.inc(count as u64);
        Ok(count)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the blob is larger than its descriptor says")]
struct Oversized;

/// Hashes the uncompressed stream for the diff ID check.
struct DiffHasher<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R: Read> Read for DiffHasher<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        Ok(count)
    }
}

/// A layer unpacked and verified under `tmp/`, with its blob if it was fetched.
pub struct Unpacked {
    pub layer: StagedLayer,
    pub blob: Option<StagedBlob>,
    pub summary: Summary,
}

/// Unpacks one layer from `input` into a new staging directory, and writes the compressed
/// bytes to `blob` when given. Succeeds only if the blob's size and digest and the diff ID
/// all match; nothing is committed to the store here.
pub fn unpack_layer(
    store: &Store,
    job: &LayerJob,
    input: impl Read,
    mut blob: Option<StagedBlob>,
    bar: &ProgressBar,
) -> Result<Unpacked> {
    let compression = Compression::from_media_type(&job.descriptor.media_type)?;
    let staged = store.stage_layer()?;
    let mut tee = CompressedTee {
        inner: input,
        hasher: Sha256Writer::new(),
        blob: blob.as_mut(),
        write_failure: None,
        limit: job.descriptor.size,
        bar,
    };

    let unpacked = unpack_stream(&mut tee, compression, job, &staged);
    // Read what the decoder left (padding after the last gzip member, say), so that the digest
    // covers the whole blob, and so that a corrupt blob is reported as a digest mismatch
    // rather than as whatever the decoder made of it.
    let drained = io::copy(&mut tee, &mut io::sink());
    if let Some(error) = tee.write_failure.take() {
        // A local failure such as a full disk explains whatever the rest of the pipeline reported.
        return Err(store::Error::from(error).into());
    }
    let (digest, size) = tee.hasher.clone().finish();
    if let Err(error) = &drained {
        if error.get_ref().is_some_and(|inner| inner.is::<Oversized>()) {
            return Err(Error::Oversized {
                what: job.what(),
                size,
            });
        }
    }
    let verified = job.verify_blob(&digest, size);
    let (diff_id, summary) = match (unpacked, drained, verified) {
        (_, _, Err(mismatch)) => return Err(mismatch),
        (Err(error), _, _) => return Err(error),
        (_, Err(error), _) => return Err(job.read_error(error)),
        (Ok(unpacked), Ok(_), Ok(())) => unpacked,
    };
    job.verify_diff_id(&diff_id)?;
    Ok(Unpacked {
        layer: staged,
        blob,
        summary,
    })
}

fn unpack_stream(
    tee: &mut impl Read,
    compression: Compression,
    job: &LayerJob,
    staged: &StagedLayer,
) -> Result<(layerfs_registry::Digest, Summary)> {
    let decoder = unpack::decompress(tee, compression).map_err(|error| job.read_error(error))?;
    let mut diff = DiffHasher {
        inner: decoder,
        hasher: Sha256Writer::new(),
    };
    let options = unpack::Options {
        base_layer: job.parent.is_none(),
    };
    let summary =
        unpack::unpack(&mut diff, &staged.diff_dir(), &options).map_err(|error| Error::Unpack {
            layer: job.descriptor.digest.clone(),
            error,
        })?;
    io::copy(&mut diff, &mut io::sink()).map_err(|error| job.read_error(error))?;
    Ok((diff.hasher.finish().0, summary))
}
