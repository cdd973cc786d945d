//! `layerfs pull`: resolve a reference to a platform manifest, then fetch, verify and unpack
//! every layer the store lacks, concurrently, and record the image.
//!
//! Layers are staged in parallel. What a layer takes from the layers below it (hardlinks to
//! lower files, the metadata of unlisted parent directories) is resolved once all are
//! staged, bottom first (see `unpack::resolve_lowers`). Nothing is committed until every
//! layer has been fetched, verified and resolved, so a failed pull leaves the store as it
//! was. Then layers are committed bottom first, blobs before the directories unpacked from
//! them, and the image record last. A
//! layer's store lock is held from before it is fetched until it is committed, so a
//! concurrent pull of the same layer waits and then finds it.

mod progress;
mod stream;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use layerfs_registry::{
    select_platform, Client, Descriptor, Digest, ImageManifest, Manifest, Platform, Reference,
    Source,
};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::image::{ImageConfig, InvalidConfig};
use crate::store::{
    self, ChainId, ImageRecord, LayerEntry, LayerRecord, LockKind, Store, StoreLock,
};
use crate::unpack;
use stream::Unpacked;

pub use progress::Progress;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] layerfs_registry::Error),

    #[error(transparent)]
    Store(#[from] store::Error),

    #[error(transparent)]
    Config(#[from] InvalidConfig),

    #[error("unpacking layer {layer}: {error}")]
    Unpack { layer: Digest, error: unpack::Error },

    #[error("reading layer {layer}: {error}")]
    Read {
        layer: Digest,
        error: std::io::Error,
    },

    #[error("manifest {manifest} lists {layers} layers but its config {config} lists {diff_ids} diff IDs")]
    LayerCount {
        manifest: Digest,
        config: Digest,
        layers: usize,
        diff_ids: usize,
    },

    #[error("layer {layer} unpacks to diff ID {actual}, but the image config expects {expected}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },

    #[error("index {index} lists another index ({nested}) for platform {platform}; nested indexes are not supported")]
    NestedIndex {
        index: Digest,
        nested: Digest,
        platform: Box<Platform>,
    },

    #[error("image {reference} is for platform {actual}, not the requested {requested}")]
    PlatformMismatch {
        reference: String,
        requested: Box<Platform>,
        actual: Box<Platform>,
    },

    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },

    #[error("{what} is longer than the {size} bytes its descriptor gives")]
    Oversized { what: String, size: u64 },

    /// A layer stopped because another one failed. The other failure is what a pull reports.
    #[error("cancelled because another layer failed")]
    Cancelled,
}

/// Manifests and configs are small; a larger one is refused rather than read into memory.
const MAX_METADATA_BLOB: u64 = 8 << 20;
/// Layers fetched at once, as Docker does.
const CONCURRENT_LAYERS: usize = 3;

/// Everything a pull needs.
pub struct Puller {
    pub store: Store,
    pub client: Arc<Client>,
    /// The platform to pick from an index; `None` means the host's, and no check of
    /// single-platform images.
    pub platform: Option<Platform>,
    pub progress: Progress,
}

/// A resolved manifest: where it came from and what it lists.
struct Resolved {
    source: Source,
    manifest: ImageManifest,
    digest: Digest,
    index: Option<Digest>,
    /// Verified manifest, index and config blobs, written to the store once all layers are in.
    blobs: Vec<(Digest, Bytes)>,
}

impl Resolved {
    /// The manifest, index, config and layer blobs this image consists of.
    fn blob_digests(&self) -> Vec<Digest> {
        let mut digests: Vec<Digest> = self
            .blobs
            .iter()
            .map(|(digest, _)| digest.clone())
            .collect();
        digests.push(self.manifest.config.digest.clone());
        digests.extend(
            self.manifest
                .layers
                .iter()
                .map(|layer| layer.digest.clone()),
        );
        digests
    }
}

