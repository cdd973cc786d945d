//! Finding a name in a merged directory, layer by layer, as overlayfs's `ovl_lookup` does.
//! The topmost entry wins, and a whiteout hides the name in the layers below it. A directory
//! merges with the directories of the same path below it, down to an opaque one or to a
//! non-directory.

use std::ffi::OsStr;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Stat};
use rustix::io::Errno;

use crate::format::{is_opaque, is_whiteout};
use crate::inode::Found;
use crate::layers::{Layer, Stack};

/// The layers to search in a directory: its upper part (if any) and its merged lower layers.
#[derive(Debug, Clone, Copy)]
pub struct DirLayers<'a> {
    pub upper: bool,
    pub lowers: &'a [usize],
}

/// Looks up `name` in the merged directory `dir` (a path relative to the merged root).
/// Returns what was found with the topmost real file's `stat`, or `None`.
pub fn find(
    stack: &Stack,
    layers: DirLayers<'_>,
    dir: &Path,
    name: &OsStr,
) -> rustix::io::Result<Option<(Found, Stat)>> {
    let path = dir.join(name);
    let order: Vec<Layer> = Stack::search_order(layers.upper, layers.lowers).collect();
    let mut result: Option<(Found, Stat)> = None;
    for (position, &layer) in order.iter().enumerate() {
        let stat = match rfs::statat(stack.fd(layer), &path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT | Errno::NOTDIR) => continue,
            Err(errno) => return Err(errno),
        };
        if is_whiteout(&stat) {
            break;
        }
        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
        match &result {
            None => result = Some((found(layer, &stat), stat)),
            Some(_) if !is_dir => break,
            Some(_) => {}
        }
        if !is_dir {
            break;
        }
        if let (Layer::Lower(index), Some((found, _))) = (layer, &mut result) {
            found.lowers.push(index);
        }
        let last = position + 1 == order.len();
        if !last && is_opaque(&stack.path(layer, &path))? {
            break;
        }
    }
    Ok(result)
}

/// Whether a lower layer of `dir` shows an entry named `name`: then removing or renaming
/// the name in the merged view needs a whiteout, and a directory created there must be
/// opaque.
pub fn lower_has(
    stack: &Stack,
    lowers: &[usize],
    dir: &Path,
    name: &OsStr,
) -> rustix::io::Result<bool> {
    let layers = DirLayers {
        upper: false,
        lowers,
    };
    Ok(find(stack, layers, dir, name)?.is_some())
}

fn found(layer: Layer, stat: &Stat) -> Found {
    Found {
        kind: crate::attr::kind(stat.st_mode),
        layer,
        lowers: Vec::new(),
        device: stat.st_dev,
        inode: stat.st_ino,
        links: stat.st_nlink,
    }
}
