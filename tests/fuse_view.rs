//! The FUSE driver against the kernel's overlayfs. The same images must look the same
//! through both, entry by entry. The same changes must leave the same trees and the same
//! upper layers, and each driver must mount the upper layer the other wrote.

mod common;

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::overlay::{layer_dirs, FuseMount, KernelMount};
use common::tree::{self, hardlink_groups, snapshot, Compare};
use common::Env;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use rustix::fs::Dir;

/// The FUSE driver's two ways of serving opens.
const FUSE_DRIVERS: [&str; 2] = ["fuse", "fuse-passthrough"];

const IMAGES: [&str; 7] = [
    "alpine:3.17",
    "alpine:3.18",
    "alpine:3.19",
    "alpine:3.20",
    "busybox",
    "busybox:musl",
    "layerfs-fixtures/whiteouts",
];

/// Everything a read-only view must reproduce.
const FULL: Compare = Compare {
    mtime: true,
    xattrs: true,
    opaque: false,
    nlink: true,
    ino: true,
};

fn assert_same_tree(expected: &Path, actual: &Path, compare: Compare, what: &str) {
    let expected_entries = snapshot(expected, compare);
    let actual_entries = snapshot(actual, compare);
    let differences = tree::differences(&expected_entries, &actual_entries);
    assert!(
        differences.is_empty(),
        "{what}: {} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn fuse_view_matches_overlay_per_image() {
    let env = Env::new();
    for (index, image) in IMAGES.iter().enumerate() {
        env.ok(&["pull", image]);
        let kernel = env.path(&format!("kernel-{index}"));
        env.ok(&["mount", image, path_arg(&kernel)]);
        for driver in FUSE_DRIVERS {
            let fuse = env.path(&format!("{driver}-{index}"));
            env.ok(&["mount", "--driver", driver, image, path_arg(&fuse)]);
            assert_same_tree(&kernel, &fuse, FULL, &format!("{image} with {driver}"));
            assert_eq!(hardlink_groups(&kernel), hardlink_groups(&fuse), "{image}");
            env.ok(&["umount", path_arg(&fuse)]);
        }
        env.ok(&["umount", path_arg(&kernel)]);
    }
}

/// Lists every entry of `dir` with the offset to continue after it.
fn entries_with_offsets(dir: &Path) -> Vec<(String, i64)> {
    let mut reader = Dir::new(File::open(dir).unwrap()).unwrap();
    let mut entries = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push((name, entry.offset()));
    }
    entries
}

#[test]
fn readdir_resumes_at_every_offset() {
    let env = Env::new();
    env.ok(&["pull", "busybox"]);
    let mounted = env.path("mounted");
    env.ok(&["mount", "--driver", "fuse", "busybox", path_arg(&mounted)]);
    let bin = mounted.join("bin");
    let entries = entries_with_offsets(&bin);
    assert!(entries.len() > 300, "{} entries in bin", entries.len());

    for start in [0, 1, 2, 100, entries.len() / 2, entries.len() - 1] {
        let mut reader = Dir::new(File::open(&bin).unwrap()).unwrap();
        reader.seek(entries[start].1).unwrap();
        let mut rest = Vec::new();
        while let Some(entry) = reader.read() {
            rest.push(entry.unwrap().file_name().to_string_lossy().into_owned());
        }
        let expected: Vec<String> = entries[start + 1..]
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(rest, expected, "resuming after entry {start}");
    }
    env.ok(&["umount", path_arg(&mounted)]);
}