/// One layer to make present, with everything needed to verify it.
pub struct LayerJob {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    pub chain_id: ChainId,
    pub parent: Option<ChainId>,
}

impl Puller {
    /// Pulls `reference` and records it in the store.
    pub async fn pull(&self, reference: &Reference) -> Result<ImageRecord> {
        let _tmp_lock = self.blocking(|store| store.lock_tmp()).await?;
        let mut resolved = self.resolve(reference).await?;
        // Pinned before the store is asked for any of them, so that a concurrent garbage
        // collection either removes them first or keeps them until the record lists them.
        let _blobs_pin = self.store.pin(&[], &resolved.blob_digests())?;
        let (config, config_digest) = self.fetch_config(&mut resolved).await?;
        self.check_platform(reference, &config)?;

        let jobs = plan_layers(&resolved, &config, &config_digest)?;
        let chain_ids: Vec<ChainId> = jobs.iter().map(|job| job.chain_id.clone()).collect();
        let _layers_pin = self.store.pin(&chain_ids, &[])?;
        self.fetch_layers(&resolved.source, &jobs).await?;
        for (digest, bytes) in &resolved.blobs {
            self.store.write_blob(digest, bytes)?;
        }

        let record = ImageRecord {
            reference: reference.to_string(),
            manifest: resolved.digest,
            index: resolved.index,
            platform: config.platform(),
            config: config_digest,
            layers: jobs.iter().map(LayerJob::entry).collect(),
            pulled_at: now_seconds(),
        };
        self.store.save_image(&record)?;
        Ok(record)
    }

    /// Fetches the manifest, and through an index the one for the wanted platform. Stores both.
    async fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        let fetched = self.client.fetch_manifest(reference).await?;
        check_metadata_size(&format!("manifest {}", fetched.digest), fetched.bytes.len())?;
        let parsed = Manifest::parse(&fetched.bytes, &fetched.digest)?;
        let mut blobs = vec![(fetched.digest.clone(), fetched.bytes.clone())];
        let entries = match parsed {
            Manifest::Image(manifest) => {
                return Ok(Resolved {
                    source: fetched.source,
                    manifest,
                    digest: fetched.digest,
                    index: None,
                    blobs,
                })
            }
            Manifest::Index(entries) => entries,
        };

