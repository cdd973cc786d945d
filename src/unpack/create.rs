//! Creating one entry in its parent directory: directories, regular and sparse files,
//! symlinks, device nodes and FIFOs, each with its owner, mode, xattrs and times.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, Uid};
use rustix::io::Errno;
use tar::{Entry, EntryType};
use tracing::warn;

use super::dirfd;
use super::metadata::Metadata;
use super::path::EntryPath;
use super::pax::PaxRecords;
use super::sparse::{self, CopyError, SparseFormat};
use super::tree::Tree;
use super::{Error, Result};
use crate::fs_error::FsError;

/// An entry's place: its name in an open parent directory.
pub struct Target<'a> {
    pub parent: &'a OwnedFd,
    pub name: &'a OsStr,
    pub path: &'a EntryPath,
}

pub fn make_dir(
    tree: &mut Tree,
    target: &Target<'_>,
    metadata: &Metadata,
    create: bool,
    replaced: bool,
) -> Result<()> {
    let path = target.path;
    if create {
        rfs::mkdirat(target.parent, target.name, Mode::from_raw_mode(0o700))
            .map_err(|errno| tree.fs_error("creating directory", path, errno))?;
    }
    let fd = tree.dir(path.components())?;
    apply_dir_owner_and_xattrs(tree, &fd, path, metadata)?;
    if replaced {
        tree.set_opaque(&fd, path)?;
    }
    tree.mark_not_inherited(path);
    tree.defer_dir(path, metadata.clone());
    Ok(())
}

pub fn apply_dir_owner_and_xattrs(
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

pub fn make_file<R: Read>(
    tree: &mut Tree,
    target: &Target<'_>,
    entry: &mut Entry<'_, R>,
    pax: &PaxRecords,
    metadata: &Metadata,
) -> Result<()> {
    let path = target.path;
    let format =
        sparse::format(pax).map_err(|error| Error::invalid_entry(path, &error.to_string()))?;
    let mut file = dirfd::create_file(target.parent, target.name)
        .map_err(|errno| tree.fs_error("creating file", path, errno))?;
    let written = match format {
        _ if entry.header().entry_type() == EntryType::GNUSparse => {
            sparse::copy_with_holes(&mut file, entry)
        }
        Some(SparseFormat::Map { ref segments, size }) => {
            sparse::write_segments(&mut file, entry, segments, size)
        }
        Some(SparseFormat::MapInData { size }) => sparse::read_map_in_data(entry, size)
            .map_err(CopyError::Read)
            .and_then(|(segments, _)| sparse::write_segments(&mut file, entry, &segments, size)),
        None => copy(&mut file, entry),
    };
    match written {
        Ok(()) => {}
        Err(CopyError::Read(error)) => return Err(Error::Archive(error)),
        Err(CopyError::Write(error)) => {
            return Err(FsError::new("writing", tree.display_path(path), error).into())
        }
    }
    if format.is_some() && entry.read(&mut [0u8]).map_err(Error::Archive)? > 0 {
        return Err(Error::invalid_entry(
            path,
            "the sparse file has more data than its map describes",
        ));
    }

    let fd = OwnedFd::from(file);
    metadata
        .apply_owner_mode_xattrs(&fd)
        .and_then(|()| rfs::futimens(&fd, &metadata.timestamps()))
        .map_err(|errno| tree.fs_error("setting metadata of", path, errno))
}

fn copy(file: &mut File, entry: &mut impl Read) -> Result<(), CopyError> {
    let mut buffer = vec![0u8; COPY_BUFFER];
    loop {
        let read = entry.read(&mut buffer).map_err(CopyError::Read)?;
        if read == 0 {
            return Ok(());
        }
        file.write_all(&buffer[..read]).map_err(CopyError::Write)?;
    }
}

pub fn make_symlink<R: Read>(
    tree: &mut Tree,
    target: &Target<'_>,
    entry: &mut Entry<'_, R>,
    metadata: &Metadata,
) -> Result<()> {
    let path = target.path;
    let link = entry
        .link_name_bytes()
        .ok_or_else(|| Error::invalid_entry(path, "symlink without a target"))?
        .into_owned();
    if link.is_empty() || link.contains(&0) {
        return Err(Error::invalid_entry(path, "invalid symlink target"));
    }
    rfs::symlinkat(OsStr::from_bytes(&link), target.parent, target.name)
        .map_err(|errno| tree.fs_error("creating symlink", path, errno))?;
    apply_metadata_at(tree, target, metadata, false)
}

pub fn make_node<R: Read>(
    tree: &mut Tree,
    target: &Target<'_>,
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
    rfs::mknodat(target.parent, target.name, file_type, Mode::empty(), device)
        .map_err(|errno| tree.fs_error("creating device node", target.path, errno))?;
    apply_metadata_at(tree, target, metadata, true)
}

/// Applies metadata to a symlink or device node, which cannot be opened for writing: by name
/// in its parent, never following a symlink.
fn apply_metadata_at(
    tree: &Tree,
    target: &Target<'_>,
    metadata: &Metadata,
    set_mode: bool,
) -> Result<()> {
    let (parent, name) = (target.parent, target.name);
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
        true => dirfd::chmod_node_at(parent, name, metadata.mode),
        false => Ok(()),
    })
    .and_then(|()| set_xattrs_at(parent, name, target.path, metadata))
    .and_then(|()| dirfd::set_times_at(parent, name, &metadata.timestamps()));
    result.map_err(|errno| tree.fs_error("setting metadata of", target.path, errno))
}

fn set_xattrs_at(
    parent: &OwnedFd,
    name: &OsStr,
    path: &EntryPath,
    metadata: &Metadata,
) -> rustix::io::Result<()> {
    for (key, value) in &metadata.xattrs {
        match dirfd::set_xattr_at(parent, name, key, value) {
            Ok(()) => {}
            Err(Errno::OPNOTSUPP) => {
                warn!(%path, xattr = ?key, "skipping an xattr the file system does not support");
            }
            // xattr(7): user.* attributes exist only on regular files and directories.
            Err(Errno::PERM) if key.as_bytes().starts_with(b"user.") => {
                warn!(%path, xattr = ?key, "skipping a user xattr on a special file");
            }
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}
