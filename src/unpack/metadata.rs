//! Owner, mode, times and extended attributes of an entry, read from its tar header and PAX
//! records, and applied without following symlinks.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rustix::fs::Timespec;
use rustix::fs::{self as rfs, Gid, Mode, Timestamps, Uid, XattrFlags};
use tar::Header;
use tracing::warn;

use super::pax::PaxRecords;

/// The metadata an entry carries, with PAX records taking precedence over header fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits, setuid, setgid and sticky included (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub atime: Timestamp,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Seconds and nanoseconds since the Unix epoch; PAX times carry fractions of a second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: u32,
}

const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
pub const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

impl Metadata {
    /// Reads an entry's metadata from its header, then lets its PAX records override it.
    pub fn read(header: &Header, pax: &PaxRecords) -> std::io::Result<Metadata> {
        let mut metadata = Metadata::from_header(header)?;
        for (key, value) in pax.iter() {
            metadata.apply_pax(key, value);
        }
        Ok(metadata)
    }

    fn from_header(header: &Header) -> std::io::Result<Metadata> {
        let mtime = Timestamp {
            seconds: header.mtime()? as i64,
            nanos: 0,
        };
        Ok(Metadata {
            mode: header.mode()? & 0o7777,
            uid: header.uid()? as u32,
            gid: header.gid()? as u32,
            mtime,
            atime: mtime,
            xattrs: Vec::new(),
        })
    }

    fn apply_pax(&mut self, key: &[u8], value: &[u8]) {
        let text = std::str::from_utf8(value).unwrap_or("");
        match key {
            b"mtime" => {
                if let Some(time) = parse_pax_time(text) {
                    self.mtime = time;
                }
            }
            b"atime" => {
                if let Some(time) = parse_pax_time(text) {
                    self.atime = time;
                }
            }
            b"uid" => self.uid = text.parse().unwrap_or(self.uid),
            b"gid" => self.gid = text.parse().unwrap_or(self.gid),
            _ => {
                if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    // overlayfs reads its own trusted.overlay.* xattrs from layer directories
                    // (opaque, redirect, metacopy); an archive must not be able to set them.
                    if name.starts_with(OVERLAY_XATTR_PREFIX) || name.is_empty() {
                        return;
                    }
                    // A repeated name replaces the earlier value, as setting it twice would.
                    self.xattrs
                        .retain(|(existing, _)| existing.as_bytes() != name);
                    let name = OsString::from_vec(name.to_vec());
                    self.xattrs.push((name, value.to_vec()));
                }
            }
        }
    }

    pub fn timestamps(&self) -> Timestamps {
        Timestamps {
            last_access: self.atime.to_timespec(),
            last_modification: self.mtime.to_timespec(),
        }
    }

    /// Sets owner, then mode (a chown clears setuid and setgid), then extended attributes, on
    /// an open file or directory.
    pub fn apply_owner_mode_xattrs(&self, fd: &OwnedFd) -> rustix::io::Result<()> {
        self.apply_owner(fd)?;
        rfs::fchmod(fd, Mode::from_raw_mode(self.mode))?;
        self.apply_xattrs(fd)
    }

    pub fn apply_owner(&self, fd: &OwnedFd) -> rustix::io::Result<()> {
        let uid = Uid::from_raw(self.uid);
        let gid = Gid::from_raw(self.gid);
        rfs::fchown(fd, Some(uid), Some(gid))
    }

    /// Sets the entry's xattrs. One in a namespace the file system does not support is
    /// skipped with a warning, as GNU tar and containerd do.
    pub fn apply_xattrs(&self, fd: &OwnedFd) -> rustix::io::Result<()> {
        for (name, value) in &self.xattrs {
            match rfs::fsetxattr(fd, name.as_os_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(rustix::io::Errno::OPNOTSUPP) => {
                    warn!(xattr = ?name, "skipping an xattr the file system does not support");
                }
                Err(errno) => return Err(errno),
            }
        }
        Ok(())
    }

    /// The directory part that waits until the whole layer is written.
    pub fn apply_mode_and_times(&self, fd: &OwnedFd) -> rustix::io::Result<()> {
        rfs::fchmod(fd, Mode::from_raw_mode(self.mode))?;
        rfs::futimens(fd, &self.timestamps())
    }
}

impl Timestamp {
    fn to_timespec(self) -> Timespec {
        Timespec {
            tv_sec: self.seconds,
            tv_nsec: self.nanos as _,
        }
    }
}

/// Parses a PAX time, `SECONDS[.FRACTION]`, possibly negative.
fn parse_pax_time(text: &str) -> Option<Timestamp> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = whole.parse().ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = fraction.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let mut nanos: u32 = digits.parse().ok()?;
    let mut seconds = seconds;
    // "-1.5" means one and a half seconds before the epoch: -2 s + 0.5 s.
    if whole.starts_with('-') && nanos > 0 {
        seconds -= 1;
        nanos = 1_000_000_000 - nanos;
    }
    Some(Timestamp { seconds, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time_table() {
        let cases: &[(&str, Option<(i64, u32)>)] = &[
            ("1700000000", Some((1_700_000_000, 0))),
            ("1700000000.5", Some((1_700_000_000, 500_000_000))),
            (
                "1700000000.123456789123",
                Some((1_700_000_000, 123_456_789)),
            ),
            ("-1.5", Some((-2, 500_000_000))),
            ("0", Some((0, 0))),
            ("abc", None),
            ("1.x", None),
        ];
        for (text, expected) in cases {
            let parsed = parse_pax_time(text).map(|t| (t.seconds, t.nanos));
            assert_eq!(parsed, *expected, "input {text:?}");
        }
    }
}
