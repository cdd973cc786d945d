//! The snapshot lifecycle, as containerd drives it.
//!
//! 1. **Prepare** `key` on `parent` creates an active snapshot: an empty `fs/` that becomes
//!    the upper directory of an overlay on the parent's chain (or a plain bind mount without a
//!    parent). containerd unpacks a layer into it, or runs a container on it.
//! 2. **Commit** `name` from `key` turns the active snapshot into a committed one: read-only
//!    from then on, and usable as a parent. If it is an image layer (a chain ID in its
//!    `containerd.io/snapshot.ref` label or as its name), its tree moves into the store's
//!    `layers/` (see `layers`).
//! 3. **View** `key` on `parent` is a read-only snapshot of the parent's chain, never
//!    committed.
//! 4. **Remove** `key` deletes an active, view or childless committed snapshot and its
//!    directory, and the store layer that a commit added if nothing else uses it.
//!
//! Prepare with a `containerd.io/snapshot.ref` label whose chain is already committed, or in
//! the store, returns AlreadyExists without creating the active snapshot: containerd's
//! unpacker then looks the committed snapshot up with List and skips the layer.
//!
//! Every change runs in one metadata write transaction, and the directory work for it happens
//! while the transaction is open. So concurrent calls are serialized, and no call reads the
//! state of another that is half done. A crash before the commit of a transaction leaves at
//! most a directory that no record names; `cleanup`, which also runs at start-up, removes it.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use layerfs_registry::Digest;
use tracing::{debug, warn};

use super::filter::Filter;
use super::fuse_helper::remove_daemon_dirs;
use super::layers::{image_uses, link_layer, move_into_store, put_back_layer, take_out_layer};
use super::metadata::{Metadata, Records, SnapshotRecord, Writer};
use super::mounts::{snapshot_mounts, Layout, Merge};
use super::usage::{disk_usage, Usage};
use super::{Error, Kind, Mount, MountDriver, Result, SnapshotInfo, REFERENCE_LABEL};
use crate::fs_error::FsContext;
use crate::store::LockKind;
use crate::store::{ChainId, Store, StoreLock};
use crate::unpack::remove_tree;

pub type Labels = BTreeMap<String, String>;

/// containerd's snapshots service on a layerfs store. All methods block: call them from a
/// blocking thread.
pub struct Snapshotter {
    store: Store,
    metadata: Metadata,
    /// `<store root>/snapshots`.
    dir: PathBuf,
    merge: Merge,
    /// Keeps other writers from sweeping `tmp/` while layers are staged there.
    _tmp_lock: StoreLock,
}

impl Snapshotter {
    /// Opens the snapshotter's metadata in `store` and removes what a crash left behind.
    pub fn open(store: Store, driver: MountDriver) -> Result<Snapshotter> {
        let root = store.root().to_string_lossy();
        if root.contains([',', ':']) {
            return Err(Error::UnsafeRoot(store.root().to_path_buf()));
        }
        let dir = store.root().join("snapshots");
        fs::create_dir_all(&dir).at("creating", &dir)?;
        let tmp_lock = store.lock_tmp()?;
        let metadata = Metadata::open(&dir.join("metadata.redb"))?;
        let merge = super::driver::resolve(&store, driver)?;
        let snapshotter = Snapshotter {
            store,
            metadata,
            dir,
            merge,
            _tmp_lock: tmp_lock,
        };
        snapshotter.cleanup()?;
        Ok(snapshotter)
    }

    pub fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    pub fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        debug!(key, parent, %kind, "creating snapshot");
        check_key(key)?;
        let parent = (!parent.is_empty()).then_some(parent);
        let txn = self.metadata.write()?;
        if txn.get(key)?.is_some() {
            return Err(Error::AlreadyExists(key.to_owned()));
        }
        let parent_layer = match parent {
            Some(name) => committed(&txn, name)?.layer,
            None => None,
        };
        if let (Kind::Active, Some(chain_id)) = (kind, reference(&labels)) {
            let shared = SharedLayer {
                chain_id: &chain_id,
                parent,
                parent_layer: parent_layer.as_ref(),
            };
            if let Some(name) = self.find_layer(&txn, &shared, &labels)? {
                txn.commit()?;
                let chain_id = chain_id.to_string();
                return Err(Error::LayerExists { chain_id, name });
            }
        }

