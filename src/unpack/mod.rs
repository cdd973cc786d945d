//! Layer unpacking: a tar stream in, a directory in overlayfs form out.
//!
//! Whiteouts become what overlayfs reads: `.wh.NAME` a character device 0/0 named NAME, and
//! `.wh..wh..opq` the `trusted.overlay.opaque` xattr on its directory. A whiteout only ever
//! hides lower layers: when its target already exists in the same layer, the entry stays, and
//! a directory there is marked opaque instead. The bottom layer of an image has nothing below
//! it, so its whiteouts are dropped.
//!
//! Paths are resolved through directory file descriptors one component at a time without
//! following symlinks (see `tree`), so no entry can write outside the layer directory.

mod decompress;
mod metadata;
mod path;
mod tree;
mod whiteout;

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, Uid, XattrFlags};
use tar::{Entry, EntryType};
use tracing::debug;

use crate::fs_error::FsError;
use metadata::Metadata;
use tree::{Existing, Tree};

pub use decompress::decompress;
pub use path::EntryPath;
pub use tree::{remove_tree, OPAQUE_XATTR};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error("reading layer archive: {0}")]
    Archive(io::Error),

    #[error("invalid entry {path}: {reason}")]
    InvalidEntry { path: String, reason: String },

    #[error("unsafe entry {path}: {reason}")]
    UnsafeEntry { path: String, reason: String },
}

impl Error {
    fn invalid_entry(path: &EntryPath, reason: &str) -> Error {
        Error::InvalidEntry {
            path: path.to_string(),
            reason: reason.to_owned(),
        }
    }

    fn unsafe_entry(path: &EntryPath, reason: &str) -> Error {
        Error::UnsafeEntry {
            path: path.to_string(),
            reason: reason.to_owned(),
        }
    }
}

/// How to unpack one layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The layer is the bottom of its image, so whiteouts have nothing to hide.
    pub base_layer: bool,
}

/// What unpacking produced besides the tree itself.
#[derive(Debug, Default)]
pub struct Summary {
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub file_bytes: u64,
    /// Parent directories created because the archive did not list them.
    pub implicit_dirs: Vec<EntryPath>,
}

/// Unpacks the tar stream `reader` into the empty directory `dest`. Reads up to the end of
/// the archive, not necessarily to the end of `reader`.
pub fn unpack<R: Read>(reader: R, dest: &Path, options: &Options) -> Result<Summary> {
    let mut archive = tar::Archive::new(reader);
    let mut tree = Tree::open(dest)?;
    let mut summary = Summary::default();
    for entry in archive.entries().map_err(Error::Archive)? {
        let mut entry = entry.map_err(Error::Archive)?;
        if entry.header().entry_type().is_file() {
            summary.file_bytes += entry.size();
        }
        apply_entry(&mut tree, &mut entry, options)?;
        summary.entries += 1;
    }
    summary.implicit_dirs = tree.finish()?;
    Ok(summary)
}

fn apply_entry<R: Read>(
    tree: &mut Tree,
    entry: &mut Entry<'_, R>,
    options: &Options,
) -> Result<()> {
    let raw = entry.path_bytes().into_owned();
    let path = EntryPath::parse(&raw).map_err(|error| Error::UnsafeEntry {
        path: String::from_utf8_lossy(&raw).into_owned(),
        reason: error.to_string(),
    })?;
    let kind = entry.header().entry_type();
    let Some((parent, name)) = path.split_last() else {
        return apply_root(tree, entry, kind);
    };
    let classified = whiteout::classify(name).map_err(|error| Error::InvalidEntry {
        path: path.to_string(),
        reason: error.to_string(),
    })?;
    let parent = EntryPath::from_components(parent.to_vec());
    match classified {
        whiteout::Name::AufsMeta => Ok(()),
        whiteout::Name::Opaque => apply_opaque(tree, &parent, options),
        whiteout::Name::Whiteout(target) => apply_whiteout(tree, &parent, target, options),
        whiteout::Name::Plain => apply_plain(tree, &path, entry, kind),
    }
}

/// The archive's entry for the layer root itself (`./`): only a directory is acceptable.
fn apply_root<R: Read>(tree: &mut Tree, entry: &mut Entry<'_, R>, kind: EntryType) -> Result<()> {
    let root = EntryPath::default();
    if !kind.is_dir() {
        return Err(Error::unsafe_entry(
            &root,
            "the layer root is not a directory",
        ));
    }
    let metadata = Metadata::read(entry).map_err(Error::Archive)?;
    let fd = tree.root_fd();
    apply_dir_owner_and_xattrs(tree, &fd, &root, &metadata)?;
    tree.defer_dir(&root, metadata);
    Ok(())
}