        let wanted = self.platform.clone().unwrap_or_else(Platform::host);
        let entry = select_platform(&entries, &wanted, &fetched.digest)?;
        let digest = &entry.descriptor.digest;
        debug!(%wanted, %digest, "picked manifest from index");
        let key = digest.to_string();
        let child = self
            .client
            .fetch_manifest_at(&fetched.source, &key, Some(digest))
            .await?;
        check_metadata_size(&format!("manifest {digest}"), child.bytes.len())?;
        let Manifest::Image(manifest) = Manifest::parse(&child.bytes, &child.digest)? else {
            return Err(Error::NestedIndex {
                index: fetched.digest,
                nested: child.digest,
                platform: Box::new(wanted),
            });
        };
        blobs.push((child.digest.clone(), child.bytes));
        Ok(Resolved {
            source: fetched.source,
            manifest,
            digest: child.digest,
            index: Some(fetched.digest),
            blobs,
        })
    }

    async fn fetch_config(&self, resolved: &mut Resolved) -> Result<(ImageConfig, Digest)> {
        let descriptor = &resolved.manifest.config;
        let what = format!("image config {}", descriptor.digest);
        check_metadata_size(&what, descriptor.size as usize)?;
        let bytes = match self.store.try_read_blob(&descriptor.digest)? {
            Some(bytes) => bytes,
            None => {
                let bytes = self.fetch_small_blob(&resolved.source, descriptor).await?;
                let digest = descriptor.digest.clone();
                resolved.blobs.push((digest, Bytes::from(bytes.clone())));
                bytes
            }
        };
        let config = ImageConfig::parse(&bytes, &descriptor.digest)?;
        Ok((config, descriptor.digest.clone()))
    }

    async fn fetch_small_blob(&self, source: &Source, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let mut blob = self.client.fetch_blob(source, descriptor).await?;
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        while let Some(chunk) = blob.chunks.next().await {
            bytes.extend_from_slice(&chunk?);
            if bytes.len() as u64 > descriptor.size {
                return Err(Error::Oversized {
                    what: format!("blob {}", descriptor.digest),
                    size: descriptor.size,
                });
            }
        }
        let actual = Digest::of(&bytes);
        if actual != descriptor.digest || bytes.len() as u64 != descriptor.size {
            return Err(store::Error::DigestMismatch {
                what: format!(
                    "blob {} ({} bytes, expected {})",
                    descriptor.digest,
                    bytes.len(),
                    descriptor.size
                ),
                expected: descriptor.digest.clone(),
                actual,
            }
            .into());
        }
        Ok(bytes)
    }

    fn check_platform(&self, reference: &Reference, config: &ImageConfig) -> Result<()> {
        let Some(requested) = &self.platform else {
            return Ok(());
        };
        let actual = config.platform();
        if requested.matches(&actual) {
            return Ok(());
        }
        Err(Error::PlatformMismatch {
            reference: reference.to_string(),
            requested: Box::new(requested.clone()),
            actual: Box::new(actual),
        })
    }

    /// Makes every layer present: stages the missing ones concurrently and, once all are
    /// verified, commits them bottom first. On the first failure, whichever layer it comes
    /// from, the other layers are cancelled and waited for, so that no staging entry outlives
    /// the pull.
    async fn fetch_layers(&self, source: &Source, jobs: &[LayerJob]) -> Result<()> {
        let (cancel, cancelled) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(CONCURRENT_LAYERS));
        let tasks: Vec<JoinHandle<Result<Option<Staged>>>> = jobs
            .iter()
            .map(|job| {
                let context = LayerContext {
                    store: self.store.clone(),
                    client: self.client.clone(),
                    source: source.clone(),
                    slots: slots.clone(),
                    cancelled: cancelled.clone(),
                    bar: self
                        .progress
                        .layer(&job.descriptor.digest, job.descriptor.size),
                };
                tokio::spawn(context.run(job.clone()))
            })
            .collect();

        let mut pending: FuturesUnordered<_> = tasks
            .into_iter()
            .enumerate()
            .map(|(index, task)| async move { (index, task.await) })
            .collect();
        let mut staged: Vec<Option<Staged>> = jobs.iter().map(|_| None).collect();
        let mut first_error = None;
        while let Some((index, result)) = pending.next().await {
            match result.expect("layer tasks do not panic") {
                Ok(layer) => staged[index] = layer,
                Err(error) => {
                    cancel.send_replace(true);
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        self.resolve_lowers(&staged, jobs)?;
        for (layer, job) in staged.into_iter().zip(jobs) {
            if let Some(layer) = layer {
                layer.commit(job)?;
            }
        }
        Ok(())
    }

    /// Completes each staged layer with what it takes from the layers below it, bottom
    /// first, so that every layer a lookup reads is already complete. Lower layers are read
    /// where they are: staged under `tmp/`, or already in the store. Nothing is committed
    /// before every layer is resolved, so a failure here leaves the store as it was.
    fn resolve_lowers(&self, staged: &[Option<Staged>], jobs: &[LayerJob]) -> Result<()> {
        let diffs: Vec<PathBuf> = staged
            .iter()
            .zip(jobs)
            .map(|(layer, job)| match layer {
                Some(layer) => layer.unpacked.layer.diff_dir(),
                None => self.store.layer_diff(&job.chain_id),
            })
            .collect();
        for (index, (layer, job)) in staged.iter().zip(jobs).enumerate() {
            let Some(layer) = layer else { continue };
            let lowers: Vec<PathBuf> = diffs[..index].iter().rev().cloned().collect();
            unpack::resolve_lowers(&diffs[index], &layer.unpacked.summary.lower, &lowers).map_err(
                |error| Error::Unpack {
                    layer: job.descriptor.digest.clone(),
                    error,
                },
            )?;
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> store::Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || work(&store)).await;
        Ok(result.expect("store work does not panic")?)
    }
}

/// Builds the layer jobs from the manifest and the config's diff IDs.
fn plan_layers(
    resolved: &Resolved,
    config: &ImageConfig,
    config_digest: &Digest,
) -> Result<Vec<LayerJob>> {
    let diff_ids = config.diff_ids()?;
    let layers = &resolved.manifest.layers;
    if diff_ids.len() != layers.len() {
        return Err(Error::LayerCount {
            manifest: resolved.digest.clone(),
            config: config_digest.clone(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chain = ChainId::for_stack(&diff_ids);
    let jobs = layers
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(i, (descriptor, diff_id))| LayerJob {
            descriptor: descriptor.clone(),
            diff_id,
            chain_id: chain[i].clone(),
            parent: i.checked_sub(1).map(|below| chain[below].clone()),
        })
        .collect();
    Ok(jobs)
}

/// A layer unpacked under `tmp/`, still holding its lock.
struct Staged {
    unpacked: Unpacked,
    _lock: StoreLock,
}

impl Staged {
    fn commit(self, job: &LayerJob) -> Result<()> {
        if let Some(blob) = self.unpacked.blob {
            blob.commit(&job.descriptor.digest, job.descriptor.size, &job.what())?;
        }
        let record = LayerRecord {
            chain_id: job.chain_id.clone(),
            parent: job.parent.clone(),
            diff_id: Some(job.diff_id.clone()),
            blob: Some(job.descriptor.digest.clone()),
            blob_size: Some(job.descriptor.size),
            media_type: Some(job.descriptor.media_type.clone()),
            unpacked_size: self.unpacked.summary.file_bytes,
        };
        self.unpacked.layer.commit(&record)?;
        Ok(())
    }
}

/// The state one layer task owns.
struct LayerContext {
    store: Store,
    client: Arc<Client>,
    source: Source,
    slots: Arc<Semaphore>,
    /// Becomes true when another layer failed.
    cancelled: watch::Receiver<bool>,
    bar: indicatif::ProgressBar,
}

impl LayerContext {
    /// Returns `None` if the layer is already in the store.
    async fn run(self, job: LayerJob) -> Result<Option<Staged>> {
        let store = self.store.clone();
        let chain_id = job.chain_id.digest().clone();
        let lock = tokio::task::spawn_blocking(move || store.lock(LockKind::Layer, &chain_id))
            .await
            .expect("locking does not panic")?;
        if self.store.has_layer(&job.chain_id) {
            progress::finish(&self.bar, "exists");
            return Ok(None);
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if *self.cancelled.borrow() {
            return Ok(None);
        }
        let result = match self.open_stored_blob(&job)? {
            Some(file) => self.unpack_local(job, file).await,
            None => self.unpack_remote(job).await,
        };
        let unpacked = result?;
        progress::finish(&self.bar, "done");
        Ok(Some(Staged {
            unpacked,
            _lock: lock,
        }))
    }

    /// Unpacks from a blob already in the store (an interrupted pull, or a layer shared with
    /// an image on another base).
    /// Opens the layer's blob if the store has it. A blob that a garbage collection removed
    /// since the pull looked counts as missing.
    fn open_stored_blob(&self, job: &LayerJob) -> Result<Option<File>> {
        let path = self.store.blob_path(&job.descriptor.digest);
        match File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(job.read_error(error)),
        }
    }

    async fn unpack_local(&self, job: LayerJob, file: File) -> Result<Unpacked> {
        self.bar.set_message("unpacking");
        let store = self.store.clone();
        let bar = self.bar.clone();
        tokio::task::spawn_blocking(move || {
            stream::unpack_layer(&store, &job, std::io::BufReader::new(file), None, &bar)
        })
        .await
        .expect("unpacking does not panic")
    }

    async fn unpack_remote(&self, job: LayerJob) -> Result<Unpacked> {
        self.bar.set_message("downloading");
        let mut cancelled = self.cancelled.clone();
        let mut blob = tokio::select! {
            blob = self.client.fetch_blob(&self.source, &job.descriptor) => blob?,
            _ = cancelled.wait_for(|cancelled| *cancelled) => return Err(Error::Cancelled),
        };
        let (sender, receiver) = mpsc::channel(stream::CHANNEL_CHUNKS);
        let reader = stream::ChannelReader::new(receiver, self.cancelled.clone());
        let failure = reader.failure();
        // On cancellation the feeder stops waiting for a registry that may be stalled, and
        // the reader, finding the channel closed, reports the cancellation.
        let feeder = tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    chunk = blob.chunks.next() => chunk,
                    _ = cancelled.wait_for(|cancelled| *cancelled) => break,
                };
                let Some(chunk) = chunk else { break };
                let stop = chunk.is_err();
                if sender.send(chunk).await.is_err() || stop {
                    break;
                }
            }
        });

        let store = self.store.clone();
        let bar = self.bar.clone();
        let result = tokio::task::spawn_blocking(move || {
            let staged_blob = store.stage_blob()?;
            stream::unpack_layer(&store, &job, reader, Some(staged_blob), &bar)
        })
        .await
        .expect("unpacking does not panic");
        feeder.abort();

        let parked = failure
            .lock()
            .expect("no panics while holding this lock")
            .take();
        match (result, parked) {
            (Err(_), Some(registry_error)) => Err(registry_error.into()),
            (result, _) => result,
        }
    }
}

