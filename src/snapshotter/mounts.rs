//! The mounts returned for a snapshot, as containerd's own overlayfs snapshotter builds them.
//!
//! containerd performs these mounts itself (the unpacker, the shim for a container's root
//! filesystem), so it receives options, never a mounted directory. `mount(2)` copies at most
//! one page of options, and containerd handles longer overlay options itself
//! (`compactLowerdirOption` in its `mount/mount_linux.go`, read in 1.6). When the options come
//! within 512 bytes of a page, it takes the longest common prefix of the `lowerdir` paths and
//! cuts it back to a directory. Then it changes into that directory and passes the lower
//! directories relative to it. Every lower
//! directory here is `<root>/snapshots/<id>/fs`, also for layers that live in the store (a
//! symlink there), so the relative form is `<id>/fs`, 5 to 10 bytes a layer: several
//! hundred layers fit in one page (overlayfs itself stops at 500). The upper and work
//! directories stay absolute.
//!
//! With the FUSE driver, the overlay becomes a `fuse3.layerfs` mount with the same
//! `lowerdir`, `upperdir` and `workdir` options and a `statedir`. containerd runs
//! `mount.fuse3` for it, which runs `layerfs overlay` (see `fuse_helper`). mount.fuse3 passes
//! the options within one `sh -c` argument, which Linux limits to 128 KiB (`MAX_ARG_STRLEN`)
//! rather than a page.

use std::path::PathBuf;

use serde::Deserialize;

/// One mount as containerd receives it: `mount -t TYPE SOURCE TARGET -o OPTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// The mount type for snapshots with parents: the `driver` key of the `[snapshotter]` config
/// section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountDriver {
    /// Kernel overlayfs.
    #[default]
    Overlay,
    /// layerfs's FUSE driver, which containerd mounts through `mount.fuse3`.
    Fuse,
    /// Kernel overlayfs if a test mount in the store succeeds at start-up, FUSE otherwise.
    Auto,
}

/// The mount that merges the directories of a snapshot with parents, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// A kernel `overlay` mount.
    Overlay,
    /// A [`FUSE_TYPE`] mount, served by layerfs's FUSE driver.
    Fuse,
}

/// The mount type of the FUSE driver. containerd runs `mount.fuse3 … -t layerfs` for a type
/// `fuse3.layerfs`, and mount.fuse3 then runs the program `layerfs`.
pub const FUSE_TYPE: &str = "fuse3.layerfs";

/// The source of a [`FUSE_TYPE`] mount. mount.fuse3 passes it to `layerfs` as the first
/// argument, so it names the hidden command that performs the mount.
pub const FUSE_SOURCE: &str = "overlay";

/// The directories of one snapshot, topmost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The snapshot's own directory, which contains `fs/` and `work/`.
    pub dir: PathBuf,
    /// `fs/`: upper directory of an active snapshot, the empty root of a parentless view.
    pub fs: PathBuf,
    pub work: PathBuf,
    /// `fs/` of each committed ancestor, nearest first.
    pub parents: Vec<PathBuf>,
    pub writable: bool,
}

/// Mounts of a snapshot: a bind mount where only one directory is involved, a `merge` mount
/// otherwise.
pub fn snapshot_mounts(layout: &Layout, merge: Merge) -> Vec<Mount> {
    match (layout.parents.as_slice(), layout.writable, merge) {
        ([], writable, _) => vec![bind(&layout.fs, writable)],
        ([only], false, _) => vec![bind(only, false)],
        (parents, writable, Merge::Overlay) => vec![overlay(layout, parents, writable)],
        (parents, writable, Merge::Fuse) => vec![fuse(layout, parents, writable)],
    }
}

fn bind(dir: &std::path::Path, writable: bool) -> Mount {
    let mode = if writable { "rw" } else { "ro" };
    Mount {
        kind: "bind".to_owned(),
        source: dir.to_string_lossy().into_owned(),
        options: vec![mode.to_owned(), "rbind".to_owned()],
    }
}

