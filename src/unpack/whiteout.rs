//! The whiteout names of the OCI image layer format: `.wh.NAME` deletes NAME from the layers
//! below, and `.wh..wh..opq` makes its directory opaque, hiding everything below it. Other
//! names starting with `.wh..wh.` are AUFS bookkeeping that Docker ignores, and so does
//! layerfs. Pure functions: no file system access.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

pub const PREFIX: &[u8] = b".wh.";
pub const OPAQUE: &[u8] = b".wh..wh..opq";
const META_PREFIX: &[u8] = b".wh..wh.";

/// What a file name means in a layer tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    /// An ordinary entry.
    Plain,
    /// Deletes the named sibling from the layers below.
    Whiteout(&'a OsStr),
    /// Hides the whole lower content of the directory it sits in.
    Opaque,
    /// AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`), skipped.
    AufsMeta,
}

/// Why a whiteout name is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed whiteout name {0:?}")]
pub struct MalformedWhiteout(pub String);

/// Classifies the final component of an entry's path.
pub fn classify(name: &OsStr) -> Result<Name<'_>, MalformedWhiteout> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE {
        return Ok(Name::Opaque);
    }
    if bytes.starts_with(META_PREFIX) {
        return Ok(Name::AufsMeta);
    }
    let Some(target) = bytes.strip_prefix(PREFIX) else {
        return Ok(Name::Plain);
    };
    if matches!(target, b"" | b"." | b"..") {
        return Err(MalformedWhiteout(name.to_string_lossy().into_owned()));
    }
    Ok(Name::Whiteout(OsStr::from_bytes(target)))
}

/// Tells whether a parent directory is AUFS metadata (`.wh..wh.plnk/…`). Everything below
/// it is skipped like the directory itself.
pub fn in_aufs_meta(parents: &[std::ffi::OsString]) -> bool {
    parents
        .iter()
        .any(|component| component.as_bytes().starts_with(META_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_classify_table() {
        let cases: &[(&str, Result<Name, ()>)] = &[
            ("passwd", Ok(Name::Plain)),
            (".wh.passwd", Ok(Name::Whiteout(OsStr::new("passwd")))),
            (".wh..hidden", Ok(Name::Whiteout(OsStr::new(".hidden")))),
            (".wh..wh..opq", Ok(Name::Opaque)),
            (".wh..wh.plnk", Ok(Name::AufsMeta)),
            (".wh..wh.aufs", Ok(Name::AufsMeta)),
            (".wh.", Err(())),
            (".wh..", Err(())),
            (".wh...", Err(())),
            ("x.wh.y", Ok(Name::Plain)),
            (".whx", Ok(Name::Plain)),
        ];
        for (name, expected) in cases {
            let result = classify(OsStr::new(name)).map_err(|_| ());
            assert_eq!(result, *expected, "name {name:?}");
        }
    }
}