impl Clone for LayerJob {
    fn clone(&self) -> LayerJob {
        LayerJob {
            descriptor: self.descriptor.clone(),
            diff_id: self.diff_id.clone(),
            chain_id: self.chain_id.clone(),
            parent: self.parent.clone(),
        }
    }
}

impl LayerJob {
    fn entry(&self) -> LayerEntry {
        LayerEntry {
            digest: self.descriptor.digest.clone(),
            size: self.descriptor.size,
            media_type: self.descriptor.media_type.clone(),
            diff_id: self.diff_id.clone(),
            chain_id: self.chain_id.clone(),
        }
    }

    fn what(&self) -> String {
        format!("layer {}", self.descriptor.digest)
    }

    fn read_error(&self, error: std::io::Error) -> Error {
        Error::Read {
            layer: self.descriptor.digest.clone(),
            error,
        }
    }

    fn size_mismatch(&self, actual: u64) -> Error {
        store::Error::SizeMismatch {
            what: self.what(),
            expected: self.descriptor.size,
            actual,
        }
        .into()
    }

    fn verify_blob(&self, digest: &Digest, size: u64) -> Result<()> {
        if size != self.descriptor.size {
            return Err(self.size_mismatch(size));
        }
        if *digest != self.descriptor.digest {
            return Err(store::Error::DigestMismatch {
                what: self.what(),
                expected: self.descriptor.digest.clone(),
                actual: digest.clone(),
            }
            .into());
        }
        Ok(())
    }

    fn verify_diff_id(&self, actual: &Digest) -> Result<()> {
        if *actual == self.diff_id {
            return Ok(());
        }
        Err(Error::DiffIdMismatch {
            layer: self.descriptor.digest.clone(),
            expected: self.diff_id.clone(),
            actual: actual.clone(),
        })
    }
}

fn check_metadata_size(what: &str, size: usize) -> Result<()> {
    if size as u64 > MAX_METADATA_BLOB {
        return Err(Error::TooLarge {
            what: what.to_owned(),
            limit: MAX_METADATA_BLOB,
        });
    }
    Ok(())
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
