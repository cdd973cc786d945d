//! The merged view of the layers below one layer, looked up the way overlayfs does it
//! (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories"). Layers are
//! searched from the topmost down. A whiteout hides the name in every layer below it, and
//! so does a non-directory. Directories of one name merge, down to the first opaque one. Every step opens a directory file descriptor without following
//! symlinks, so a symlink in a lower layer is never a way out of it.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Stat};
use rustix::io::Errno;

use super::dirfd::{self, DIR_FLAGS};
use super::path::EntryPath;
use super::tree::is_opaque;
use super::Result;
use crate::fs_error::{FsContext, FsError};

/// One lower layer's root directory.
struct Layer {
    path: PathBuf,
    root: OwnedFd,
}

/// The lower layers of one layer, topmost first.
pub struct LowerView {
    layers: Vec<Layer>,
}

/// A directory of one lower layer that takes part in a merged directory.
pub struct LowerDir {
    pub fd: OwnedFd,
    layer: usize,
}

/// A path's entry in the merged lower view.
pub enum Found {
    Missing,
    /// The directories that merge at the path, topmost first: the first one's metadata is
    /// the merged directory's.
    Directory(Vec<LowerDir>),
    /// A non-directory: its parent directory, name and status.
    Other {
        parent: OwnedFd,
        name: OsString,
        stat: Stat,
    },
}

impl LowerView {
    /// Opens the lower layer directories, given topmost first.
    pub fn open(lowers: &[PathBuf]) -> Result<LowerView> {
        let mut layers = Vec::with_capacity(lowers.len());
        for path in lowers {
            let root = rfs::open(path, DIR_FLAGS, Mode::empty())
                .map_err(std::io::Error::from)
                .at("opening lower layer", path)?;
            layers.push(Layer {
                path: path.clone(),
                root,
            });
        }
        Ok(LowerView { layers })
    }

    /// Looks `path` up in the merged view.
    pub fn find(&self, path: &EntryPath) -> Result<Found> {
        let mut dirs = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let fd = rustix::io::dup(&layer.root)
                .map_err(|errno| self.error("opening", index, &EntryPath::default(), errno))?;
            dirs.push(LowerDir { fd, layer: index });
        }
        let components = path.components();
        for depth in 0..components.len() {
            let walked = EntryPath::from_components(components[..=depth].to_vec());
            let last = depth + 1 == components.len();
            match self.step(&dirs, &components[depth], &walked)? {
                Found::Directory(next) => dirs = next,
                Found::Other { .. } if !last => return Ok(Found::Missing),
                found => return Ok(found),
            }
        }
        match dirs.is_empty() {
            true => Ok(Found::Missing),
            false => Ok(Found::Directory(dirs)),
        }
    }

    /// Looks up `name` in the directories that merge at its parent.
    fn step(&self, parents: &[LowerDir], name: &OsStr, walked: &EntryPath) -> Result<Found> {
        let mut merged = Vec::new();
        for parent in parents {
            let stat = match rfs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::NOENT) => continue,
                Err(errno) => return Err(self.error("inspecting", parent.layer, walked, errno)),
            };
            let kind = FileType::from_raw_mode(stat.st_mode);
            if is_whiteout(&stat) {
                break;
            }
            if kind != FileType::Directory {
                if merged.is_empty() {
                    return self.other(parent, name, stat, walked);
                }
                break;
            }
            let fd = dirfd::open_dir(&parent.fd, name)
                .map_err(|errno| self.error("opening", parent.layer, walked, errno))?;
            let opaque = is_opaque(&fd)
                .map_err(|errno| self.error("inspecting", parent.layer, walked, errno))?;
            merged.push(LowerDir {
                fd,
                layer: parent.layer,
            });
            if opaque {
                break;
            }
        }
        match merged.is_empty() {
            true => Ok(Found::Missing),
            false => Ok(Found::Directory(merged)),
        }
    }

    fn other(
        &self,
        parent: &LowerDir,
        name: &OsStr,
        stat: Stat,
        walked: &EntryPath,
    ) -> Result<Found> {
        let fd = rustix::io::dup(&parent.fd)
            .map_err(|errno| self.error("opening", parent.layer, walked, errno))?;
        Ok(Found::Other {
            parent: fd,
            name: name.to_owned(),
            stat,
        })
    }

    /// Lists the names the merged root directory shows.
    pub fn root_names(&self) -> Result<Vec<OsString>> {
        let mut seen = std::collections::HashSet::new();
        let mut visible = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let root = EntryPath::default();
            let names = dirfd::list_names(&layer.root)
                .map_err(|errno| self.error("listing", index, &root, errno))?;
            for name in names {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let stat = rfs::statat(&layer.root, &name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|errno| self.error("inspecting", index, &root, errno))?;
                if !is_whiteout(&stat) {
                    visible.push(name);
                }
            }
        }
        Ok(visible)
    }

    /// Returns the host path of `path` in lower layer `layer`, for error messages only.
    pub fn display_path(&self, layer: usize, path: &EntryPath) -> PathBuf {
        self.layers[layer].path.join(path.to_path_buf())
    }

    fn error(
        &self,
        action: &'static str,
        layer: usize,
        path: &EntryPath,
        errno: Errno,
    ) -> super::Error {
        FsError::new(action, self.display_path(layer, path), errno.into()).into()
    }
}

/// Tells whether an entry is an overlayfs whiteout: a character device numbered 0/0.
pub fn is_whiteout(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}
