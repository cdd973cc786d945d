//! Entry names as they appear in layer tars, turned into components relative to the layer
//! root. Pure functions: no file system access.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// An entry's path below the layer root; empty for the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EntryPath {
    components: Vec<OsString>,
}

/// Why an entry name cannot be placed inside the layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("absolute path")]
    Absolute,
    #[error("path contains a `..` component")]
    ParentComponent,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
}

/// Maximum length of an entry path, in bytes without leading `./`: `PATH_MAX` (4096, with its
/// NUL) less one. containerd and Docker create entries through their full paths, so a longer name
/// fails there too. The bound also caps the depth of a layer's tree, and with it the cost of
/// walking to an entry's parent.
pub const MAX_PATH_BYTES: usize = 4095;

impl EntryPath {
    /// Parses a name from a tar header (or a PAX `path`/`linkpath` record). Leading `./`,
    /// repeated slashes and `.` components are dropped. Bytes that are not UTF-8 are kept.
    pub fn parse(raw: &[u8]) -> Result<EntryPath, PathError> {
        // umoci and some other tools name the root entry "/"; any other absolute name is
        // rejected.
        let only_root = raw.iter().all(|&b| b == b'/' || b == b'.');
        if raw.starts_with(b"/") && !only_root {
            return Err(PathError::Absolute);
        }
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        let mut components = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => continue,
                b".." => return Err(PathError::ParentComponent),
                name => components.push(OsStr::from_bytes(name).to_owned()),
            }
        }
        let length: usize = components.iter().map(|name| name.len() + 1).sum();
        if length.saturating_sub(1) > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        Ok(EntryPath { components })
    }

    pub fn from_components(components: Vec<OsString>) -> EntryPath {
        EntryPath { components }
    }

    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    pub fn components(&self) -> &[OsString] {
        &self.components
    }

    /// The parent's components and the final name; `None` for the root.
    pub fn split_last(&self) -> Option<(&[OsString], &OsStr)> {
        let (name, parent) = self.components.split_last()?;
        Some((parent, name.as_os_str()))
    }

    pub fn push(&mut self, name: &OsStr) {
        self.components.push(name.to_owned());
    }

    pub fn join(&self, name: &OsStr) -> EntryPath {
        let mut components = self.components.clone();
        components.push(name.to_owned());
        EntryPath { components }
    }

    /// Whether `self` is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &EntryPath) -> bool {
        self.components.starts_with(&prefix.components)
    }

    pub fn to_path_buf(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.components.is_empty() {
            return f.write_str("/");
        }
        for component in &self.components {
            write!(f, "/{}", component.to_string_lossy())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_path_parse_table() {
        let cases: &[(&[u8], Result<&str, PathError>)] = &[
            (b"etc/passwd", Ok("/etc/passwd")),
            (b"./etc/passwd", Ok("/etc/passwd")),
            (b"etc/", Ok("/etc")),
            (b"./", Ok("/")),
            (b".", Ok("/")),
            (b"", Ok("/")),
            (b"a//b/./c", Ok("/a/b/c")),
            (b"/etc/passwd", Err(PathError::Absolute)),
            (b"/", Ok("/")),
            (b"//", Ok("/")),
            (b"/./", Ok("/")),
            (b"../x", Err(PathError::ParentComponent)),
            (b"a/../../x", Err(PathError::ParentComponent)),
            (b"a/..", Err(PathError::ParentComponent)),
            (b"a\0b", Err(PathError::Nul)),
            (b"..a/b..", Ok("/..a/b..")),
        ];
        let longest = "a/".repeat(MAX_PATH_BYTES / 2) + "a";
        let too_long = longest.clone() + "a";
        let cases = cases.iter().cloned().chain([
            (longest.as_bytes(), Ok(&*longest)),
            (too_long.as_bytes(), Err(PathError::TooLong)),
        ]);
        for (raw, expected) in cases {
            let parsed = EntryPath::parse(raw).map(|p| p.to_string());
            let expected = expected.map(|path| format!("/{}", path.trim_start_matches('/')));
            assert_eq!(parsed, expected, "input {:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn entry_path_keeps_non_utf8_bytes() {
        let path = EntryPath::parse(b"dir/caf\xe9").unwrap();
        let (_, name) = path.split_last().unwrap();
        assert_eq!(name.as_bytes(), b"caf\xe9");
    }

    #[test]
    fn entry_path_split_last() {
        let path = EntryPath::parse(b"a/b/c").unwrap();
        let (parent, name) = path.split_last().unwrap();
        assert_eq!(parent.len(), 2);
        assert_eq!(name, "c");
        assert!(EntryPath::parse(b"./").unwrap().split_last().is_none());
    }
}
