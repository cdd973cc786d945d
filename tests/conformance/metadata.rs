//! Entry metadata: setuid, setgid and sticky modes, owners, mtimes of every kind of entry
//! (a directory's applied after its children), and xattrs from PAX records, byte for byte.
//! overlayfs's own `trusted.overlay.*` xattrs are never taken from an archive.

use super::expect::Kind;
use super::hardlinks::CAPABILITY;
use super::tar::{Header, Tar};
use super::{Case, Tree};

pub fn cases() -> Vec<Case> {
    let mut cases = modes_and_owners();
    cases.extend(times());
    cases.extend(xattrs());
    cases
}

fn with_owner(name: &str, typeflag: u8, mode: u32, uid: u64, gid: u64) -> Header {
    let mut header = Header::new(name, typeflag, mode);
    header.uid = uid;
    header.gid = gid;
    header
}

fn modes_and_owners() -> Vec<Case> {
    vec![
        Case::tree(
            "special_mode_bits",
            &[Tar::new()
                .file("setuid", 0o4755, b"u\n")
                .file("setgid", 0o2711, b"g\n")
                .dir("sticky", 0o1777)
                .dir("shared", 0o2775)
                .file("shared/f", 0o644, b"f\n")
                .file("none", 0o000, b"n\n")
                .file("readonly", 0o444, b"r\n")],
            Tree::new()
                .file("setuid", 0o4755, b"u\n")
                .file("setgid", 0o2711, b"g\n")
                .dir("sticky", 0o1777)
                .dir("shared", 0o2775)
                .file("shared/f", 0o644, b"f\n")
                .file("none", 0o000, b"n\n")
                .file("readonly", 0o444, b"r\n"),
        ),
        Case::tree(
            "owners_of_every_kind",
            &[&{
                let mut link = with_owner("link", b'2', 0o777, 1002, 2002);
                link.linkname = b"file".to_vec();
                let mut tar = Tar::new();
                tar.push(with_owner("file", b'0', 0o4750, 1000, 2000), b"f\n")
                    .push(with_owner("dir/", b'5', 0o2750, 1001, 2001), b"")
                    .push(link, b"")
                    .push(with_owner("fifo", b'6', 0o640, 1003, 2003), b"");
                tar
            }],
            Tree::new()
                .file("file", 0o4750, b"f\n")
                .owner(1000, 2000)
                .dir("dir", 0o2750)
                .owner(1001, 2001)
                .symlink("link", "file")
                .owner(1002, 2002)
                .node("fifo", Kind::Fifo, 0o640)
                .owner(1003, 2003),
        ),
        Case::tree(
            "owner_from_pax_records",
            &[Tar::new()
                .pax(&[("uid", b"3000000"), ("gid", b"3000001")])
                .file("big", 0o644, b"b\n")],
            Tree::new()
                .file("big", 0o644, b"b\n")
                .owner(3_000_000, 3_000_001),
        ),
        Case::tree(
            "read_only_directory_with_children",
            &[Tar::new()
                .dir("ro", 0o555)
                .dir("ro/sub", 0o500)
                .file("ro/sub/f", 0o400, b"f\n")],
            Tree::new()
                .dir("ro", 0o555)
                .dir("ro/sub", 0o500)
                .file("ro/sub/f", 0o400, b"f\n"),
        ),
    ]
}

