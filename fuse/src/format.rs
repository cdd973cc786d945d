//! The overlayfs on-disk format that layer and upper directories use, as described in the
//! kernel's Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories"):
//!
//! - a whiteout is a character device with device number 0/0; it hides the name in every
//!   layer below;
//! - an opaque directory carries the xattr `trusted.overlay.opaque` = `y`; it hides the
//!   directories of the same path in every layer below;
//! - every `trusted.overlay.*` xattr belongs to overlayfs and is never shown to users, except
//!   that since Linux 6.7 a user's own `trusted.overlay.NAME` is stored escaped, as
//!   `trusted.overlay.overlay.NAME` (fs/overlayfs/xattrs.c), so that overlays can nest.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use rustix::fd::AsFd;
use rustix::fs::{self as rfs, FileType, Mode, Stat};
use rustix::io::Errno;

pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const PRIVATE_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const ESCAPED_XATTR_PREFIX: &[u8] = b"trusted.overlay.overlay.";

/// NOTE: overlayfs since Linux 6.7 also accepts whiteouts made of xattrs (an empty file
/// with `trusted.overlay.whiteout`, in a directory marked `trusted.overlay.whiteouts`), used
/// when overlays nest; layers in that form show those files here instead of hiding names.
pub fn is_whiteout(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}

/// Returns whether a real xattr name is one of overlayfs's own, hidden from users.
pub fn is_private_xattr(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.starts_with(PRIVATE_XATTR_PREFIX) && !name.starts_with(ESCAPED_XATTR_PREFIX)
}

/// Returns the real name under which the xattr a user calls `name` is stored.
pub fn stored_xattr_name(name: &OsStr) -> OsString {
    let name = name.as_bytes();
    match name.strip_prefix(PRIVATE_XATTR_PREFIX) {
        Some(rest) => OsStr::from_bytes(&[ESCAPED_XATTR_PREFIX, rest].concat()).to_os_string(),
        None => OsStr::from_bytes(name).to_os_string(),
    }
}

/// Returns the name users see for the real xattr `name`, or `None` for overlayfs's own.
pub fn shown_xattr_name(name: &OsStr) -> Option<OsString> {
    let bytes = name.as_bytes();
    if let Some(rest) = bytes.strip_prefix(ESCAPED_XATTR_PREFIX) {
        return Some(OsStr::from_bytes(&[PRIVATE_XATTR_PREFIX, rest].concat()).to_os_string());
    }
    (!is_private_xattr(name)).then(|| name.to_os_string())
}

/// Returns whether the directory at `path` is opaque. Only `y` counts: overlayfs also writes `x`
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
    fn user_overlay_xattrs_are_stored_escaped() {
        let cases = [
            ("trusted.overlay.opaque", "trusted.overlay.overlay.opaque"),
            ("user.name", "user.name"),
            ("security.capability", "security.capability"),
        ];
        for (shown, stored) in cases {
            assert_eq!(
                stored_xattr_name(OsStr::new(shown)),
                OsStr::new(stored),
                "{shown}"
            );
            let back = shown_xattr_name(OsStr::new(stored));
            assert_eq!(back.as_deref(), Some(OsStr::new(shown)), "{stored}");
        }
    }

    #[test]
    fn own_xattrs_are_not_shown() {
        assert_eq!(shown_xattr_name(OsStr::new("trusted.overlay.origin")), None);
    }

    #[test]
    fn private_xattrs_are_the_overlay_namespace() {
        let cases = [
            ("trusted.overlay.opaque", true),
            ("trusted.overlay.origin", true),
            ("trusted.overlay.overlay.opaque", false),
            ("trusted.overlayfs", false),
            ("user.overlay.opaque", false),
            ("security.capability", false),
        ];
        for (name, private) in cases {
            assert_eq!(is_private_xattr(OsStr::new(name)), private, "{name}");
        }
    }
}
