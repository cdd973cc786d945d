//! Opening paths inside the container's root file system without ever leaving it.
//!
//! Every path is resolved with `openat2(2)` and `RESOLVE_IN_ROOT`, so a symlink in the image
//! (say `/proc -> /etc` or `/dev -> /../../host`) resolves as if the rootfs were `/` and can
//! never lead a mount out of it. Mounts then go onto the opened file descriptor with
//! `move_mount(2)`, never onto a path that could be swapped in between.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::MountAttrFlags;

use super::super::mount_api::{attach, mount_fs};
use crate::fs_error::FsError;

const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);
const DIR_PATH_FLAGS: OFlags = PATH_FLAGS.union(OFlags::DIRECTORY);
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// How many symlinks one path may pass through, as the kernel's own limit (path_resolution(7)).
const MAX_SYMLINKS: usize = 40;

/// The kind of file created at the end of a path that does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    Dir,
    File,
}

/// Opens the directory `path` inside `root`, creating it and its parents with mode 0755 if
/// missing.
pub fn dir(root: impl AsFd, path: &str) -> Result<OwnedFd, FsError> {
    resolve(root.as_fd(), path, Create::Dir)
}

/// Opens the file `path` inside `root`, creating it empty if missing, as a mount point for
/// a file.
pub fn file(root: impl AsFd, path: &str) -> Result<OwnedFd, FsError> {
    resolve(root.as_fd(), path, Create::File)
}

/// Returns where `path` leads inside `root`, relative to it and free of symlinks and `..`,
/// without creating anything: the walk of [`file`], up to the first missing component.
pub fn resolve_path(root: impl AsFd, path: &str) -> Result<PathBuf, FsError> {
    walk(root.as_fd(), path, None)
}

/// Opens `path` inside `root`, creating missing components as [`walk`] does.
fn resolve(root: BorrowedFd<'_>, path: &str, create: Create) -> Result<OwnedFd, FsError> {
    let walked = walk(root, path, Some(create))?;
    let flags = if create == Create::Dir {
        DIR_PATH_FLAGS
    } else {
        PATH_FLAGS
    };
    let walked = if walked.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &walked
    };
    rfs::openat2(root, walked, flags, Mode::empty(), IN_ROOT)
        .map_err(|errno| error("opening", path, errno))
}

/// Walks `path` one component at a time, as if `root` were `/`, and returns the path walked,
/// relative to the root. `..` stops at the root. Symlinks are read and their targets walked
/// in turn, an absolute target from the root. Missing components are created, unless
/// `create` is `None`, and those behind a dangling symlink are created where it points,
/// inside the root, as runc does for mount targets.
fn walk(root: BorrowedFd<'_>, path: &str, create: Option<Create>) -> Result<PathBuf, FsError> {
    let mut pending: Vec<String> = components(path).rev().map(str::to_owned).collect();
    // The resolved path so far, relative to the root; it never contains a symlink or `..`.
    let mut walked = PathBuf::new();
    let mut symlinks = 0;
    // Set once a component is missing and `create` is `None`: the rest is only named.
    let mut missing = false;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                walked.pop();
                continue;
            }
            _ if missing => {
                walked.push(&component);
                continue;
            }
            _ => {}
        }
        let parent = open_walked(root, &walked)?;
        let is_last = pending.is_empty();
        let flags = PATH_FLAGS | OFlags::NOFOLLOW;
        let stat = match rfs::openat(&parent, component.as_str(), flags, Mode::empty()) {
            Ok(fd) => Some(rfs::fstat(&fd).map_err(|errno| error("reading", path, errno))?),
            Err(Errno::NOENT) => None,
            Err(errno) => return Err(error("opening", path, errno)),
        };
        match stat.map(|stat| FileType::from_raw_mode(stat.st_mode)) {
            Some(FileType::Symlink) => {
                symlinks += 1;
                if symlinks > MAX_SYMLINKS {
                    return Err(error("resolving", path, Errno::LOOP));
                }
                let target = rfs::readlinkat(&parent, component.as_str(), Vec::new())
                    .map_err(|errno| error("reading symlink", path, errno))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    walked = PathBuf::new();
                }
                pending.extend(components(&target).rev().map(str::to_owned));
            }
            Some(FileType::Directory) => walked.push(&component),
            Some(_) if is_last && create != Some(Create::Dir) => walked.push(&component),
            Some(_) => return Err(error("opening", path, Errno::NOTDIR)),
            None => {
                match create {
                    Some(create) => {
                        let kind = if is_last { create } else { Create::Dir };
                        make(&parent, &component, kind)
                            .map_err(|errno| error("creating", path, errno))?;
                    }
                    None => missing = true,
                }
                walked.push(&component);
            }
        }
    }
    Ok(walked)
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

