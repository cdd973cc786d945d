//! `layerfs snapshotter` with `driver = "fuse"` under a real containerd (Debian's 1.6):
//! containerd mounts snapshots through `mount.fuse3` and `layerfs overlay`, for unpacking
//! layers and for containers' root filesystems.

mod common;

use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::containerd::{Containerd, Setup, WHITEOUTS_OUTPUT, WHITEOUTS_SCRIPT};
use common::{direct, Env};

/// How long daemons may take to exit after their unmount; generous because CI machines are
/// shared.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lists every entry of the root file system, one line each: for directories the mode and
/// owner, for other files also size, link count, modification time, device number and
/// symlink target, then a checksum of every regular file. Directory times and sizes are left
/// out: they depend on how each snapshotter unpacked the layer, not on what it shows.
const LISTING_SCRIPT: &str = "find / -xdev -type d -exec stat -c '%n %f %u:%g' {} + | sort; \
    find / -xdev ! -type d -exec stat -c '%N %f %u:%g %s %h %Y %t:%T' {} + | sort; \
    find / -xdev -type f -exec md5sum {} + | sort";

fn fuse_setup() -> Setup {
    Setup {
        driver: Some("fuse"),
        ..Setup::default()
    }
}

fn pull(containerd: &Containerd, snapshotter: &str, image: &str) {
    let args = [
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        snapshotter,
        image,
    ];
    containerd.ctr(&args);
}

/// Returns the file system type and source of the mount on `/` in `mountinfo`.
fn root_mount(mountinfo: &str) -> (String, String) {
    let line = mountinfo
        .lines()
        .find(|line| line.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root mount in {mountinfo}"));
    let (_, fields) = line.split_once(" - ").unwrap();
    let mut fields = fields.split(' ');
    let fstype = fields.next().unwrap().to_owned();
    let source = fields.next().unwrap().to_owned();
    (fstype, source)
}

/// Lists the mount points of layerfs FUSE mounts in containerd's namespace, other than the
/// copies of host mounts that the namespace started with.
fn fuse_mounts(containerd: &Containerd, env: &Env) -> Vec<String> {
    let test_dir = env.dir.path().to_str().unwrap();
    containerd
        .mountinfo()
        .lines()
        .filter(|line| line.contains(" - fuse layerfs "))
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|target| target.starts_with("/run/") || target.starts_with(test_dir))
        .map(str::to_owned)
        .collect()
}

/// Lists the `layerfs fuse-daemon` processes that serve mounts of the store at `root`.
fn fuse_daemons(root: &Path) -> Vec<String> {
    let mut daemons = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&byte| byte == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        if args.get(1).map(String::as_str) == Some("fuse-daemon")
            && args
                .get(2)
                .is_some_and(|dir| Path::new(dir).starts_with(root))
        {
            daemons.push(args.join(" "));
        }
    }
    daemons
}

/// Waits until no FUSE daemon serves the store at `root`: they exit shortly after their
/// unmount, and nothing reports when.
fn wait_for_daemons_exit(root: &Path) -> Vec<String> {
    let start = Instant::now();
    loop {
        let daemons = fuse_daemons(root);
        if daemons.is_empty() || start.elapsed() > EXIT_TIMEOUT {
            return daemons;
        }
        sleep(Duration::from_millis(50));
    }
}

/// Lists the daemon directories that FUSE mounts left in the snapshot directories of the
/// store at `root`.
fn daemon_dirs(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    for snapshot in fs::read_dir(root.join("snapshots")).unwrap().flatten() {
        let Ok(entries) = fs::read_dir(snapshot.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("fuse-") {
                dirs.push(entry.path().display().to_string());
            }
        }
    }
    dirs
}