fn times() -> Vec<Case> {
    let mut file = Header::new("file", b'0', 0o644);
    file.mtime = 1_000_000_000;
    let mut link = Header::new("link", b'2', 0o777);
    link.mtime = 1_100_000_000;
    link.linkname = b"file".to_vec();
    let mut dir = Header::new("dir/", b'5', 0o755);
    dir.mtime = 1_200_000_000;
    let mut device = Header::new("dir/null", b'3', 0o666);
    device.mtime = 1_300_000_000;
    device.devmajor = 1;
    device.devminor = 3;
    vec![
        Case::tree(
            "mtimes_of_every_kind",
            &[Tar::new()
                .push(file, b"f\n")
                .push(link, b"")
                .push(dir, b"")
                .file("dir/child", 0o644, b"c\n")
                .push(device, b"")],
            Tree::new()
                .file("file", 0o644, b"f\n")
                .mtime(1_000_000_000, 0)
                .symlink("link", "file")
                .mtime(1_100_000_000, 0)
                .dir("dir", 0o755)
                .mtime(1_200_000_000, 0)
                .file("dir/child", 0o644, b"c\n")
                .node("dir/null", Kind::Char(1, 3), 0o666)
                .mtime(1_300_000_000, 0),
        ),
        Case::tree(
            "fractional_mtimes_from_pax",
            &[Tar::new()
                .pax(&[("mtime", b"1700000000.25")])
                .dir("dir", 0o755)
                .pax(&[("mtime", b"1700000001.123456789")])
                .file("dir/f", 0o644, b"f\n")
                .pax(&[("mtime", b"1700000002.5")])
                .symlink("dir/l", "f")],
            Tree::new()
                .dir("dir", 0o755)
                .mtime(1_700_000_000, 250_000_000)
                .file("dir/f", 0o644, b"f\n")
                .mtime(1_700_000_001, 123_456_789)
                .symlink("dir/l", "f")
                .mtime(1_700_000_002, 500_000_000),
        ),
    ]
}

fn xattrs() -> Vec<Case> {
    vec![
        Case::tree(
            "xattrs_from_pax_records",
            &[Tar::new()
                .pax(&[
                    ("SCHILY.xattr.user.a", b"1"),
                    ("SCHILY.xattr.trusted.b", b"\x00\xff binary"),
                    ("SCHILY.xattr.security.capability", &CAPABILITY),
                ])
                .file("cap", 0o755, b"bin\n")
                .pax(&[("SCHILY.xattr.user.dir", b"d")])
                .dir("dir", 0o755)
                .pax(&[("SCHILY.xattr.trusted.link", b"l")])
                .symlink("link", "cap")
                .pax(&[("SCHILY.xattr.trusted.fifo", b"p")])
                .device("fifo", b'6', 0o644, 0, 0)],
            Tree::new()
                .file("cap", 0o755, b"bin\n")
                .xattr("user.a", b"1")
                .xattr("trusted.b", b"\x00\xff binary")
                .xattr("security.capability", &CAPABILITY)
                .dir("dir", 0o755)
                .xattr("user.dir", b"d")
                .symlink("link", "cap")
                .xattr("trusted.link", b"l")
                .node("fifo", Kind::Fifo, 0o644)
                .xattr("trusted.fifo", b"p"),
        ),
        Case::tree(
            "capability_kept_with_owner",
            &[Tar::new()
                .pax(&[("SCHILY.xattr.security.capability", &CAPABILITY)])
                .push(with_owner("ping", b'0', 0o4755, 1000, 1000), b"ping\n")],
            Tree::new()
                .file("ping", 0o4755, b"ping\n")
                .owner(1000, 1000)
                .xattr("security.capability", &CAPABILITY),
        ),
        Case::tree(
            "user_xattrs_on_special_files_are_skipped",
            &[Tar::new()
                .pax(&[("SCHILY.xattr.user.x", b"1")])
                .symlink("link", "target")
                .pax(&[("SCHILY.xattr.user.y", b"2")])
                .device("fifo", b'6', 0o644, 0, 0)],
            Tree::new()
                .symlink("link", "target")
                .node("fifo", Kind::Fifo, 0o644),
        ),
        Case::tree(
            "overlay_xattrs_are_ignored",
            &[
                Tar::new()
                    .root(0o755)
                    .dir("d", 0o755)
                    .file("d/x", 0o644, b"x\n"),
                Tar::new()
                    .pax(&[
                        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                        ("SCHILY.xattr.trusted.overlay.redirect", b"/elsewhere"),
                    ])
                    .dir("d", 0o755)
                    .pax(&[("SCHILY.xattr.trusted.overlay.metacopy", b"")])
                    .file("d/y", 0o644, b"y\n"),
            ],
            Tree::new()
                .dir("d", 0o755)
                .file("d/x", 0o644, b"x\n")
                .file("d/y", 0o644, b"y\n"),
        ),
    ]
}
