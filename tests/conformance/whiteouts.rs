//! Whiteouts and opaque directories (OCI image spec, "Whiteouts"): `.wh.NAME` deletes NAME
//! from the layers below, `.wh..wh..opq` hides everything below its directory, wherever
//! either sits in the archive, and neither hides an entry of its own layer.

use super::tar::Tar;
use super::{Case, Tree};

/// A lower layer with a directory `d` holding files, a subdirectory and a symlink.
fn lower() -> Tar {
    let mut tar = Tar::new();
    tar.root(0o755)
        .dir("d", 0o755)
        .file("d/f", 0o644, b"f\n")
        .file("d/g", 0o644, b"g\n")
        .dir("d/sub", 0o755)
        .file("d/sub/x", 0o644, b"x\n")
        .symlink("d/link", "f");
    tar
}

/// The merged view of [`lower`] alone, without `d/f`.
fn lower_without_f() -> Tree {
    Tree::new()
        .dir("d", 0o755)
        .file("d/g", 0o644, b"g\n")
        .dir("d/sub", 0o755)
        .file("d/sub/x", 0o644, b"x\n")
        .symlink("d/link", "f")
}

pub fn cases() -> Vec<Case> {
    let mut cases = deletions();
    cases.extend(same_layer());
    cases.extend(opaque());
    cases.extend(malformed());
    cases
}

fn deletions() -> Vec<Case> {
    vec![
        Case::tree(
            "whiteout_of_file",
            &[&lower(), Tar::new().dir("d", 0o755).whiteout("d", "f")],
            lower_without_f(),
        ),
        Case::tree(
            "whiteout_of_directory_tree",
            &[&lower(), Tar::new().dir("d", 0o755).whiteout("d", "sub")],
            Tree::new()
                .dir("d", 0o755)
                .file("d/f", 0o644, b"f\n")
                .file("d/g", 0o644, b"g\n")
                .symlink("d/link", "f"),
        ),
        Case::tree(
            "whiteout_of_symlink",
            &[&lower(), Tar::new().dir("d", 0o755).whiteout("d", "link")],
            Tree::new()
                .dir("d", 0o755)
                .file("d/f", 0o644, b"f\n")
                .file("d/g", 0o644, b"g\n")
                .dir("d/sub", 0o755)
                .file("d/sub/x", 0o644, b"x\n"),
        ),
        Case::tree(
            "whiteout_before_new_sibling",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o755)
                    .whiteout("d", "f")
                    .file("d/new", 0o600, b"new\n"),
            ],
            lower_without_f().file("d/new", 0o600, b"new\n"),
        ),
        Case::tree(
            "whiteout_after_new_sibling",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o755)
                    .file("d/new", 0o600, b"new\n")
                    .whiteout("d", "f"),
            ],
            lower_without_f().file("d/new", 0o600, b"new\n"),
        ),
        Case::tree(
            "whiteout_in_unlisted_directories",
            &[&lower(), Tar::new().whiteout("d/sub", "x")],
            Tree::new()
                .dir("d", 0o755)
                .file("d/f", 0o644, b"f\n")
                .file("d/g", 0o644, b"g\n")
                .dir("d/sub", 0o755)
                .symlink("d/link", "f"),
        ),
        Case::tree(
            "whiteout_of_missing_path",
            &[
                &lower(),
                Tar::new().dir("d", 0o755).whiteout("d", "nothing"),
            ],
            lower_without_f().file("d/f", 0o644, b"f\n"),
        ),
        Case::tree(
            "whiteout_then_recreate_next_layer",
            &[
                &lower(),
                Tar::new().whiteout("", "d"),
                Tar::new().dir("d", 0o700).file("d/g", 0o644, b"new g\n"),
            ],
            Tree::new().dir("d", 0o700).file("d/g", 0o644, b"new g\n"),
        ),
        Case::tree(
            "whiteouts_dropped_in_base_layer",
            &[Tar::new()
                .root(0o755)
                .whiteout("", "x")
                .opaque("")
                .file("y", 0o644, b"y\n")],
            Tree::new().file("y", 0o644, b"y\n"),
        ),
        Case::tree(
            "aufs_metadata_is_skipped",
            &[
                &lower(),
                Tar::new()
                    .dir(".wh..wh.plnk", 0o700)
                    .file(".wh..wh.plnk/1234.5678", 0o644, b"aufs\n")
                    .file(".wh..wh.aufs", 0o644, b""),
            ],
            lower_without_f().file("d/f", 0o644, b"f\n"),
        ),
    ]
}