/// `index=off` as containerd sets it: with the index on, overlayfs records the lower layers
/// an upper directory was used with, and a later mount on other lower paths fails.
fn overlay(layout: &Layout, parents: &[PathBuf], writable: bool) -> Mount {
    let mut options = vec!["index=off".to_owned()];
    if writable {
        options.push(format!("workdir={}", layout.work.display()));
        options.push(format!("upperdir={}", layout.fs.display()));
    }
    options.push(lowerdir(parents));
    Mount {
        kind: "overlay".to_owned(),
        source: "overlay".to_owned(),
        options,
    }
}

/// The FUSE driver takes overlayfs's directory options, and `statedir`: where the helper
/// keeps the files of the daemon that serves the mount.
fn fuse(layout: &Layout, parents: &[PathBuf], writable: bool) -> Mount {
    let mut options = Vec::new();
    if writable {
        options.push(format!("workdir={}", layout.work.display()));
        options.push(format!("upperdir={}", layout.fs.display()));
    }
    options.push(lowerdir(parents));
    options.push(format!("statedir={}", layout.dir.display()));
    Mount {
        kind: FUSE_TYPE.to_owned(),
        source: FUSE_SOURCE.to_owned(),
        options,
    }
}

fn lowerdir(parents: &[PathBuf]) -> String {
    let lowers: Vec<String> = parents
        .iter()
        .map(|dir| dir.to_string_lossy().into_owned())
        .collect();
    format!("lowerdir={}", lowers.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(parents: &[&str], writable: bool) -> Layout {
        Layout {
            dir: "/s/9".into(),
            fs: "/s/9/fs".into(),
            work: "/s/9/work".into(),
            parents: parents.iter().map(PathBuf::from).collect(),
            writable,
        }
    }

    fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            kind: kind.to_owned(),
            source: source.to_owned(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn snapshot_mounts_table() {
        let cases = [
            (
                "active without parent",
                layout(&[], true),
                mount("bind", "/s/9/fs", &["rw", "rbind"]),
            ),
            (
                "view without parent",
                layout(&[], false),
                mount("bind", "/s/9/fs", &["ro", "rbind"]),
            ),
            (
                "view of one layer",
                layout(&["/s/1/fs"], false),
                mount("bind", "/s/1/fs", &["ro", "rbind"]),
            ),
            (
                "view of two layers",
                layout(&["/s/2/fs", "/s/1/fs"], false),
                mount(
                    "overlay",
                    "overlay",
                    &["index=off", "lowerdir=/s/2/fs:/s/1/fs"],
                ),
            ),
            (
                "active on one layer",
                layout(&["/s/1/fs"], true),
                mount(
                    "overlay",
                    "overlay",
                    &[
                        "index=off",
                        "workdir=/s/9/work",
                        "upperdir=/s/9/fs",
                        "lowerdir=/s/1/fs",
                    ],
                ),
            ),
        ];
        for (case, layout, expected) in cases {
            let mounts = snapshot_mounts(&layout, Merge::Overlay);
            assert_eq!(mounts, vec![expected], "{case}");
        }
    }

    #[test]
    fn fuse_snapshot_mounts_table() {
        let cases = [
            (
                "active without parent",
                layout(&[], true),
                mount("bind", "/s/9/fs", &["rw", "rbind"]),
            ),
            (
                "view of one layer",
                layout(&["/s/1/fs"], false),
                mount("bind", "/s/1/fs", &["ro", "rbind"]),
            ),
            (
                "view of two layers",
                layout(&["/s/2/fs", "/s/1/fs"], false),
                mount(
                    "fuse3.layerfs",
                    "overlay",
                    &["lowerdir=/s/2/fs:/s/1/fs", "statedir=/s/9"],
                ),
            ),
            (
                "active on one layer",
                layout(&["/s/1/fs"], true),
                mount(
                    "fuse3.layerfs",
                    "overlay",
                    &[
                        "workdir=/s/9/work",
                        "upperdir=/s/9/fs",
                        "lowerdir=/s/1/fs",
                        "statedir=/s/9",
                    ],
                ),
            ),
        ];
        for (case, layout, expected) in cases {
            let mounts = snapshot_mounts(&layout, Merge::Fuse);
            assert_eq!(mounts, vec![expected], "{case}");
        }
    }
}
