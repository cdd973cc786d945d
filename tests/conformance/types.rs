//! A path whose type changes from one layer to the next: file, directory and symlink in
//! turn. An upper non-directory hides everything below it; an upper directory over a lower
//! non-directory shows only its own content.

use super::tar::Tar;
use super::{Case, Tree};

pub fn cases() -> Vec<Case> {
    let file = || {
        let mut tar = Tar::new();
        tar.root(0o755).file("p", 0o644, b"one\n");
        tar
    };
    let dir = || {
        let mut tar = Tar::new();
        tar.root(0o755).dir("p", 0o755).file("p/x", 0o644, b"x\n");
        tar
    };
    vec![
        Case::tree(
            "file_to_directory",
            &[
                &file(),
                Tar::new().dir("p", 0o750).file("p/child", 0o644, b"c\n"),
            ],
            Tree::new().dir("p", 0o750).file("p/child", 0o644, b"c\n"),
        ),
        Case::tree(
            "file_to_directory_with_whiteout",
            &[
                &file(),
                Tar::new()
                    .whiteout("", "p")
                    .dir("p", 0o750)
                    .file("p/child", 0o644, b"c\n"),
            ],
            Tree::new().dir("p", 0o750).file("p/child", 0o644, b"c\n"),
        ),
        Case::tree(
            "directory_to_file",
            &[&dir(), Tar::new().file("p", 0o600, b"two\n")],
            Tree::new().file("p", 0o600, b"two\n"),
        ),
        Case::tree(
            "directory_to_file_with_whiteout",
            &[
                &dir(),
                Tar::new().whiteout("", "p").file("p", 0o600, b"two\n"),
            ],
            Tree::new().file("p", 0o600, b"two\n"),
        ),
        Case::tree(
            "file_directory_file",
            &[
                &file(),
                Tar::new().dir("p", 0o755).file("p/child", 0o644, b"c\n"),
                Tar::new().file("p", 0o640, b"three\n"),
            ],
            Tree::new().file("p", 0o640, b"three\n"),
        ),
        Case::tree(
            "directory_to_symlink",
            &[&dir(), Tar::new().symlink("p", "elsewhere")],
            Tree::new().symlink("p", "elsewhere"),
        ),
        Case::tree(
            "directory_symlink_directory",
            &[
                &dir(),
                Tar::new().symlink("p", "elsewhere"),
                Tar::new().dir("p", 0o700).file("p/y", 0o644, b"y\n"),
            ],
            Tree::new().dir("p", 0o700).file("p/y", 0o644, b"y\n"),
        ),
        Case::tree(
            "symlink_to_directory",
            &[
                Tar::new().root(0o755).symlink("p", "target"),
                Tar::new().dir("p", 0o755).file("p/z", 0o644, b"z\n"),
            ],
            Tree::new().dir("p", 0o755).file("p/z", 0o644, b"z\n"),
        ),
        Case::tree(
            "symlink_to_file",
            &[
                Tar::new().root(0o755).symlink("p", "target"),
                Tar::new().file("p", 0o644, b"file\n"),
            ],
            Tree::new().file("p", 0o644, b"file\n"),
        ),
    ]
}
