//! Extended attributes: read from the topmost real file, written after copy-up, with
//! overlayfs's own `trusted.overlay.*` names hidden and users' names of that form escaped,
//! as overlayfs does (see `format`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, XattrFlags};
use rustix::io::{Errno, Result};

use crate::format::{is_private_xattr, shown_xattr_name, stored_xattr_name};
use crate::fs::OverlayFs;

/// Lists the names of the xattrs of `path`, overlayfs's own included.
pub fn list(path: &Path) -> Result<Vec<OsString>> {
    let mut buffer = Vec::new();
    loop {
        let size = rfs::llistxattr_query(path)?;
        buffer.resize(size, 0);
        match rfs::llistxattr(path, &mut buffer[..]) {
            Ok(len) => {
                buffer.truncate(len);
                break;
            }
            Err(Errno::RANGE) => continue,
            Err(errno) => return Err(errno),
        }
    }
    let names = buffer
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| OsStr::from_bytes(name).to_os_string())
        .collect();
    Ok(names)
}

/// Reads the value of xattr `name` of `path`.
pub fn get(path: &Path, name: &OsStr) -> Result<Vec<u8>> {
    loop {
        let size = rfs::lgetxattr_query(path, name)?;
        let mut value = vec![0; size];
        match rfs::lgetxattr(path, name, &mut value[..]) {
            Ok(len) => {
                value.truncate(len);
                return Ok(value);
            }
            Err(Errno::RANGE) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

/// Copies every xattr but overlayfs's own from `from` to `to`.
pub fn copy_all(from: &Path, to: &Path) -> Result<()> {
    let names = match list(from) {
        Ok(names) => names,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(errno) => return Err(errno),
    };
    for name in names.iter().filter(|name| !is_private_xattr(name)) {
        let value = match get(from, name) {
            Ok(value) => value,
            Err(Errno::NODATA) => continue,
            Err(errno) => return Err(errno),
        };
        rfs::lsetxattr(to, name, &value, XattrFlags::empty())?;
    }
    Ok(())
}

impl OverlayFs {
    pub(crate) fn get_xattr(&self, id: u64, name: &OsStr) -> Result<Vec<u8>> {
        let _reading = self.reading();
        let info = self.info(id)?;
        get(
            &self.stack.path(info.layer, &info.path),
            &stored_xattr_name(name),
        )
    }

    /// Lists the xattr names of node `id` as `listxattr(2)` returns them, each followed by a
    /// NUL.
    pub(crate) fn list_xattrs(&self, id: u64) -> Result<Vec<u8>> {
        let _reading = self.reading();
        let info = self.info(id)?;
        let names = list(&self.stack.path(info.layer, &info.path))?;
        let mut buffer = Vec::new();
        for name in names.iter().filter_map(|name| shown_xattr_name(name)) {
            buffer.extend_from_slice(name.as_bytes());
            buffer.push(0);
        }
        Ok(buffer)
    }

    pub(crate) fn set_xattr(&self, id: u64, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        let name = stored_xattr_name(name);
        let _writing = self.writable_namespace()?;
        self.copy_up(id, true)?;
        let info = self.info(id)?;
        let flags = XattrFlags::from_bits_retain(flags as u32);
        rfs::lsetxattr(self.stack.path(info.layer, &info.path), &name, value, flags)
    }

    pub(crate) fn remove_xattr(&self, id: u64, name: &OsStr) -> Result<()> {
        let name = stored_xattr_name(name);
        let name = name.as_os_str();
        let _writing = self.writable_namespace()?;
        let info = self.info(id)?;
        // overlayfs checks that the xattr exists before copying up for its removal.
        get(&self.stack.path(info.layer, &info.path), name)?;
        self.copy_up(id, true)?;
        let info = self.info(id)?;
        rfs::lremovexattr(self.stack.path(info.layer, &info.path), name)
    }
}
