//! The container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, as Docker and podman
//! give them. `run` writes them into `containers/<id>/`, and the shim clones them as detached
//! bind mounts. PID 1 mounts them over the image's own, which stay as they are in their
//! layers. The container may edit them (unless `--read-only`), and the edits end with it.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use nix::unistd::{chown, Gid, Uid};
use rustix::mount::MountAttrFlags;

use super::super::mount_api::{attach, attr_flags, clone_tree, mount_setattr, MountAttr};
use super::super::spec::{InitSpec, Network};
use super::super::Error;
use super::in_root;
use crate::fs_error::{FsContext, FsError};

/// Each file's name in the container's directory, and where it is mounted.
const FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("hostname", "/etc/hostname"),
    ("resolv.conf", "/etc/resolv.conf"),
];

/// The host's files that the container's copies start from.
const HOST_HOSTS: &str = "/etc/hosts";
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The kernel's file systems, under which nothing is mounted, because a bind mount over a
/// file there could hide what the kernel reports or enforces. runc likewise rejects a target
/// that resolves into `/proc` (libcontainer's `checkProcMount`); layerfs rejects `/sys` too.
const KERNEL_FS: [&str; 2] = ["proc", "sys"];

/// Writes the three files into the container's directory `dir`, owned by `owner` (the host
/// IDs of the container's root in a user namespace) when given. Runs in `run`, on the host.
pub fn write(
    dir: &Path,
    hostname: &str,
    network: Network,
    owner: Option<(u32, u32)>,
) -> Result<(), FsError> {
    let host_hosts = match network {
        Network::Host => read_host_file(HOST_HOSTS)?,
        Network::None => String::new(),
    };
    // Docker copies the host's resolv.conf for a private network namespace too. A host
    // without one leaves the file empty, and the resolver then uses its defaults.
    let contents = [
        hosts(hostname, network, &host_hosts),
        format!("{hostname}\n"),
        read_host_file(HOST_RESOLV_CONF)?,
    ];
    for ((name, _), text) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        fs::write(&path, text).at("writing", &path)?;
        if let Some((uid, gid)) = owner {
            let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
            chown(&path, Some(uid), Some(gid)).at("changing the owner of", &path)?;
        }
    }
    Ok(())
}

/// Builds the container's `/etc/hosts`: the host's with `--net host`, otherwise the loopback
/// names. In both cases `hostname` resolves to loopback.
fn hosts(hostname: &str, network: Network, host_hosts: &str) -> String {
    let mut text = match network {
        Network::Host => host_hosts.to_owned(),
        Network::None => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let named = text.lines().any(|line| {
        let names = line.split('#').next().unwrap_or_default();
        names
            .split_whitespace()
            .skip(1)
            .any(|name| name == hostname)
    });
    if !named {
        text.push_str(&format!("127.0.0.1\t{hostname}\n::1\t{hostname}\n"));
    }
    text
}

/// Reads a host file, following symlinks (a systemd host links resolv.conf into /run); a
/// missing file reads as empty.
fn read_host_file(path: &str) -> Result<String, FsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(FsError::new("reading", path, error)),
    }
}

/// Clones the files in `dir` as detached bind mounts, read-only for a `--read-only` container
/// as in Docker. Runs in the shim, on the host.
pub fn clone(dir: &Path, read_only: bool) -> Result<Vec<(&'static str, OwnedFd)>, FsError> {
    let mut mounts = Vec::with_capacity(FILES.len());
    for (name, target) in FILES {
        let path = dir.join(name);
        let mount = clone_tree(&path, false).map_err(|e| FsError::new("cloning", &path, e))?;
        if read_only {
            let attributes = MountAttr {
                attr_set: attr_flags(MountAttrFlags::MOUNT_ATTR_RDONLY),
                ..MountAttr::default()
            };
            mount_setattr(&mount, false, &attributes)
                .map_err(|e| FsError::new("making read-only", &path, e))?;
        }
        mounts.push((target, mount));
    }
    Ok(mounts)
}

/// Mounts the cloned files at their targets in `root`, resolved inside it, except where a
/// `-v` or `--tmpfs` mount has the same target: there the user's mount stays, as in Docker.
pub fn mount(
    root: impl AsFd,
    spec: &InitSpec,
    mounts: Vec<(&'static str, OwnedFd)>,
) -> Result<(), Error> {
    let root = root.as_fd();
    let volumes = spec.volumes.iter().map(|volume| Path::new(&volume.target));
    let tmpfs = spec.tmpfs.iter().map(|tmpfs| Path::new(&tmpfs.target));
    let user_targets: Vec<&Path> = volumes.chain(tmpfs).collect();
    for (target, mount) in mounts {
        if user_targets.contains(&Path::new(target)) {
            continue;
        }
        let resolved = in_root::resolve_path(root, target)?;
        if let Some(Component::Normal(top)) = resolved.components().next() {
            if KERNEL_FS.iter().any(|name| top == *name) {
                return Err(Error::KernelFsTarget {
                    target,
                    resolved: Path::new("/").join(&resolved),
                });
            }
        }
        let resolved = resolved.to_string_lossy();
        let target_fd = in_root::file(root, &resolved)?;
        attach(&mount, &target_fd).map_err(|e| FsError::new("mounting", target, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_network_hosts_name_loopback() {
        let text = hosts("c1", Network::None, "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "127.0.0.1\tc1",
                "::1\tc1",
            ]
        );
    }

    #[test]
    fn host_network_hosts_table() {
        let cases = [
            (
                "127.0.0.1 localhost\n10.0.0.5 box",
                "127.0.0.1 localhost\n10.0.0.5 box\n127.0.0.1\tc1\n::1\tc1\n",
            ),
            ("10.0.0.5 box c1\n", "10.0.0.5 box c1\n"),
            (
                "10.0.0.5 box # c1\n",
                "10.0.0.5 box # c1\n127.0.0.1\tc1\n::1\tc1\n",
            ),
            ("", "127.0.0.1\tc1\n::1\tc1\n"),
        ];
        for (host, expected) in cases {
            assert_eq!(hosts("c1", Network::Host, host), expected, "{host:?}");
        }
    }
}
