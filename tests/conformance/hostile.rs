//! Layers crafted to write, link or change something outside their own directory: `..` and
//! absolute names, symlinks of the same or a lower layer used as parents, hardlinks to
//! outside targets, and a root that is not a directory. Each fails with a clear error or
//! stays inside its layer; the runner checks the probe files outside after every case.

use std::path::Path;

use super::tar::{Header, Tar};
use super::{Case, Tree};

pub fn cases(outside: &Path) -> Vec<Case> {
    let outside = outside.to_str().unwrap().to_owned();
    let mut cases = names(&outside);
    cases.extend(same_layer_symlinks(&outside));
    cases.extend(lower_symlinks(&outside));
    cases.extend(links_and_roots(&outside));
    cases
}

fn names(outside: &str) -> Vec<Case> {
    let absolute = format!("{outside}/evil");
    vec![
        Case::error(
            "name_with_dot_dot",
            &[Tar::new().file("../../../outside/evil", 0o644, b"evil\n")],
            "`..` component",
        ),
        Case::error(
            "name_with_inner_dot_dot",
            &[Tar::new().file("a/../../../../outside/evil", 0o644, b"evil\n")],
            "`..` component",
        ),
        Case::error(
            "absolute_name",
            &[Tar::new().file(&absolute, 0o644, b"evil\n")],
            "absolute path",
        ),
        Case::error(
            "absolute_name_from_pax",
            &[Tar::new()
                .pax(&[("path", absolute.as_bytes())])
                .file("harmless", 0o644, b"evil\n")],
            "absolute path",
        ),
        Case::error(
            "dot_dot_name_from_gnu_header",
            &[Tar::new()
                .gnu_long_name(b"../../../outside/victim")
                .file("harmless", 0o644, b"evil\n")],
            "`..` component",
        ),
        Case::error(
            "name_with_nul_from_pax",
            &[Tar::new()
                .pax(&[("path", b"a\0/../../evil")])
                .file("harmless", 0o644, b"evil\n")],
            "NUL",
        ),
    ]
}

fn same_layer_symlinks(outside: &str) -> Vec<Case> {
    vec![
        Case::error(
            "file_below_absolute_symlink",
            &[Tar::new()
                .symlink("s", outside)
                .file("s/evil", 0o644, b"evil\n")],
            "a parent directory is a symlink",
        ),
        Case::error(
            "file_below_relative_symlink",
            &[Tar::new()
                .symlink("s", "../../../outside")
                .file("s/victim", 0o644, b"evil\n")],
            "a parent directory is a symlink",
        ),
        Case::error(
            "file_below_nested_symlink",
            &[Tar::new()
                .dir("d", 0o755)
                .symlink("d/s", format!("{outside}/dir"))
                .file("d/s/secret", 0o644, b"evil\n")],
            "a parent directory is a symlink",
        ),
        Case::error(
            "directory_below_symlink",
            &[Tar::new().symlink("s", outside).dir("s/evil", 0o777)],
            "a parent directory is a symlink",
        ),
        Case::error(
            "whiteout_below_symlink",
            &[
                Tar::new().root(0o755),
                Tar::new().symlink("s", outside).whiteout("s", "victim"),
            ],
            "a parent directory is a symlink",
        ),
        Case::error(
            "opaque_marker_below_symlink",
            &[
                Tar::new().root(0o755),
                Tar::new().symlink("s", outside).opaque("s"),
            ],
            "a parent directory is a symlink",
        ),
        Case::tree(
            "directory_replaces_symlink",
            &[Tar::new()
                .symlink("s", outside)
                .dir("s", 0o700)
                .file("s/x", 0o644, b"x\n")],
            Tree::new().dir("s", 0o700).file("s/x", 0o644, b"x\n"),
        ),
        Case::tree(
            "file_replaces_symlink",
            &[Tar::new()
                .symlink("f", format!("{outside}/victim"))
                .file("f", 0o600, b"replaced\n")],
            Tree::new().file("f", 0o600, b"replaced\n"),
        ),
        Case::tree(
            "symlink_replaces_directory_with_mode",
            &[Tar::new()
                .dir("d", 0o700)
                .file("d/x", 0o644, b"x\n")
                .symlink("d", format!("{outside}/dir"))],
            Tree::new().symlink("d", format!("{outside}/dir")),
        ),
        Case::tree(
            "symlink_with_xattrs_to_outside",
            &[Tar::new()
                .pax(&[
                    ("SCHILY.xattr.user.evil", b"1"),
                    ("SCHILY.xattr.trusted.evil", b"2"),
                ])
                .symlink("s", format!("{outside}/victim"))],
            Tree::new()
                .symlink("s", format!("{outside}/victim"))
                .xattr("trusted.evil", b"2"),
        ),
        Case::tree(
            "symlink_targets_are_kept_as_written",
            &[Tar::new()
                .symlink("up", "../../../../../etc/passwd")
                .symlink("abs", "/etc/shadow")],
            Tree::new()
                .symlink("up", "../../../../../etc/passwd")
                .symlink("abs", "/etc/shadow"),
        ),
    ]
}

