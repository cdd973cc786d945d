//! The step of unpacking that needs the layers below: it runs once the whole lower chain is
//! unpacked, bottom layer first, while the streaming pass of each layer runs on its own.
//!
//! What it completes, all recorded by the streaming pass in [`LowerRefs`]:
//!
//! - hardlinks to lower files: the copied-up placeholder gets the lower file's content and
//!   metadata (see `links`);
//! - directories the archive did not list but that exist below: they take the lower
//!   directory's owner, mode, xattrs and times, as a directory copied up by overlayfs does;
//! - an opaque root: overlayfs ignores `trusted.overlay.opaque` on a layer's root, so every
//!   name below gets a whiteout and every directory at the root is made opaque instead.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tracing::debug;

use super::copy_up;
use super::dirfd::{self, DIR_FLAGS};
use super::links::LowerLink;
use super::lower::{is_whiteout, Found, LowerView};
use super::metadata::OVERLAY_XATTR_PREFIX;
use super::path::EntryPath;
use super::tree::{is_opaque, OPAQUE_XATTR};
use super::{Error, Result};
use crate::fs_error::{FsContext, FsError};

/// The parts of a layer's tree that still need the layers below it.
#[derive(Debug, Default)]
pub struct LowerRefs {
    /// Directories the archive did not list, the root among them if it has no entry for it.
    pub implicit_dirs: Vec<EntryPath>,
    /// Hardlinks whose target is not in the layer.
    pub links: Vec<LowerLink>,
    /// The archive made the layer's root opaque.
    pub opaque_root: bool,
    /// The whiteouts the layer holds.
    pub whiteouts: Vec<EntryPath>,
}

impl LowerRefs {
    pub fn is_empty(&self) -> bool {
        self.implicit_dirs.is_empty()
            && self.links.is_empty()
            && !self.opaque_root
            && self.whiteouts.is_empty()
    }
}

/// Completes the layer unpacked in `dest` with what it takes from `lowers`, the directories
/// of the layers below, topmost first, each of them already complete.
pub fn resolve_lowers(dest: &Path, refs: &LowerRefs, lowers: &[PathBuf]) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    debug!(
        dest = %dest.display(),
        links = refs.links.len(),
        implicit_dirs = refs.implicit_dirs.len(),
        opaque_root = refs.opaque_root,
        "resolving against lower layers"
    );
    let view = LowerView::open(lowers)?;
    let mut upper = Upper::open(dest)?;
    for link in &refs.links {
        copy_up::copy_up(&view, &mut upper, link)?;
    }
    if refs.opaque_root {
        hide_lower_root(&view, &mut upper)?;
    }
    prune_whiteouts(&view, &mut upper, &refs.whiteouts)?;
    upper.restore_times()?;
    for dir in &refs.implicit_dirs {
        inherit_dir(&view, &upper, dir)?;
    }
    Ok(())
}

/// Whites out every lower name the layer's root does not have, and makes every directory at
/// the root opaque, so that nothing from below shows through.
fn hide_lower_root(view: &LowerView, upper: &mut Upper) -> Result<()> {
    let root = EntryPath::default();
    upper.save_times(&root)?;
    for name in view.root_names()? {
        let path = root.join(&name);
        match rfs::statat(&upper.root, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
                let dir = upper.open_dir(&path)?;
                rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(|errno| upper.error("marking opaque", &path, errno))?;
            }
            Ok(_) => {}
            Err(Errno::NOENT) => rfs::mknodat(
                &upper.root,
                &name,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|errno| upper.error("creating whiteout", &path, errno))?,
            Err(errno) => return Err(upper.error("inspecting", &path, errno)),
        }
    }
    Ok(())
}

/// Removes the whiteouts whose directory does not merge with a lower one: an opaque
/// directory, or one that has no directory below it. overlayfs lists such a directory's
/// entries without filtering them, so a whiteout there would show up in `readdir(3)` as a
/// name that cannot be opened. It hides nothing there anyway.
fn prune_whiteouts(view: &LowerView, upper: &mut Upper, whiteouts: &[EntryPath]) -> Result<()> {
    let mut merged: HashMap<EntryPath, bool> = HashMap::new();
    for path in whiteouts {
        let (parent_components, name) = path.split_last().expect("whiteouts are not the root");
        let parent = EntryPath::from_components(parent_components.to_vec());
        let is_merged = match merged.get(&parent) {
            Some(&is_merged) => is_merged,
            None => {
                let is_merged = upper.is_merged(view, &parent)?;
                merged.insert(parent.clone(), is_merged);
                is_merged
            }
        };
        if is_merged {
            continue;
        }
        let dir = upper.parent_of(path)?;
        let stat = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| upper.error("inspecting", path, errno))?;
        if is_whiteout(&stat) {
            rfs::unlinkat(&dir, name, AtFlags::empty())
                .map_err(|errno| upper.error("removing whiteout", path, errno))?;
        }
    }
    Ok(())
}

