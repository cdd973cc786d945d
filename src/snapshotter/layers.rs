//! The store side of snapshots: committed layers move into `layers/sha256/<chain-id>/`, and a
//! snapshot's `fs` becomes a symlink there.
//!
//! A store layer written here gets a `layer.json` like one from `layerfs pull`, except that
//! containerd passes neither the layer's diff ID (unless it is a bottom layer, whose chain ID
//! is its diff ID) nor the blob it came from, so those fields stay empty. `layerfs pull`
//! matches layers by chain ID, so it still finds such a layer and skips fetching it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tracing::debug;

use super::usage::Usage;
use super::Result;
use crate::fs_error::{FsContext, FsError};
use crate::store::{random_id, ChainId, LayerRecord, LockKind, Store};

/// Moves the tree `fs` of a committed snapshot into the store as layer `chain_id`, unless the
/// store has that layer already; then `fs` is discarded, because equal chain IDs mean equal
/// trees. Either way `fs` then links to the store layer, created while the layer's lock is
/// held so that a concurrent garbage collection sees the link. Returns whether this call
/// added the layer.
pub fn move_into_store(
    store: &Store,
    fs: &Path,
    chain_id: &ChainId,
    parent: Option<&ChainId>,
    usage: &Usage,
) -> Result<bool> {
    let _lock = store.lock(LockKind::Layer, chain_id.digest())?;
    if store.has_layer(chain_id) {
        debug!(%chain_id, "layer already in the store; discarding the committed copy");
        crate::unpack::remove_tree(fs)?;
        link_layer(fs, chain_id)?;
        return Ok(false);
    }

    let staged = store.stage_layer()?;
    let diff = staged.diff_dir();
    fs::remove_dir(&diff).at("removing", &diff)?;
    fs::rename(fs, &diff).at("moving committed snapshot into the store", fs)?;
    let record = LayerRecord {
        chain_id: chain_id.clone(),
        parent: parent.cloned(),
        diff_id: parent.is_none().then(|| chain_id.digest().clone()),
        blob: None,
        blob_size: None,
        media_type: None,
        unpacked_size: usage.file_bytes,
    };
    staged.commit(&record)?;
    link_layer(fs, chain_id)?;
    debug!(%chain_id, "moved committed snapshot into the store");
    Ok(true)
}

/// Points `fs` at the store layer `chain_id` with a relative symlink, so that the store root
/// can move.
pub fn link_layer(fs: &Path, chain_id: &ChainId) -> Result<(), FsError> {
    let target = Path::new("../../layers/sha256")
        .join(chain_id.digest().hex())
        .join("diff");
    std::os::unix::fs::symlink(&target, fs).at("linking store layer at", fs)
}

/// Whether an image record of `layerfs pull` lists the layer.
pub fn image_uses(store: &Store, chain_id: &ChainId) -> Result<bool> {
    let images = store.list_images()?;
    Ok(images
        .iter()
        .any(|image| image.layers.iter().any(|layer| &layer.chain_id == chain_id)))
}

/// Takes the store layer out of `layers/` by renaming it under `tmp/`, unless an image record
/// lists it. Returns the renamed directory, for the caller to delete once its metadata
/// transaction is durable, or `None` if the layer stays.
///
/// NOTE: `layerfs pull` checks for a layer and writes the image record that lists it as two
/// steps, without holding the layer's lock in between. A layer that this removes in that
/// window is missing for the pulled image, and `layerfs mount` then asks for a new pull.
pub fn take_out_layer(store: &Store, chain_id: &ChainId) -> Result<Option<PathBuf>> {
    let _lock = store.lock(LockKind::Layer, chain_id.digest())?;
    if image_uses(store, chain_id)? {
        debug!(%chain_id, "layer is listed by a layerfs image; keeping it");
        return Ok(None);
    }
    let source = store.layer_dir(chain_id);
    let trash = store.tmp_dir().join(format!("removed-{}", random_id(16)));
    match fs::rename(&source, &trash) {
        Ok(()) => Ok(Some(trash)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(FsError::new("removing store layer", &source, error).into()),
    }
}

/// Puts a layer that `take_out_layer` moved back, after the transaction that was to forget
/// it failed.
pub fn put_back_layer(store: &Store, chain_id: &ChainId, trash: &Path) {
    let target = store.layer_dir(chain_id);
    if let Err(error) = fs::rename(trash, &target) {
        tracing::error!(%chain_id, %error, "could not restore store layer {}", target.display());
    }
}