        let now = SystemTime::now();
        let record = SnapshotRecord {
            id: txn.next_id()?,
            kind,
            parent: parent.map(str::to_owned),
            labels,
            created: now,
            updated: now,
            layer: None,
            usage: None,
        };
        let dir = self.snapshot_dir(record.id);
        let result = (|| {
            fs::create_dir(&dir).at("creating snapshot directory", &dir)?;
            let fs_dir = self.fs_dir(record.id);
            fs::create_dir(&fs_dir).at("creating", &fs_dir)?;
            if kind == Kind::Active {
                let work = self.work_dir(record.id);
                fs::create_dir(&work).at("creating", &work)?;
            }
            txn.put(key, &record)?;
            let mounts = self.mounts_of(&txn, &record)?;
            txn.commit()?;
            Ok(mounts)
        })();
        if result.is_err() {
            let _ = remove_tree(&dir);
        }
        result
    }

    /// Finds the committed snapshot of a chain on `parent`, or else commits the store's layer
    /// of that chain as a new snapshot named `layerfs:<id>:<chain ID>`. The name holds a
    /// colon, which containerd's namespace names cannot contain, so it never collides with a key
    /// that containerd sends.
    fn find_layer(
        &self,
        txn: &Writer,
        shared: &SharedLayer,
        labels: &Labels,
    ) -> Result<Option<String>> {
        for (name, record) in txn.all()? {
            let same_chain = reference(&record.labels).as_ref() == Some(shared.chain_id);
            if record.kind == Kind::Committed
                && record.parent.as_deref() == shared.parent
                && same_chain
            {
                return Ok(Some(name));
            }
        }
        // Held until the snapshot links to the layer, so that a garbage collection of the
        // store either runs first (and the layer is missing here) or sees the link.
        let _lock = self.store.lock(LockKind::Layer, shared.chain_id.digest())?;
        if !self.store.has_layer(shared.chain_id) {
            return Ok(None);
        }
        let layer = self.store.read_layer_record(shared.chain_id)?;
        if layer.parent.as_ref() != shared.parent_layer {
            let chain_id = shared.chain_id;
            warn!(%chain_id, "store layer has another parent than the snapshot; not sharing it");
            return Ok(None);
        }

        let id = txn.next_id()?;
        let name = format!("layerfs:{id}:{}", shared.chain_id);
        let dir = self.snapshot_dir(id);
        fs::create_dir(&dir).at("creating snapshot directory", &dir)?;
        let fs_dir = self.fs_dir(id);
        link_layer(&fs_dir, shared.chain_id)?;
        let usage = disk_usage(&fs_dir)?;
        let now = SystemTime::now();
        let record = SnapshotRecord {
            id,
            kind: Kind::Committed,
            parent: shared.parent.map(str::to_owned),
            labels: labels.clone(),
            created: now,
            updated: now,
            layer: Some(shared.chain_id.clone()),
            usage: Some(usage),
        };
        txn.put(&name, &record)?;
        debug!(%name, "committed store layer for containerd");
        Ok(Some(name))
    }

    pub fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        debug!(name, key, "committing snapshot");
        check_key(name)?;
        let txn = self.metadata.write()?;
        let active = txn
            .get(key)?
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        if active.kind != Kind::Active {
            return Err(Error::WrongKind {
                key: key.to_owned(),
                expected: "active",
                actual: active.kind,
            });
        }
        if txn.get(name)?.is_some() {
            return Err(Error::AlreadyExists(name.to_owned()));
        }

        let fs_dir = self.fs_dir(active.id);
        let usage = disk_usage(&fs_dir)?;
        let chain_id = reference(&labels).or_else(|| chain_id_in_name(name));
        let layer = match chain_id {
            Some(chain_id) => self.commit_layer(&txn, &active, chain_id, &usage)?,
            None => None,
        };
        remove_tree(&self.work_dir(active.id))?;
        remove_daemon_dirs(&self.snapshot_dir(active.id))?;
        let now = SystemTime::now();
        let committed = SnapshotRecord {
            kind: Kind::Committed,
            labels,
            created: now,
            updated: now,
            layer,
            usage: Some(usage),
            ..active
        };
        txn.delete(key)?;
        txn.put(name, &committed)?;
        txn.commit()
    }

    /// Moves the tree of an image layer into the store. A layer on a parent that is not a
    /// store layer itself stays in `fs/`: its chain cannot be checked against the store's.
    fn commit_layer(
        &self,
        txn: &Writer,
        active: &SnapshotRecord,
        chain_id: ChainId,
        usage: &Usage,
    ) -> Result<Option<ChainId>> {
        let parent_layer = match &active.parent {
            None => None,
            Some(parent) => match txn.get(parent)?.and_then(|record| record.layer) {
                Some(layer) => Some(layer),
                None => return Ok(None),
            },
        };
        let fs_dir = self.fs_dir(active.id);
        if move_into_store(
            &self.store,
            &fs_dir,
            &chain_id,
            parent_layer.as_ref(),
            usage,
        )? {
            txn.own_layer(&chain_id)?;
        }
        Ok(Some(chain_id))
    }

    pub fn remove(&self, key: &str) -> Result<()> {
        debug!(key, "removing snapshot");
        let txn = self.metadata.write()?;
        let record = txn
            .get(key)?
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        let all = txn.all()?;
        if all
            .iter()
            .any(|(_, other)| other.parent.as_deref() == Some(key))
        {
            return Err(Error::HasChildren(key.to_owned()));
        }
        txn.delete(key)?;

        let mut taken = None;
        if let Some(chain_id) = &record.layer {
            let used = all
                .iter()
                .any(|(name, other)| name != key && other.layer.as_ref() == Some(chain_id));
            if !used && txn.owns_layer(chain_id)? {
                if let Some(trash) = take_out_layer(&self.store, chain_id)? {
                    txn.disown_layer(chain_id)?;
                    taken = Some((chain_id.clone(), trash));
                }
            }
        }
        if let Err(error) = txn.commit() {
            if let Some((chain_id, trash)) = &taken {
                put_back_layer(&self.store, chain_id, trash);
            }
            return Err(error);
        }

        remove_tree(&self.snapshot_dir(record.id))?;
        if let Some((_, trash)) = taken {
            remove_tree(&trash)?;
        }
        Ok(())
    }

    pub fn stat(&self, key: &str) -> Result<SnapshotInfo> {
        let record = self.metadata.read()?.get(key)?;
        let record = record.ok_or_else(|| Error::NotFound(key.to_owned()))?;
        Ok(record.info(key))
    }

    /// Changes the labels of `name` as the field `paths` select: none or `labels` replaces
    /// them all, `labels.<key>` sets one (an empty value removes it). Other fields cannot
    /// change.
    pub fn update(&self, name: &str, labels: Labels, paths: &[String]) -> Result<SnapshotInfo> {
        debug!(name, ?paths, "updating snapshot");
        let txn = self.metadata.write()?;
        let mut record = txn
            .get(name)?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        record.labels = updated_labels(record.labels, labels, paths)?;
        record.updated = SystemTime::now();
        txn.put(name, &record)?;
        txn.commit()?;
        Ok(record.info(name))
    }

    /// Lists every snapshot that matches any of `filters` (all of them if there are none).
    pub fn list(&self, filters: &[String]) -> Result<Vec<SnapshotInfo>> {
        let filter = Filter::parse_all(filters)?;
        let records = self.metadata.read()?.all()?;
        let infos = records
            .iter()
            .map(|(name, record)| record.info(name))
            .filter(|info| filter.matches(info))
            .collect();
        Ok(infos)
    }

    /// Disk usage of the snapshot without its parents: measured at commit for a committed
    /// snapshot, now for an active one.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let record = self.metadata.read()?.get(key)?;
        let record = record.ok_or_else(|| Error::NotFound(key.to_owned()))?;
        match record.usage {
            Some(usage) => Ok(usage),
            None => Ok(disk_usage(&self.fs_dir(record.id))?),
        }
    }

    /// Returns the mounts of an active or view snapshot, as Prepare or View returned them.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let reader = self.metadata.read()?;
        let record = reader
            .get(key)?
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        if record.kind == Kind::Committed {
            return Err(Error::WrongKind {
                key: key.to_owned(),
                expected: "active or view",
                actual: record.kind,
            });
        }
        self.mounts_of(&reader, &record)
    }

    /// Removes snapshot directories that no record names and store layers that this
    /// snapshotter added but nothing uses any more: what a crash between a directory change
    /// and its transaction left behind.
    pub fn cleanup(&self) -> Result<()> {
        let txn = self.metadata.write()?;
        let all = txn.all()?;
        let ids: HashSet<u64> = all.iter().map(|(_, record)| record.id).collect();
        for entry in fs::read_dir(&self.dir).at("listing", &self.dir)? {
            let path = entry.at("listing", &self.dir)?.path();
            let id = path
                .file_name()
                .and_then(|name| name.to_str()?.parse::<u64>().ok());
            if id.is_some_and(|id| !ids.contains(&id)) {
                debug!(path = %path.display(), "removing unreferenced snapshot directory");
                remove_tree(&path)?;
            }
        }

        let used: HashSet<&ChainId> = all.iter().filter_map(|(_, r)| r.layer.as_ref()).collect();
        let mut taken = Vec::new();
        for chain_id in txn.owned_layers()? {
            if used.contains(&chain_id) || image_uses(&self.store, &chain_id)? {
                continue;
            }
            if let Some(trash) = take_out_layer(&self.store, &chain_id)? {
                taken.push((chain_id.clone(), trash));
            }
            txn.disown_layer(&chain_id)?;
        }
        if let Err(error) = txn.commit() {
            for (chain_id, trash) in &taken {
                put_back_layer(&self.store, chain_id, trash);
            }
            return Err(error);
        }
        for (_, trash) in taken {
            remove_tree(&trash)?;
        }
        Ok(())
    }

    fn mounts_of(&self, records: &impl Records, record: &SnapshotRecord) -> Result<Vec<Mount>> {
        let mut parents = Vec::new();
        let mut next = record.parent.clone();
        while let Some(name) = next {
            let parent = records.get(&name)?.ok_or_else(|| Error::Corrupt {
                key: name.clone(),
                reason: "a snapshot names it as parent, but it does not exist".to_owned(),
            })?;
            parents.push(self.fs_dir(parent.id));
            next = parent.parent;
        }
        let layout = Layout {
            dir: self.snapshot_dir(record.id),
            fs: self.fs_dir(record.id),
            work: self.work_dir(record.id),
            parents,
            writable: record.kind == Kind::Active,
        };
        Ok(snapshot_mounts(&layout, self.merge))
    }

    fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.snapshot_dir(id).join("fs")
    }

    fn work_dir(&self, id: u64) -> PathBuf {
        self.snapshot_dir(id).join("work")
    }

    /// Returns the store that this snapshotter serves.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Returns the directory that contains the snapshot directories.
    pub fn snapshots_dir(&self) -> &Path {
        &self.dir
    }
}