fn apply_opaque(tree: &mut Tree, dir: &EntryPath, options: &Options) -> Result<()> {
    if options.base_layer {
        return Ok(());
    }
    let fd = tree.dir(dir.components())?;
    tree.set_opaque(&fd, dir)
}

fn apply_whiteout(
    tree: &mut Tree,
    dir: &EntryPath,
    target: &OsStr,
    options: &Options,
) -> Result<()> {
    if options.base_layer {
        return Ok(());
    }
    let parent = tree.dir(dir.components())?;
    let path = dir.join(target);
    match tree.existing(&parent, target, &path)? {
        Existing::Nothing => tree.make_whiteout(&parent, target, &path),
        Existing::Directory => {
            let fd = tree.dir(path.components())?;
            tree.set_opaque(&fd, &path)
        }
        // A file, symlink or device of this layer already hides the lower entry.
        Existing::Whiteout | Existing::Other => Ok(()),
    }
}

fn apply_plain<R: Read>(
    tree: &mut Tree,
    path: &EntryPath,
    entry: &mut Entry<'_, R>,
    kind: EntryType,
) -> Result<()> {
    let metadata = Metadata::read(entry).map_err(Error::Archive)?;
    let (parent_components, name) = path.split_last().expect("the root is handled apart");
    let parent = tree.dir(parent_components)?;
    let existing = tree.existing(&parent, name, path)?;
    let keep_existing_dir = kind.is_dir() && existing == Existing::Directory;
    if existing != Existing::Nothing && !keep_existing_dir {
        if kind == EntryType::Link && link_target(entry, path)? == *path {
            debug!(%path, "skipping a hardlink to itself");
            return Ok(());
        }
        tree.remove(&parent, name, path)?;
    }

    match kind {
        EntryType::Directory => {
            // A directory that replaces a non-directory of this layer replaces whatever the
            // lower layers had there too, so it hides their content.
            let replaced = matches!(existing, Existing::Whiteout | Existing::Other);
            make_dir(
                tree,
                &parent,
                name,
                path,
                &metadata,
                !keep_existing_dir,
                replaced,
            )
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            make_file(tree, &parent, name, path, entry, &metadata)
        }
        EntryType::Symlink => make_symlink(tree, &parent, name, path, entry, &metadata),
        EntryType::Link => make_hardlink(tree, &parent, name, path, entry),
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            make_node(tree, &parent, name, path, entry, kind, &metadata)
        }
        other => {
            debug!(%path, kind = ?other, "skipping an entry of a kind layers do not use");
            Ok(())
        }
    }
}

fn make_dir(
    tree: &mut Tree,
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    metadata: &Metadata,
    create: bool,
    replaced: bool,
) -> Result<()> {
    if create {
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(|errno| tree.fs_error("creating directory", path, errno))?;
    }
    let fd = tree.dir(path.components())?;
    apply_dir_owner_and_xattrs(tree, &fd, path, metadata)?;
    if replaced {
        tree.set_opaque(&fd, path)?;
    }
    tree.defer_dir(path, metadata.clone());
    Ok(())
}

fn apply_dir_owner_and_xattrs(
    tree: &Tree,
    fd: &OwnedFd,
    path: &EntryPath,
    metadata: &Metadata,
) -> Result<()> {
    metadata
        .apply_owner(fd)
        .and_then(|()| metadata.apply_xattrs(fd))
        .map_err(|errno| tree.fs_error("setting owner and xattrs of", path, errno))
}

/// Copy buffer for file contents; large enough that decompression, not syscalls, dominates.
const COPY_BUFFER: usize = 128 * 1024;

fn make_file<R: Read>(
    tree: &mut Tree,
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    entry: &mut Entry<'_, R>,
    metadata: &Metadata,
) -> Result<()> {
    let mut file = tree::create_file(parent, name)
        .map_err(|errno| tree.fs_error("creating file", path, errno))?;
    let mut buffer = vec![0u8; COPY_BUFFER];
    loop {
        let read = entry.read(&mut buffer).map_err(Error::Archive)?;
        if read == 0 {
            break;
        }
        file.write_all(&buffer[..read])
            .map_err(|error| FsError::new("writing", tree.display_path(path), error))?;
    }
    let fd = OwnedFd::from(file);
    metadata
        .apply_owner_mode_xattrs(&fd)
        .and_then(|()| rfs::futimens(&fd, &metadata.timestamps()))
        .map_err(|errno| tree.fs_error("setting metadata of", path, errno))
}