/// Applies the same changes to a merged tree of the whiteouts image and returns each
/// step's outcome, `ok` or the error kind, so that the two drivers' outcomes compare too.
fn apply_operations(root: &Path) -> Vec<String> {
    let at = |path: &str| root.join(path);
    let mut outcomes = Vec::new();
    let mut record = |step: &str, result: std::io::Result<()>| {
        let outcome = match result {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("{:?}", error.raw_os_error()),
        };
        outcomes.push(format!("{step}: {outcome}"));
    };

    let append = OpenOptions::new().append(true).open(at("etc/hostname"));
    record(
        "copy-up by append",
        append.and_then(|mut f| f.write_all(b"appended\n")),
    );
    record(
        "chmod",
        fs::set_permissions(at("etc/passwd"), fs::Permissions::from_mode(0o600)),
    );
    record(
        "chown",
        std::os::unix::fs::chown(at("etc/group"), Some(1000), Some(1000)),
    );
    let shells = OpenOptions::new().write(true).open(at("etc/shells"));
    record("truncate", shells.and_then(|f| f.set_len(3)));
    record("delete lower file", fs::remove_file(at("etc/profile")));
    record("delete lower dir", fs::remove_dir_all(at("etc/apk")));
    record("recreate dir", fs::create_dir(at("etc/apk")));
    record(
        "file in recreated dir",
        fs::write(at("etc/apk/world"), "new\n"),
    );
    record(
        "rename lower file",
        fs::rename(at("etc/issue"), at("etc/issue.moved")),
    );
    record(
        "rename over file",
        fs::rename(at("etc/layerfs-added"), at("etc/os-release")),
    );
    record(
        "rename lower dir",
        fs::rename(at("usr/share/apk"), at("moved-lower-dir")),
    );
    record("new dir", fs::create_dir(at("newdir")));
    record("file in new dir", fs::write(at("newdir/f"), "x\n"));
    record("rename new dir", fs::rename(at("newdir"), at("renamed")));
    record(
        "rename dir over empty lower dir",
        fs::rename(at("renamed"), at("mnt")),
    );
    record(
        "hardlink",
        fs::hard_link(at("etc/issue.moved"), at("etc/issue.link")),
    );
    record("symlink", symlink("../etc/hostname", at("etc/host.link")));
    let fifo = nix::unistd::mkfifo(&at("etc/fifo"), Mode::from_bits_truncate(0o640));
    record("fifo", fifo.map_err(std::io::Error::from));
    let device = mknod(
        &at("etc/null2"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    );
    record("device", device.map_err(std::io::Error::from));
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    let times = File::options().write(true).open(at("etc/fstab"));
    record(
        "utimens",
        times.and_then(|f| f.set_times(FileTimes::new().set_modified(when))),
    );
    record(
        "xattr",
        xattr::set(at("etc/inittab"), "user.layerfs", b"value"),
    );
    record(
        "delete recreated file",
        fs::write(at("etc/motd2"), "").and_then(|()| fs::remove_file(at("etc/motd2"))),
    );
    record("rmdir lower dir", fs::remove_dir(at("srv")));
    record(
        "rename onto deleted name",
        fs::rename(at("etc/shells"), at("etc/profile")),
    );
    outcomes
}

/// Snapshots that ignore what differs between any two runs: times of changed entries.
const CHANGED: Compare = Compare {
    mtime: false,
    xattrs: true,
    opaque: false,
    nlink: true,
    ino: false,
};

/// Upper directories: entries, whiteouts and opaque markers, without times.
const UPPER: Compare = Compare {
    mtime: false,
    xattrs: true,
    opaque: true,
    nlink: false,
    ino: false,
};

fn mount_dir(env: &Env, target: &Path) -> PathBuf {
    let target = target.canonicalize().unwrap();
    let mounts = env.root.join("mounts");
    for entry in fs::read_dir(&mounts).unwrap() {
        let dir = entry.unwrap().path();
        let record: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("mount.json")).unwrap()).unwrap();
        if record["target"] == path_arg(&target) {
            return dir;
        }
    }
    panic!("no mount record for {}", target.display());
}

#[test]
fn same_changes_leave_same_trees() {
    for driver in FUSE_DRIVERS {
        compare_changes(driver);
    }
}

fn compare_changes(driver: &str) {
    let env = Env::new();
    let image = "layerfs-fixtures/whiteouts";
    env.ok(&["pull", image]);
    let kernel = env.path("kernel");
    let fuse = env.path("fuse");
    env.ok(&["mount", "--rw", image, path_arg(&kernel)]);
    env.ok(&["mount", "--rw", "--driver", driver, image, path_arg(&fuse)]);

    let kernel_outcomes = apply_operations(&kernel);
    let fuse_outcomes = apply_operations(&fuse);
    assert_eq!(kernel_outcomes, fuse_outcomes);
    assert!(
        fuse_outcomes.contains(&"rename lower dir: Some(18)".to_owned()),
        "{fuse_outcomes:?}"
    );

    assert_same_tree(&kernel, &fuse, CHANGED, "merged trees");
    let kernel_upper = mount_dir(&env, &kernel).join("upper");
    let fuse_upper = mount_dir(&env, &fuse).join("upper");
    assert_same_tree(&kernel_upper, &fuse_upper, UPPER, "upper directories");

    // Copy-up keeps times; the parent of a copied-up file keeps them too.
    let lower_passwd = fs::symlink_metadata(layer_dirs(&env, image)[1].join("etc/passwd")).unwrap();
    let fuse_passwd = fs::symlink_metadata(fuse.join("etc/passwd")).unwrap();
    assert_eq!(
        fuse_passwd.modified().unwrap(),
        lower_passwd.modified().unwrap()
    );
    let kernel_usr = fs::symlink_metadata(kernel.join("usr")).unwrap();
    let fuse_usr = fs::symlink_metadata(fuse.join("usr")).unwrap();
    assert_eq!(fuse_usr.modified().unwrap(), kernel_usr.modified().unwrap());

    env.ok(&["umount", path_arg(&fuse)]);
    env.ok(&["umount", path_arg(&kernel)]);
}

