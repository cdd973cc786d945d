//! An I/O error that names the path it happened on and what was being attempted, so every
//! message reads like "creating directory /var/lib/layerfs/tmp: Permission denied".

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct FsError {
    pub action: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

/// The message already includes the underlying error, so `source` returns `None` and a chain
/// printed with `{:#}` does not repeat it.
impl std::error::Error for FsError {}

impl FsError {
    pub fn new(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> FsError {
        FsError {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Attaches an action and a path to an `io::Result`.
pub trait FsContext<T> {
    fn at(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, FsError>;
}

impl<T> FsContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, FsError> {
        self.map_err(|source| FsError::new(action, path, source))
    }
}

impl<T> FsContext<T> for nix::Result<T> {
    fn at(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, FsError> {
        self.map_err(io::Error::from).at(action, path)
    }
}