fn make_symlink<R: Read>(
    tree: &mut Tree,
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    entry: &mut Entry<'_, R>,
    metadata: &Metadata,
) -> Result<()> {
    let target = entry
        .link_name_bytes()
        .ok_or_else(|| Error::invalid_entry(path, "symlink without a target"))?
        .into_owned();
    rfs::symlinkat(OsStr::from_bytes(&target), parent, name)
        .map_err(|errno| tree.fs_error("creating symlink", path, errno))?;
    apply_metadata_at(tree, parent, name, path, metadata, false)
}

fn make_node<R: Read>(
    tree: &mut Tree,
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    entry: &mut Entry<'_, R>,
    kind: EntryType,
    metadata: &Metadata,
) -> Result<()> {
    let header = entry.header();
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let file_type = match kind {
        EntryType::Char => FileType::CharacterDevice,
        EntryType::Block => FileType::BlockDevice,
        _ => FileType::Fifo,
    };
    let device = rfs::makedev(major, minor);
    rfs::mknodat(parent, name, file_type, Mode::from_raw_mode(0o600), device)
        .map_err(|errno| tree.fs_error("creating device node", path, errno))?;
    apply_metadata_at(tree, parent, name, path, metadata, true)
}

/// Applies metadata to a symlink or device node, which cannot be opened for writing: by name
/// in its parent, never following a symlink.
fn apply_metadata_at(
    tree: &Tree,
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    metadata: &Metadata,
    set_mode: bool,
) -> Result<()> {
    let uid = Uid::from_raw(metadata.uid);
    let gid = Gid::from_raw(metadata.gid);
    let result = rfs::chownat(
        parent,
        name,
        Some(uid),
        Some(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .and_then(|()| match set_mode {
        true => rfs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(metadata.mode),
            AtFlags::empty(),
        ),
        false => Ok(()),
    })
    .and_then(|()| set_xattrs_at(parent, name, metadata))
    .and_then(|()| tree::set_times_at(parent, name, &metadata.timestamps()));
    result.map_err(|errno| tree.fs_error("setting metadata of", path, errno))
}

/// Sets xattrs on `name` in `parent` without following it: `lsetxattr` on the name below the
/// parent's `/proc/self/fd` entry, since Linux has no `lsetxattrat` before 6.13.
fn set_xattrs_at(parent: &OwnedFd, name: &OsStr, metadata: &Metadata) -> rustix::io::Result<()> {
    if metadata.xattrs.is_empty() {
        return Ok(());
    }
    let proc_path = Path::new("/proc/self/fd")
        .join(parent.as_raw_fd().to_string())
        .join(name);
    for (key, value) in &metadata.xattrs {
        rfs::lsetxattr(&proc_path, key.as_os_str(), value, XattrFlags::empty())?;
    }
    Ok(())
}

fn link_target<R: Read>(entry: &Entry<'_, R>, path: &EntryPath) -> Result<EntryPath> {
    let raw = entry
        .link_name_bytes()
        .ok_or_else(|| Error::invalid_entry(path, "hardlink without a target"))?;
    EntryPath::parse(&raw).map_err(|error| Error::UnsafeEntry {
        path: path.to_string(),
        reason: format!("hardlink target: {error}"),
    })
}

fn make_hardlink<R: Read>(
    tree: &mut Tree,
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    entry: &mut Entry<'_, R>,
) -> Result<()> {
    let target = link_target(entry, path)?;
    let Some((target_parent, target_name)) = target.split_last() else {
        return Err(Error::invalid_entry(path, "hardlink to the layer root"));
    };
    let target_parent = tree.dir(target_parent)?;
    // NOTE: a hardlink whose target exists only in a lower layer is rejected for now; layers
    // built by Docker and BuildKit always include the target in the same layer.
    match rfs::linkat(&target_parent, target_name, parent, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOENT) => Err(Error::invalid_entry(
            path,
            &format!("hardlink target {target} is not in this layer"),
        )),
        Err(rustix::io::Errno::PERM) => Err(Error::invalid_entry(
            path,
            &format!("hardlink target {target} is a directory"),
        )),
        Err(errno) => Err(tree.fs_error("creating hardlink", path, errno)),
    }
}
