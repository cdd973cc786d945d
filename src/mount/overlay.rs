//! overlayfs mount options, and the mount itself.
//!
//! `mount(2)` takes all options in one string of at most a page, which limits how many lower
//! directories fit. Longer stacks go through the new mount API instead (`fsopen(2)`,
//! `fsconfig(2)`), adding one `lowerdir+` at a time; that needs Linux 6.8 or later.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags,
};

use serde::{Deserialize, Serialize};

use crate::fs_error::{FsContext, FsError};

/// `mount(2)` copies at most one page of option data.
const OPTIONS_LIMIT: usize = 4095;

/// The directories of one overlay mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    /// Lower directories, topmost first, as overlayfs lists them.
    pub lowers: Vec<PathBuf>,
    /// Upper and work directories of a writable mount.
    pub upper: Option<UpperDirs>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpperDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Overlay {
    /// Builds the option string for `mount(2)`.
    pub fn options(&self) -> String {
        let lowers: Vec<String> = self.lowers.iter().map(|dir| escape(dir)).collect();
        let mut options = format!("lowerdir={}", lowers.join(":"));
        if let Some(dirs) = &self.upper {
            options.push_str(&format!(
                ",upperdir={},workdir={}",
                escape(&dirs.upper),
                escape(&dirs.work)
            ));
        }
        options
    }

    /// Mounts the overlay on `target`, read-only when there is no upper directory.
    pub fn mount(&self, target: &Path) -> Result<(), FsError> {
        let options = self.options();
        if options.len() <= OPTIONS_LIMIT {
            let flags = match self.upper {
                None => MsFlags::MS_RDONLY,
                Some(_) => MsFlags::empty(),
            };
            return mount(
                Some("overlay"),
                target,
                Some("overlay"),
                flags,
                Some(options.as_str()),
            )
            .at("mounting overlay on", target);
        }
        self.mount_incrementally(target)
            .map_err(std::io::Error::from)
            .at("mounting overlay (lowerdir+) on", target)
    }

    fn mount_incrementally(&self, target: &Path) -> rustix::io::Result<()> {
        let context = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for lower in &self.lowers {
            fsconfig_set_string(&context, "lowerdir+", lower)?;
        }
        let attributes = match &self.upper {
            Some(dirs) => {
                fsconfig_set_string(&context, "upperdir", &dirs.upper)?;
                fsconfig_set_string(&context, "workdir", &dirs.work)?;
                MountAttrFlags::empty()
            }
            None => {
                fsconfig_set_flag(&context, "ro")?;
                MountAttrFlags::MOUNT_ATTR_RDONLY
            }
        };
        fsconfig_create(&context)?;
        let mounted = fsmount(&context, FsMountFlags::FSMOUNT_CLOEXEC, attributes)?;
        move_mount(
            &mounted,
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
    }
}

/// Escapes the characters overlayfs treats as separators (`,` between options, `:` between
/// lower directories) and the backslash that escapes them.
fn escape(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, ',' | ':' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_options_list_lowers_top_first() {
        let overlay = Overlay {
            lowers: vec!["/s/l2".into(), "/s/l1".into()],
            upper: None,
        };
        assert_eq!(overlay.options(), "lowerdir=/s/l2:/s/l1");
    }

    #[test]
    fn writable_options_add_upper_and_work() {
        let overlay = Overlay {
            lowers: vec!["/s/l1".into(), "/s/empty".into()],
            upper: Some(UpperDirs {
                upper: "/s/c/upper".into(),
                work: "/s/c/work".into(),
            }),
        };
        let expected = "lowerdir=/s/l1:/s/empty,upperdir=/s/c/upper,workdir=/s/c/work";
        assert_eq!(overlay.options(), expected);
    }

    #[test]
    fn separators_in_paths_are_escaped() {
        let overlay = Overlay {
            lowers: vec!["/a:b/c,d".into(), "/e\\f".into()],
            upper: None,
        };
        assert_eq!(overlay.options(), r"lowerdir=/a\:b/c\,d:/e\\f");
    }
}