fn lower_symlinks(outside: &str) -> Vec<Case> {
    let lower = || {
        let mut tar = Tar::new();
        tar.root(0o755)
            .symlink("s", outside)
            .dir("d", 0o755)
            .symlink("d/s", format!("{outside}/dir"));
        tar
    };
    let lower_tree = || {
        Tree::new()
            .symlink("s", outside)
            .dir("d", 0o755)
            .symlink("d/s", format!("{outside}/dir"))
    };
    vec![
        Case::tree(
            "file_below_lower_symlink",
            &[&lower(), Tar::new().file("s/victim", 0o644, b"inside\n")],
            lower_tree()
                .dir("s", 0o755)
                .any_mtime()
                .file("s/victim", 0o644, b"inside\n"),
        ),
        Case::tree(
            "directory_entry_over_lower_symlink",
            &[
                &lower(),
                Tar::new()
                    .dir("s", 0o700)
                    .file("s/victim", 0o644, b"inside\n"),
            ],
            lower_tree()
                .dir("s", 0o700)
                .file("s/victim", 0o644, b"inside\n"),
        ),
        Case::tree(
            "deep_file_below_lower_symlink",
            &[
                &lower(),
                Tar::new().file("d/s/a/secret", 0o644, b"inside\n"),
            ],
            lower_tree()
                .dir("d/s", 0o755)
                .any_mtime()
                .dir("d/s/a", 0o755)
                .any_mtime()
                .file("d/s/a/secret", 0o644, b"inside\n"),
        ),
        Case::tree(
            "whiteout_below_lower_symlink",
            &[&lower(), Tar::new().whiteout("s", "victim")],
            lower_tree().dir("s", 0o755).any_mtime(),
        ),
        Case::tree(
            "opaque_marker_below_lower_symlink",
            &[&lower(), Tar::new().opaque("d/s")],
            lower_tree().dir("d/s", 0o755).any_mtime(),
        ),
        Case::error(
            "hardlink_through_lower_symlink",
            &[&lower(), Tar::new().hardlink("h", "s/victim")],
            "is not in this layer or the layers below",
        ),
    ]
}

fn links_and_roots(outside: &str) -> Vec<Case> {
    let mut root_symlink = Header::new("./", b'2', 0o777);
    root_symlink.linkname = outside.as_bytes().to_vec();
    let mut root_hardlink = Header::new(".", b'1', 0o644);
    root_hardlink.linkname = b"x".to_vec();
    vec![
        Case::error(
            "hardlink_target_with_dot_dot",
            &[Tar::new().hardlink("h", "../../../outside/victim")],
            "hardlink target: path contains a `..` component",
        ),
        Case::error(
            "hardlink_target_absolute",
            &[Tar::new().hardlink("h", format!("{outside}/victim"))],
            "hardlink target: absolute path",
        ),
        Case::error(
            "hardlink_through_symlink",
            &[Tar::new().symlink("s", outside).hardlink("h", "s/victim")],
            "a parent directory is a symlink",
        ),
        Case::error(
            "root_entry_is_symlink",
            &[Tar::new().push(root_symlink, b"").file("x", 0o644, b"x\n")],
            "the layer root is not a directory",
        ),
        Case::error(
            "root_entry_is_hardlink",
            &[Tar::new().file("x", 0o644, b"x\n").push(root_hardlink, b"")],
            "the layer root is not a directory",
        ),
        Case::error(
            "root_entry_is_file",
            &[Tar::new().file(".", 0o644, b"evil\n")],
            "the layer root is not a directory",
        ),
    ]
}
