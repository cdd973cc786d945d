//! POSIX semantics over the FUSE driver, checked against the kernel's overlayfs: the same
//! system calls on the same image, as root and as an unprivileged user, must give the same
//! results, errors included, in the manner of pjdfstest.
//!
//! Each check runs in a thread of its own. A check for the unprivileged user switches that
//! thread alone to uid and gid 65534 with no supplementary groups, which also drops root's
//! capabilities for it.

mod common;

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::tree::{self, snapshot, Compare};
use common::Env;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use rustix::fs::{renameat_with, RenameFlags, CWD};
use rustix::thread::{set_thread_gid, set_thread_groups, set_thread_uid};

const NOBODY: u32 = 65534;

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Root,
    Nobody,
}

type Check = fn(&Path) -> String;

/// `ok` with the value, or the errno's name.
fn outcome<T: Debug>(result: std::io::Result<T>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(error) => match error.raw_os_error() {
            Some(code) => format!("{:?}", Errno::from_raw(code)),
            None => format!("error {error}"),
        },
    }
}

fn nix_outcome<T: Debug>(result: nix::Result<T>) -> String {
    outcome(result.map_err(std::io::Error::from))
}

/// Type, permissions, owner, size and link count of `path`.
fn describe(path: &Path) -> String {
    match fs::symlink_metadata(path) {
        Ok(meta) => format!(
            "mode={:o} uid={} gid={} size={} nlink={}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            if meta.is_dir() { 0 } else { meta.size() },
            meta.nlink()
        ),
        Err(error) => outcome::<()>(Err(error)),
    }
}

fn names(dir: &Path) -> String {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names.join(",")
        }
        Err(error) => outcome::<()>(Err(error)),
    }
}