/// The chain that a Prepare call requests to unpack, and its place.
struct SharedLayer<'a> {
    chain_id: &'a ChainId,
    parent: Option<&'a str>,
    /// The store layer of the parent snapshot; `None` on the bottom layer.
    parent_layer: Option<&'a ChainId>,
}

fn committed(records: &impl Records, name: &str) -> Result<SnapshotRecord> {
    let record = records.get(name)?;
    let record = record.ok_or_else(|| Error::NotFound(name.to_owned()))?;
    if record.kind != Kind::Committed {
        return Err(Error::ParentNotCommitted(name.to_owned()));
    }
    Ok(record)
}

/// Reads the chain ID in a snapshot's `containerd.io/snapshot.ref` label, if it is a sha256
/// digest (the only algorithm the store keeps).
fn reference(labels: &Labels) -> Option<ChainId> {
    let digest: Digest = labels.get(REFERENCE_LABEL)?.parse().ok()?;
    Some(ChainId::from_digest(digest))
}

/// Reads the chain ID that names a committed image layer. containerd commits every layer it
/// unpacks under its chain ID, so the name arrives as `<namespace>/<sequence>/<chain ID>`.
/// This matters because `ctr images pull` (containerd 1.6) sets no `containerd.io/snapshot.ref`
/// label.
fn chain_id_in_name(name: &str) -> Option<ChainId> {
    let mut parts = name.splitn(3, '/');
    let (_namespace, _sequence, key) = (parts.next()?, parts.next()?, parts.next()?);
    let digest: Digest = key.parse().ok()?;
    Some(ChainId::from_digest(digest))
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey(key.to_owned(), "it is empty"));
    }
    Ok(())
}

