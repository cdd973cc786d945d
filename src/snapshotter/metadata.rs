//! The snapshot records, in a redb database (`snapshots/metadata.redb`).
//!
//! redb is a pure-Rust embedded key-value store with ACID transactions: a committed write
//! transaction is fsync'd before `commit` returns (its default durability), and a crash at
//! any point leaves the last committed state. Write transactions are serialized and readers
//! see a consistent snapshot without blocking writers, which is what concurrent calls from
//! containerd need. redb also locks the file, so a second snapshotter on the same store
//! fails to start instead of corrupting it. It needs no C toolchain, unlike SQLite.
//!
//! Tables:
//! - `snapshots`: key → JSON record (kind, parent, labels, times, store layer, usage);
//! - `counters`: `next_id` → the next snapshot directory number;
//! - `owned_layers`: chain IDs of store layers that this snapshotter put into the store, and
//!   so may delete again once nothing uses them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{Error, Result, Usage};
use crate::store::ChainId;

const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const OWNED_LAYERS: TableDefinition<&str, u64> = TableDefinition::new("owned_layers");

const NEXT_ID: &str = "next_id";

/// The snapshot kinds of containerd's snapshots API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Read-only, from View; never committed.
    View,
    /// Writable, from Prepare; becomes committed through Commit.
    Active,
    /// Immutable; the parent of other snapshots.
    Committed,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        })
    }
}

/// The value of one key in the `snapshots` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Number of the snapshot's directory under `snapshots/`.
    pub id: u64,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created: SystemTime,
    pub updated: SystemTime,
    /// The store layer whose tree this committed snapshot is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<ChainId>,
    /// Disk usage, measured at commit; `None` while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl SnapshotRecord {
    pub fn info(&self, name: &str) -> SnapshotInfo {
        SnapshotInfo {
            name: name.to_owned(),
            kind: self.kind,
            parent: self.parent.clone(),
            labels: self.labels.clone(),
            created: self.created,
            updated: self.updated,
        }
    }
}

/// A snapshot as Stat and List return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub kind: Kind,
    pub parent: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created: SystemTime,
    pub updated: SystemTime,
}

/// The open database.
pub struct Metadata {
    db: Database,
    path: PathBuf,
}

impl Metadata {
    /// Opens or creates the database at `path` and its tables.
    pub fn open(path: &Path) -> Result<Metadata> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::MetadataLocked(path.to_path_buf()))
            }
            Err(error) => return Err(database_error(path, error)),
        };
        let metadata = Metadata {
            db,
            path: path.to_path_buf(),
        };
        let writer = metadata.write()?;
        writer
            .txn
            .open_table(SNAPSHOTS)
            .map_err(|e| writer.error(e))?;
        writer
            .txn
            .open_table(COUNTERS)
            .map_err(|e| writer.error(e))?;
        writer
            .txn
            .open_table(OWNED_LAYERS)
            .map_err(|e| writer.error(e))?;
        writer.commit()?;
        Ok(metadata)
    }

    pub fn read(&self) -> Result<Reader<'_>> {
        let txn = self
            .db
            .begin_read()
            .map_err(|error| database_error(&self.path, error))?;
        Ok(Reader {
            txn,
            path: &self.path,
        })
    }

    /// Starts a write transaction, waiting while another one is open. This blocks: call it
    /// from a blocking thread.
    pub fn write(&self) -> Result<Writer<'_>> {
        let txn = self
            .db
            .begin_write()
            .map_err(|error| database_error(&self.path, error))?;
        Ok(Writer {
            txn,
            path: &self.path,
        })
    }
}

/// Lookups that read and write transactions share.
pub trait Records {
    fn get(&self, key: &str) -> Result<Option<SnapshotRecord>>;

    /// Every record, sorted by key.
    fn all(&self) -> Result<Vec<(String, SnapshotRecord)>>;

    /// Whether a store layer is in `owned_layers`.
    fn owns_layer(&self, chain_id: &ChainId) -> Result<bool>;
}

pub struct Reader<'a> {
    txn: ReadTransaction,
    path: &'a Path,
}

pub struct Writer<'a> {
    txn: WriteTransaction,
    path: &'a Path,
}

impl Records for Reader<'_> {
    fn get(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        let table = self.txn.open_table(SNAPSHOTS).map_err(|e| self.error(e))?;
        get_record(&table, key)
            .map_err(|e| self.error(e))?
            .transpose()
    }

    fn all(&self) -> Result<Vec<(String, SnapshotRecord)>> {
        let table = self.txn.open_table(SNAPSHOTS).map_err(|e| self.error(e))?;
        all_records(&table).map_err(|e| self.error(e))?
    }

    fn owns_layer(&self, chain_id: &ChainId) -> Result<bool> {
        let table = self
            .txn
            .open_table(OWNED_LAYERS)
            .map_err(|e| self.error(e))?;
        let key = chain_id.to_string();
        let found = table
            .get(key.as_str())
            .map_err(|e| self.error(e))?
            .is_some();
        Ok(found)
    }
}

impl Records for Writer<'_> {
    fn get(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        let table = self.txn.open_table(SNAPSHOTS).map_err(|e| self.error(e))?;
        get_record(&table, key)
            .map_err(|e| self.error(e))?
            .transpose()
    }

    fn all(&self) -> Result<Vec<(String, SnapshotRecord)>> {
        let table = self.txn.open_table(SNAPSHOTS).map_err(|e| self.error(e))?;
        all_records(&table).map_err(|e| self.error(e))?
    }

    fn owns_layer(&self, chain_id: &ChainId) -> Result<bool> {
        let table = self
            .txn
            .open_table(OWNED_LAYERS)
            .map_err(|e| self.error(e))?;
        let key = chain_id.to_string();
        let found = table
            .get(key.as_str())
            .map_err(|e| self.error(e))?
            .is_some();
        Ok(found)
    }
}

