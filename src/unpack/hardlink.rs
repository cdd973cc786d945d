//! Hardlink entries. A link to a file this layer already has is a `linkat(2)` without
//! `AT_SYMLINK_FOLLOW`, so a link to a symlink links the symlink itself and never what it
//! points to. A link to a file that only the layers below have gets a placeholder copy at
//! the target's path, which `resolve_lowers` fills in (see `links`).

use std::io::Read;

use rustix::fs::{self as rfs, AtFlags};
use rustix::io::Errno;
use tar::Entry;

use super::create::Target;
use super::dirfd;
use super::path::EntryPath;
use super::tree::{Lookup, Tree};
use super::{Error, Result};

/// Parses the entry's link target, a path inside the layer.
pub fn target<R: Read>(entry: &Entry<'_, R>, path: &EntryPath) -> Result<EntryPath> {
    let raw = entry
        .link_name_bytes()
        .ok_or_else(|| Error::invalid_entry(path, "hardlink without a target"))?;
    EntryPath::parse(&raw).map_err(|error| Error::UnsafeEntry {
        path: path.to_string(),
        reason: format!("hardlink target: {error}"),
    })
}

pub fn make<R: Read>(tree: &mut Tree, link: &Target<'_>, entry: &Entry<'_, R>) -> Result<()> {
    let path = link.path;
    let target = target(entry, path)?;
    let Some((target_parent, target_name)) = target.split_last() else {
        return Err(Error::invalid_entry(path, "hardlink to the layer root"));
    };
    let reason = match tree.lookup(&target)? {
        Lookup::File => {
            let parent = tree.dir(target_parent)?;
            link_at(tree, &parent, target_name, link)?;
            tree.lower_links.add_name_if_linked(&target, path);
            return Ok(());
        }
        Lookup::Below => {
            let parent = tree.dir(target_parent)?;
            dirfd::create_file(&parent, target_name)
                .map_err(|errno| tree.fs_error("creating the copy-up of", &target, errno))?;
            link_at(tree, &parent, target_name, link)?;
            tree.lower_links.add(&target, path);
            return Ok(());
        }
        Lookup::Directory => "is a directory",
        Lookup::Hidden => "is deleted by a whiteout in this layer",
    };
    Err(Error::invalid_entry(
        path,
        &format!("hardlink target {target} {reason}"),
    ))
}

fn link_at(
    tree: &Tree,
    target_parent: &std::os::fd::OwnedFd,
    target_name: &std::ffi::OsStr,
    link: &Target<'_>,
) -> Result<()> {
    match rfs::linkat(
        target_parent,
        target_name,
        link.parent,
        link.name,
        AtFlags::empty(),
    ) {
        Ok(()) => Ok(()),
        Err(Errno::PERM) => Err(Error::invalid_entry(
            link.path,
            "hardlink target is a directory",
        )),
        Err(errno) => Err(tree.fs_error("creating hardlink", link.path, errno)),
    }
}
