//! `layerfs run --driver fuse`: the container's root is the FUSE driver's merged view, and
//! nothing of it is left after the container exits.

mod common;

use common::Env;

fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn run_with_fuse_root() {
    let env = Env::new();
    let script = "echo $$; echo written > /tmp/file; cat /tmp/file; \
                  grep ' / ' /proc/mounts | cut -d' ' -f3; hostname";
    let output = env.run(&[
        "run",
        "--rm",
        "--driver",
        "fuse",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["1", "written", "fuse", "box"], "stderr: {stderr}");

    assert!(!host_mounts().contains(env.root.to_str().unwrap()));
    let containers = std::fs::read_dir(env.root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0);
}

#[test]
fn fuse_container_keeps_writable_layer() {
    let env = Env::new();
    let output = env.run(&[
        "run",
        "--driver",
        "fuse",
        "busybox",
        "sh",
        "-c",
        "rm /etc/group; echo x > /root/new",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let containers: Vec<_> = std::fs::read_dir(env.root.join("containers"))
        .unwrap()
        .collect();
    assert_eq!(containers.len(), 1);
    let upper = containers[0].as_ref().unwrap().path().join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("root/new")).unwrap(),
        "x\n"
    );
    let whiteout = std::fs::symlink_metadata(upper.join("etc/group")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::rdev(&whiteout), 0);
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    assert!(!host_mounts().contains(env.root.to_str().unwrap()));
}
