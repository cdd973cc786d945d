//! `-v HOST:CONTAINER[:ro]` bind mounts and `--tmpfs PATH[:OPTIONS]` mounts.
//!
//! The shim clones each bind source on the host, recursively and with private propagation
//! (Docker's default, `rprivate`): mounts made later on either side stay on that side. PID 1
//! attaches the clones at targets resolved inside the rootfs, like every other mount.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustix::mount::MountAttrFlags;
use serde::{Deserialize, Serialize};

use super::super::mount_api::{attach, attr_flags, clone_tree, mount_fs, mount_setattr, MountAttr};
use super::in_root;
use crate::fs_error::FsError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// An absolute path on the host.
    pub source: PathBuf,
    /// An absolute path in the container.
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub target: String,
    /// mount(8) options: flags such as `ro` or `exec`, and tmpfs's own (`size=`, `mode=`).
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMount {
    #[error("invalid volume {0:?}: expected HOST:CONTAINER[:ro]")]
    Volume(String),
    #[error(
        "invalid volume {0:?}: the host path must be absolute (named volumes are not supported)"
    )]
    RelativeSource(String),
    #[error("invalid mount target {0:?}: it must be an absolute path other than /")]
    Target(String),
    #[error("invalid volume option {option:?} in {volume:?}: expected ro or rw")]
    VolumeOption { volume: String, option: String },
}

fn check_target(target: &str) -> Result<(), InvalidMount> {
    if !target.starts_with('/') || target.trim_matches('/').is_empty() {
        return Err(InvalidMount::Target(target.to_owned()));
    }
    Ok(())
}

impl FromStr for Volume {
    type Err = InvalidMount;

    fn from_str(text: &str) -> Result<Volume, InvalidMount> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, option) = match parts[..] {
            [source, target] => (source, target, None),
            [source, target, option] => (source, target, Some(option)),
            _ => return Err(InvalidMount::Volume(text.to_owned())),
        };
        if !source.starts_with('/') {
            return Err(InvalidMount::RelativeSource(text.to_owned()));
        }
        check_target(target)?;
        let read_only = match option {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => {
                return Err(InvalidMount::VolumeOption {
                    volume: text.to_owned(),
                    option: other.to_owned(),
                })
            }
        };
        Ok(Volume {
            source: PathBuf::from(source),
            target: target.to_owned(),
            read_only,
        })
    }
}

impl FromStr for Tmpfs {
    type Err = InvalidMount;

