//! File system calls relative to directory file descriptors that never follow a symlink at
//! the final component, for the unpacker and for reading lower layers.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::fs_error::FsError;

/// Directory flags for walking: never follow a symlink, fail on a non-directory.
pub const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens `name` in `parent` as a directory, never through a symlink.
pub fn open_dir(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(parent, name, DIR_FLAGS, Mode::empty())
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

/// Returns the path below `/proc/self/fd` that names `name` in `parent`. The kernel resolves the
/// descriptor's entry to the directory itself, so only `name` is looked up by name.
fn proc_path(parent: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(parent.as_raw_fd().to_string())
        .join(name)
}

/// Sets the permission bits of the device node or FIFO `name` in `parent`.
///
/// `fchmodat(2)` follows symlinks and opening a device may have side effects, so the node is
/// opened with `O_PATH | O_NOFOLLOW`, checked not to be a symlink, and changed through its
/// `/proc/self/fd` entry, which refers to that inode alone.
pub fn chmod_node_at(parent: &OwnedFd, name: &OsStr, mode: u32) -> rustix::io::Result<()> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(parent, name, flags, Mode::empty())?;
    let stat = rfs::fstat(&fd)?;
    if rfs::FileType::from_raw_mode(stat.st_mode) == rfs::FileType::Symlink {
        return Err(Errno::LOOP);
    }
    let path = Path::new("/proc/self/fd").join(fd.as_raw_fd().to_string());
    rfs::chmod(&path, Mode::from_raw_mode(mode))
}

/// Sets an xattr on `name` in `parent` without following it: `lsetxattr` on the name below
/// the parent's `/proc/self/fd` entry, since Linux has no `lsetxattrat` before 6.13.
pub fn set_xattr_at(
    parent: &OwnedFd,
    name: &OsStr,
    key: &OsStr,
    value: &[u8],
) -> rustix::io::Result<()> {
    rfs::lsetxattr(proc_path(parent, name), key, value, XattrFlags::empty())
}

/// Reads every xattr of `name` in `parent`, without following it.
pub fn xattrs_at(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<Vec<(OsString, Vec<u8>)>> {
    let path = proc_path(parent, name);
    let names = read_growing(|buffer| rfs::llistxattr(&path, buffer))?;
    let mut xattrs = Vec::new();
    for key in names.split(|&byte| byte == 0).filter(|key| !key.is_empty()) {
        let key = OsStr::from_bytes(key);
        match read_growing(|buffer| rfs::lgetxattr(&path, key, buffer)) {
            Ok(value) => xattrs.push((key.to_owned(), value)),
            Err(Errno::NODATA) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(xattrs)
}

/// Reads every xattr of an open file or directory.
pub fn xattrs_of(fd: &OwnedFd) -> rustix::io::Result<Vec<(OsString, Vec<u8>)>> {
    let names = read_growing(|buffer| rfs::flistxattr(fd, buffer))?;
    let mut xattrs = Vec::new();
    for key in names.split(|&byte| byte == 0).filter(|key| !key.is_empty()) {
        let key = OsStr::from_bytes(key);
        match read_growing(|buffer| rfs::fgetxattr(fd, key, buffer)) {
            Ok(value) => xattrs.push((key.to_owned(), value)),
            Err(Errno::NODATA) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(xattrs)
}

/// Calls an xattr read with a buffer that grows until the value fits (`ERANGE`).
fn read_growing(
    mut read: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; 1024];
    loop {
        match read(&mut buffer) {
            Ok(length) => {
                buffer.truncate(length);
                return Ok(buffer);
            }
            Err(Errno::RANGE) if buffer.len() < (1 << 20) => buffer.resize(buffer.len() * 4, 0),
            Err(errno) => return Err(errno),
        }
    }
}

/// Empties a directory without following symlinks inside it. Iterative, so that a deep tree
/// cannot exhaust the stack, and holding one descriptor at a time, so that it cannot exhaust
/// the descriptor limit either (a layer path may have 2047 components, and the usual soft
/// limit is 1024): going back up reopens `..`, checked to be the directory it came from.
pub fn remove_contents(dir: &OwnedFd) -> rustix::io::Result<()> {
    // Each level is a directory's identity and the names still to remove from it.
    let mut current = rustix::io::dup(dir)?;
    let mut stack: Vec<(FileId, Vec<OsString>)> = vec![(file_id(&current)?, list_names(dir)?)];
    while let Some((_, names)) = stack.last_mut() {
        let Some(name) = names.pop() else {
            stack.pop();
            if let Some((parent_id, _)) = stack.last() {
                current = open_parent(&current, *parent_id)?;
            }
            continue;
        };
        match rfs::unlinkat(&current, &name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => continue,
            Err(Errno::ISDIR) => {}
            Err(errno) => return Err(errno),
        }
        match rfs::unlinkat(&current, &name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => continue,
            Err(Errno::NOTEMPTY) => {}
            Err(errno) => return Err(errno),
        }
        // Empty the subdirectory first, then come back to remove it.
        let child = open_dir(&current, &name)?;
        let child_names = list_names(&child)?;
        names.push(name);
        stack.push((file_id(&child)?, child_names));
        current = child;
    }
    Ok(())
}

/// A directory's device and inode numbers.
type FileId = (u64, u64);

fn file_id(fd: &OwnedFd) -> rustix::io::Result<FileId> {
    let stat = rfs::fstat(fd)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Opens the parent of `dir`, failing with `ESTALE` unless it is still the directory `expected`
/// (something moved the tree meanwhile).
fn open_parent(dir: &OwnedFd, expected: FileId) -> rustix::io::Result<OwnedFd> {
    let parent = rfs::openat(dir, "..", DIR_FLAGS, Mode::empty())?;
    match file_id(&parent)? == expected {
        true => Ok(parent),
        false => Err(Errno::STALE),
    }
}

pub fn list_names(dir: &OwnedFd) -> rustix::io::Result<Vec<OsString>> {
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
        Err(Errno::ISDIR) => open_dir(&parent_fd, name)
            .and_then(|dir| remove_contents(&dir))
            .and_then(|()| rfs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR)),
        Err(errno) => Err(errno),
    };
    result.map_err(|errno| FsError::new("removing", path, errno.into()))
}
