//! Layers that aim at the puller's memory and file descriptors rather than at paths: tar
//! headers that declare gigabytes of metadata behind a small compressed blob, and trees
//! deeper than a descriptor per level allows. Each pull must fail with a one-line error and
//! leave the store as it was, or succeed within bounded memory. A deep tree must stay
//! removable under the usual soft descriptor limit.

mod common;
mod conformance;

use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};

use common::push::{push_image, sha256, Format, PushLayer};
use common::{direct, layerfs_binary, Env};
use conformance::compression::gzip;
use conformance::tar::{Header, Tar};

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Metadata declared by the bomb layers: far past the unpacker's bound on one entry's
/// headers, and enough to show in the peak memory of a pull that reads it whole.
const BOMB_BYTES: usize = 128 << 20;

/// Peak memory a pull may use: a small image needs a few tens of MiB, a pull that reads a
/// bomb's metadata into memory at least [`BOMB_BYTES`].
const MAX_PULL_KIB: u64 = 96 << 10;

/// Pushes a single-layer image with `archive` gzip-compressed and returns its reference.
fn push_gzip_layer(repository: &str, archive: &[u8]) -> String {
    let layer = PushLayer {
        media_type: GZIP_LAYER.to_owned(),
        blob: gzip(archive),
        diff_id: sha256(archive),
    };
    push_image(repository, "latest", &[layer], Format::Oci);
    direct(&format!("{repository}:latest"))
}

/// The end of a pull: its exit status, its stderr, and its peak memory in KiB.
struct Pulled {
    status: ExitStatus,
    stderr: String,
    peak_kib: u64,
}

/// Pulls `reference` in a memory cgroup (v1) of its own and reads the cgroup's peak usage.
/// The pull's own rusage would not do: Linux keeps a process's peak resident size across
/// `execve(2)`, so it would include the memory of the test process it was forked from.
fn pull_measured(env: &Env, reference: &str) -> Pulled {
    let cgroup = tempfile::Builder::new()
        .prefix("layerfs-test-")
        .tempdir_in("/sys/fs/cgroup/memory")
        .unwrap();

    let procs = CString::new(
        cgroup
            .path()
            .join("cgroup.procs")
            .into_os_string()
            .into_vec(),
    )
    .unwrap();
    let mut command = env.command();
    command
        .args(["pull", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls open, write and close, which are async-signal-safe, on
    // a path prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }

    let output = command.output().unwrap();
    let peak = std::fs::read_to_string(cgroup.path().join("memory.max_usage_in_bytes")).unwrap();
    // A cgroup directory is removed with rmdir(2) once its processes have exited.
    std::fs::remove_dir(cgroup.path()).unwrap();
    std::mem::forget(cgroup);
    Pulled {
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        peak_kib: peak.trim().parse::<u64>().unwrap() >> 10,
    }
}

/// Pulls a layer that must be rejected for its oversized headers, and checks the error, the
/// store and the memory used.
fn assert_bomb_rejected(repository: &str, archive: &[u8]) {
    let env = Env::new();
    let reference = push_gzip_layer(repository, archive);
    let before = env.store_listing();
    let pulled = pull_measured(&env, &reference);
    assert!(!pulled.status.success(), "the pull succeeded");
    assert!(
        pulled
            .stderr
            .contains("the headers of one entry are larger than"),
        "unexpected error: {}",
        pulled.stderr
    );
    assert_eq!(pulled.stderr.lines().count(), 1, "{}", pulled.stderr);
    assert_eq!(env.store_listing(), before);
    assert!(
        pulled.peak_kib < MAX_PULL_KIB,
        "the pull peaked at {} KiB",
        pulled.peak_kib
    );
}

#[test]
fn gnu_long_name_bomb_is_rejected() {
    let mut tar = Tar::new();
    tar.gnu_long_name(&vec![b'a'; BOMB_BYTES])
        .file("f", 0o644, b"f\n");
    assert_bomb_rejected("hostile/long-name-bomb", &tar.finish());
}

#[test]
fn pax_record_bomb_is_rejected() {
    let mut tar = Tar::new();
    tar.pax(&[("comment", &vec![b'a'; BOMB_BYTES])])
        .file("f", 0o644, b"f\n");
    assert_bomb_rejected("hostile/pax-bomb", &tar.finish());
}

#[test]
fn pax_global_header_bomb_is_skipped() {
    let env = Env::new();
    let mut tar = Tar::new();
    tar.push(
        Header::new("pax_global_header", b'g', 0o644),
        &vec![b'a'; BOMB_BYTES],
    )
    .file("f", 0o644, b"f\n");
    let reference = push_gzip_layer("hostile/pax-global-bomb", &tar.finish());
    let pulled = pull_measured(&env, &reference);
    assert!(pulled.status.success(), "{}", pulled.stderr);
    assert!(
        pulled.peak_kib < MAX_PULL_KIB,
        "the pull peaked at {} KiB",
        pulled.peak_kib
    );
}

/// Builds an archive of `depth` nested directories `d/d/…`, each listed, with a file in the deepest.
fn deep_tree(depth: usize) -> Vec<u8> {
    let mut tar = Tar::new();
    let mut path = String::from("d");
    for level in 0..depth {
        if level > 0 {
            path.push_str("/d");
        }
        tar.pax(&[("path", path.as_bytes())])
            .dir("placeholder", 0o755);
    }
    let leaf = format!("{path}/leaf");
    tar.pax(&[("path", leaf.as_bytes())])
        .file("placeholder", 0o644, b"leaf\n");
    tar.finish()
}

#[test]
fn path_longer_than_path_max_is_rejected() {
    let env = Env::new();
    let reference = push_gzip_layer("hostile/path-too-long", &deep_tree(2100));
    let before = env.store_listing();
    let stderr = env.fails(&["pull", &reference]);
    assert!(
        stderr.contains("path is longer than 4095 bytes"),
        "unexpected error: {stderr}"
    );
    assert_eq!(env.store_listing(), before);
}

#[test]
fn deep_tree_removed_under_fd_limit() {
    let env = Env::new();
    // Deeper than the usual soft limit of 1024 descriptors, within PATH_MAX.
    let reference = push_gzip_layer("hostile/deep-tree", &deep_tree(1100));
    let before = env.store_listing();
    env.ok(&["pull", &reference]);

    let script = "ulimit -n 1024 && exec \"$0\" \"$@\"";
    let output = std::process::Command::new("sh")
        .args(["-c", script, layerfs_binary(), "rmi", &reference])
        .env("LAYERFS_ROOT", &env.root)
        .env("LAYERFS_CONFIG", &env.config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rmi failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(env.store_listing(), before);
}