#[test]
fn drivers_mount_each_others_upper() {
    let env = Env::new();
    let image = "layerfs-fixtures/whiteouts";
    env.ok(&["pull", image]);
    let lowers = layer_dirs(&env, image);
    let kernel = env.path("kernel");
    let fuse = env.path("fuse");
    env.ok(&["mount", "--rw", image, path_arg(&kernel)]);
    env.ok(&["mount", "--rw", "--driver", "fuse", image, path_arg(&fuse)]);
    apply_operations(&kernel);
    apply_operations(&fuse);
    let kernel_view = snapshot(&kernel, CHANGED);
    let kernel_upper = env.ok(&["umount", "--keep", path_arg(&kernel)]);
    let fuse_upper = env.ok(&["umount", "--keep", path_arg(&fuse)]);
    let kernel_upper = PathBuf::from(
        kernel_upper
            .trim()
            .strip_prefix("Kept writable layer ")
            .unwrap(),
    );
    let fuse_upper = PathBuf::from(
        fuse_upper
            .trim()
            .strip_prefix("Kept writable layer ")
            .unwrap(),
    );

    // The kernel over FUSE's upper layer, and FUSE over the kernel's.
    let work = env.path("work-a");
    fs::create_dir(&work).unwrap();
    let kernel_on_fuse = KernelMount::new(&lowers, Some((&fuse_upper, &work)), &env.path("k-on-f"));
    let work = env.path("work-b");
    fs::create_dir(&work).unwrap();
    let fuse_on_kernel = FuseMount::new(&lowers, Some((&kernel_upper, &work)), &env.path("f-on-k"));

    for (what, root) in [
        ("kernel over the FUSE upper", &kernel_on_fuse.target),
        ("FUSE over the kernel upper", &fuse_on_kernel.target),
    ] {
        let view = snapshot(root, CHANGED);
        let differences = tree::differences(&kernel_view, &view);
        assert!(
            differences.is_empty(),
            "{what}:\n{}",
            differences.join("\n")
        );
    }
}

/// Permission bits and size of `path`.
fn mode_and_size(path: &Path) -> (u32, u64) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.permissions().mode(), meta.len())
}

#[test]
fn copy_up_of_hardlink_leaves_other_names() {
    for driver in FUSE_DRIVERS {
        let env = Env::new();
        env.ok(&["pull", "busybox"]);
        let kernel = env.path("kernel");
        let fuse = env.path("fuse");
        env.ok(&["mount", "--rw", "busybox", path_arg(&kernel)]);
        env.ok(&[
            "mount",
            "--rw",
            "--driver",
            driver,
            "busybox",
            path_arg(&fuse),
        ]);

        for root in [&kernel, &fuse] {
            // Looked up first, so that the names are in the kernel's caches.
            let before = mode_and_size(&root.join("bin/cat"));
            assert_eq!(before, mode_and_size(&root.join("bin/ls")));
            fs::set_permissions(root.join("bin/ls"), fs::Permissions::from_mode(0o700)).unwrap();
            let append = OpenOptions::new().append(true).open(root.join("bin/ls"));
            append.unwrap().write_all(b"appended").unwrap();
        }
        for name in ["bin/cat", "bin/ls", "bin/busybox"] {
            let expected = mode_and_size(&kernel.join(name));
            assert_eq!(
                mode_and_size(&fuse.join(name)),
                expected,
                "{name} with {driver}"
            );
        }
        // overlayfs keeps the copy's inode number equal to the other names' even though it is
        // another file now; FUSE cannot give two files one number, so only names compare.
        let cat_links = fs::symlink_metadata(fuse.join("bin/cat")).unwrap().nlink();
        assert_eq!(
            cat_links,
            fs::symlink_metadata(kernel.join("bin/cat"))
                .unwrap()
                .nlink()
        );
        env.ok(&["umount", path_arg(&fuse)]);
        env.ok(&["umount", path_arg(&kernel)]);
    }
}