/// Gives the directory at `path` the metadata of the lower directory it stands for, unless
/// this layer hides the lower one.
fn inherit_dir(view: &LowerView, upper: &Upper, path: &EntryPath) -> Result<()> {
    if upper.hidden_above(path)? {
        return Ok(());
    }
    let Found::Directory(dirs) = view.find(path)? else {
        return Ok(());
    };
    let source = &dirs[0].fd;
    let dest = upper.open_dir(path)?;
    let stat = rfs::fstat(source).map_err(|errno| upper.error("inspecting lower", path, errno))?;
    let xattrs = dirfd::xattrs_of(source)
        .map_err(|errno| upper.error("reading xattrs below", path, errno))?;
    let result = rfs::fchown(
        &dest,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    )
    .and_then(|()| rfs::fchmod(&dest, Mode::from_raw_mode(stat.st_mode & 0o7777)))
    .and_then(|()| {
        copyable(&xattrs)
            .try_for_each(|(key, value)| rfs::fsetxattr(&dest, key, value, XattrFlags::empty()))
    })
    .and_then(|()| rfs::futimens(&dest, &times_of(&stat)));
    result.map_err(|errno| upper.error("copying metadata from below to", path, errno))
}

/// Selects the xattrs a copy takes: all but overlayfs's own, which describe the lower layer.
pub fn copyable(xattrs: &[(std::ffi::OsString, Vec<u8>)]) -> impl Iterator<Item = (&OsStr, &[u8])> {
    use std::os::unix::ffi::OsStrExt;
    xattrs
        .iter()
        .filter(|(key, _)| !key.as_bytes().starts_with(OVERLAY_XATTR_PREFIX))
        .map(|(key, value)| (key.as_os_str(), value.as_slice()))
}

pub fn times_of(stat: &rfs::Stat) -> Timestamps {
    Timestamps {
        last_access: rfs::Timespec {
            tv_sec: stat.st_atime as _,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: rfs::Timespec {
            tv_sec: stat.st_mtime as _,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    }
}

/// The layer being resolved, walked without following symlinks and without creating
/// anything. Remembers the times of the directories it changes so that their mtimes stay
/// the archive's.
pub struct Upper {
    pub root: OwnedFd,
    path: PathBuf,
    saved_times: IndexMap<EntryPath, Timestamps>,
}

impl Upper {
    fn open(path: &Path) -> Result<Upper> {
        let root = rfs::open(path, DIR_FLAGS, Mode::empty())
            .map_err(std::io::Error::from)
            .at("opening layer directory", path)?;
        Ok(Upper {
            root,
            path: path.to_path_buf(),
            saved_times: IndexMap::new(),
        })
    }

    pub fn open_dir(&self, path: &EntryPath) -> Result<OwnedFd> {
        let mut current =
            rustix::io::dup(&self.root).map_err(|errno| self.error("opening", path, errno))?;
        for name in path.components() {
            current = dirfd::open_dir(&current, name)
                .map_err(|errno| self.error("opening directory", path, errno))?;
        }
        Ok(current)
    }

    /// Opens the parent directory of `path` and remembers its times before any change.
    pub fn parent_of(&mut self, path: &EntryPath) -> Result<OwnedFd> {
        let (parent, _) = path.split_last().expect("names are not the root");
        let parent = EntryPath::from_components(parent.to_vec());
        self.save_times(&parent)?;
        self.open_dir(&parent)
    }

    fn save_times(&mut self, dir: &EntryPath) -> Result<()> {
        if self.saved_times.contains_key(dir) {
            return Ok(());
        }
        let fd = self.open_dir(dir)?;
        let stat = rfs::fstat(&fd).map_err(|errno| self.error("inspecting", dir, errno))?;
        self.saved_times.insert(dir.clone(), times_of(&stat));
        Ok(())
    }

    fn restore_times(&self) -> Result<()> {
        for (dir, times) in &self.saved_times {
            let fd = self.open_dir(dir)?;
            rfs::futimens(&fd, times)
                .map_err(|errno| self.error("setting times of", dir, errno))?;
        }
        Ok(())
    }

    /// Tells whether the directory at `dir` merges with one of the layers below: it is the
    /// root, or neither it nor a directory above it is opaque and a lower layer has it.
    fn is_merged(&self, view: &LowerView, dir: &EntryPath) -> Result<bool> {
        if dir.is_root() {
            return Ok(true);
        }
        let fd = self.open_dir(dir)?;
        if is_opaque(&fd).map_err(|errno| self.error("inspecting", dir, errno))? {
            return Ok(false);
        }
        if self.hidden_above(dir)? {
            return Ok(false);
        }
        Ok(matches!(view.find(dir)?, Found::Directory(_)))
    }

    /// Tells whether a directory strictly above `path` is opaque in this layer, hiding the
    /// lower directory at `path`.
    fn hidden_above(&self, path: &EntryPath) -> Result<bool> {
        let Some((parents, _)) = path.split_last() else {
            return Ok(false);
        };
        let mut current =
            rustix::io::dup(&self.root).map_err(|errno| self.error("opening", path, errno))?;
        for depth in 0..=parents.len() {
            let walked = EntryPath::from_components(parents[..depth].to_vec());
            if is_opaque(&current).map_err(|errno| self.error("inspecting", &walked, errno))? {
                return Ok(true);
            }
            if let Some(name) = parents.get(depth) {
                current = dirfd::open_dir(&current, name)
                    .map_err(|errno| self.error("opening directory", &walked.join(name), errno))?;
            }
        }
        Ok(false)
    }

    /// Returns the host path of an entry, for error messages only: it is never opened.
    pub fn display_path(&self, path: &EntryPath) -> PathBuf {
        self.path.join(path.to_path_buf())
    }

    pub fn error(&self, action: &'static str, path: &EntryPath, errno: Errno) -> Error {
        FsError::new(action, self.display_path(path), errno.into()).into()
    }
}
