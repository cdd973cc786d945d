//! The directories a mount merges: read-only lower layers, topmost first, and for a writable
//! mount an upper directory with its work directory, all opened once at mount time.

use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self as rfs, Mode, OFlags};

use crate::{Error, Result};

/// The layer an entry of the merged tree comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Upper,
    /// Index into the lower layers, 0 being the topmost.
    Lower(usize),
}

/// The layer directories to merge, in overlayfs form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Lower directories, topmost first, as overlayfs's `lowerdir=` lists them.
    pub lowers: Vec<PathBuf>,
    /// The writable layer and its work directory; `None` for a read-only mount.
    pub upper: Option<UpperDirs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperDirs {
    pub upper: PathBuf,
    /// Scratch space on the upper directory's file system, for building entries before
    /// renaming them into place, as overlayfs's `workdir=`.
    pub work: PathBuf,
}

struct Root {
    path: PathBuf,
    fd: OwnedFd,
    device: u64,
}

impl Root {
    fn open(path: &Path) -> Result<Root> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let error = |errno: rustix::io::Errno| Error::Open {
            path: path.to_path_buf(),
            error: errno.into(),
        };
        let fd = rfs::open(path, flags, Mode::empty()).map_err(error)?;
        let device = rfs::fstat(&fd).map_err(error)?.st_dev;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
            device,
        })
    }
}

/// The opened layer directories.
pub struct Stack {
    lowers: Vec<Root>,
    upper: Option<(Root, Root)>,
    /// The device of the topmost layer. Entries on it keep their real inode numbers.
    home_device: u64,
}

impl Stack {
    pub fn open(layers: &Layers) -> Result<Stack> {
        if layers.lowers.is_empty() {
            return Err(Error::NoLowerLayers);
        }
        let lowers = layers
            .lowers
            .iter()
            .map(|path| Root::open(path))
            .collect::<Result<Vec<_>>>()?;
        let upper = match &layers.upper {
            Some(dirs) => Some((Root::open(&dirs.upper)?, Root::open(&dirs.work)?)),
            None => None,
        };
        let top = upper.as_ref().map_or(&lowers[0], |(upper, _)| upper);
        let home_device = top.device;
        Ok(Stack {
            lowers,
            upper,
            home_device,
        })
    }

    pub fn writable(&self) -> bool {
        self.upper.is_some()
    }

    pub fn lower_count(&self) -> usize {
        self.lowers.len()
    }

    pub fn home_device(&self) -> u64 {
        self.home_device
    }

    /// Returns the layers a lookup searches, topmost first, for a directory present in
    /// `upper` (if set) and in the lower layers `lowers`.
    pub fn search_order(upper: bool, lowers: &[usize]) -> impl Iterator<Item = Layer> + '_ {
        let upper = upper.then_some(Layer::Upper);
        upper
            .into_iter()
            .chain(lowers.iter().map(|&index| Layer::Lower(index)))
    }

    pub fn fd(&self, layer: Layer) -> BorrowedFd<'_> {
        self.root(layer).fd.as_fd()
    }

    /// Returns the device of the layer's root directory.
    pub fn device(&self, layer: Layer) -> u64 {
        self.root(layer).device
    }

    /// Returns the absolute path of `relative` in `layer`, for the calls that take no
    /// directory fd (the xattr calls).
    pub fn path(&self, layer: Layer, relative: &Path) -> PathBuf {
        self.root(layer).path.join(relative)
    }

    fn root(&self, layer: Layer) -> &Root {
        match layer {
            Layer::Upper => self.upper(),
            Layer::Lower(index) => &self.lowers[index],
        }
    }

    pub fn work_fd(&self) -> BorrowedFd<'_> {
        self.upper
            .as_ref()
            .expect("writes need an upper layer")
            .1
            .fd
            .as_fd()
    }

    pub fn work_path(&self, name: &str) -> PathBuf {
        let (_, work) = self.upper.as_ref().expect("writes need an upper layer");
        work.path.join(name)
    }

    fn upper(&self) -> &Root {
        &self.upper.as_ref().expect("writes need an upper layer").0
    }
}

/// `relative` as a path for the `*at` calls: the layer root itself is `.`.
pub fn at_path(relative: &Path) -> &Path {
    if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    }
}
