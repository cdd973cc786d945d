//! The FUSE driver's daemon: recorded with its mount, stopped by `umount`, by SIGTERM and
//! by a lazy unmount, cleaned up by `umount` after a crash, and leaving alone a newer mount
//! on its target when its own mount is gone.

mod common;

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use common::overlay::FuseMount;
use common::Env;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn is_mount_point(target: &Path) -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let target = path_arg(target);
    mountinfo
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(target))
}

/// A FUSE mount of busybox and its record directory in the store.
struct Mounted {
    target: PathBuf,
    dir: PathBuf,
    record: Value,
}

impl Mounted {
    fn new(env: &Env, rw: bool) -> Mounted {
        env.ok(&["pull", "busybox"]);
        let target = env.path("mounted");
        let mut args = vec!["mount", "--driver", "fuse", "busybox", path_arg(&target)];
        if rw {
            args.insert(1, "--rw");
        }
        env.ok(&args);
        let target = target.canonicalize().unwrap();
        let mounts = env.root.join("mounts");
        let dir = fs::read_dir(&mounts)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let record = serde_json::from_slice(&fs::read(dir.join("mount.json")).unwrap()).unwrap();
        Mounted {
            target,
            dir,
            record,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.record["pid"].as_i64().unwrap() as i32)
    }

    /// Blocks until the daemon has exited: it holds this lock for as long as it runs.
    fn wait_for_daemon_exit(&self) {
        let lock = File::open(self.dir.join("daemon.lock")).unwrap();
        let _lock = Flock::lock(lock, FlockArg::LockExclusive).unwrap();
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log")).unwrap()
    }
}

/// Returns whether process `pid` is gone or only waits to be reaped.
fn process_exited(pid: Pid) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
            matches!(state, Some("Z" | "X"))
        }
        Err(error) => error.kind() == ErrorKind::NotFound,
    }
}

#[test]
fn fuse_mount_records_driver_and_pid() {
    let env = Env::new();
    let mounted = Mounted::new(&env, false);
    assert_eq!(mounted.record["driver"], "fuse");
    assert!(!process_exited(mounted.pid()));
    assert!(is_mount_point(&mounted.target));
    assert!(mounted.target.join("bin/busybox").is_file());

    env.ok(&["umount", path_arg(&mounted.target)]);
    assert!(process_exited(mounted.pid()));
    assert!(!mounted.target.exists());
    assert!(!mounted.dir.exists());
}

#[test]
fn fuse_mount_is_read_only_without_rw() {
    let env = Env::new();
    let mounted = Mounted::new(&env, false);
    let error = fs::write(mounted.target.join("new-file"), "x").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EROFS));
    env.ok(&["umount", path_arg(&mounted.target)]);
}

#[test]
fn sigterm_unmounts_and_stops_daemon() {
    let env = Env::new();
    let mounted = Mounted::new(&env, true);
    kill(mounted.pid(), Signal::SIGTERM).unwrap();
    mounted.wait_for_daemon_exit();

    assert!(!is_mount_point(&mounted.target));
    let log = mounted.log();
    assert!(log.contains("unmounting on signal"), "{log}");
    assert!(log.contains("exiting"), "{log}");
    env.ok(&["umount", path_arg(&mounted.target)]);
    assert!(!mounted.dir.exists());
}

#[test]
fn lazy_unmount_stops_daemon() {
    let env = Env::new();
    let mounted = Mounted::new(&env, false);
    umount2(&mounted.target, MntFlags::MNT_DETACH).unwrap();
    mounted.wait_for_daemon_exit();

    let log = mounted.log();
    assert!(log.contains("unmounted; exiting"), "{log}");
    env.ok(&["umount", path_arg(&mounted.target)]);
    assert!(!mounted.dir.exists());
    assert!(!mounted.target.exists());
}

#[test]
fn umount_cleans_up_after_crashed_daemon() {
    let env = Env::new();
    let mounted = Mounted::new(&env, true);
    kill(mounted.pid(), Signal::SIGKILL).unwrap();
    mounted.wait_for_daemon_exit();
    let error = fs::metadata(&mounted.target).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ENOTCONN));

    env.ok(&["umount", path_arg(&mounted.target)]);
    assert!(!is_mount_point(&mounted.target));
    assert!(!mounted.target.exists());
    assert!(!mounted.dir.exists());
}

#[test]
fn umount_keep_returns_fuse_upper() {
    let env = Env::new();
    let mounted = Mounted::new(&env, true);
    fs::write(mounted.target.join("etc/added"), "added\n").unwrap();
    fs::remove_file(mounted.target.join("etc/group")).unwrap();

    let output = env.ok(&["umount", "--keep", path_arg(&mounted.target)]);
    let upper = PathBuf::from(output.trim().strip_prefix("Kept writable layer ").unwrap());
    assert_eq!(
        fs::read_to_string(upper.join("etc/added")).unwrap(),
        "added\n"
    );
    let whiteout = fs::symlink_metadata(upper.join("etc/group")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    assert_eq!(std::os::unix::fs::MetadataExt::rdev(&whiteout), 0);
}

/// containerd's sequence when the exit status of its mount helper is lost (`ECHILD`): it
/// unmounts the helper's mount and mounts again on the same target, while the first daemon
/// may still be ending.
#[test]
fn ended_mount_leaves_newer_mount() {
    let dir = tempfile::tempdir().unwrap();
    let first_layer = dir.path().join("first");
    let second_layer = dir.path().join("second");
    let target = dir.path().join("target");
    for layer in [&first_layer, &second_layer, &target] {
        fs::create_dir(layer).unwrap();
    }
    fs::write(first_layer.join("first"), "first\n").unwrap();
    fs::write(second_layer.join("second"), "second\n").unwrap();
    let layers = layerfs_fuse::Layers {
        lowers: vec![first_layer],
        upper: None,
    };
    let first = layerfs_fuse::mount(&layers, &target, layerfs_fuse::Options::default()).unwrap();
    umount2(&target, MntFlags::empty()).unwrap();
    let second = FuseMount::new(&[second_layer], None, &target);

    first.run().unwrap();
    assert!(is_mount_point(&second.target));
    assert_eq!(
        fs::read_to_string(target.join("second")).unwrap(),
        "second\n"
    );
}