fn same_layer() -> Vec<Case> {
    vec![
        Case::tree(
            "whiteout_keeps_earlier_same_layer_file",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o755)
                    .file("d/f", 0o600, b"upper\n")
                    .whiteout("d", "f"),
            ],
            lower_without_f().file("d/f", 0o600, b"upper\n"),
        ),
        Case::tree(
            "whiteout_keeps_later_same_layer_file",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o755)
                    .whiteout("d", "f")
                    .file("d/f", 0o600, b"upper\n"),
            ],
            lower_without_f().file("d/f", 0o600, b"upper\n"),
        ),
        Case::tree(
            "whiteout_makes_same_layer_directory_opaque",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o711)
                    .file("d/new", 0o644, b"new\n")
                    .whiteout("", "d"),
            ],
            Tree::new().dir("d", 0o711).file("d/new", 0o644, b"new\n"),
        ),
        Case::tree(
            "directory_deleted_then_recreated",
            &[
                &lower(),
                Tar::new()
                    .whiteout("", "d")
                    .dir("d", 0o700)
                    .file("d/new", 0o644, b"new\n"),
            ],
            Tree::new().dir("d", 0o700).file("d/new", 0o644, b"new\n"),
        ),
        Case::tree(
            "directory_recreated_then_deleted",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o700)
                    .file("d/new", 0o644, b"new\n")
                    .whiteout("", "d"),
            ],
            Tree::new().dir("d", 0o700).file("d/new", 0o644, b"new\n"),
        ),
        Case::tree(
            "directory_deleted_then_child_added",
            &[
                &lower(),
                Tar::new().whiteout("", "d").file("d/new", 0o644, b"new\n"),
            ],
            Tree::new()
                .dir("d", 0o755)
                .any_mtime()
                .file("d/new", 0o644, b"new\n"),
        ),
    ]
}

fn opaque() -> Vec<Case> {
    let only_new = Tree::new().dir("d", 0o755).file("d/new", 0o644, b"new\n");
    vec![
        Case::tree(
            "opaque_marker_first",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o755)
                    .opaque("d")
                    .file("d/new", 0o644, b"new\n"),
            ],
            only_new.clone(),
        ),
        Case::tree(
            "opaque_marker_last",
            &[
                &lower(),
                Tar::new()
                    .dir("d", 0o755)
                    .file("d/new", 0o644, b"new\n")
                    .opaque("d"),
            ],
            only_new.clone(),
        ),
        Case::tree(
            "opaque_marker_in_unlisted_directory",
            &[
                &lower(),
                Tar::new().opaque("d").file("d/new", 0o644, b"new\n"),
            ],
            only_new.clone(),
        ),
        Case::tree(
            "opaque_marker_alone",
            &[&lower(), Tar::new().dir("d", 0o755).opaque("d")],
            Tree::new().dir("d", 0o755),
        ),
        Case::tree(
            "opaque_marker_on_root",
            &[
                Tar::new()
                    .root(0o755)
                    .file("a", 0o644, b"a\n")
                    .dir("d", 0o755)
                    .file("d/x", 0o644, b"x\n")
                    .dir("e", 0o755),
                Tar::new()
                    .opaque("")
                    .file("b", 0o644, b"b\n")
                    .dir("d", 0o755)
                    .file("d/y", 0o644, b"y\n"),
            ],
            Tree::new()
                .file("b", 0o644, b"b\n")
                .dir("d", 0o755)
                .file("d/y", 0o644, b"y\n"),
        ),
    ]
}

fn malformed() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, entry) in [
        ("whiteout_with_empty_name", "d/.wh."),
        ("whiteout_of_dot", "d/.wh.."),
        ("whiteout_of_dot_dot", "d/.wh..."),
    ] {
        cases.push(Case::error(
            name,
            &[&lower(), Tar::new().file(entry, 0o644, b"")],
            "malformed whiteout name",
        ));
    }
    cases
}
