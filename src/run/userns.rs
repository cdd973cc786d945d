//! `run --userns`: the container runs in a user namespace in which its root is an
//! unprivileged range of host IDs.
//!
//! The range comes from `/etc/subuid` and `/etc/subgid` (subuid(5)), the entries for user
//! `layerfs`, or else is the fixed range [`FALLBACK_START`]..+65536. Every `--userns`
//! container shares that one range: they are isolated from the host, not from each other.
//!
//! The namespace is made before the container's processes exist, by a helper child that
//! unshares it and waits while this process writes its maps. The namespace's file
//! descriptor then serves both to idmap the image's layers and for PID 1 to join it.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, setgroups, setresgid, setresuid, ForkResult, Gid, Uid};
use serde::{Deserialize, Serialize};

use super::{Error, SysContext};
use crate::fs_error::{FsContext, FsError};

/// The user whose `/etc/subuid` and `/etc/subgid` entries give the range.
pub const SUBID_USER: &str = "layerfs";
/// The host ID that container root maps to when no subordinate range is configured.
pub const FALLBACK_START: u32 = 1_000_000_000;
/// The size of the range: IDs 0–65535 inside, as most images expect.
pub const RANGE_SIZE: u32 = 65_536;

/// Container IDs 0..size map to host IDs start..start+size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uid_start: u32,
    pub gid_start: u32,
    pub size: u32,
}

impl IdMap {
    /// Reads the range from the subordinate ID files, or returns the fixed fallback.
    pub fn configured() -> IdMap {
        let uids = read_range(Path::new("/etc/subuid"));
        let gids = read_range(Path::new("/etc/subgid"));
        IdMap {
            uid_start: uids.map_or(FALLBACK_START, |(start, _)| start),
            gid_start: gids.map_or(FALLBACK_START, |(start, _)| start),
            size: match (uids, gids) {
                (Some((_, u)), Some((_, g))) => u.min(g).min(RANGE_SIZE),
                (Some((_, n)), None) | (None, Some((_, n))) => n.min(RANGE_SIZE),
                (None, None) => RANGE_SIZE,
            },
        }
    }

    /// Returns the host user ID of container user ID `id`.
    pub fn host_uid(&self, id: u32) -> u32 {
        self.uid_start + id
    }

    pub fn host_gid(&self, id: u32) -> u32 {
        self.gid_start + id
    }
}

fn read_range(path: &Path) -> Option<(u32, u32)> {
    let text = fs::read_to_string(path).ok()?;
    parse_subid(&text, SUBID_USER)
}

/// Finds the first range of `user` in the text of a subordinate ID file, whose lines read
/// `name:start:count`.
fn parse_subid(text: &str, user: &str) -> Option<(u32, u32)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let (name, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            let parsed = (start.parse().ok()?, count.parse::<u32>().ok()?);
            (name == user && parsed.1 > 0).then_some(parsed)
        })
        .next()
}

/// A user namespace with its maps written, held open by a file descriptor.
#[derive(Debug)]
pub struct UserNamespace {
    fd: OwnedFd,
}

impl UserNamespace {
    /// Creates the namespace. The calling process must be single-threaded (it forks).
    pub fn create(map: &IdMap) -> Result<UserNamespace, Error> {
        let (ready_read, ready_write) = pipe2(OFlag::O_CLOEXEC).sys("creating a pipe")?;
        let (done_read, done_write) = pipe2(OFlag::O_CLOEXEC).sys("creating a pipe")?;
        // SAFETY: the shim is single-threaded, so the child may run arbitrary code.
        match unsafe { fork() }.sys("forking the user namespace helper")? {
            ForkResult::Child => {
                drop((ready_read, done_write));
                let code = match unshare(CloneFlags::CLONE_NEWUSER) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                drop(ready_write);
                // Wait until the parent has written the maps and opened the namespace.
                let _ = fs::File::from(done_read).read(&mut [0u8; 1]);
                // SAFETY: _exit ends this forked child without running the parent's exit
                // handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop((ready_write, done_read));
                let _ = fs::File::from(ready_read).read(&mut [0u8; 1]);
                let result = write_maps(child.as_raw(), map);
                drop(done_write);
                let _ = waitpid(child, None);
                Ok(UserNamespace { fd: result? })
            }
        }
    }

    /// Joins the namespace as its root: full capabilities inside it, none outside.
    pub fn enter(&self) -> nix::Result<()> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWUSER)?;
        setgroups(&[])?;
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
    }
}

impl AsFd for UserNamespace {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn write_maps(pid: i32, map: &IdMap) -> Result<OwnedFd, FsError> {
    let proc = Path::new("/proc").join(pid.to_string());
    let ns_path = proc.join("ns/user");
    let namespace: OwnedFd = fs::File::open(&ns_path).at("opening", &ns_path)?.into();
    // The helper has unshared once the namespace differs from ours.
    let own = fs::metadata("/proc/self/ns/user").at("reading", "/proc/self/ns/user")?;
    let theirs = fs::metadata(&ns_path).at("reading", &ns_path)?;
    if std::os::unix::fs::MetadataExt::ino(&own) == std::os::unix::fs::MetadataExt::ino(&theirs) {
        let error = std::io::Error::from_raw_os_error(libc::EPERM);
        return Err(FsError::new("creating a user namespace in", &proc, error));
    }
    let uid_map = format!("0 {} {}\n", map.uid_start, map.size);
    let gid_map = format!("0 {} {}\n", map.gid_start, map.size);
    let uid_path = proc.join("uid_map");
    fs::write(&uid_path, uid_map).at("writing", &uid_path)?;
    let gid_path = proc.join("gid_map");
    fs::write(&gid_path, gid_map).at("writing", &gid_path)?;
    Ok(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_parsing_table() {
        let text = "# comment\nalice:100000:65536\nlayerfs:200000:131072\nlayerfs:9:9\n";
        assert_eq!(parse_subid(text, "layerfs"), Some((200_000, 131_072)));
        assert_eq!(parse_subid(text, "alice"), Some((100_000, 65_536)));
        assert_eq!(parse_subid(text, "bob"), None);
        assert_eq!(parse_subid("layerfs:x:1\n", "layerfs"), None);
        assert_eq!(parse_subid("layerfs:5:0\n", "layerfs"), None);
    }

    #[test]
    fn host_ids_offset_from_start() {
        let map = IdMap {
            uid_start: 100_000,
            gid_start: 200_000,
            size: RANGE_SIZE,
        };
        assert_eq!(map.host_uid(0), 100_000);
        assert_eq!(map.host_gid(42), 200_042);
    }
}
