//! Parent directories an archive does not list. A new one is 0755 root:root, as Docker and
//! containerd make it; one that exists in a lower layer keeps that layer's owner, mode,
//! xattrs and mtime, since the layer only adds to it. A lower symlink in its place becomes a
//! real directory in the upper layer.

use super::tar::{Header, Tar, MTIME};
use super::{Case, Tree};

const LOWER_MTIME: i64 = 1_500_000_000;

/// A lower layer whose root and directory `d` have an owner, mode, xattr and mtime of
/// their own.
fn lower() -> Tar {
    let mut root = Header::new("./", b'5', 0o750);
    root.uid = 1;
    root.gid = 2;
    root.mtime = LOWER_MTIME;
    let mut d = Header::new("d/", b'5', 0o750);
    d.uid = 5;
    d.gid = 6;
    d.mtime = LOWER_MTIME;
    let mut tar = Tar::new();
    tar.push(root, b"")
        .pax(&[("SCHILY.xattr.user.dir", b"lower")])
        .push(d, b"")
        .file("d/x", 0o644, b"x\n");
    tar
}

/// The merged view of [`lower`] alone, root included.
fn lower_tree() -> Tree {
    Tree::new()
        .root(0o750)
        .owner(1, 2)
        .mtime(LOWER_MTIME, 0)
        .dir("d", 0o750)
        .owner(5, 6)
        .mtime(LOWER_MTIME, 0)
        .xattr("user.dir", b"lower")
        .file("d/x", 0o644, b"x\n")
}

pub fn cases() -> Vec<Case> {
    let mut cases = new_parents();
    cases.extend(lower_parents());
    cases.extend(hidden_parents());
    cases
}

fn new_parents() -> Vec<Case> {
    vec![
        Case::tree(
            "parents_made_for_base_layer",
            &[Tar::new().file("x/y/z", 0o644, b"z\n")],
            Tree::new()
                .dir("x", 0o755)
                .any_mtime()
                .dir("x/y", 0o755)
                .any_mtime()
                .file("x/y/z", 0o644, b"z\n"),
        ),
        Case::tree(
            "parent_listed_after_its_child",
            &[
                &lower(),
                Tar::new().file("d/y", 0o644, b"y\n").dir("d", 0o711),
            ],
            lower_tree().dir("d", 0o711).file("d/y", 0o644, b"y\n"),
        ),
        Case::tree(
            "root_listed_in_upper_layer",
            &[&lower(), Tar::new().root(0o711).file("f", 0o644, b"f\n")],
            lower_tree().root(0o711).file("f", 0o644, b"f\n"),
        ),
    ]
}

fn lower_parents() -> Vec<Case> {
    vec![
        Case::tree(
            "parent_kept_from_lower_layer",
            &[&lower(), Tar::new().file("d/new", 0o644, b"new\n")],
            lower_tree().file("d/new", 0o644, b"new\n"),
        ),
        Case::tree(
            "root_kept_from_lower_layer",
            &[&lower(), Tar::new().file("f", 0o644, b"f\n")],
            lower_tree().file("f", 0o644, b"f\n"),
        ),
        Case::tree(
            "parents_partly_in_lower_layer",
            &[&lower(), Tar::new().file("d/a/b/f", 0o644, b"f\n")],
            lower_tree()
                .dir("d/a", 0o755)
                .any_mtime()
                .dir("d/a/b", 0o755)
                .any_mtime()
                .file("d/a/b/f", 0o644, b"f\n"),
        ),
        Case::tree(
            "parent_from_two_layers_down",
            &[
                &lower(),
                Tar::new().dir("e", 0o755),
                Tar::new().file("d/new", 0o644, b"new\n"),
            ],
            lower_tree().dir("e", 0o755).file("d/new", 0o644, b"new\n"),
        ),
        Case::tree(
            "parent_of_whiteout_kept_from_lower_layer",
            &[&lower(), Tar::new().whiteout("d", "x")],
            Tree::new()
                .root(0o750)
                .owner(1, 2)
                .mtime(LOWER_MTIME, 0)
                .dir("d", 0o750)
                .owner(5, 6)
                .mtime(LOWER_MTIME, 0)
                .xattr("user.dir", b"lower"),
        ),
        Case::tree(
            "lower_symlink_parent_becomes_directory",
            &[
                Tar::new()
                    .root(0o755)
                    .dir("usr", 0o755)
                    .dir("usr/lib", 0o755)
                    .file("usr/lib/libc", 0o644, b"libc\n")
                    .symlink("lib", "usr/lib"),
                Tar::new().file("lib/new", 0o644, b"new\n"),
            ],
            Tree::new()
                .dir("usr", 0o755)
                .dir("usr/lib", 0o755)
                .file("usr/lib/libc", 0o644, b"libc\n")
                .dir("lib", 0o755)
                .any_mtime()
                .file("lib/new", 0o644, b"new\n"),
        ),
    ]
}

