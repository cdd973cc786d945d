//! The FUSE driver against the kernel's overlayfs on a hand-built stack of three layers in
//! overlayfs form, with what image layers rarely contain: whiteouts and opaque directories
//! in a middle layer, a file replaced by a directory and back, whiteouts of whole
//! directories, hardlinks, device nodes, FIFOs, xattrs, and odd owners and modes.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::overlay::{FuseMount, KernelMount};
use common::tree::{self, hardlink_groups, snapshot, Compare};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tempfile::TempDir;

const FULL: Compare = Compare {
    mtime: true,
    xattrs: true,
    opaque: false,
    nlink: true,
    ino: true,
};

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn whiteout(root: &Path, path: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
}

fn opaque_dir(root: &Path, path: &str) {
    let path = root.join(path);
    fs::create_dir_all(&path).unwrap();
    xattr::set(&path, "trusted.overlay.opaque", b"y").unwrap();
}

/// The bottom layer: a plain tree with every file type.
fn bottom(root: &Path) {
    write(root, "a/f1", "bottom f1\n");
    write(root, "a/f2", "bottom f2\n");
    write(root, "b/x", "bottom x\n");
    write(root, "c", "bottom file c\n");
    write(root, "d/e/deep", "deep\n");
    write(root, "hard/one", "linked\n");
    fs::hard_link(root.join("hard/one"), root.join("hard/two")).unwrap();
    fs::hard_link(root.join("hard/one"), root.join("a/three")).unwrap();
    symlink("../a/f2", root.join("b/link")).unwrap();
    mknod(
        &root.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mknod(
        &root.join("disk"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        makedev(8, 1),
    )
    .unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    xattr::set(root.join("a/f2"), "user.note", b"bottom").unwrap();
    xattr::set(root.join("a/f2"), "trusted.overlay.origin", b"hidden").unwrap();
    fs::create_dir(root.join("private")).unwrap();
    std::os::unix::fs::chown(root.join("private"), Some(1000), Some(1000)).unwrap();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o1750)).unwrap();
    write(root, "setid", "#!/bin/sh\n");
    fs::set_permissions(root.join("setid"), fs::Permissions::from_mode(0o6755)).unwrap();
    fs::create_dir_all(root.join("merged/only-bottom")).unwrap();
}

/// The middle layer: whiteouts and an opaque directory over the bottom.
fn middle(root: &Path) {
    whiteout(root, "a/f1");
    opaque_dir(root, "b");
    write(root, "b/y", "middle y\n");
    fs::create_dir_all(root.join("c/inner")).unwrap();
    whiteout(root, "d/e");
    write(root, "g", "middle g\n");
    whiteout(root, "hard/two");
    fs::create_dir_all(root.join("merged/only-middle")).unwrap();
    xattr::set(root.join("g"), "user.note", b"middle").unwrap();
}

/// The top layer: names recreated over whiteouts, whole directories whited out.
fn top(root: &Path) {
    write(root, "a/f1", "top f1\n");
    whiteout(root, "b/y");
    write(root, "b/z", "top z\n");
    whiteout(root, "d");
    write(root, "c/inner/file", "top file\n");
    fs::create_dir_all(root.join("merged/only-top")).unwrap();
    write(root, "fifo", "now a file\n");
}

/// Three layer directories, topmost first, and the directory they live in.
fn build_layers() -> (TempDir, Vec<PathBuf>) {
    let dir = tempfile::Builder::new()
        .prefix("layerfs-layers-")
        .tempdir()
        .unwrap();
    let builders: [fn(&Path); 3] = [top, middle, bottom];
    let layers: Vec<PathBuf> = builders
        .iter()
        .enumerate()
        .map(|(index, build)| {
            let layer = dir.path().join(format!("layer{index}"));
            fs::create_dir(&layer).unwrap();
            build(&layer);
            layer
        })
        .collect();
    (dir, layers)
}

fn assert_same(expected: &Path, actual: &Path, compare: Compare) {
    let differences = tree::differences(&snapshot(expected, compare), &snapshot(actual, compare));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn three_layers_read_only_match() {
    let (dir, layers) = build_layers();
    let kernel = KernelMount::new(&layers, None, &dir.path().join("kernel"));
    let fuse = FuseMount::new(&layers, None, &dir.path().join("fuse"));

    assert_same(&kernel.target, &fuse.target, FULL);
    assert_eq!(
        hardlink_groups(&kernel.target),
        hardlink_groups(&fuse.target)
    );
    let listing = tree::listing(&fuse.target, &[]);
    assert!(listing.contains(&"a/f1 file 7".to_owned()), "{listing:?}");
    assert!(
        !listing.iter().any(|line| line.starts_with("d ")),
        "{listing:?}"
    );
    assert!(
        !listing.iter().any(|line| line.starts_with("b/x ")),
        "{listing:?}"
    );
}

#[test]
fn three_layers_writable_match() {
    let (dir, layers) = build_layers();
    let mut roots = Vec::new();
    for name in ["kernel", "fuse"] {
        let upper = dir.path().join(format!("{name}-upper"));
        let work = dir.path().join(format!("{name}-work"));
        fs::create_dir(&upper).unwrap();
        fs::create_dir(&work).unwrap();
        roots.push((upper, work, dir.path().join(name)));
    }
    let (k_upper, k_work, k_target) = &roots[0];
    let (f_upper, f_work, f_target) = &roots[1];
    let kernel = KernelMount::new(&layers, Some((k_upper, k_work)), k_target);
    let fuse = FuseMount::new(&layers, Some((f_upper, f_work)), f_target);

    for root in [&kernel.target, &fuse.target] {
        fs::remove_dir_all(root.join("c")).unwrap();
        fs::create_dir(root.join("c")).unwrap();
        fs::write(root.join("a/f2"), "changed\n").unwrap();
        fs::remove_file(root.join("hard/one")).unwrap();
        fs::rename(root.join("a/three"), root.join("three")).unwrap();
        fs::remove_dir(root.join("merged/only-bottom")).unwrap();
        fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
        xattr::set(root.join("g"), "user.note", b"changed").unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::create_dir(root.join("new")).unwrap();
        fs::rename(root.join("new"), root.join("merged/moved")).unwrap();
        fs::rename(root.join("a/f1"), root.join("b/f1")).unwrap();
        fs::remove_dir_all(root.join("merged")).unwrap();
        fs::create_dir(root.join("merged")).unwrap();
        let setid = fs::OpenOptions::new().write(true).open(root.join("setid"));
        setid.unwrap().set_len(2).unwrap();
        fs::hard_link(root.join("three"), root.join("b/four")).unwrap();
        symlink("z", root.join("b/to-z")).unwrap();
        fs::remove_file(root.join("b/z")).unwrap();
    }
    let compare = Compare {
        mtime: false,
        ..FULL
    };
    let merged = Compare {
        ino: false,
        ..compare
    };
    assert_same(&kernel.target, &fuse.target, merged);
    let upper = Compare {
        opaque: true,
        nlink: false,
        ino: false,
        ..compare
    };
    assert_same(k_upper, f_upper, upper);
}