impl Writer<'_> {
    pub fn put(&self, key: &str, record: &SnapshotRecord) -> Result<()> {
        let json = serde_json::to_vec(record).expect("snapshot records serialize");
        let mut table = self.txn.open_table(SNAPSHOTS).map_err(|e| self.error(e))?;
        table
            .insert(key, json.as_slice())
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let mut table = self.txn.open_table(SNAPSHOTS).map_err(|e| self.error(e))?;
        table.remove(key).map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Allocates the number of a new snapshot directory. Numbers are never reused, so a
    /// directory left by a crash cannot be mistaken for a new snapshot's.
    pub fn next_id(&self) -> Result<u64> {
        let mut table = self.txn.open_table(COUNTERS).map_err(|e| self.error(e))?;
        let id = match table.get(NEXT_ID).map_err(|e| self.error(e))? {
            Some(value) => value.value(),
            None => 1,
        };
        table.insert(NEXT_ID, id + 1).map_err(|e| self.error(e))?;
        Ok(id)
    }

    pub fn own_layer(&self, chain_id: &ChainId) -> Result<()> {
        let mut table = self
            .txn
            .open_table(OWNED_LAYERS)
            .map_err(|e| self.error(e))?;
        let key = chain_id.to_string();
        table.insert(key.as_str(), 0).map_err(|e| self.error(e))?;
        Ok(())
    }

    pub fn disown_layer(&self, chain_id: &ChainId) -> Result<()> {
        let mut table = self
            .txn
            .open_table(OWNED_LAYERS)
            .map_err(|e| self.error(e))?;
        let key = chain_id.to_string();
        table.remove(key.as_str()).map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Every chain ID in `owned_layers`.
    pub fn owned_layers(&self) -> Result<Vec<ChainId>> {
        let table = self
            .txn
            .open_table(OWNED_LAYERS)
            .map_err(|e| self.error(e))?;
        let mut layers = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (key, _) = entry.map_err(|e| self.error(e))?;
            let chain_id = key.value().parse().map_err(|error| Error::Corrupt {
                key: key.value().to_owned(),
                reason: format!("invalid chain ID in owned_layers: {error}"),
            })?;
            layers.push(ChainId::from_digest(chain_id));
        }
        Ok(layers)
    }

    /// Makes the transaction durable; dropping a writer without committing discards it.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.txn
            .commit()
            .map_err(|error| database_error(path, error))
    }

    fn error(&self, error: impl Into<redb::Error>) -> Error {
        database_error(self.path, error)
    }
}

impl Reader<'_> {
    fn error(&self, error: impl Into<redb::Error>) -> Error {
        database_error(self.path, error)
    }
}

fn database_error(path: &Path, error: impl Into<redb::Error>) -> Error {
    Error::Metadata {
        path: path.to_path_buf(),
        message: error.into().to_string(),
    }
}

type Parsed = std::result::Result<Option<Result<SnapshotRecord>>, redb::StorageError>;

fn get_record(table: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Parsed {
    let value = table.get(key)?;
    Ok(value.map(|bytes| parse_record(key, bytes.value())))
}

#[allow(clippy::type_complexity)]
fn all_records(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> std::result::Result<Result<Vec<(String, SnapshotRecord)>>, redb::StorageError> {
    let mut records = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let key = key.value().to_owned();
        match parse_record(&key, value.value()) {
            Ok(record) => records.push((key, record)),
            Err(error) => return Ok(Err(error)),
        }
    }
    Ok(Ok(records))
}

fn parse_record(key: &str, bytes: &[u8]) -> Result<SnapshotRecord> {
    serde_json::from_slice(bytes).map_err(|error| Error::Corrupt {
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, parent: Option<&str>) -> SnapshotRecord {
        SnapshotRecord {
            id,
            kind: Kind::Committed,
            parent: parent.map(str::to_owned),
            labels: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
            created: SystemTime::UNIX_EPOCH,
            updated: SystemTime::UNIX_EPOCH,
            layer: None,
            usage: Some(Usage {
                size: 4096,
                inodes: 2,
                file_bytes: 10,
            }),
        }
    }

    #[test]
    fn committed_records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.redb");
        {
            let metadata = Metadata::open(&path).unwrap();
            let writer = metadata.write().unwrap();
            writer.put("ns/1/base", &record(1, None)).unwrap();
            writer
                .put("ns/2/top", &record(2, Some("ns/1/base")))
                .unwrap();
            writer.commit().unwrap();
            let discarded = metadata.write().unwrap();
            discarded.put("ns/3/lost", &record(3, None)).unwrap();
        }
        let metadata = Metadata::open(&path).unwrap();
        let reader = metadata.read().unwrap();
        let keys: Vec<String> = reader.all().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["ns/1/base", "ns/2/top"]);
        assert_eq!(
            reader.get("ns/2/top").unwrap(),
            Some(record(2, Some("ns/1/base")))
        );
    }

    #[test]
    fn ids_increase_and_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = Metadata::open(&dir.path().join("metadata.redb")).unwrap();
        let writer = metadata.write().unwrap();
        assert_eq!(writer.next_id().unwrap(), 1);
        assert_eq!(writer.next_id().unwrap(), 2);
        writer.commit().unwrap();
        let writer = metadata.write().unwrap();
        assert_eq!(writer.next_id().unwrap(), 3);
    }

    #[test]
    fn second_open_reports_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.redb");
        let _first = Metadata::open(&path).unwrap();
        let error = Metadata::open(&path).err().unwrap();
        assert!(matches!(error, Error::MetadataLocked(_)), "{error}");
    }
}
