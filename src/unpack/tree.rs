//! The layer directory being written, reached only through directory file descriptors.
//!
//! Every path is walked one component at a time with `O_NOFOLLOW | O_DIRECTORY`, so a
//! symlink or other non-directory in a parent position is reported instead of followed, and
//! nothing the archive contains can make a write land outside the layer root. The walk is
//! not racy: only this process writes into a staging directory.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::{IndexMap, IndexSet};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, XattrFlags};
use rustix::io::Errno;

use super::dirfd::{self, DIR_FLAGS};
use super::links::LowerLinks;
use super::metadata::Metadata;
use super::path::EntryPath;
use super::resolve::LowerRefs;
use super::{Error, Result};
use crate::fs_error::{FsContext, FsError};

/// The xattr that marks an overlayfs upper directory as hiding the lower directories' content.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

pub struct Tree {
    root: Rc<OwnedFd>,
    root_path: PathBuf,
    /// The last parent directory walked to; tar streams list siblings together.
    cache: Option<(Vec<OsString>, Rc<OwnedFd>)>,
    /// Paths holding a whiteout device this layer created, so a later entry at the same path
    /// knows the lower entry was deleted.
    whiteouts: HashSet<EntryPath>,
    /// Directories created only because an entry below them had no parent entry, and that
    /// take their metadata from the layers below if those have them. The root is one until
    /// the archive lists it.
    implicit_dirs: IndexSet<EntryPath>,
    /// Directory modes and times, applied after every entry so that creating children does
    /// not disturb a directory's mtime and a read-only mode does not block its children.
    deferred_dirs: IndexMap<EntryPath, Metadata>,
    pub lower_links: LowerLinks,
    /// The archive made the root opaque, which overlayfs ignores on a layer root.
    opaque_root: bool,
}

/// What already sits at an entry's path in this layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    Directory,
    Whiteout,
    Other,
}

/// A path's meaning in this layer, found without creating anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// This layer has a non-directory there.
    File,
    Directory,
    /// This layer has nothing there and does not hide the layers below.
    Below,
    /// This layer deleted the path or made a directory above it opaque.
    Hidden,
}

impl Tree {
    pub fn open(root_path: &Path) -> Result<Tree> {
        let root = rfs::open(root_path, DIR_FLAGS, Mode::empty())
            .map_err(std::io::Error::from)
            .at("opening layer directory", root_path)?;
        Ok(Tree {
            root: Rc::new(root),
            root_path: root_path.to_path_buf(),
            cache: None,
            whiteouts: HashSet::new(),
            implicit_dirs: IndexSet::from([EntryPath::default()]),
            deferred_dirs: IndexMap::new(),
            lower_links: LowerLinks::default(),
            opaque_root: false,
        })
    }

    pub fn root_fd(&self) -> Rc<OwnedFd> {
        self.root.clone()
    }

    /// The host path of an entry, for error messages only: never opened.
    pub fn display_path(&self, path: &EntryPath) -> PathBuf {
        self.root_path.join(path.to_path_buf())
    }

    /// Opens the directory at `components`, creating missing ones with mode 0755 and owner
    /// root, as Docker and containerd do for parents an archive does not list.
    pub fn dir(&mut self, components: &[OsString]) -> Result<Rc<OwnedFd>> {
        // Tar streams list a directory's children right after it, so the walk usually
        // continues from the last directory reached rather than from the root.
        let (mut current, start) = match &self.cache {
            Some((cached, fd)) if components.starts_with(cached) => (fd.clone(), cached.len()),
            _ => (self.root.clone(), 0),
        };
        let mut walked = EntryPath::from_components(components[..start].to_vec());
        for name in &components[start..] {
            walked.push(name);
            current = Rc::new(self.step(&current, &walked)?);
        }
        self.cache = Some((components.to_vec(), current.clone()));
        Ok(current)
    }

