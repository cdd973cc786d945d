//! Layer unpacking: a tar stream in, a directory in overlayfs form out.
//!
//! Whiteouts become what overlayfs reads: `.wh.NAME` a character device 0/0 named NAME, and
//! `.wh..wh..opq` the `trusted.overlay.opaque` xattr on its directory. A whiteout only ever
//! hides lower layers (OCI image spec, "Whiteouts"): when its target already exists in the
//! same layer, the entry stays, and a directory there is marked opaque instead. The bottom
//! layer of an image has nothing below it, so its whiteouts are dropped.
//!
//! Unpacking is two steps. [`unpack`] streams one layer's archive into its directory on its
//! own, so that the layers of an image can be unpacked at the same time. What depends on the
//! layers below (hardlinks to lower files, the metadata of parent directories the archive
//! does not list, an opaque root) is recorded in [`Summary::lower`], and
//! [`resolve_lowers`] completes it once the layers below are complete.
//!
//! Paths are resolved through directory file descriptors one component at a time without
//! following symlinks (see `tree`), so no entry can write outside the layer directory.

mod copy_up;
mod create;
mod decompress;
mod dirfd;
mod hardlink;
mod header_budget;
mod links;
mod lower;
mod metadata;
mod path;
mod pax;
mod resolve;
mod sparse;
mod tree;
mod whiteout;

use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::Path;

use tar::{Entry, EntryType};
use tracing::debug;

use crate::fs_error::FsError;
use header_budget::{HeaderBudget, Metered};
use metadata::Metadata;
use pax::PaxRecords;
use tree::{Existing, Tree};

pub use decompress::decompress;
pub use dirfd::remove_tree;
pub use links::LowerLink;
pub use path::EntryPath;
pub use resolve::{resolve_lowers, LowerRefs};
pub use tree::OPAQUE_XATTR;

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

/// The results of unpacking besides the tree itself.
#[derive(Debug, Default)]
pub struct Summary {
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub file_bytes: u64,
    /// The references to the layers below that [`resolve_lowers`] completes.
    pub lower: LowerRefs,
}

/// Unpacks the tar stream `reader` into the empty directory `dest`. Reads up to the end of
/// the archive, not necessarily to the end of `reader`.
pub fn unpack<R: Read>(reader: R, dest: &Path, options: &Options) -> Result<Summary> {
    let budget = HeaderBudget::default();
    let metered = Metered {
        inner: reader,
        budget: budget.clone(),
    };
    let mut archive = tar::Archive::new(metered);
    let mut tree = Tree::open(dest)?;
    let mut summary = Summary::default();
    let mut entries = archive.entries().map_err(Error::Archive)?;
    loop {
        // Only headers, extension records and padding are read while looking for the next
        // entry: see `header_budget`.
        budget.arm();
        let next = entries.next();
        budget.disarm();
        let Some(entry) = next else {
            break;
        };
        let mut entry = entry.map_err(Error::Archive)?;
        if entry.header().entry_type().is_file() || entry.header().entry_type().is_gnu_sparse() {
            summary.file_bytes += entry.size();
        }
        apply_entry(&mut tree, &mut entry, options)?;
        // Skipped entries can carry data too; it is read here, outside the budget.
        io::copy(&mut entry, &mut io::sink()).map_err(Error::Archive)?;
        summary.entries += 1;
    }
    summary.lower = tree.finish()?;
    Ok(summary)
}

/// One archive entry's name, parsed, with its type and PAX records.
struct Parsed {
    path: EntryPath,
    kind: EntryType,
    pax: PaxRecords,
}

fn apply_entry<R: Read>(
    tree: &mut Tree,
    entry: &mut Entry<'_, R>,
    options: &Options,
) -> Result<()> {
    let kind = entry.header().entry_type();
    if !is_supported(kind) {
        // Checked before the PAX records are read: reading them reads a PAX global header's
        // data whole into memory.
        debug!(?kind, "skipping an entry of a kind layers do not use");
        return Ok(());
    }
    let pax = PaxRecords::read(entry).map_err(Error::Archive)?;
    // GNU tar's PAX sparse formats keep the real name in a record of their own.
    let raw = match pax.get("GNU.sparse.name") {
        Some(name) => name.to_vec(),
        None => entry.path_bytes().into_owned(),
    };
    let path = EntryPath::parse(&raw).map_err(|error| Error::UnsafeEntry {
        path: String::from_utf8_lossy(&raw).into_owned(),
        reason: error.to_string(),
    })?;
    let parsed = Parsed { path, kind, pax };
    let Some((parent, name)) = parsed.path.split_last() else {
        return apply_root(tree, entry, &parsed);
    };
    if whiteout::in_aufs_meta(parent) {
        debug!(path = %parsed.path, "skipping AUFS metadata");
        return Ok(());
    }
    let classified = whiteout::classify(name).map_err(|error| Error::InvalidEntry {
        path: parsed.path.to_string(),
        reason: error.to_string(),
    })?;
    let parent = EntryPath::from_components(parent.to_vec());
    match classified {
        whiteout::Name::AufsMeta => Ok(()),
        whiteout::Name::Opaque => apply_opaque(tree, &parent, options),
        whiteout::Name::Whiteout(target) => apply_whiteout(tree, &parent, target, options),
        whiteout::Name::Plain => apply_plain(tree, entry, &parsed),
    }
}

