//! What the store keeps about each container, so that `ps`, `stop`, `logs` and `rm` work
//! from any `layerfs` process while the container's shim runs, and after it has gone.
//!
//! ```text
//! containers/<id>/
//! ├── container.json   ContainerRecord: name, image, command, creation time (written once)
//! ├── state.json       State: phase, shim and PID 1 identities, cgroup, exit code
//! │                    (written by the shim, atomically, at each change)
//! ├── container.log    stdout and stderr of a detached container
//! ├── upper/, work/    the writable layer of the overlay
//! ├── hosts, hostname, resolv.conf
//! │                    mounted on the container's /etc (see `rootfs::network_files`)
//! └── rootfs/          the mount point of the root file system, in the container's
//!                      mount namespace only
//! ```
//!
//! Names are unique: `run` checks and creates the directory under an exclusive `flock(2)`
//! on `locks/containers.lock`.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::cgroups::Cgroup;
use super::process_id::ProcessId;
use super::Error;
use crate::fs_error::{FsContext, FsError};
use crate::store::{self, Store};

pub const RECORD_FILE: &str = "container.json";
pub const STATE_FILE: &str = "state.json";
pub const LOG_FILE: &str = "container.log";

/// The record in `containers/<id>/container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub image: String,
    pub args: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// The stage of a container's life its shim last recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Created,
    Running,
    Exited,
}

/// The state in `containers/<id>/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub phase: Phase,
    pub shim: Option<ProcessId>,
    /// The container's PID 1, by its PID on the host.
    pub init: Option<ProcessId>,
    pub cgroup: Option<Cgroup>,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    /// The exit code, 128 + N when signal N killed PID 1.
    pub exit_code: Option<u8>,
    pub oom_killed: bool,
}

/// The status `ps` shows, derived from the state file and the processes that actually run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    /// The exit code is `None` when the shim died before recording it.
    Exited {
        code: Option<u8>,
    },
}

