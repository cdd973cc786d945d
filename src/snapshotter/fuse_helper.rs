//! `layerfs overlay TARGET -o OPTIONS`: the mount helper that performs the snapshotter's
//! `fuse3.layerfs` mounts (see `mounts`).
//!
//! containerd performs a mount of type `fuse3.<name>` by running
//! `mount.fuse3 SOURCE TARGET -o OPTION… -t <name>` from its PATH (`mountWithHelper` in
//! `mount/mount_linux.go`, read in 1.6.20). libfuse's mount.fuse3 (3.14) joins the options
//! with commas, appends `dev,suid`, and runs `/bin/sh -c '<name> SOURCE TARGET -o OPTIONS'`.
//! For the type `fuse3.layerfs` and the source `overlay`, the command is
//! `layerfs overlay TARGET -o OPTIONS`.
//!
//! The command starts a FUSE daemon for the mount, as `layerfs mount --driver fuse` does,
//! in a new directory `<statedir>/fuse-<id>/` for the daemon's config, log and lock. It
//! exits once the mount is live, because containerd waits for the helper and for its output
//! pipes to close. containerd unmounts with `fusermount3 -u` or `umount2(2)`, and the
//! daemon exits when the kernel ends the FUSE connection: at once, or after a lazy unmount
//! once no process uses the mount. The daemon's directory stays until the snapshotter
//! commits or removes the snapshot, so its log can be read after the mount is gone.

use std::fs;
use std::path::{Path, PathBuf};

use layerfs_fuse::{Layers, OpenMode, UpperDirs};
use tracing::debug;

use crate::fs_error::{FsContext, FsError};
use crate::mount;
use crate::store::random_id;
use crate::unpack::remove_tree;

