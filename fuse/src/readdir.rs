//! Listing a merged directory: the names of every layer that takes part, topmost first,
//! each name once, without whiteouts and without the names they hide. The listing is taken
//! once per `opendir`, as overlayfs caches it per open directory, so offsets stay valid for
//! the life of the handle.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fuser::FileType;
use rustix::fs::{self as rfs, AtFlags, Dir, Mode, OFlags};
use rustix::io::Errno;

use crate::attr::kind;
use crate::format::is_whiteout;
use crate::inode::Nodes;
use crate::layers::{at_path, Layer, Stack};
use crate::lookup::DirLayers;

pub struct DirEntry {
    pub name: OsString,
    pub kind: FileType,
    pub ino: u64,
}

/// A real entry before it is numbered: its name, type and (device, inode).
struct RawEntry {
    name: OsString,
    kind: FileType,
    device: u64,
    inode: u64,
}

/// Lists the merged directory `dir` (relative to the merged root), without `.` and `..`.
pub fn list(
    stack: &Stack,
    layers: DirLayers<'_>,
    dir: &Path,
    number: impl Fn(u64, u64) -> u64,
) -> rustix::io::Result<Vec<DirEntry>> {
    let mut seen = HashSet::new();
    let mut raw = Vec::new();
    for layer in Stack::search_order(layers.upper, layers.lowers) {
        read_layer(stack, layer, dir, &mut seen, &mut raw)?;
    }
    let entries = raw
        .into_iter()
        .map(|entry| DirEntry {
            ino: number(entry.device, entry.inode),
            name: entry.name,
            kind: entry.kind,
        })
        .collect();
    Ok(entries)
}

/// Adds the entries of `dir` in `layer` that no layer above has shown or hidden.
fn read_layer(
    stack: &Stack,
    layer: Layer,
    dir: &Path,
    seen: &mut HashSet<OsString>,
    entries: &mut Vec<RawEntry>,
) -> rustix::io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rfs::openat(stack.fd(layer), at_path(dir), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(errno) => return Err(errno),
    };
    let device = stack.device(layer);
    let mut reader = Dir::new(fd)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." || seen.contains(name) {
            continue;
        }
        seen.insert(name.to_os_string());
        let mut file_type = entry.file_type();
        if matches!(
            file_type,
            rfs::FileType::CharacterDevice | rfs::FileType::Unknown
        ) {
            let stat = rfs::statat(stack.fd(layer), dir.join(name), AtFlags::SYMLINK_NOFOLLOW)?;
            if is_whiteout(&stat) {
                continue;
            }
            file_type = rfs::FileType::from_raw_mode(stat.st_mode);
        }
        entries.push(RawEntry {
            name: name.to_os_string(),
            kind: kind(file_type.as_raw_mode()),
            device,
            inode: entry.ino(),
        });
    }
    Ok(())
}

/// Returns whether the merged directory has no entries, which `rmdir` and renaming over a
/// directory require.
pub fn is_empty(stack: &Stack, layers: DirLayers<'_>, dir: &Path) -> rustix::io::Result<bool> {
    let mut seen = HashSet::new();
    let mut raw = Vec::new();
    for layer in Stack::search_order(layers.upper, layers.lowers) {
        read_layer(stack, layer, dir, &mut seen, &mut raw)?;
        if !raw.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The numbering function for [`list`] from the inode table.
pub fn numbering(nodes: &std::sync::Mutex<Nodes>) -> impl Fn(u64, u64) -> u64 + '_ {
    |device, inode| nodes.lock().unwrap().number(device, inode)
}