/// Returns the mounts that `ctr snapshots mounts` prints for a new active snapshot on `parent`.
fn probe_mounts(containerd: &Containerd, parent: &str) -> String {
    let snapshots = ["snapshots", "--snapshotter", "layerfs"];
    let prepare = [&snapshots[..], &["prepare", "probe", parent]].concat();
    containerd.ctr(&prepare);
    let mounts = [&snapshots[..], &["mounts", "/mnt", "probe"]].concat();
    let output = containerd.ctr(&mounts);
    containerd.ctr(&[&snapshots[..], &["rm", "probe"]].concat());
    output
}

#[test]
fn fuse_snapshots_run_under_containerd() {
    let env = Env::new();
    let containerd = Containerd::start(&env, fuse_setup());
    let busybox = direct("library/busybox:latest");
    let whiteouts = direct("layerfs-fixtures/whiteouts:latest");
    pull(&containerd, "layerfs", &busybox);
    pull(&containerd, "layerfs", &whiteouts);
    assert_eq!(containerd.layers_applied(), 3);
    assert_eq!(
        daemon_dirs(&env.root),
        Vec::<String>::new(),
        "commit removes the daemon directories of unpacking"
    );

    let output = containerd.run("default", &busybox, &["echo", "hello from busybox"]);
    assert_eq!(output, "hello from busybox\n");
    let output = containerd.run("default", &whiteouts, &["sh", "-c", WHITEOUTS_SCRIPT]);
    assert_eq!(output, WHITEOUTS_OUTPUT);
    let mountinfo = containerd.run("default", &whiteouts, &["cat", "/proc/self/mountinfo"]);
    let (fstype, source) = root_mount(&mountinfo);
    assert_eq!(fstype, "fuse", "{mountinfo}");
    assert_eq!(source, "layerfs", "{mountinfo}");

    let snapshots = containerd.snapshots("default");
    let (top, _, _) = snapshots
        .iter()
        .find(|(_, parent, _)| !parent.is_empty())
        .unwrap();
    let mounts = probe_mounts(&containerd, top);
    assert!(
        mounts.starts_with("mount -t fuse3.layerfs overlay /mnt -o "),
        "{mounts}"
    );

    let daemons = wait_for_daemons_exit(&env.root);
    assert_eq!(
        daemons,
        Vec::<String>::new(),
        "daemons left after `ctr run --rm`"
    );
    assert_eq!(fuse_mounts(&containerd, &env), Vec::<String>::new());

    containerd.ctr(&["images", "rm", "--sync", &busybox, &whiteouts]);
    assert_eq!(containerd.snapshots("default"), []);
    assert_eq!(containerd.snapshot_dirs(), Vec::<String>::new());
    assert_eq!(containerd.layer_dirs(), Vec::<String>::new());
    assert_eq!(fuse_daemons(&env.root), Vec::<String>::new());
    assert_eq!(fuse_mounts(&containerd, &env), Vec::<String>::new());
}

#[test]
fn fuse_view_matches_overlay_view() {
    let env = Env::new();
    let containerd = Containerd::start(&env, fuse_setup());
    let image = direct("layerfs-fixtures/whiteouts:latest");
    pull(&containerd, "layerfs", &image);
    pull(&containerd, "overlayfs", &image);
    let mountinfo = containerd.run("default", &image, &["cat", "/proc/self/mountinfo"]);
    assert_eq!(root_mount(&mountinfo).0, "fuse", "{mountinfo}");

    let fuse = containerd.run_with("default", "layerfs", &image, &["sh", "-c", LISTING_SCRIPT]);
    let overlay = containerd.run_with(
        "default",
        "overlayfs",
        &image,
        &["sh", "-c", LISTING_SCRIPT],
    );
    assert!(fuse.contains("/etc/layerfs-added"), "{fuse}");
    assert!(!fuse.contains("/etc/motd"), "{fuse}");
    assert!(!fuse.contains("/usr/share/udhcpc"), "{fuse}");

    let fuse_lines: Vec<&str> = fuse.lines().collect();
    let overlay_lines: Vec<&str> = overlay.lines().collect();
    assert_eq!(fuse_lines, overlay_lines);
}