fn open_walked(root: BorrowedFd<'_>, walked: &Path) -> Result<OwnedFd, FsError> {
    let walked = if walked.as_os_str().is_empty() {
        Path::new(".")
    } else {
        walked
    };
    rfs::openat2(root, walked, DIR_PATH_FLAGS, Mode::empty(), IN_ROOT)
        .map_err(|errno| error("opening", &walked.to_string_lossy(), errno))
}

fn make(parent: &OwnedFd, name: &str, create: Create) -> Result<(), Errno> {
    let result = match create {
        Create::Dir => rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755)),
        Create::File => {
            let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC;
            rfs::openat(parent, name, flags, Mode::from_raw_mode(0o644)).map(drop)
        }
    };
    match result {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// `path` inside `root` if it exists.
pub fn existing(root: impl AsFd, path: &str) -> Result<Option<OwnedFd>, FsError> {
    match rfs::openat2(root.as_fd(), path, PATH_FLAGS, Mode::empty(), IN_ROOT) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(error("opening", path, errno)),
    }
}

pub fn error(action: &'static str, path: &str, errno: Errno) -> FsError {
    FsError::new(action, Path::new("/").join(path), errno.into())
}

/// Mounts a new `fstype` file system on the directory `path` inside `root`.
pub fn mount_new(
    root: impl AsFd,
    path: &str,
    fstype: &str,
    options: &[&str],
    attributes: MountAttrFlags,
) -> Result<(), FsError> {
    let target = dir(root, path)?;
    let mount = mount_fs(fstype, fstype, options, attributes)
        .map_err(|error| FsError::new("creating a mount for", Path::new("/").join(path), error))?;
    attach(&mount, &target)
        .map_err(|error| FsError::new("mounting", Path::new("/").join(path), error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// Builds a root with a dangling absolute symlink, a relative one that climbs far above
    /// the root, a chain, a loop and a regular file.
    fn fake_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let path = root.path();
        fs::create_dir_all(path.join("etc")).unwrap();
        fs::write(path.join("etc/file"), "").unwrap();
        symlink("/target/abs", path.join("abs")).unwrap();
        symlink("../../../../../../../../climbed", path.join("etc/up")).unwrap();
        symlink("abs", path.join("chain")).unwrap();
        symlink("loop", path.join("loop")).unwrap();
        root
    }

    fn root_fd(root: &tempfile::TempDir) -> OwnedFd {
        rfs::open(root.path(), DIR_PATH_FLAGS, Mode::empty()).unwrap()
    }

    #[test]
    fn directories_land_inside_the_root() {
        let root = fake_root();
        let fd = root_fd(&root);
        let cases = [
            ("new/dir", "new/dir"),
            ("abs/x", "target/abs/x"),
            ("chain", "target/abs"),
            ("etc/up/y", "climbed/y"),
            ("../../etc/../z", "z"),
        ];
        for (path, created) in cases {
            dir(&fd, path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(root.path().join(created).is_dir(), "{path} → {created}");
        }
        let parent = root.path().parent().unwrap();
        assert!(!parent.join("climbed").exists());
    }

    #[test]
    fn files_are_created_empty() {
        let root = fake_root();
        let fd = root_fd(&root);
        file(&fd, "etc/up/resolv.conf").unwrap();
        assert_eq!(
            fs::read(root.path().join("climbed/resolv.conf")).unwrap(),
            b""
        );
        file(&fd, "etc/file").unwrap();
    }

    #[test]
    fn resolve_path_creates_nothing() {
        let root = fake_root();
        let fd = root_fd(&root);
        let cases = [
            ("etc/file", "etc/file"),
            ("abs/x/../y", "target/abs/y"),
            ("chain/new", "target/abs/new"),
            ("etc/up/hosts", "climbed/hosts"),
            ("../../etc/./file", "etc/file"),
        ];
        for (path, expected) in cases {
            let resolved = resolve_path(&fd, path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(resolved, Path::new(expected), "{path}");
        }
        assert!(!root.path().join("target").exists());
        assert!(!root.path().join("climbed").exists());
    }

    #[test]
    fn loops_and_files_in_the_way_fail() {
        let root = fake_root();
        let fd = root_fd(&root);
        assert!(dir(&fd, "loop/x").is_err());
        assert!(dir(&fd, "etc/file/x").is_err());
    }
}