    /// Opens the last component of `walked` below `parent`, creating it if missing.
    fn step(&mut self, parent: &OwnedFd, walked: &EntryPath) -> Result<OwnedFd> {
        let (_, name) = walked.split_last().expect("walked paths are not the root");
        match dirfd::open_dir(parent, name) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(Errno::LOOP) => return Err(symlink_parent(walked)),
            Err(Errno::NOTDIR) if self.whiteouts.contains(walked) => {}
            // O_DIRECTORY reports a symlink as ENOTDIR rather than ELOOP.
            Err(Errno::NOTDIR) => return Err(self.not_a_directory(parent, name, walked)),
            Err(errno) => return Err(self.fs_error("opening directory", walked, errno)),
        }
        let was_whiteout = self.whiteouts.contains(walked);
        if was_whiteout {
            self.remove(parent, name, walked)?;
        }
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755))
            .map_err(|errno| self.fs_error("creating directory", walked, errno))?;
        let fd = dirfd::open_dir(parent, name)
            .map_err(|errno| self.fs_error("opening directory", walked, errno))?;
        if was_whiteout {
            // The lower directory was deleted: this one is new and hides its content.
            self.set_opaque(&fd, walked)?;
        } else {
            self.implicit_dirs.insert(walked.clone());
        }
        Ok(fd)
    }

    /// Builds the error for a parent position that has a non-directory.
    fn not_a_directory(&self, parent: &OwnedFd, name: &OsStr, walked: &EntryPath) -> Error {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                symlink_parent(walked)
            }
            _ => Error::invalid_entry(walked, "a parent is not a directory"),
        }
    }

    /// Finds what `path` means in this layer, walking without creating anything.
    pub fn lookup(&self, path: &EntryPath) -> Result<Lookup> {
        let mut current = self.root.clone();
        let mut hidden = self.opaque_root;
        let components = path.components();
        for depth in 0..components.len() {
            let walked = EntryPath::from_components(components[..=depth].to_vec());
            if self.whiteouts.contains(&walked) {
                return Ok(Lookup::Hidden);
            }
            let name = &components[depth];
            let stat = match rfs::statat(&*current, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::NOENT) if hidden => return Ok(Lookup::Hidden),
                Err(Errno::NOENT) => return Ok(Lookup::Below),
                Err(errno) => return Err(self.fs_error("inspecting", &walked, errno)),
            };
            let kind = FileType::from_raw_mode(stat.st_mode);
            let last = depth + 1 == components.len();
            match (kind, last) {
                (FileType::Directory, true) => return Ok(Lookup::Directory),
                (_, true) => return Ok(Lookup::File),
                (FileType::Directory, false) => {}
                (FileType::Symlink, false) => return Err(symlink_parent(&walked)),
                (_, false) => {
                    return Err(Error::invalid_entry(&walked, "a parent is not a directory"))
                }
            }
            let fd = dirfd::open_dir(&current, name)
                .map_err(|errno| self.fs_error("opening directory", &walked, errno))?;
            hidden |=
                is_opaque(&fd).map_err(|errno| self.fs_error("inspecting", &walked, errno))?;
            current = Rc::new(fd);
        }
        Ok(Lookup::Directory)
    }

    /// Reports what this layer already has at `name` in `parent`.
    pub fn existing(&self, parent: &OwnedFd, name: &OsStr, path: &EntryPath) -> Result<Existing> {
        let stat = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(Existing::Nothing),
            Err(errno) => return Err(self.fs_error("inspecting", path, errno)),
        };
        let kind = FileType::from_raw_mode(stat.st_mode);
        Ok(match kind {
            FileType::Directory => Existing::Directory,
            _ if self.whiteouts.contains(path) => Existing::Whiteout,
            _ => Existing::Other,
        })
    }

    /// Removes whatever is at `name` in `parent`, a whole directory tree included.
    pub fn remove(&mut self, parent: &OwnedFd, name: &OsStr, path: &EntryPath) -> Result<()> {
        match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {
                // Nothing lies below a non-directory, so only `path` itself is forgotten:
                // scanning every record for each replaced file would make an archive that
                // lists many files twice take quadratic time.
                self.forget_exact(path);
                return Ok(());
            }
            Err(Errno::ISDIR) => {}
            Err(errno) => return Err(self.fs_error("removing", path, errno)),
        }
        self.forget(path);
        // The cached parent may lie inside the tree being removed.
        self.cache = None;
        let dir = dirfd::open_dir(parent, name)
            .map_err(|errno| self.fs_error("opening directory", path, errno))?;
        dirfd::remove_contents(&dir)
            .map_err(|errno| self.fs_error("removing contents of", path, errno))?;
        rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
            .map_err(|errno| self.fs_error("removing directory", path, errno))
    }

    /// Drops everything recorded about `path` alone.
    fn forget_exact(&mut self, path: &EntryPath) {
        self.whiteouts.remove(path);
        if self.implicit_dirs.contains(path) {
            self.implicit_dirs.shift_remove(path);
        }
        if self.deferred_dirs.contains_key(path) {
            self.deferred_dirs.shift_remove(path);
        }
        self.lower_links.forget_exact(path);
    }

    /// Drops everything recorded about `path` and the paths below it.
    fn forget(&mut self, path: &EntryPath) {
        self.whiteouts.retain(|other| !other.starts_with(path));
        self.implicit_dirs.retain(|other| !other.starts_with(path));
        self.deferred_dirs
            .retain(|dir_path, _| !dir_path.starts_with(path));
        self.lower_links.forget(path);
    }

    /// Creates an overlayfs whiteout: a character device with device number 0/0.
    pub fn make_whiteout(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &EntryPath,
    ) -> Result<()> {
        rfs::mknodat(
            parent,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|errno| self.fs_error("creating whiteout", path, errno))?;
        self.whiteouts.insert(path.clone());
        Ok(())
    }

    pub fn set_opaque(&mut self, dir: &OwnedFd, path: &EntryPath) -> Result<()> {
        if path.is_root() {
            self.opaque_root = true;
        }
        rfs::fsetxattr(dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|errno| self.fs_error("marking opaque", path, errno))
    }

    /// Records that the directory at `path` takes no metadata from the layers below: the
    /// archive lists it, or deleted the lower directory it would have come from.
    pub fn mark_not_inherited(&mut self, path: &EntryPath) {
        self.implicit_dirs.shift_remove(path);
    }

    /// Records a directory's metadata to apply in [`Tree::finish`].
    pub fn defer_dir(&mut self, path: &EntryPath, metadata: Metadata) {
        self.deferred_dirs.insert(path.clone(), metadata);
    }

    /// Applies deferred directory modes and times, deepest first, and returns what the layer
    /// still needs from the layers below it.
    pub fn finish(mut self) -> Result<LowerRefs> {
        let mut dirs: Vec<(EntryPath, Metadata)> = std::mem::take(&mut self.deferred_dirs)
            .into_iter()
            .collect();
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().len()));
        for (path, metadata) in dirs {
            let fd = if path.is_root() {
                self.root.clone()
            } else {
                self.dir(path.components())?
            };
            metadata
                .apply_mode_and_times(&fd)
                .map_err(|errno| self.fs_error("setting mode and times of", &path, errno))?;
        }
        let mut whiteouts: Vec<EntryPath> = self.whiteouts.into_iter().collect();
        whiteouts.sort_by(|a, b| a.components().cmp(b.components()));
        Ok(LowerRefs {
            implicit_dirs: self.implicit_dirs.into_iter().collect(),
            links: self.lower_links.into_links(),
            opaque_root: self.opaque_root,
            whiteouts,
        })
    }

    pub fn fs_error(&self, action: &'static str, path: &EntryPath, errno: Errno) -> Error {
        FsError::new(action, self.display_path(path), errno.into()).into()
    }
}

fn symlink_parent(path: &EntryPath) -> Error {
    Error::unsafe_entry(path, "a parent directory is a symlink")
}

/// Tells whether a directory carries the overlayfs opaque mark.
pub fn is_opaque(dir: &OwnedFd) -> rustix::io::Result<bool> {
    let mut value = [0u8; 8];
    match rfs::fgetxattr(dir, OPAQUE_XATTR, &mut value) {
        Ok(length) => Ok(&value[..length] == b"y"),
        Err(Errno::NODATA) | Err(Errno::RANGE) => Ok(false),
        Err(errno) => Err(errno),
    }
}
