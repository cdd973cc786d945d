//! Hardlinks within a layer and to a file only a lower layer has. overlayfs copies such a
//! file up on `link(2)`, so every name is one inode. Also hardlinks replacing a path,
//! outliving a whiteout of a peer name, and hardlinks to symlinks, which are never
//! followed.

use std::path::Path;

use super::tar::{Header, Tar};
use super::{Case, Tree};

/// A `security.capability` value, format 2 (linux/capability.h, `vfs_cap_data`): effective,
/// and `CAP_NET_BIND_SERVICE` permitted.
pub const CAPABILITY: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

const TOOL_MTIME: i64 = 1_600_000_000;

/// Builds a lower layer with `bin/tool` (owned by 3:4, its own mtime), a symlink, a FIFO
/// and `etc`.
fn lower() -> Tar {
    let mut tool = Header::new("bin/tool", b'0', 0o755);
    tool.uid = 3;
    tool.gid = 4;
    tool.mtime = TOOL_MTIME;
    let mut tar = Tar::new();
    tar.root(0o755)
        .dir("bin", 0o755)
        .push(tool, b"tool\n")
        .symlink("bin/sh", "tool")
        .dir("run", 0o755)
        .device("run/pipe", b'6', 0o600, 0, 0)
        .dir("etc", 0o755)
        .file("etc/conf", 0o644, b"conf\n");
    tar
}

/// Returns the merged view of [`lower`] alone.
fn lower_tree() -> Tree {
    Tree::new()
        .dir("bin", 0o755)
        .file("bin/tool", 0o755, b"tool\n")
        .owner(3, 4)
        .mtime(TOOL_MTIME, 0)
        .symlink("bin/sh", "tool")
        .dir("run", 0o755)
        .node("run/pipe", super::expect::Kind::Fifo, 0o600)
        .dir("etc", 0o755)
        .file("etc/conf", 0o644, b"conf\n")
}

pub fn cases(outside: &Path) -> Vec<Case> {
    let mut cases = same_layer();
    cases.extend(to_lower_files());
    cases.extend(lower_errors());
    cases.extend(replacing(outside));
    cases
}

fn same_layer() -> Vec<Case> {
    vec![
        Case::tree(
            "hardlink_to_earlier_file",
            &[Tar::new().file("a", 0o640, b"a\n").hardlink("b", "a")],
            Tree::new()
                .file("a", 0o640, b"a\n")
                .file("b", 0o640, b"a\n")
                .same_inode(&["a", "b"]),
        ),
        Case::tree(
            "hardlink_chain",
            &[Tar::new()
                .file("d/a", 0o644, b"a\n")
                .hardlink("e/b", "d/a")
                .hardlink("c", "e/b")],
            Tree::new()
                .dir("d", 0o755)
                .any_mtime()
                .file("d/a", 0o644, b"a\n")
                .dir("e", 0o755)
                .any_mtime()
                .file("e/b", 0o644, b"a\n")
                .file("c", 0o644, b"a\n")
                .same_inode(&["d/a", "e/b", "c"]),
        ),
        Case::error(
            "hardlink_to_directory",
            &[Tar::new().dir("d", 0o755).hardlink("x", "d")],
            "is a directory",
        ),
        Case::error(
            "hardlink_to_missing_file",
            &[Tar::new().file("a", 0o644, b"a\n").hardlink("b", "nothing")],
            "is not in this layer or the layers below",
        ),
    ]
}