    fn from_str(text: &str) -> Result<Tmpfs, InvalidMount> {
        let (target, options) = match text.split_once(':') {
            Some((target, options)) => (target, options),
            None => (text, ""),
        };
        check_target(target)?;
        Ok(Tmpfs {
            target: target.to_owned(),
            options: options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

impl Tmpfs {
    /// Splits the options into mount attributes and the file system's own options. Docker's
    /// defaults are `noexec,nosuid,nodev`; `exec`, `suid` and `dev` lift them.
    pub fn split_options(&self) -> (MountAttrFlags, Vec<&str>) {
        let mut flags = MountAttrFlags::MOUNT_ATTR_NOEXEC
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV;
        let mut data = Vec::new();
        for option in &self.options {
            match option.as_str() {
                "ro" => flags |= MountAttrFlags::MOUNT_ATTR_RDONLY,
                "rw" => flags -= MountAttrFlags::MOUNT_ATTR_RDONLY,
                "exec" => flags -= MountAttrFlags::MOUNT_ATTR_NOEXEC,
                "noexec" => flags |= MountAttrFlags::MOUNT_ATTR_NOEXEC,
                "suid" => flags -= MountAttrFlags::MOUNT_ATTR_NOSUID,
                "nosuid" => flags |= MountAttrFlags::MOUNT_ATTR_NOSUID,
                "dev" => flags -= MountAttrFlags::MOUNT_ATTR_NODEV,
                "nodev" => flags |= MountAttrFlags::MOUNT_ATTR_NODEV,
                other => data.push(other),
            }
        }
        (flags, data)
    }
}

/// A volume's source, cloned by the shim, and whether it is a directory.
pub struct VolumeSource {
    pub mount: OwnedFd,
    pub is_dir: bool,
}

/// Clones `volume`'s source. The source must exist: unlike Docker, layerfs creates nothing
/// on the host for a volume.
pub fn clone_source(volume: &Volume) -> Result<VolumeSource, FsError> {
    let source = &volume.source;
    let metadata =
        std::fs::metadata(source).map_err(|e| FsError::new("opening volume source", source, e))?;
    let mount = clone_tree(source, true).map_err(|e| FsError::new("cloning", source, e))?;
    if volume.read_only {
        let read_only = MountAttr {
            attr_set: attr_flags(MountAttrFlags::MOUNT_ATTR_RDONLY),
            ..MountAttr::default()
        };
        mount_setattr(&mount, true, &read_only)
            .map_err(|e| FsError::new("making read-only", source, e))?;
    }
    Ok(VolumeSource {
        mount,
        is_dir: metadata.is_dir(),
    })
}

/// Attaches a cloned volume at its target in `root`, creating a directory or an empty file
/// there to match the source.
pub fn attach_volume(root: impl AsFd, target: &str, source: VolumeSource) -> Result<(), FsError> {
    let path = target.trim_start_matches('/');
    let target_fd = if source.is_dir {
        in_root::dir(root, path)?
    } else {
        in_root::file(root, path)?
    };
    attach(&source.mount, &target_fd).map_err(|e| FsError::new("mounting", target, e))
}

pub fn mount_tmpfs(root: impl AsFd, tmpfs: &Tmpfs) -> Result<(), FsError> {
    let path = tmpfs.target.trim_start_matches('/');
    let (flags, data) = tmpfs.split_options();
    let target = in_root::dir(root, path)?;
    let mount = mount_fs("tmpfs", "tmpfs", &data, flags)
        .map_err(|e| FsError::new("creating a tmpfs for", Path::new(&tmpfs.target), e))?;
    attach(&mount, &target).map_err(|e| FsError::new("mounting", &tmpfs.target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_parsing_table() {
        let volume = |source: &str, target: &str, read_only| Volume {
            source: PathBuf::from(source),
            target: target.to_owned(),
            read_only,
        };
        let cases = [
            ("/srv/data:/data", Ok(volume("/srv/data", "/data", false))),
            ("/srv/data:/data:ro", Ok(volume("/srv/data", "/data", true))),
            (
                "/srv/data:/data:rw",
                Ok(volume("/srv/data", "/data", false)),
            ),
            (
                "data:/data",
                Err(InvalidMount::RelativeSource("data:/data".into())),
            ),
            ("/srv:data", Err(InvalidMount::Target("data".into()))),
            ("/srv:/", Err(InvalidMount::Target("/".into()))),
            ("/srv", Err(InvalidMount::Volume("/srv".into()))),
            (
                "/srv:/data:z",
                Err(InvalidMount::VolumeOption {
                    volume: "/srv:/data:z".into(),
                    option: "z".into(),
                }),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Volume>(), expected, "{text}");
        }
    }

    #[test]
    fn tmpfs_options_split_flags_from_data() {
        let tmpfs: Tmpfs = "/run:exec,size=1m,mode=700,ro".parse().unwrap();
        assert_eq!(tmpfs.target, "/run");
        let (flags, data) = tmpfs.split_options();
        assert!(!flags.contains(MountAttrFlags::MOUNT_ATTR_NOEXEC));
        assert!(flags.contains(MountAttrFlags::MOUNT_ATTR_NOSUID));
        assert!(flags.contains(MountAttrFlags::MOUNT_ATTR_RDONLY));
        assert_eq!(data, ["size=1m", "mode=700"]);
        assert!("tmp".parse::<Tmpfs>().is_err());
    }
}
