//! Unpacked layers, keyed by chain ID.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;

use layerfs_registry::Digest;
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::{random_id, write_file_atomic, Error, Result, Store};
use crate::fs_error::{FsContext, FsError};

/// The identity of a layer applied on top of a particular stack of layers, as defined by the
/// OCI image spec: the bottom layer's chain ID is its diff ID, and each layer above has
/// `sha256(parent_chain_id + " " + diff_id)`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(Digest);

impl ChainId {
    pub fn new(parent: Option<&ChainId>, diff_id: &Digest) -> ChainId {
        match parent {
            None => ChainId(diff_id.clone()),
            Some(parent) => ChainId(Digest::of(format!("{parent} {diff_id}").as_bytes())),
        }
    }

    /// A chain ID received as such, e.g. from containerd's `containerd.io/snapshot.ref` label.
    pub fn from_digest(digest: Digest) -> ChainId {
        ChainId(digest)
    }

    /// The chain IDs of a stack of layers given bottom first.
    pub fn for_stack(diff_ids: &[Digest]) -> Vec<ChainId> {
        let mut chain: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
        for diff_id in diff_ids {
            let id = ChainId::new(chain.last(), diff_id);
            chain.push(id);
        }
        chain
    }

    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `layer.json` records about an unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: ChainId,
    pub parent: Option<ChainId>,
    /// Digest of the uncompressed tar stream. The fields from here to `media_type` are `None`
    /// for a layer that containerd unpacked through `layerfs snapshotter`, which is told only
    /// the chain ID (for a bottom layer, the chain ID is the diff ID).
    #[serde(default)]
    pub diff_id: Option<Digest>,
    /// Digest and size of the blob the layer was unpacked from.
    #[serde(default)]
    pub blob: Option<Digest>,
    #[serde(default)]
    pub blob_size: Option<u64>,
    #[serde(default)]
    pub media_type: Option<String>,
    /// Sum of the sizes of the layer's regular files, for `layerfs images`.
    pub unpacked_size: u64,
}

impl Store {
    pub fn layer_dir(&self, chain_id: &ChainId) -> PathBuf {
        self.root
            .join("layers/sha256")
            .join(chain_id.digest().hex())
    }

    /// The directory holding the layer's tree, a lower directory for overlayfs.
    pub fn layer_diff(&self, chain_id: &ChainId) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    pub fn has_layer(&self, chain_id: &ChainId) -> bool {
        self.layer_dir(chain_id).join("layer.json").is_file()
    }

    pub fn read_layer_record(&self, chain_id: &ChainId) -> Result<LayerRecord> {
        let path = self.layer_dir(chain_id).join("layer.json");
        let bytes = fs::read(&path).at("reading layer record", &path)?;
        serde_json::from_slice(&bytes).map_err(|error| Error::Corrupt {
            what: format!("layer record {}", path.display()),
            reason: error.to_string(),
        })
    }

    /// Creates an empty staging directory with a `diff/` subdirectory to unpack into.
    pub fn stage_layer(&self) -> Result<StagedLayer> {
        let path = self.tmp_dir().join(format!("layer-{}", random_id(16)));
        fs::create_dir(&path).at("creating staging directory", &path)?;
        let staged = StagedLayer {
            store: self.clone(),
            path,
            committed: false,
        };
        let diff = staged.diff_dir();
        fs::create_dir(&diff).at("creating staging directory", &diff)?;
        Ok(staged)
    }
}

/// A layer being unpacked under `tmp/`; removed on drop unless committed.
pub struct StagedLayer {
    store: Store,
    path: PathBuf,
    committed: bool,
}

impl StagedLayer {
    pub fn diff_dir(&self) -> PathBuf {
        self.path.join("diff")
    }

    /// Writes `layer.json`, flushes the filesystem, and renames the layer into place. A layer
    /// that is already there (committed by another writer) counts as success.
    pub fn commit(mut self, record: &LayerRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).expect("layer records serialize");
        let record_path = self.path.join("layer.json");
        write_file_atomic(&record_path, &json)?;

        let file = File::open(&self.path).at("opening", &self.path)?;
        nix::unistd::syncfs(&file).at("syncing filesystem of", &self.path)?;

        let target = self.store.layer_dir(&record.chain_id);
        match fs::rename(&self.path, &target) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(error) if already_exists(&error) => {
                debug!(chain_id = %record.chain_id, "layer was committed by another writer");
                Ok(())
            }
            Err(error) => Err(FsError::new("renaming layer into place", &target, error).into()),
        }
    }
}

fn already_exists(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY)
    )
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = crate::unpack::remove_tree(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_bottom_layer_is_its_diff_id() {
        let diff_id = Digest::of(b"layer 0");
        assert_eq!(ChainId::new(None, &diff_id).digest(), &diff_id);
    }

    #[test]
    fn chain_id_follows_the_image_spec() {
        let diff_ids = [Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c")];
        let chain = ChainId::for_stack(&diff_ids);
        let second = Digest::of(format!("{} {}", diff_ids[0], diff_ids[1]).as_bytes());
        let third = Digest::of(format!("{} {}", second, diff_ids[2]).as_bytes());
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[1].digest(), &second);
        assert_eq!(chain[2].digest(), &third);
    }
}