fn create(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

fn checks() -> Vec<(&'static str, Who, Check)> {
    vec![
        ("create sets mode and owner", Who::Root, |r| {
            let made = outcome(create(&r.join("p1"), 0o640).map(drop));
            format!("{made} {}", describe(&r.join("p1")))
        }),
        ("user creates in sticky dir", Who::Nobody, |r| {
            let made = outcome(create(&r.join("tmp/p2"), 0o644).map(drop));
            format!("{made} {}", describe(&r.join("tmp/p2")))
        }),
        ("root file in sticky dir", Who::Root, |r| {
            outcome(fs::write(r.join("tmp/p3"), "r"))
        }),
        (
            "user unlinks other's file in sticky dir",
            Who::Nobody,
            |r| outcome(fs::remove_file(r.join("tmp/p3"))),
        ),
        ("user writes root's file", Who::Nobody, |r| {
            outcome(
                OpenOptions::new()
                    .write(true)
                    .open(r.join("etc/passwd"))
                    .map(drop),
            )
        }),
        ("user reads private file", Who::Nobody, |r| {
            outcome(fs::read(r.join("etc/shadow")))
        }),
        ("user chmods root's file", Who::Nobody, |r| {
            outcome(fs::set_permissions(
                r.join("etc/passwd"),
                fs::Permissions::from_mode(0o777),
            ))
        }),
        ("user chowns own file", Who::Nobody, |r| {
            outcome(std::os::unix::fs::chown(r.join("tmp/p2"), Some(0), None))
        }),
        ("user mkdir in root dir", Who::Nobody, |r| {
            outcome(fs::create_dir(r.join("etc/p4")))
        }),
        ("user setgid on own file", Who::Nobody, |r| {
            let set = outcome(fs::set_permissions(
                r.join("tmp/p2"),
                fs::Permissions::from_mode(0o2755),
            ));
            format!("{set} {}", describe(&r.join("tmp/p2")))
        }),
        ("mkdir existing", Who::Root, |r| {
            outcome(fs::create_dir(r.join("etc")))
        }),
        ("rmdir non-empty lower dir", Who::Root, |r| {
            outcome(fs::remove_dir(r.join("etc")))
        }),
        ("rmdir file", Who::Root, |r| {
            outcome(fs::remove_dir(r.join("etc/hostname")))
        }),
        ("unlink dir", Who::Root, |r| {
            outcome(fs::remove_file(r.join("home")))
        }),
        ("unlink missing", Who::Root, |r| {
            outcome(fs::remove_file(r.join("p-missing")))
        }),
        ("hardlink dir", Who::Root, |r| {
            outcome(fs::hard_link(r.join("home"), r.join("p5")))
        }),
        ("rename dir over file", Who::Root, |r| {
            outcome(
                fs::create_dir(r.join("p6"))
                    .and_then(|()| fs::rename(r.join("p6"), r.join("etc/hostname"))),
            )
        }),
        ("rename file over dir", Who::Root, |r| {
            outcome(fs::rename(r.join("p1"), r.join("home")))
        }),
        ("rename dir over non-empty dir", Who::Root, |r| {
            outcome(fs::rename(r.join("p6"), r.join("etc")))
        }),
        ("rename dir over empty lower dir", Who::Root, |r| {
            let moved = outcome(fs::rename(r.join("p6"), r.join("mnt")));
            format!("{moved} {}", names(&r.join("mnt")))
        }),
        ("rename lower dir", Who::Root, |r| {
            outcome(fs::rename(r.join("media"), r.join("p7")))
        }),
        ("rename into own subdir", Who::Root, |r| {
            outcome(
                fs::create_dir_all(r.join("p8/sub"))
                    .and_then(|()| fs::rename(r.join("p8"), r.join("p8/sub/x"))),
            )
        }),
        ("rename noreplace", Who::Root, |r| {
            let result = renameat_with(
                CWD,
                r.join("p1"),
                CWD,
                r.join("etc/hostname"),
                RenameFlags::NOREPLACE,
            );
            outcome(result.map_err(std::io::Error::from))
        }),
        ("rename between hardlinks", Who::Root, |r| {
            let linked = fs::hard_link(r.join("p1"), r.join("p9"));
            let renamed = linked.and_then(|()| fs::rename(r.join("p1"), r.join("p9")));
            format!(
                "{} {} {}",
                outcome(renamed),
                describe(&r.join("p1")),
                describe(&r.join("p9"))
            )
        }),
        ("rename onto deleted lower name", Who::Root, |r| {
            let removed = fs::remove_file(r.join("etc/motd"));
            let renamed = removed.and_then(|()| fs::rename(r.join("p9"), r.join("etc/motd")));
            format!("{} {}", outcome(renamed), describe(&r.join("etc/motd")))
        }),
        ("symlink loop", Who::Root, |r| {
            let made =
                symlink("p10b", r.join("p10a")).and_then(|()| symlink("p10a", r.join("p10b")));
            format!(
                "{} {}",
                outcome(made),
                outcome(File::open(r.join("p10a")).map(drop))
            )
        }),
        ("symlink target", Who::Root, |r| {
            let made = symlink("../etc/hostname", r.join("p11"));
            format!(
                "{} {}",
                outcome(made),
                outcome(fs::read_link(r.join("p11")))
            )
        }),
        ("exclusive create of existing", Who::Root, |r| {
            outcome(create(&r.join("etc/hostname"), 0o644).map(drop))
        }),
        ("truncate lower file", Who::Root, |r| {
            let file = OpenOptions::new().write(true).open(r.join("etc/issue"));
            let cut = file.and_then(|f| f.set_len(5));
            format!("{} {:?}", outcome(cut), fs::read(r.join("etc/issue")))
        }),
        ("open with O_TRUNC", Who::Root, |r| {
            let file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(r.join("etc/fstab"));
            format!(
                "{} {}",
                outcome(file.map(drop)),
                describe(&r.join("etc/fstab"))
            )
        }),
        ("append to lower file", Who::Root, |r| {
            let file = OpenOptions::new().append(true).open(r.join("etc/hostname"));
            let written = file.and_then(|mut f| f.write_all(b"more\n"));
            format!(
                "{} {:?}",
                outcome(written),
                fs::read_to_string(r.join("etc/hostname"))
            )
        }),
        ("write through read-only fd", Who::Root, |r| {
            let file = File::open(r.join("etc/hostname"));
            outcome(file.and_then(|mut f| f.write_all(b"x")))
        }),
        ("open dir for writing", Who::Root, |r| {
            outcome(OpenOptions::new().write(true).open(r.join("etc")).map(drop))
        }),
        ("read after seek", Who::Root, |r| {
            let mut file = File::open(r.join("etc/passwd")).unwrap();
            let mut buffer = [0u8; 8];
            let read = file
                .seek(SeekFrom::Start(5))
                .and_then(|_| file.read(&mut buffer));
            format!("{} {:?}", outcome(read), buffer)
        }),
        ("chown clears setuid", Who::Root, |r| {
            let made = create(&r.join("p12"), 0o755).map(drop);
            let set = made.and_then(|()| {
                fs::set_permissions(r.join("p12"), fs::Permissions::from_mode(0o4755))
            });
            let owned =
                set.and_then(|()| std::os::unix::fs::chown(r.join("p12"), Some(1000), None));
            format!("{} {}", outcome(owned), describe(&r.join("p12")))
        }),
        ("setgid dir inheritance", Who::Root, |r| {
            let dir = r.join("p13");
            let made = fs::create_dir(&dir)
                .and_then(|()| std::os::unix::fs::chown(&dir, None, Some(1000)))
                .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o2775)))
                .and_then(|()| fs::write(dir.join("f"), ""))
                .and_then(|()| fs::create_dir(dir.join("d")));
            format!(
                "{} {} {}",
                outcome(made),
                describe(&dir.join("f")),
                describe(&dir.join("d"))
            )
        }),
        ("chmod lower dir", Who::Root, |r| {
            let set = fs::set_permissions(r.join("srv"), fs::Permissions::from_mode(0o700));
            format!("{} {}", outcome(set), describe(&r.join("srv")))
        }),
        ("utimes", Who::Root, |r| {
            let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
            let file = File::options().write(true).open(r.join("etc/group"));
            let set = file.and_then(|f| {
                f.set_times(fs::FileTimes::new().set_modified(when).set_accessed(when))
            });
            let meta = fs::metadata(r.join("etc/group")).unwrap();
            format!(
                "{} {} {} {}",
                outcome(set),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.atime()
            )
        }),
        ("user xattr round trip", Who::Root, |r| {
            let path = r.join("etc/profile");
            let set = xattr::set(&path, "user.p14", b"v");
            let listed: Vec<_> = xattr::list(&path)
                .map(|names| names.collect())
                .unwrap_or_default();
            let read = xattr::get(&path, "user.p14");
            let removed = xattr::remove(&path, "user.p14");
            let again = xattr::get(&path, "user.p14");
            format!(
                "{} {:?} {} {} {}",
                outcome(set),
                listed,
                outcome(read),
                outcome(removed),
                outcome(again)
            )
        }),
        ("overlay xattr is private", Who::Root, |r| {
            let set = xattr::set(r.join("home"), "trusted.overlay.opaque", b"y");
            let read = xattr::get(r.join("etc"), "trusted.overlay.opaque");
            format!("{} {}", outcome(set), outcome(read))
        }),
        ("remove missing xattr", Who::Root, |r| {
            outcome(xattr::remove(r.join("etc/inittab"), "user.none"))
        }),
        ("hardlink counts", Who::Root, |r| {
            let made = fs::write(r.join("p15"), "x")
                .and_then(|()| fs::hard_link(r.join("p15"), r.join("p16")));
            let two = describe(&r.join("p15"));
            let removed = fs::remove_file(r.join("p16"));
            format!(
                "{} {two} {} {}",
                outcome(made),
                outcome(removed),
                describe(&r.join("p15"))
            )
        }),
        ("hardlink to lower file", Who::Root, |r| {
            let linked = fs::hard_link(r.join("etc/inittab"), r.join("p17"));
            format!(
                "{} {} {}",
                outcome(linked),
                describe(&r.join("p17")),
                describe(&r.join("etc/inittab"))
            )
        }),
        ("rmdir after deleting lower contents", Who::Root, |r| {
            let dir = r.join("etc/network");
            let removed = fs::read_dir(&dir)
                .and_then(|entries| {
                    entries
                        .map(|e| fs::remove_dir_all(e?.path()))
                        .collect::<std::io::Result<Vec<()>>>()
                })
                .and_then(|_| fs::remove_dir(&dir));
            format!("{} {}", outcome(removed), describe(&dir))
        }),
        ("recreate deleted dir empty", Who::Root, |r| {
            let dir = r.join("etc/network");
            format!("{} {}", outcome(fs::create_dir(&dir)), names(&dir))
        }),
        ("fifo", Who::Root, |r| {
            let made = nix::unistd::mkfifo(&r.join("p18"), Mode::from_bits_truncate(0o600));
            format!("{} {}", nix_outcome(made), describe(&r.join("p18")))
        }),
        ("device node", Who::Root, |r| {
            let made = mknod(
                &r.join("p19"),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                makedev(1, 3),
            );
            let rdev = fs::symlink_metadata(r.join("p19")).map(|m| m.rdev());
            format!("{} {}", nix_outcome(made), outcome(rdev))
        }),
        ("user creates device", Who::Nobody, |r| {
            let made = mknod(
                &r.join("tmp/p20"),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                makedev(1, 3),
            );
            nix_outcome(made)
        }),
        ("flock conflicts", Who::Root, |r| {
            let first = File::open(r.join("etc/passwd")).unwrap();
            let second = File::open(r.join("etc/passwd")).unwrap();
            let held = Flock::lock(first, FlockArg::LockExclusive).map_err(|(_, e)| e);
            let other = Flock::lock(second, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e);
            format!(
                "{} {}",
                nix_outcome(held.map(drop)),
                nix_outcome(other.map(drop))
            )
        }),
        ("read through fd opened before copy-up", Who::Root, |r| {
            let mut before = File::open(r.join("etc/services")).unwrap();
            let written = fs::write(r.join("etc/services"), "rewritten\n");
            let mut content = String::new();
            let read = before.read_to_string(&mut content).map(drop);
            let rewritten = content == "rewritten\n";
            format!(
                "{} {} rewritten={rewritten}",
                outcome(written),
                outcome(read)
            )
        }),
        ("fsync lower file", Who::Root, |r| {
            outcome(File::open(r.join("etc/passwd")).and_then(|f| f.sync_all()))
        }),
        ("statfs", Who::Root, |r| {
            nix_outcome(nix::sys::statvfs::statvfs(r).map(|s| s.name_max()))
        }),
        ("listing after changes", Who::Root, |r| {
            names(&r.join("etc"))
        }),
        ("merged dir link count", Who::Root, |r| describe(r)),
    ]
}

