//! Garbage collection: removing layers and blobs that nothing uses any more.
//!
//! A layer is in use when an image record lists it, a containerd snapshot links to it, or a
//! running pull pinned it. Layers that containerd unpacked through the snapshotter (their
//! records name no blob) belong to the snapshotter, which removes them itself. A blob is in
//! use when an image record or a used layer names it, or a pin does.
//!
//! Each candidate is checked again while holding its lock. Everything that makes a layer or
//! blob used is created while holding that same lock, or before the pin that covers it. So a
//! collection never removes something another process is about to reference:
//! 1. list the candidates: layers and blobs in use by nothing, as seen now;
//! 2. for each, take its lock, read the records, links and pins again, and skip it if it is
//!    used after all;
//! 3. move it under `tmp/` and delete it there, so that readers never see half of it.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use layerfs_registry::Digest;
use tracing::debug;

use super::{random_id, ChainId, LockKind, Result, Store};
use crate::fs_error::{FsContext, FsError};
use crate::unpack::remove_tree;

/// The layers and blobs a collection removed.
#[derive(Debug, Default)]
pub struct Collected {
    pub layers: Vec<ChainId>,
    pub blobs: Vec<Digest>,
}

/// The layers and blobs in use at one moment.
struct InUse {
    layers: HashSet<ChainId>,
    blobs: HashSet<Digest>,
}

impl Store {
    /// Removes every layer and blob that nothing uses.
    pub fn collect_garbage(&self) -> Result<Collected> {
        let _tmp = self.lock_tmp()?;
        let mut collected = Collected::default();
        for chain_id in self.unused_layers()? {
            let _lock = self.lock(LockKind::Layer, chain_id.digest())?;
            if self.in_use()?.layers.contains(&chain_id) || !self.has_layer(&chain_id) {
                continue;
            }
            self.discard(&self.layer_dir(&chain_id))?;
            debug!(%chain_id, "removed unused layer");
            collected.layers.push(chain_id);
        }
        for digest in self.unused_blobs()? {
            let _lock = self.lock(LockKind::Blob, &digest)?;
            if self.in_use()?.blobs.contains(&digest) {
                continue;
            }
            self.discard(&self.blob_path(&digest))?;
            debug!(%digest, "removed unused blob");
            collected.blobs.push(digest);
        }
        Ok(collected)
    }

    fn in_use(&self) -> Result<InUse> {
        let pinned = self.pinned()?;
        let mut layers = pinned.layers;
        let mut blobs = pinned.blobs;
        for image in self.list_images()? {
            blobs.insert(image.manifest.clone());
            blobs.insert(image.config.clone());
            blobs.extend(image.index.clone());
            for layer in &image.layers {
                layers.insert(layer.chain_id.clone());
                blobs.insert(layer.digest.clone());
            }
        }
        layers.extend(self.snapshot_links()?);
        for chain_id in self.layer_ids()? {
            if !layers.contains(&chain_id) {
                continue;
            }
            if let Ok(record) = self.read_layer_record(&chain_id) {
                blobs.extend(record.blob);
            }
        }
        Ok(InUse { layers, blobs })
    }

    fn unused_layers(&self) -> Result<Vec<ChainId>> {
        let in_use = self.in_use()?;
        let mut unused = Vec::new();
        for chain_id in self.layer_ids()? {
            if in_use.layers.contains(&chain_id) {
                continue;
            }
            // Layers the snapshotter unpacked for containerd carry no blob; it owns them.
            match self.read_layer_record(&chain_id) {
                Ok(record) if record.blob.is_none() => continue,
                _ => unused.push(chain_id),
            }
        }
        Ok(unused)
    }

    fn unused_blobs(&self) -> Result<Vec<Digest>> {
        let in_use = self.in_use()?;
        let dir = self.root.join("blobs/sha256");
        let mut unused = Vec::new();
        for name in list_names(&dir)? {
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                continue;
            };
            if !in_use.blobs.contains(&digest) {
                unused.push(digest);
            }
        }
        Ok(unused)
    }

    fn layer_ids(&self) -> Result<Vec<ChainId>> {
        let dir = self.root.join("layers/sha256");
        let names = list_names(&dir)?;
        let ids = names
            .iter()
            .filter_map(|name| format!("sha256:{name}").parse::<Digest>().ok())
            .map(ChainId::from_digest)
            .collect();
        Ok(ids)
    }

    /// Lists the layers that containerd snapshots link to: `snapshots/<id>/fs` symlinks into
    /// `layers/sha256/<chain-id>/diff`.
    fn snapshot_links(&self) -> Result<Vec<ChainId>> {
        let dir = self.root.join("snapshots");
        let mut linked = Vec::new();
        for name in list_names(&dir)? {
            let link = dir.join(&name).join("fs");
            let Ok(target) = fs::read_link(&link) else {
                continue;
            };
            let hex = target.parent().and_then(Path::file_name);
            let digest =
                hex.and_then(|hex| format!("sha256:{}", hex.to_string_lossy()).parse().ok());
            linked.extend(digest.map(ChainId::from_digest));
        }
        Ok(linked)
    }

    /// Moves `path` under `tmp/` and deletes it there.
    fn discard(&self, path: &Path) -> Result<(), FsError> {
        let trash = self.tmp_dir().join(format!("removed-{}", random_id(16)));
        match fs::rename(path, &trash) {
            Ok(()) => remove_tree(&trash),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(FsError::new("removing", path, error)),
        }
    }
}

/// Lists the names in `dir`, or none if it does not exist.
fn list_names(dir: &Path) -> Result<Vec<String>, FsError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(FsError::new("listing", dir, error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.at("listing", dir)?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}
