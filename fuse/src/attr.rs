//! Attributes as the kernel gets them: a real file's `stat`, under the merged tree's inode
//! number.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};
use rustix::fs::{self as rfs, Stat};

pub fn kind(mode: u32) -> FileType {
    match rfs::FileType::from_raw_mode(mode) {
        rfs::FileType::Directory => FileType::Directory,
        rfs::FileType::Symlink => FileType::Symlink,
        rfs::FileType::Fifo => FileType::NamedPipe,
        rfs::FileType::Socket => FileType::Socket,
        rfs::FileType::CharacterDevice => FileType::CharDevice,
        rfs::FileType::BlockDevice => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// Returns the attributes of node `id` whose real file has `stat`. `merged` marks a merge
/// directory, for which overlayfs reports one link rather than counting subdirectories
/// across layers (fs/overlayfs/inode.c, `ovl_getattr`).
pub fn file_attr(id: u64, stat: &Stat, merged: bool) -> FileAttr {
    let kind = kind(stat.st_mode);
    FileAttr {
        ino: INodeNo(id),
        size: stat.st_size as u64,
        blocks: stat.st_blocks as u64,
        atime: time(stat.st_atime, stat.st_atime_nsec as u32),
        mtime: time(stat.st_mtime, stat.st_mtime_nsec as u32),
        ctime: time(stat.st_ctime, stat.st_ctime_nsec as u32),
        crtime: UNIX_EPOCH,
        kind,
        perm: (stat.st_mode & 0o7777) as u16,
        nlink: if merged { 1 } else { stat.st_nlink as u32 },
        uid: stat.st_uid,
        gid: stat.st_gid,
        rdev: encode_device(stat.st_rdev),
        blksize: stat.st_blksize as u32,
        flags: 0,
    }
}

fn time(seconds: i64, nanoseconds: u32) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::new(seconds as u64, nanoseconds)
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
            + Duration::from_nanos(nanoseconds.into())
    }
}

/// Encodes a device number in the kernel's 32-bit `new_encode_dev` form, which
/// `fuse_attr.rdev` carries: minor bits 0–7, major bits 8–19, minor bits 8–19 in 20–31.
pub fn encode_device(device: u64) -> u32 {
    let major = rfs::major(device);
    let minor = rfs::minor(device);
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// Decodes a device number of a `mknod` request, the inverse of [`encode_device`].
pub fn decode_device(device: u32) -> u64 {
    let major = (device & 0xfff00) >> 8;
    let minor = (device & 0xff) | ((device >> 12) & 0xfff00);
    rfs::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        let cases = [(0, 0), (1, 3), (8, 17), (4095, 255), (259, 1048575)];
        for (major, minor) in cases {
            let device = rfs::makedev(major, minor);
            let decoded = decode_device(encode_device(device));
            assert_eq!(rfs::major(decoded), major, "{major}:{minor}");
            assert_eq!(rfs::minor(decoded), minor, "{major}:{minor}");
        }
    }

    #[test]
    fn encoded_device_matches_kernel_layout() {
        assert_eq!(encode_device(rfs::makedev(1, 3)), 0x103);
        assert_eq!(encode_device(rfs::makedev(0, 0x123)), 0x100023);
    }

    #[test]
    fn times_before_epoch_convert() {
        let before = time(-2, 500_000_000);
        assert_eq!(
            UNIX_EPOCH.duration_since(before).unwrap(),
            Duration::from_millis(1500)
        );
    }
}