/// Runs `check` on `root` in a thread of its own, as `who`.
fn run_check(check: Check, who: Who, root: &Path) -> String {
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        if who == Who::Nobody {
            set_thread_groups(&[]).unwrap();
            set_thread_gid(rustix::fs::Gid::from_raw(NOBODY)).unwrap();
            set_thread_uid(rustix::fs::Uid::from_raw(NOBODY)).unwrap();
        }
        check(&root)
    })
    .join()
    .unwrap()
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn posix_checks_match_overlay() {
    compare_checks("fuse");
}

#[test]
fn posix_checks_match_overlay_with_passthrough() {
    compare_checks("fuse-passthrough");
}

/// Checks whose outcome with passthrough opens differs from overlayfs's: the check, the
/// outcome expected instead, and the path it leaves different. The kernel passes every open
/// of an inode through to one backing file, so a file open for reading cannot also be
/// opened for writing once that means a copy-up.
const PASSTHROUGH_DIFFERENCES: [(&str, &str, &str); 1] = [(
    "read through fd opened before copy-up",
    "ETXTBSY ok () rewritten=false",
    "etc/services",
)];

fn compare_checks(driver: &str) {
    let env = Env::new();
    let image = "alpine:3.20";
    env.ok(&["pull", image]);
    let kernel: PathBuf = env.path("kernel");
    let fuse: PathBuf = env.path("fuse");
    env.ok(&["mount", "--rw", image, path_arg(&kernel)]);
    env.ok(&["mount", "--rw", "--driver", driver, image, path_arg(&fuse)]);

    let mut differences = Vec::new();
    for (name, who, check) in checks() {
        let mut expected = run_check(check, who, &kernel);
        let actual = run_check(check, who, &fuse);
        let known = PASSTHROUGH_DIFFERENCES
            .iter()
            .find(|(known, ..)| *known == name);
        if let (Some((_, outcome, _)), "fuse-passthrough") = (known, driver) {
            expected = outcome.to_string();
        }
        if expected != actual {
            differences.push(format!("{name}:\n  overlay {expected}\n  fuse    {actual}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{driver}:\n{}",
        differences.join("\n")
    );

    let compare = Compare {
        nlink: true,
        xattrs: true,
        ..Compare::default()
    };
    let mut expected_tree = snapshot(&kernel, compare);
    let mut actual_tree = snapshot(&fuse, compare);
    if driver == "fuse-passthrough" {
        for (_, _, path) in PASSTHROUGH_DIFFERENCES {
            expected_tree.remove(path);
            actual_tree.remove(path);
        }
    }
    let tree_differences = tree::differences(&expected_tree, &actual_tree);
    assert!(
        tree_differences.is_empty(),
        "{}",
        tree_differences.join("\n")
    );

    env.ok(&["umount", path_arg(&fuse)]);
    env.ok(&["umount", path_arg(&kernel)]);
}
