//! `rename`, as overlayfs does it without `redirect_dir` (the Debian kernel's default). The
//! source is copied up and renamed within the upper layer, and a whiteout replaces it where
//! a lower layer still shows the old name. A directory moved over a lower directory becomes
//! opaque. A directory that comes from a lower layer cannot be moved at all (EXDEV), so `mv`
//! falls back to copying it.

use std::ffi::OsStr;

use rustix::fs::{self as rfs, AtFlags, RenameFlags};
use rustix::io::{Errno, Result};

use crate::format::{is_whiteout, set_opaque};
use crate::fs::{NodeInfo, OverlayFs};
use crate::layers::Layer;
use crate::lookup::lower_has;
use crate::readdir::is_empty;
use crate::remove::empty_dir;

impl OverlayFs {
    pub(crate) fn rename(
        &self,
        old: (u64, &OsStr),
        new: (u64, &OsStr),
        flags: RenameFlags,
    ) -> Result<()> {
        // NOTE: RENAME_EXCHANGE is not implemented (overlayfs has it); it fails with EINVAL.
        if !(flags - RenameFlags::NOREPLACE).is_empty() {
            return Err(Errno::INVAL);
        }
        let _writing = self.writable_namespace()?;
        let old_dir = self.dir_info(old.0)?;
        let source = self.child(&old_dir, old.1)?.ok_or(Errno::NOENT)?;
        let new_dir = self.dir_info(new.0)?;
        let target = self.child(&new_dir, new.1)?;
        if let Some(target) = &target {
            if target.id == source.id {
                // Two names of one file: rename(2) does nothing.
                return Ok(());
            }
            if flags.contains(RenameFlags::NOREPLACE) {
                return Err(Errno::EXIST);
            }
            self.check_replace(&source, target)?;
        }
        if source.is_dir() && source_is_merge_or_lower(&source) {
            return Err(Errno::XDEV);
        }

        self.copy_up(old.0, true)?;
        self.copy_up(new.0, true)?;
        self.copy_up(source.id, true)?;
        self.rename_upper(old, new, &source, target.as_ref())?;

        let mut nodes = self.nodes.lock().unwrap();
        if let Some(target) = target {
            nodes.unlink(target.id, new.0, new.1);
        }
        nodes.rename(source.id, old, new);
        nodes.changed(old.0);
        nodes.changed(new.0);
        Ok(())
    }

    /// Checks that `source` may replace `target`, as rename(2) does.
    fn check_replace(&self, source: &NodeInfo, target: &NodeInfo) -> Result<()> {
        match (source.is_dir(), target.is_dir()) {
            (true, false) => Err(Errno::NOTDIR),
            (false, true) => Err(Errno::ISDIR),
            (true, true) if !is_empty(&self.stack, target.dir_layers(), &target.path)? => {
                Err(Errno::NOTEMPTY)
            }
            _ => Ok(()),
        }
    }

    /// Renames the copied-up `source` in the upper layer.
    fn rename_upper(
        &self,
        old: (u64, &OsStr),
        new: (u64, &OsStr),
        source: &NodeInfo,
        target: Option<&NodeInfo>,
    ) -> Result<()> {
        let upper = self.stack.fd(Layer::Upper);
        let old_dir = self.dir_info(old.0)?;
        let new_dir = self.dir_info(new.0)?;
        let old_path = old_dir.path.join(old.1);
        let new_path = new_dir.path.join(new.1);
        let leave_whiteout = lower_has(&self.stack, &old_dir.lowers, &old_dir.path, old.1)?;
        let covers_lower = lower_has(&self.stack, &new_dir.lowers, &new_dir.path, new.1)?;

        if let Some(target) = target.filter(|t| t.is_dir() && t.layer == Layer::Upper) {
            // The merged directory is empty, but its upper part may hold whiteouts.
            empty_dir(upper, target.path.as_os_str())?;
        }
        if source.is_dir() {
            // As overlayfs does (`ovl_rename`): a directory moved into a merge directory is
            // made opaque, so that no lower directory of its new name shows through.
            if covers_lower || new_dir.is_merged() {
                set_opaque(&self.stack.path(Layer::Upper, &old_path))?;
            }
            // A directory cannot replace the whiteout of a deleted name by rename(2).
            match rfs::statat(upper, &new_path, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) if is_whiteout(&stat) => {
                    rfs::unlinkat(upper, &new_path, AtFlags::empty())?
                }
                _ => {}
            }
        }
        let flags = match leave_whiteout {
            true => RenameFlags::WHITEOUT,
            false => RenameFlags::empty(),
        };
        rfs::renameat_with(upper, &old_path, upper, &new_path, flags)
    }
}

fn source_is_merge_or_lower(source: &NodeInfo) -> bool {
    matches!(source.layer, Layer::Lower(_)) || !source.lowers.is_empty()
}