/// Applies the archive's entry for the layer root itself (`./`), which must be a directory.
fn apply_root<R: Read>(tree: &mut Tree, entry: &mut Entry<'_, R>, parsed: &Parsed) -> Result<()> {
    let root = EntryPath::default();
    if !parsed.kind.is_dir() {
        return Err(Error::unsafe_entry(
            &root,
            "the layer root is not a directory",
        ));
    }
    let metadata = Metadata::read(entry.header(), &parsed.pax).map_err(Error::Archive)?;
    let fd = tree.root_fd();
    create::apply_dir_owner_and_xattrs(tree, &fd, &root, &metadata)?;
    tree.mark_not_inherited(&root);
    tree.defer_dir(&root, metadata);
    Ok(())
}

/// Rejects a whiteout or opaque marker that hides a lower file this layer hardlinks to. A
/// whiteout applies before every entry of its layer, wherever it sits in the archive (OCI
/// image spec, "Whiteouts"), so it leaves that hardlink without a target.
fn reject_hidden_link_target(tree: &Tree, hidden: &EntryPath) -> Result<()> {
    match tree.lower_links.target_at_or_below(hidden) {
        Some(target) => Err(Error::invalid_entry(
            hidden,
            &format!("this whiteout deletes {target}, the target of a hardlink in this layer"),
        )),
        None => Ok(()),
    }
}

fn apply_opaque(tree: &mut Tree, dir: &EntryPath, options: &Options) -> Result<()> {
    if options.base_layer {
        return Ok(());
    }
    reject_hidden_link_target(tree, dir)?;
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
    let path = dir.join(target);
    reject_hidden_link_target(tree, &path)?;
    let parent = tree.dir(dir.components())?;
    match tree.existing(&parent, target, &path)? {
        Existing::Nothing => tree.make_whiteout(&parent, target, &path),
        Existing::Directory => {
            let fd = tree.dir(path.components())?;
            tree.mark_not_inherited(&path);
            tree.set_opaque(&fd, &path)
        }
        // A file, symlink or device of this layer already hides the lower entry.
        Existing::Whiteout | Existing::Other => Ok(()),
    }
}

fn apply_plain<R: Read>(tree: &mut Tree, entry: &mut Entry<'_, R>, parsed: &Parsed) -> Result<()> {
    let path = &parsed.path;
    let kind = parsed.kind;
    if kind == EntryType::Link && hardlink::target(entry, path)? == *path {
        debug!(%path, "skipping a hardlink to itself");
        return Ok(());
    }
    let metadata = Metadata::read(entry.header(), &parsed.pax).map_err(Error::Archive)?;
    let (parent_components, name) = path.split_last().expect("the root is handled apart");
    let parent = tree.dir(parent_components)?;
    let existing = tree.existing(&parent, name, path)?;
    let keep_existing_dir = kind.is_dir() && existing == Existing::Directory;
    if existing != Existing::Nothing && !keep_existing_dir {
        tree.remove(&parent, name, path)?;
    }

    let target = create::Target {
        parent: &parent,
        name,
        path,
    };
    match kind {
        EntryType::Directory => {
            // A directory that replaces a non-directory of this layer replaces whatever the
            // lower layers had there too, so it hides their content.
            let replaced = matches!(existing, Existing::Whiteout | Existing::Other);
            create::make_dir(tree, &target, &metadata, !keep_existing_dir, replaced)
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            create::make_file(tree, &target, entry, &parsed.pax, &metadata)
        }
        EntryType::Symlink => create::make_symlink(tree, &target, entry, &metadata),
        EntryType::Link => hardlink::make(tree, &target, entry),
        _ => create::make_node(tree, &target, entry, kind, &metadata),
    }
}

/// Tells whether a layer entry of this type describes a file. Others (GNU volume labels and
/// multi-volume parts, PAX global headers, which Docker ignores too) are skipped.
fn is_supported(kind: EntryType) -> bool {
    matches!(
        kind,
        EntryType::Directory
            | EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo
    )
}