/// A container found in the store.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub record: ContainerRecord,
    pub state: State,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Container {
    pub fn load(dir: &Path) -> Result<Container, Error> {
        let record: ContainerRecord =
            read_json(&dir.join(RECORD_FILE))?.ok_or_else(|| store::Error::Corrupt {
                what: format!("container {}", dir.display()),
                reason: format!("{RECORD_FILE} is missing"),
            })?;
        let state = read_json(&dir.join(STATE_FILE))?.unwrap_or_default();
        Ok(Container {
            dir: dir.to_path_buf(),
            record,
            state,
        })
    }

    pub fn short_id(&self) -> &str {
        &self.record.id[..12]
    }

    /// Returns the name if it has one, else the short ID, for messages about the container.
    pub fn display_name(&self) -> &str {
        self.record.name.as_deref().unwrap_or(self.short_id())
    }

    /// Returns whether the shim that supervises the container still runs.
    pub fn shim_alive(&self) -> bool {
        self.state.shim.is_some_and(|shim| shim.is_alive())
    }

    pub fn status(&self) -> Status {
        let alive = self.shim_alive();
        match self.state.phase {
            Phase::Created if alive => Status::Created,
            Phase::Running if alive => match &self.state.cgroup {
                Some(cgroup) if cgroup.is_frozen().unwrap_or(false) => Status::Paused,
                _ => Status::Running,
            },
            Phase::Created if self.state.shim.is_none() => Status::Created,
            _ => Status::Exited {
                code: self.state.exit_code,
            },
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.status(), Status::Running | Status::Paused)
    }

    pub fn write_state(&self) -> Result<(), FsError> {
        let json = serde_json::to_vec_pretty(&self.state).expect("container states serialize");
        write_file_replacing(&self.dir.join(STATE_FILE), &json)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(FsError::new("reading", path, error).into()),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|error| {
        store::Error::Corrupt {
            what: path.display().to_string(),
            reason: error.to_string(),
        }
        .into()
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers see the old
/// or the new content, never part of it. Unlike the store's content, container files are
/// not fsync'd: they describe processes, which a crash ends anyway.
fn write_file_replacing(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let tmp = path.with_extension("json.tmp");
    let result = fs::write(&tmp, bytes)
        .at("writing", &tmp)
        .and_then(|()| fs::rename(&tmp, path).at("renaming into place", path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Lists every container in the store, oldest first.
pub fn list(store: &Store) -> Result<Vec<Container>, Error> {
    let root = store.containers_dir();
    let mut containers = Vec::new();
    for entry in fs::read_dir(&root).at("listing", &root)? {
        let dir = entry.at("listing", &root)?.path();
        if !dir.join(RECORD_FILE).exists() {
            // Being created or removed right now.
            continue;
        }
        containers.push(Container::load(&dir)?);
    }
    containers
        .sort_by(|a, b| (a.record.created, &a.record.id).cmp(&(b.record.created, &b.record.id)));
    Ok(containers)
}

/// Finds a container by full ID, name, or unique ID prefix, in that order, as Docker does.
pub fn find(store: &Store, key: &str) -> Result<Container, Error> {
    let containers = list(store)?;
    if let Some(found) = containers.iter().find(|c| c.record.id == key).or_else(|| {
        containers
            .iter()
            .find(|c| c.record.name.as_deref() == Some(key))
    }) {
        return Ok(found.clone());
    }
    let mut matches = containers.iter().filter(|c| c.record.id.starts_with(key));
    match (matches.next(), matches.next()) {
        (Some(found), None) if !key.is_empty() => Ok(found.clone()),
        (Some(_), Some(_)) => Err(Error::AmbiguousContainer(key.to_owned())),
        _ => Err(Error::NoSuchContainer(key.to_owned())),
    }
}

/// Checks a container name: a letter or digit, then letters, digits, `_`, `.` or `-`, at
/// least two characters in all (Docker's rule).
pub fn validate_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() >= 2 {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// An exclusive lock on the set of container names.
pub struct NamesLock {
    _lock: Flock<File>,
}

pub fn lock_names(store: &Store) -> Result<NamesLock, Error> {
    let path = store.root().join("locks/containers.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at("opening lock file", &path)?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .at("taking lock", &path)?;
    Ok(NamesLock { _lock: lock })
}

/// Creates `containers/<id>/` and its record, under the names lock so that two `run`s
/// cannot take one name.
pub fn create(
    store: &Store,
    id: &str,
    name: Option<&str>,
    image: &str,
    args: &[String],
) -> Result<Container, Error> {
    if let Some(name) = name {
        validate_name(name)?;
    }
    let _lock = lock_names(store)?;
    if let Some(name) = name {
        if let Some(existing) = list(store)?
            .into_iter()
            .find(|c| c.record.name.as_deref() == Some(name))
        {
            return Err(Error::NameInUse {
                name: name.to_owned(),
                id: existing.short_id().to_owned(),
            });
        }
    }
    let dir = store.containers_dir().join(id);
    fs::create_dir(&dir).at("creating container directory", &dir)?;
    let container = Container {
        dir,
        record: ContainerRecord {
            id: id.to_owned(),
            name: name.map(str::to_owned),
            image: image.to_owned(),
            args: args.to_vec(),
            created: now(),
        },
        state: State::default(),
    };
    let json = serde_json::to_vec_pretty(&container.record).expect("container records serialize");
    write_file_replacing(&container.dir.join(RECORD_FILE), &json)?;
    Ok(container)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::random_id;

    #[test]
    fn name_validation_table() {
        let cases = [
            ("web", true),
            ("db-1.primary_x", true),
            ("a", false),
            ("-web", false),
            ("_web", false),
            ("we b", false),
            ("web/1", false),
            ("", false),
        ];
        for (name, valid) in cases {
            assert_eq!(validate_name(name).is_ok(), valid, "{name:?}");
        }
    }

    #[test]
    fn find_by_id_name_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let web = create(&store, &random_id(64), Some("web"), "busybox", &[]).unwrap();
        let other = create(&store, &random_id(64), None, "busybox", &[]).unwrap();
        let by_name = find(&store, "web").unwrap();
        assert_eq!(by_name.record.id, web.record.id);
        let by_id = find(&store, &other.record.id).unwrap();
        assert_eq!(by_id.record.id, other.record.id);
        let by_prefix = find(&store, &other.record.id[..20]).unwrap();
        assert_eq!(by_prefix.record.id, other.record.id);
        assert!(matches!(
            find(&store, "nope"),
            Err(Error::NoSuchContainer(_))
        ));
    }

    #[test]
    fn taken_name_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store, &random_id(64), Some("web"), "busybox", &[]).unwrap();
        let error = create(&store, &random_id(64), Some("web"), "alpine", &[]).unwrap_err();
        assert!(matches!(error, Error::NameInUse { .. }), "{error}");
        assert_eq!(list(&store).unwrap().len(), 1);
    }

    #[test]
    fn status_without_shim_follows_phase() {
        let container = |phase, exit_code| Container {
            dir: PathBuf::new(),
            record: ContainerRecord {
                id: "0".repeat(64),
                name: None,
                image: String::new(),
                args: Vec::new(),
                created: 0,
            },
            state: State {
                phase,
                exit_code,
                ..State::default()
            },
        };
        assert_eq!(container(Phase::Created, None).status(), Status::Created);
        let exited = container(Phase::Exited, Some(3)).status();
        assert_eq!(exited, Status::Exited { code: Some(3) });
        // A running phase with no shim left means the shim died without recording the end.
        let orphaned = container(Phase::Running, None).status();
        assert_eq!(orphaned, Status::Exited { code: None });
    }
}