fn hidden_parents() -> Vec<Case> {
    vec![
        Case::tree(
            "parent_whited_out_in_same_layer",
            &[
                &lower(),
                Tar::new().whiteout("", "d").file("d/y", 0o644, b"y\n"),
            ],
            Tree::new()
                .root(0o750)
                .owner(1, 2)
                .mtime(LOWER_MTIME, 0)
                .dir("d", 0o755)
                .any_mtime()
                .file("d/y", 0o644, b"y\n"),
        ),
        Case::tree(
            "parent_whited_out_after_child",
            &[
                &lower(),
                Tar::new().file("d/y", 0o644, b"y\n").whiteout("", "d"),
            ],
            Tree::new()
                .root(0o750)
                .owner(1, 2)
                .mtime(LOWER_MTIME, 0)
                .dir("d", 0o755)
                .any_mtime()
                .file("d/y", 0o644, b"y\n"),
        ),
        Case::tree(
            "parent_deleted_in_middle_layer",
            &[
                &lower(),
                Tar::new().whiteout("", "d"),
                Tar::new().file("d/y", 0o644, b"y\n"),
            ],
            Tree::new()
                .root(0o750)
                .owner(1, 2)
                .mtime(LOWER_MTIME, 0)
                .dir("d", 0o755)
                .any_mtime()
                .file("d/y", 0o644, b"y\n"),
        ),
        Case::tree(
            "parent_hidden_by_opaque_middle_layer",
            &[
                &lower(),
                Tar::new().root(0o755).dir("p", 0o700).opaque(""),
                Tar::new().file("d/y", 0o644, b"y\n"),
            ],
            Tree::new()
                .root(0o755)
                .dir("p", 0o700)
                .dir("d", 0o755)
                .any_mtime()
                .file("d/y", 0o644, b"y\n"),
        ),
        Case::tree(
            "parent_below_opaque_marker",
            &[
                &lower(),
                Tar::new().opaque("d").file("d/sub/y", 0o644, b"y\n"),
            ],
            Tree::new()
                .root(0o750)
                .owner(1, 2)
                .mtime(LOWER_MTIME, 0)
                .dir("d", 0o750)
                .owner(5, 6)
                .mtime(LOWER_MTIME, 0)
                .xattr("user.dir", b"lower")
                .dir("d/sub", 0o755)
                .any_mtime()
                .file("d/sub/y", 0o644, b"y\n"),
        ),
    ]
    .into_iter()
    .chain(std::iter::once(Case::tree(
        "parent_kept_below_directory_listed",
        &[
            &lower(),
            Tar::new().dir("d", 0o700).file("d/e/f", 0o644, b"f\n"),
        ],
        Tree::new()
            .root(0o750)
            .owner(1, 2)
            .mtime(LOWER_MTIME, 0)
            .dir("d", 0o700)
            .mtime(MTIME, 0)
            .file("d/x", 0o644, b"x\n")
            .dir("d/e", 0o755)
            .any_mtime()
            .file("d/e/f", 0o644, b"f\n"),
    )))
    .collect()
}