fn to_lower_files() -> Vec<Case> {
    vec![
        Case::tree(
            "hardlink_to_lower_file",
            &[&lower(), Tar::new().hardlink("bin/t2", "bin/tool")],
            lower_tree()
                .file("bin/t2", 0o755, b"tool\n")
                .owner(3, 4)
                .mtime(TOOL_MTIME, 0)
                .same_inode(&["bin/tool", "bin/t2"]),
        ),
        Case::tree(
            "hardlinks_chained_to_lower_file",
            &[
                &lower(),
                Tar::new().hardlink("x", "bin/tool").hardlink("etc/y", "x"),
            ],
            lower_tree()
                .file("x", 0o755, b"tool\n")
                .owner(3, 4)
                .mtime(TOOL_MTIME, 0)
                .file("etc/y", 0o755, b"tool\n")
                .owner(3, 4)
                .mtime(TOOL_MTIME, 0)
                .same_inode(&["bin/tool", "x", "etc/y"]),
        ),
        Case::tree(
            "hardlink_to_file_two_layers_down",
            &[
                &lower(),
                Tar::new().file("etc/other", 0o644, b"other\n"),
                Tar::new().hardlink("bin/t2", "bin/tool"),
            ],
            lower_tree()
                .file("etc/other", 0o644, b"other\n")
                .file("bin/t2", 0o755, b"tool\n")
                .owner(3, 4)
                .mtime(TOOL_MTIME, 0)
                .same_inode(&["bin/tool", "bin/t2"]),
        ),
        Case::tree(
            "hardlink_to_lower_symlink",
            &[&lower(), Tar::new().hardlink("bin/sh2", "bin/sh")],
            lower_tree()
                .symlink("bin/sh2", "tool")
                .same_inode(&["bin/sh", "bin/sh2"]),
        ),
        Case::tree(
            "hardlink_to_lower_fifo",
            &[&lower(), Tar::new().hardlink("run/pipe2", "run/pipe")],
            lower_tree()
                .node("run/pipe2", super::expect::Kind::Fifo, 0o600)
                .same_inode(&["run/pipe", "run/pipe2"]),
        ),
        Case::tree(
            "hardlink_to_lower_file_with_metadata",
            &[
                &{
                    let mut tar = Tar::new();
                    let mut header = Header::new("a", b'0', 0o4755);
                    header.uid = 5;
                    header.gid = 6;
                    tar.root(0o755)
                        .pax(&[
                            ("SCHILY.xattr.user.k", b"v"),
                            ("SCHILY.xattr.security.capability", &CAPABILITY),
                        ])
                        .push(header, b"setuid\n");
                    tar
                },
                Tar::new().hardlink("b", "a"),
            ],
            Tree::new()
                .file("a", 0o4755, b"setuid\n")
                .owner(5, 6)
                .xattr("user.k", b"v")
                .xattr("security.capability", &CAPABILITY)
                .file("b", 0o4755, b"setuid\n")
                .owner(5, 6)
                .xattr("user.k", b"v")
                .xattr("security.capability", &CAPABILITY)
                .same_inode(&["a", "b"]),
        ),
        Case::tree(
            "hardlink_to_itself_below",
            &[&lower(), Tar::new().hardlink("bin/tool", "bin/tool")],
            lower_tree(),
        ),
    ]
}

fn lower_errors() -> Vec<Case> {
    vec![
        Case::error(
            "hardlink_to_lower_file_whited_out_before",
            &[
                &lower(),
                Tar::new()
                    .whiteout("bin", "tool")
                    .hardlink("bin/t2", "bin/tool"),
            ],
            "is deleted by a whiteout in this layer",
        ),
        Case::error(
            "hardlink_to_lower_file_whited_out_after",
            &[
                &lower(),
                Tar::new()
                    .hardlink("bin/t2", "bin/tool")
                    .whiteout("bin", "tool"),
            ],
            "the target of a hardlink in this layer",
        ),
        Case::error(
            "hardlink_to_lower_file_made_opaque_after",
            &[
                &lower(),
                Tar::new().hardlink("t2", "bin/tool").opaque("bin"),
            ],
            "the target of a hardlink in this layer",
        ),
        Case::error(
            "hardlink_to_file_missing_below",
            &[&lower(), Tar::new().hardlink("x", "bin/nothing")],
            "is not in this layer or the layers below",
        ),
        Case::error(
            "hardlink_to_lower_directory",
            &[&lower(), Tar::new().hardlink("x", "etc")],
            "is a directory",
        ),
        Case::error(
            "hardlink_to_file_deleted_below",
            &[
                &lower(),
                Tar::new().whiteout("etc", "conf"),
                Tar::new().hardlink("x", "etc/conf"),
            ],
            "is not in this layer or the layers below",
        ),
    ]
}