/// Computes the labels after an Update with field `paths`, as containerd's own snapshotters do.
fn updated_labels(mut current: Labels, mut requested: Labels, paths: &[String]) -> Result<Labels> {
    if paths.is_empty() {
        requested.retain(|_, value| !value.is_empty());
        return Ok(requested);
    }
    for path in paths {
        if path == "labels" {
            current = std::mem::take(&mut requested);
            current.retain(|_, value| !value.is_empty());
        } else if let Some(key) = path.strip_prefix("labels.") {
            match requested.get(key).filter(|value| !value.is_empty()) {
                Some(value) => current.insert(key.to_owned(), value.clone()),
                None => current.remove(key),
            };
        } else {
            return Err(Error::ImmutableField(path.clone()));
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn updated_labels_table() {
        let current = labels(&[("a", "1"), ("b", "2")]);
        let requested = labels(&[("b", "3"), ("c", "4"), ("d", "")]);
        let cases: &[(&[&str], Labels)] = &[
            (&[], labels(&[("b", "3"), ("c", "4")])),
            (&["labels"], labels(&[("b", "3"), ("c", "4")])),
            (&["labels.b"], labels(&[("a", "1"), ("b", "3")])),
            (&["labels.a"], labels(&[("b", "2")])),
            (
                &["labels.c", "labels.d"],
                labels(&[("a", "1"), ("b", "2"), ("c", "4")]),
            ),
        ];
        for (paths, expected) in cases {
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            let updated = updated_labels(current.clone(), requested.clone(), &paths).unwrap();
            assert_eq!(&updated, expected, "{paths:?}");
        }
    }

    #[test]
    fn update_rejects_other_fields() {
        let error = updated_labels(Labels::new(), Labels::new(), &["parent".to_owned()]);
        assert!(matches!(error, Err(Error::ImmutableField(field)) if field == "parent"));
    }

    #[test]
    fn chain_id_in_name_table() {
        let hex = "b".repeat(64);
        let cases = [
            (format!("default/12/sha256:{hex}"), true),
            (format!("sha256:{hex}"), false),
            ("k8s.io/3/my-commit".to_owned(), false),
            (format!("default/12/extract-1 sha256:{hex}"), false),
        ];
        for (name, expected) in cases {
            assert_eq!(chain_id_in_name(&name).is_some(), expected, "{name}");
        }
    }

    #[test]
    fn reference_needs_sha256_digest() {
        let hex = "a".repeat(64);
        let valid = labels(&[(REFERENCE_LABEL, &format!("sha256:{hex}"))]);
        assert!(reference(&valid).is_some());
        assert!(reference(&labels(&[(REFERENCE_LABEL, "latest")])).is_none());
        assert!(reference(&Labels::new()).is_none());
    }
}