/// The prefix of the daemon directories in a snapshot's directory.
pub const DAEMON_DIR_PREFIX: &str = "fuse-";

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("mount option {0:?} is not supported by fuse3.layerfs mounts")]
    UnsupportedOption(String),

    #[error("mount option {0}= is missing")]
    MissingOption(&'static str),

    #[error("mount option {0}= is given more than once")]
    RepeatedOption(&'static str),

    #[error("mount option {option}= needs absolute paths, got {value:?}")]
    RelativePath { option: &'static str, value: String },

    #[error("mount options upperdir= and workdir= must be given together")]
    UpperWithoutWork,

    #[error("mount option ro contradicts upperdir=")]
    ReadOnlyWithUpper,

    #[error(transparent)]
    Mount(#[from] mount::Error),

    #[error(transparent)]
    Fs(#[from] FsError),
}

/// A mount as its options describe it.
#[derive(Debug, PartialEq, Eq)]
pub struct HelperMount {
    pub layers: Layers,
    /// The directory in which the daemon's own directory is created.
    pub state_dir: PathBuf,
}

/// The options of a mount, before they are checked together.
#[derive(Default)]
struct DirOptions {
    lowers: Option<Vec<PathBuf>>,
    upper: Option<PathBuf>,
    work: Option<PathBuf>,
    state: Option<PathBuf>,
    read_only: bool,
}

/// Parses the `-o` arguments, each a comma-separated list of options. `dev`, `suid` and
/// `rw` are accepted because the mount has them anyway. `ro` is accepted without an upper
/// directory, where the mount is read-only anyway.
pub fn parse_options(arguments: &[String]) -> Result<HelperMount, HelperError> {
    let mut dirs = DirOptions::default();
    for option in arguments.iter().flat_map(|argument| argument.split(',')) {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        match key {
            "lowerdir" => set_once(&mut dirs.lowers, "lowerdir", paths("lowerdir", value)?)?,
            "upperdir" => set_once(&mut dirs.upper, "upperdir", path("upperdir", value)?)?,
            "workdir" => set_once(&mut dirs.work, "workdir", path("workdir", value)?)?,
            "statedir" => set_once(&mut dirs.state, "statedir", path("statedir", value)?)?,
            "ro" if value.is_empty() => dirs.read_only = true,
            "dev" | "suid" | "rw" | "" if value.is_empty() => {}
            _ => return Err(HelperError::UnsupportedOption(option.to_owned())),
        }
    }

    let upper = match (dirs.upper, dirs.work) {
        (Some(upper), Some(work)) => Some(UpperDirs { upper, work }),
        (None, None) => None,
        _ => return Err(HelperError::UpperWithoutWork),
    };
    if dirs.read_only && upper.is_some() {
        return Err(HelperError::ReadOnlyWithUpper);
    }
    let lowers = dirs.lowers.ok_or(HelperError::MissingOption("lowerdir"))?;
    let state_dir = dirs.state.ok_or(HelperError::MissingOption("statedir"))?;
    Ok(HelperMount {
        layers: Layers { lowers, upper },
        state_dir,
    })
}

fn set_once<T>(slot: &mut Option<T>, option: &'static str, value: T) -> Result<(), HelperError> {
    match slot.replace(value) {
        Some(_) => Err(HelperError::RepeatedOption(option)),
        None => Ok(()),
    }
}

fn path(option: &'static str, value: &str) -> Result<PathBuf, HelperError> {
    if !value.starts_with('/') {
        let value = value.to_owned();
        return Err(HelperError::RelativePath { option, value });
    }
    Ok(PathBuf::from(value))
}

/// Parses a `lowerdir` value: paths separated by colons, topmost first.
fn paths(option: &'static str, value: &str) -> Result<Vec<PathBuf>, HelperError> {
    value.split(':').map(|dir| path(option, dir)).collect()
}

/// Mounts `mount` on `target` and returns the process ID of the daemon serving it. The
/// daemon's directory stays when it fails to start, because the error names its log.
pub fn mount_with_daemon(mount: &HelperMount, target: &Path) -> Result<u32, HelperError> {
    let target = target.canonicalize().at("resolving mount target", target)?;
    let dir = mount
        .state_dir
        .join(format!("{DAEMON_DIR_PREFIX}{}", random_id(16)));
    fs::create_dir(&dir).at("creating FUSE daemon directory", &dir)?;
    debug!(target = %target.display(), dir = %dir.display(), "mounting snapshot with FUSE");
    let pid = mount::start_fuse_daemon(&dir, &target, &mount.layers, OpenMode::Cached)?;
    Ok(pid)
}

/// Removes the daemon directories in a snapshot's directory `dir`. A daemon whose mount is
/// gone may still be exiting, which is harmless: it only writes to its open log file.
pub fn remove_daemon_dirs(dir: &Path) -> Result<(), FsError> {
    for entry in fs::read_dir(dir).at("listing", dir)? {
        let entry = entry.at("listing", dir)?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(DAEMON_DIR_PREFIX)
        {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(text: &[&str]) -> Vec<String> {
        text.iter().map(|option| option.to_string()).collect()
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn parse_options_accepts_mounts() {
        let writable = HelperMount {
            layers: Layers {
                lowers: paths(&["/s/2/fs", "/s/1/fs"]),
                upper: Some(UpperDirs {
                    upper: "/s/9/fs".into(),
                    work: "/s/9/work".into(),
                }),
            },
            state_dir: "/s/9".into(),
        };
        let read_only = HelperMount {
            layers: Layers {
                lowers: paths(&["/s/2/fs", "/s/1/fs"]),
                upper: None,
            },
            state_dir: "/s/9".into(),
        };
        let cases = [
            (
                "as mount.fuse3 passes them",
                options(&["workdir=/s/9/work,upperdir=/s/9/fs,lowerdir=/s/2/fs:/s/1/fs,statedir=/s/9,dev,suid"]),
                &writable,
            ),
            (
                "one per argument",
                options(&[
                    "lowerdir=/s/2/fs:/s/1/fs",
                    "upperdir=/s/9/fs",
                    "workdir=/s/9/work",
                    "statedir=/s/9",
                ]),
                &writable,
            ),
            (
                "read-only",
                options(&["lowerdir=/s/2/fs:/s/1/fs,statedir=/s/9,ro,dev,suid"]),
                &read_only,
            ),
        ];
        for (case, arguments, expected) in cases {
            assert_eq!(&parse_options(&arguments).unwrap(), expected, "{case}");
        }
    }

    #[test]
    fn parse_options_rejects_invalid() {
        let cases = [
            (
                "lowerdir=/a,statedir=/s,nodev",
                "\"nodev\" is not supported",
            ),
            (
                "lowerdir=/a,statedir=/s,index=off",
                "\"index=off\" is not supported",
            ),
            ("statedir=/s", "lowerdir= is missing"),
            ("lowerdir=/a", "statedir= is missing"),
            (
                "lowerdir=/a,lowerdir=/b,statedir=/s",
                "lowerdir= is given more than once",
            ),
            (
                "lowerdir=/a:b,statedir=/s",
                "needs absolute paths, got \"b\"",
            ),
            ("lowerdir=/a:,statedir=/s", "needs absolute paths, got \"\""),
            (
                "lowerdir=/a,upperdir=/u,statedir=/s",
                "must be given together",
            ),
            (
                "lowerdir=/a,upperdir=/u,workdir=/w,statedir=/s,ro",
                "ro contradicts",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_options(&options(&[text])).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