fn replacing(outside: &Path) -> Vec<Case> {
    let victim = outside.join("victim");
    let victim = victim.to_str().unwrap();
    vec![
        Case::tree(
            "hardlink_replaces_lower_file",
            &[
                &lower(),
                Tar::new()
                    .file("new", 0o600, b"new\n")
                    .hardlink("etc/conf", "new"),
            ],
            lower_tree()
                .file("new", 0o600, b"new\n")
                .file("etc/conf", 0o600, b"new\n")
                .same_inode(&["new", "etc/conf"]),
        ),
        Case::tree(
            "hardlink_replaces_same_layer_file",
            &[Tar::new()
                .file("b", 0o644, b"old\n")
                .file("a", 0o600, b"new\n")
                .hardlink("b", "a")],
            Tree::new()
                .file("a", 0o600, b"new\n")
                .file("b", 0o600, b"new\n")
                .same_inode(&["a", "b"]),
        ),
        Case::tree(
            "hardlink_replaced_by_later_file",
            &[
                &lower(),
                Tar::new()
                    .hardlink("x", "bin/tool")
                    .file("x", 0o644, b"own\n"),
            ],
            lower_tree().file("x", 0o644, b"own\n"),
        ),
        Case::tree(
            "hardlink_outlives_whiteout_of_peer",
            &[
                Tar::new()
                    .root(0o755)
                    .file("a", 0o644, b"shared\n")
                    .hardlink("b", "a"),
                Tar::new().whiteout("", "a"),
            ],
            Tree::new().file("b", 0o644, b"shared\n"),
        ),
        Case::tree(
            "hardlink_outlives_same_layer_whiteout",
            &[
                Tar::new().root(0o755).file("a", 0o644, b"lower\n"),
                Tar::new()
                    .file("a", 0o644, b"upper\n")
                    .hardlink("b", "a")
                    .whiteout("", "a"),
            ],
            Tree::new()
                .file("a", 0o644, b"upper\n")
                .file("b", 0o644, b"upper\n")
                .same_inode(&["a", "b"]),
        ),
        Case::tree(
            "copied_up_hardlink_outlives_whiteout",
            &[
                &lower(),
                Tar::new().hardlink("bin/t2", "bin/tool"),
                Tar::new().whiteout("bin", "tool"),
            ],
            Tree::new()
                .dir("bin", 0o755)
                .file("bin/t2", 0o755, b"tool\n")
                .owner(3, 4)
                .mtime(TOOL_MTIME, 0)
                .symlink("bin/sh", "tool")
                .dir("run", 0o755)
                .node("run/pipe", super::expect::Kind::Fifo, 0o600)
                .dir("etc", 0o755)
                .file("etc/conf", 0o644, b"conf\n"),
        ),
        Case::tree(
            "hardlink_to_symlink_is_not_followed",
            &[&{
                let mut link = Header::new("h", b'1', 0o4777);
                link.linkname = b"s".to_vec();
                let mut relative = Header::new("r", b'1', 0o600);
                relative.linkname = b"t".to_vec();
                let mut tar = Tar::new();
                tar.symlink("s", victim)
                    .push(link, b"")
                    .symlink("t", "../../../outside/victim")
                    .push(relative, b"");
                tar
            }],
            Tree::new()
                .symlink("s", victim)
                .symlink("h", victim)
                .symlink("t", "../../../outside/victim")
                .symlink("r", "../../../outside/victim")
                .same_inode(&["s", "h"])
                .same_inode(&["t", "r"]),
        ),
    ]
}
