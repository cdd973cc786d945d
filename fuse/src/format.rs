//! The overlayfs on-disk format that layer and upper directories use, as described in the
//! kernel's Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories"):
//!
//! - a whiteout is a character device with device number 0/0; it hides the name in every
//!   layer below;
//! - an opaque directory carries the xattr `trusted.overlay.opaque` = `y`; it hides the
//!   directories of the same path in every layer below;
//! - every `trusted.overlay.*` xattr belongs to overlayfs and is never shown to users.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use rustix::fd::AsFd;
use rustix::fs::{self as rfs, FileType, Mode, Stat};
use rustix::io::Errno;

pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const PRIVATE_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

pub fn is_whiteout(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}

/// Whether an xattr name is one of overlayfs's own, hidden from users.
pub fn is_private_xattr(name: &OsStr) -> bool {
    name.as_bytes().starts_with(PRIVATE_XATTR_PREFIX)
}

/// Whether the directory at `path` is opaque. Only `y` counts: overlayfs also writes `x`
/// there to mean "contains xattr whiteouts", which does not hide lower layers.
pub fn is_opaque(path: &std::path::Path) -> rustix::io::Result<bool> {
    let mut value = [0u8; 2];
    match rfs::lgetxattr(path, OPAQUE_XATTR, &mut value) {
        Ok(len) => Ok(value[..len] == *b"y"),
        Err(Errno::NODATA | Errno::NOTSUP | Errno::RANGE) => Ok(false),
        Err(errno) => Err(errno),
    }
}

/// Creates a whiteout named `name` in `dir`.
pub fn make_whiteout(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<()> {
    rfs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        rfs::makedev(0, 0),
    )
}

/// Marks the directory at `path` opaque.
pub fn set_opaque(path: &std::path::Path) -> rustix::io::Result<()> {
    rfs::lsetxattr(path, OPAQUE_XATTR, b"y", rfs::XattrFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_xattrs_are_the_overlay_namespace() {
        let cases = [
            ("trusted.overlay.opaque", true),
            ("trusted.overlay.origin", true),
            ("trusted.overlayfs", false),
            ("user.overlay.opaque", false),
            ("security.capability", false),
        ];
        for (name, private) in cases {
            assert_eq!(is_private_xattr(OsStr::new(name)), private, "{name}");
        }
    }
}
