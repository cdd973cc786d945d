//! An image made by a real build tool: `layerfs-fixtures/umoci-delete`, two layers written by
//! umoci (fixtures/make-umoci-image.sh), whose upper layer deletes files, a directory tree
//! and a symlink, changes types and hardlinks to a lower file. Mounted, it must match umoci's
//! own extraction of the same image, entry by entry.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tree::{self, Compare};
use common::Env;

const IMAGE: &str = "layerfs-fixtures/umoci-delete";

/// The image's OCI layout as the fixture registry was filled from it.
fn layout() -> PathBuf {
    let dir = std::env::var_os("LAYERFS_TEST_REGISTRY_DIR").expect(
        "LAYERFS_TEST_REGISTRY_DIR is not set: run the suite with fixtures/test, which exports it",
    );
    Path::new(&dir).join("layouts/umoci-delete")
}

/// Extracts the image with `umoci unpack` from a copy of its layout, independently of
/// layerfs, and returns the root filesystem.
fn unpack_with_umoci(dir: &Path) -> PathBuf {
    let copy = dir.join("layout");
    let status = Command::new("cp")
        .arg("-a")
        .arg(layout())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let bundle = dir.join("bundle");
    let output = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:upper", copy.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "umoci unpack failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    bundle.join("rootfs")
}

#[test]
fn umoci_image_matches_umoci_extraction() {
    let env = Env::new();
    env.ok(&["pull", IMAGE]);
    let mounted = env.path("mounted");
    env.ok(&["mount", IMAGE, mounted.to_str().unwrap()]);
    let extracted = unpack_with_umoci(env.dir.path());

    let compare = Compare {
        mtime: true,
        xattrs: true,
        ..Compare::default()
    };
    let expected = tree::snapshot(&extracted, compare);
    let actual = tree::snapshot(&mounted, compare);
    let busybox = mounted.join("bin/busybox").metadata().unwrap().ino();
    let link = mounted.join("bin/busybox-link").metadata().unwrap().ino();
    env.ok(&["umount", mounted.to_str().unwrap()]);

    assert!(expected.len() > 100, "only {} entries", expected.len());
    let differences = tree::differences(&expected, &actual);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(
        busybox, link,
        "bin/busybox-link is not a hardlink of bin/busybox"
    );
}

#[test]
fn umoci_upper_layer_deletes_files() {
    let env = Env::new();
    env.ok(&["pull", IMAGE]);
    let mounted = env.path("mounted");
    env.ok(&["mount", IMAGE, mounted.to_str().unwrap()]);
    let deleted = ["etc/motd", "usr/share/udhcpc", "bin/ls"].map(|path| mounted.join(path));
    let still_present: Vec<bool> = deleted
        .iter()
        .map(|path| path.symlink_metadata().is_ok())
        .collect();
    let keys = std::fs::read_dir(mounted.join("etc/apk/keys"))
        .unwrap()
        .count();
    let busybox_present = mounted.join("bin/busybox").is_file();
    env.ok(&["umount", mounted.to_str().unwrap()]);

    assert_eq!(still_present, [false, false, false]);
    assert_eq!(keys, 0);
    assert!(busybox_present);
}
