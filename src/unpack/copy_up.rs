//! Copying a lower file up into the layer for the hardlinks that name it, so that every name
//! is one inode, as overlayfs does on `link(2)` to a lower file.
//!
//! A regular file is copied into the placeholder the streaming pass left, which every name
//! already shares. A symlink, device or FIFO cannot be written into, so a new one is made
//! under a temporary name and renamed over each name in turn.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid, XattrFlags};
use rustix::io::Errno;

use super::dirfd;
use super::links::LowerLink;
use super::lower::{Found, LowerView};
use super::path::EntryPath;
use super::resolve::{copyable, times_of, Upper};
use super::{Error, Result};
use crate::fs_error::FsError;

/// The lower file a link names.
struct Source {
    parent: OwnedFd,
    name: OsString,
    stat: Stat,
}

pub fn copy_up(view: &LowerView, upper: &mut Upper, link: &LowerLink) -> Result<()> {
    let source = match view.find(&link.target)? {
        Found::Other { parent, name, stat } => Source { parent, name, stat },
        Found::Missing => return Err(link_error(link, "is not in this layer or the layers below")),
        Found::Directory(_) => return Err(link_error(link, "is a directory")),
    };
    match FileType::from_raw_mode(source.stat.st_mode) {
        FileType::RegularFile => copy_file(upper, link, &source),
        _ => copy_node(upper, link, &source),
    }
}

fn link_error(link: &LowerLink, what: &str) -> Error {
    let name = link.names.last().unwrap_or(&link.target);
    Error::invalid_entry(name, &format!("hardlink target {} {what}", link.target))
}

/// Fills the placeholder that all names share with the lower file's content and metadata.
fn copy_file(upper: &mut Upper, link: &LowerLink, source: &Source) -> Result<()> {
    let first = &link.names[0];
    let (_, name) = first.split_last().expect("names are not the root");
    let parent = upper.open_dir(&parent_path(first))?;
    let read_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut input = rfs::openat(&source.parent, &source.name, read_flags, Mode::empty())
        .map(File::from)
        .map_err(|errno| upper.error("opening the hardlink target below", &link.target, errno))?;
    let write_flags = OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut output = rfs::openat(&parent, name, write_flags, Mode::empty())
        .map(File::from)
        .map_err(|errno| upper.error("opening", first, errno))?;
    io::copy(&mut input, &mut output)
        .map_err(|error| FsError::new("copying up", upper.display_path(first), error))?;

    let input = OwnedFd::from(input);
    let output = OwnedFd::from(output);
    let xattrs = dirfd::xattrs_of(&input).map_err(|errno| {
        upper.error("reading xattrs of the hardlink target", &link.target, errno)
    })?;
    let stat = &source.stat;
    let result = rfs::fchown(
        &output,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    )
    .and_then(|()| rfs::fchmod(&output, Mode::from_raw_mode(stat.st_mode & 0o7777)))
    .and_then(|()| {
        copyable(&xattrs)
            .try_for_each(|(key, value)| rfs::fsetxattr(&output, key, value, XattrFlags::empty()))
    })
    .and_then(|()| rfs::futimens(&output, &times_of(stat)));
    result.map_err(|errno| upper.error("setting metadata of", first, errno))
}

/// Makes a copy of a lower symlink, device or FIFO and renames a link to it over each name.
fn copy_node(upper: &mut Upper, link: &LowerLink, source: &Source) -> Result<()> {
    let first = &link.names[0];
    let first_parent = upper.parent_of(first)?;
    let temporary = make_node(upper, &first_parent, first, source)?;

    for name in &link.names[1..] {
        let parent = upper.parent_of(name)?;
        let (_, leaf) = name.split_last().expect("names are not the root");
        let linked = with_temporary_name(|candidate| {
            rfs::linkat(
                &first_parent,
                &temporary,
                &parent,
                candidate,
                AtFlags::empty(),
            )
        })
        .map_err(|errno| upper.error("linking", name, errno))?;
        rfs::renameat(&parent, &linked, &parent, leaf)
            .map_err(|errno| upper.error("replacing", name, errno))?;
    }
    let (_, leaf) = first.split_last().expect("names are not the root");
    rfs::renameat(&first_parent, &temporary, &first_parent, leaf)
        .map_err(|errno| upper.error("replacing", first, errno))
}

/// Creates a copy of the lower node under a temporary name in `parent` and returns the name.
fn make_node(
    upper: &Upper,
    parent: &OwnedFd,
    first: &EntryPath,
    source: &Source,
) -> Result<OsString> {
    let kind = FileType::from_raw_mode(source.stat.st_mode);
    let target = match kind {
        FileType::Symlink => Some(
            rfs::readlinkat(&source.parent, &source.name, Vec::new())
                .map_err(|errno| upper.error("reading the hardlink target", first, errno))?,
        ),
        _ => None,
    };
    let name = with_temporary_name(|candidate| match &target {
        Some(target) => rfs::symlinkat(target.as_c_str(), parent, candidate),
        None => rfs::mknodat(
            parent,
            candidate,
            kind,
            Mode::empty(),
            source.stat.st_rdev as _,
        ),
    })
    .map_err(|errno| upper.error("copying up", first, errno))?;

    copy_node_metadata(parent, &name, source, kind)
        .map_err(|errno| upper.error("setting metadata of", first, errno))?;
    Ok(name)
}

fn copy_node_metadata(
    parent: &OwnedFd,
    name: &OsStr,
    source: &Source,
    kind: FileType,
) -> rustix::io::Result<()> {
    let stat = &source.stat;
    rfs::chownat(
        parent,
        name,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if kind != FileType::Symlink {
        dirfd::chmod_node_at(parent, name, stat.st_mode & 0o7777)?;
    }
    let xattrs = dirfd::xattrs_at(&source.parent, &source.name)?;
    for (key, value) in copyable(&xattrs) {
        dirfd::set_xattr_at(parent, name, key, value)?;
    }
    dirfd::set_times_at(parent, name, &times_of(stat))
}

/// Runs `create` with fresh temporary names until one is free.
fn with_temporary_name(
    mut create: impl FnMut(&OsStr) -> rustix::io::Result<()>,
) -> rustix::io::Result<OsString> {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the kernel's random source is available");
        let name = OsString::from(format!(".layerfs-copy-up-{}", hex::encode(bytes)));
        match create(&name) {
            Ok(()) => return Ok(name),
            Err(Errno::EXIST) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

fn parent_path(path: &EntryPath) -> EntryPath {
    let (parent, _) = path.split_last().expect("names are not the root");
    EntryPath::from_components(parent.to_vec())
}
