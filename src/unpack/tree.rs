//! The layer directory being written, reached only through directory file descriptors.
//!
//! Every path is walked one component at a time with `O_NOFOLLOW | O_DIRECTORY`, so a
//! symlink or other non-directory in a parent position is reported instead of followed, and
//! nothing the archive contains can make a write land outside the layer root. The walk is
//! not racy: only this process writes into a staging directory.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags};
use rustix::io::Errno;

use super::metadata::Metadata;
use super::path::EntryPath;
use super::{Error, Result};
use crate::fs_error::{FsContext, FsError};

/// The xattr that marks an overlayfs upper directory as hiding the lower directories' content.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Directory flags for walking: never follow a symlink, fail on a non-directory.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

pub struct Tree {
    root: Rc<OwnedFd>,
    root_path: PathBuf,
    /// The last parent directory walked to; tar streams list siblings together.
    cache: Option<(Vec<OsString>, Rc<OwnedFd>)>,
    /// Paths holding a whiteout device this layer created, so a later entry at the same path
    /// knows the lower entry was deleted.
    whiteouts: HashSet<EntryPath>,
    /// Directories created only because an entry below them had no parent entry.
    implicit_dirs: Vec<EntryPath>,
    /// Directory modes and times, applied after every entry so that creating children does
    /// not disturb a directory's mtime and a read-only mode does not block its children.
    deferred_dirs: IndexMap<EntryPath, Metadata>,
}

/// What already sits at an entry's path in this layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    Directory,
    Whiteout,
    Other,
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
            implicit_dirs: Vec::new(),
            deferred_dirs: IndexMap::new(),
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
        if let Some((cached, fd)) = &self.cache {
            if cached.as_slice() == components {
                return Ok(fd.clone());
            }
        }
        let mut current = self.root.clone();
        for depth in 0..components.len() {
            let walked = EntryPath::from_components(components[..=depth].to_vec());
            current = Rc::new(self.step(&current, &walked)?);
        }
        self.cache = Some((components.to_vec(), current.clone()));
        Ok(current)
    }

    /// Opens the last component of `walked` below `parent`, creating it if missing.
    fn step(&mut self, parent: &OwnedFd, walked: &EntryPath) -> Result<OwnedFd> {
        let (_, name) = walked.split_last().expect("walked paths are not the root");
        match rfs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(Errno::LOOP) => {
                return Err(Error::unsafe_entry(
                    walked,
                    "a parent directory is a symlink",
                ))
            }
            Err(Errno::NOTDIR) if self.whiteouts.contains(walked) => {
                self.remove(parent, name, walked)?;
            }
            Err(Errno::NOTDIR) => {
                return Err(Error::invalid_entry(walked, "a parent is not a directory"))
            }
            Err(errno) => return Err(self.fs_error("opening directory", walked, errno)),
        }
        let was_whiteout = self.whiteouts.remove(walked);
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755))
            .map_err(|errno| self.fs_error("creating directory", walked, errno))?;
        let fd = rfs::openat(parent, name, DIR_FLAGS, Mode::empty())
            .map_err(|errno| self.fs_error("opening directory", walked, errno))?;
        if was_whiteout {
            self.set_opaque(&fd, walked)?;
        }
        self.implicit_dirs.push(walked.clone());
        Ok(fd)
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
        self.whiteouts.remove(path);
        match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::ISDIR) => {}
            Err(errno) => return Err(self.fs_error("removing", path, errno)),
        }
        // The cached parent may lie inside the tree being removed.
        self.cache = None;
        let dir = rfs::openat(parent, name, DIR_FLAGS, Mode::empty())
            .map_err(|errno| self.fs_error("opening directory", path, errno))?;
        remove_contents(&dir)
            .map_err(|errno| self.fs_error("removing contents of", path, errno))?;
        rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
            .map_err(|errno| self.fs_error("removing directory", path, errno))?;
        self.deferred_dirs
            .retain(|dir_path, _| !dir_path.starts_with(path));
        Ok(())
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

    pub fn set_opaque(&self, dir: &OwnedFd, path: &EntryPath) -> Result<()> {
        rfs::fsetxattr(dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|errno| self.fs_error("marking opaque", path, errno))
    }

    /// Records a directory's metadata to apply in [`Tree::finish`].
    pub fn defer_dir(&mut self, path: &EntryPath, metadata: Metadata) {
        self.deferred_dirs.insert(path.clone(), metadata);
    }

    /// Applies deferred directory modes and times, deepest first.
    pub fn finish(mut self) -> Result<Vec<EntryPath>> {
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
        Ok(self.implicit_dirs)
    }

    pub fn fs_error(&self, action: &'static str, path: &EntryPath, errno: Errno) -> Error {
        FsError::new(action, self.display_path(path), errno.into()).into()
    }
}

/// Empties a directory without following symlinks inside it.
fn remove_contents(dir: &OwnedFd) -> rustix::io::Result<()> {
    let names = list_names(dir)?;
    for name in names {
        match rfs::unlinkat(dir, &name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => continue,
            Err(Errno::ISDIR) => {}
            Err(errno) => return Err(errno),
        }
        let child = rfs::openat(dir, &name, DIR_FLAGS, Mode::empty())?;
        remove_contents(&child)?;
        rfs::unlinkat(dir, &name, AtFlags::REMOVEDIR)?;
    }
    Ok(())
}

fn list_names(dir: &OwnedFd) -> rustix::io::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;

    let reader = rfs::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(&reader)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

/// Removes `path` and everything below it without following symlinks. A missing path is not
/// an error.
pub fn remove_tree(path: &Path) -> Result<(), FsError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let parent_fd = match rfs::open(parent, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(errno) => return Err(FsError::new("opening", parent, errno.into())),
    };
    let result = match rfs::unlinkat(&parent_fd, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => rfs::openat(&parent_fd, name, DIR_FLAGS, Mode::empty())
            .and_then(|dir| remove_contents(&dir))
            .and_then(|()| rfs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR)),
        Err(errno) => Err(errno),
    };
    result.map_err(|errno| FsError::new("removing", path, errno.into()))
}

/// Opens `name` in `parent` for writing a new regular file; it must not exist.
pub fn create_file(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(parent, name, flags, Mode::from_raw_mode(0o600))?;
    Ok(File::from(fd))
}

/// Sets the times of `name` in `parent` without following a symlink.
pub fn set_times_at(parent: &OwnedFd, name: &OsStr, times: &Timestamps) -> rustix::io::Result<()> {
    rfs::utimensat(parent.as_fd(), name, times, AtFlags::SYMLINK_NOFOLLOW)
}
