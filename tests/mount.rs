//! `layerfs mount` and `layerfs umount` with kernel overlayfs.

mod common;

use std::fs;
use std::path::Path;

use common::Env;

fn mounted(target: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let target = target.to_str().unwrap();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(target))
}

#[test]
fn read_only_mount_rejects_writes() {
    let env = Env::new();
    env.ok(&["pull", "alpine:3.20"]);
    let target = env.path("ro");
    env.ok(&["mount", "alpine:3.20", target.to_str().unwrap()]);
    assert!(mounted(&target));
    let release = fs::read_to_string(target.join("etc/alpine-release")).unwrap();
    assert!(release.starts_with("3.20."), "{release}");
    let error = fs::write(target.join("etc/new"), "x").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EROFS));

    env.ok(&["umount", target.to_str().unwrap()]);
    assert!(!mounted(&target));
    assert!(!target.exists(), "umount removes the target it created");
    assert!(fs::read_dir(env.root.join("mounts"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn read_write_mount_writes_to_its_own_layer() {
    let env = Env::new();
    env.ok(&["pull", "alpine:3.20"]);
    let target = env.path("rw");
    fs::create_dir(&target).unwrap();
    env.ok(&["mount", "--rw", "alpine:3.20", target.to_str().unwrap()]);
    fs::write(target.join("etc/new"), "x").unwrap();
    fs::remove_file(target.join("etc/motd")).unwrap();

    let stdout = env.ok(&["umount", "--keep", target.to_str().unwrap()]);
    let upper = stdout.trim().strip_prefix("Kept writable layer ").unwrap();
    assert_eq!(
        fs::read_to_string(Path::new(upper).join("etc/new")).unwrap(),
        "x"
    );
    let whiteout = fs::symlink_metadata(Path::new(upper).join("etc/motd")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    assert!(target.is_dir(), "a target that existed before is kept");
    assert!(!mounted(&target));

    // A second mount starts from a fresh layer.
    env.ok(&["mount", "--rw", "alpine:3.20", target.to_str().unwrap()]);
    assert!(!target.join("etc/new").exists());
    assert!(target.join("etc/motd").exists());
    env.ok(&["umount", target.to_str().unwrap()]);
}

#[test]
fn whiteouts_and_opaque_directories_apply() {
    let env = Env::new();
    env.ok(&["pull", "layerfs-fixtures/whiteouts"]);
    let target = env.path("w");
    env.ok(&[
        "mount",
        "layerfs-fixtures/whiteouts",
        target.to_str().unwrap(),
    ]);
    let keys: Vec<String> = fs::read_dir(target.join("etc/apk/keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let motd_gone = !target.join("etc/motd").exists();
    let udhcpc_gone = !target.join("usr/share/udhcpc").exists();
    let hostname = fs::read_to_string(target.join("etc/hostname")).unwrap();
    let added = fs::read_to_string(target.join("etc/layerfs-added")).unwrap();
    env.ok(&["umount", target.to_str().unwrap()]);

    assert_eq!(keys, ["layerfs-fixture.txt"]);
    assert!(motd_gone);
    assert!(udhcpc_gone);
    assert_eq!(hostname, "layerfs-whiteouts\n");
    assert_eq!(added, "added by the upper layer\n");
}

#[test]
fn mount_errors_are_one_line() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let target = env.path("t");

    let missing_image = env.fails(&["mount", "alpine:3.17", target.to_str().unwrap()]);
    assert!(
        missing_image.contains("not in the store"),
        "{missing_image}"
    );
    assert!(!target.exists());

    fs::create_dir(&target).unwrap();
    fs::write(target.join("file"), "x").unwrap();
    let busy_target = env.fails(&["mount", "hello-world", target.to_str().unwrap()]);
    assert!(
        busy_target.contains("not an empty directory"),
        "{busy_target}"
    );

    let not_mounted = env.fails(&["umount", env.path("nothing").to_str().unwrap()]);
    assert!(
        not_mounted.contains("is not a layerfs mount"),
        "{not_mounted}"
    );
    for message in [&missing_image, &busy_target, &not_mounted] {
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn mount_missing_parent_changes_nothing() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let before = env.store_listing();
    let parent = env.path("missing");
    let target = parent.join("t");

    let message = env.fails(&["mount", "hello-world", target.to_str().unwrap()]);
    assert_eq!(message.lines().count(), 1, "{message}");
    let expected = format!("its parent {} does not exist", parent.display());
    assert!(message.contains(&expected), "{message}");
    assert!(!parent.exists());
    assert_eq!(env.store_listing(), before);
}

#[test]
fn umount_cleans_up_after_a_manual_unmount() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let target = env.path("m");
    env.ok(&["mount", "--rw", "hello-world", target.to_str().unwrap()]);
    nix::mount::umount(&target).unwrap();
    env.ok(&["umount", target.to_str().unwrap()]);
    assert!(!target.exists());
    assert!(fs::read_dir(env.root.join("mounts"))
        .unwrap()
        .next()
        .is_none());
}
