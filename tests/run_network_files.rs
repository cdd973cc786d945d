//! The container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`: bind mounts of files
//! in the container's directory, over images that lack them, have them, or make them
//! symlinks that point out of the rootfs or into `/proc`.

mod common;

use std::fs;
use std::path::PathBuf;

use common::Env;

/// The host's resolv.conf as a container should see it: empty if the host has none.
fn host_resolv_conf() -> String {
    fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

/// Returns the unpacked `path` in the topmost layer of `image` that has it.
fn layer_file(env: &Env, image: &str, path: &str) -> PathBuf {
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", image])).unwrap();
    let layers = inspect["layers"].as_array().unwrap();
    layers
        .iter()
        .rev()
        .map(|layer| {
            let chain_id = layer["chain_id"].as_str().unwrap();
            let hex = chain_id.trim_start_matches("sha256:");
            env.root
                .join("layers/sha256")
                .join(hex)
                .join("diff")
                .join(path)
        })
        .find(|file| file.exists())
        .unwrap_or_else(|| panic!("no layer of {image} has {path}"))
}

#[test]
fn files_are_mounted_from_the_container_dir() {
    let env = Env::new();
    let script = "cat /etc/hostname; cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; \
                  grep -c ' /etc/\\(hosts\\|hostname\\|resolv.conf\\) ' /proc/self/mountinfo";
    let args = ["--hostname", "box1", "busybox", "sh", "-c", script];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{stdout}");
    let mut hosts = parts[0].lines();
    assert_eq!(hosts.next(), Some("box1"));
    let hosts: Vec<&str> = hosts.collect();
    assert!(hosts.contains(&"127.0.0.1\tlocalhost"), "{hosts:?}");
    assert!(hosts.contains(&"127.0.0.1\tbox1"), "{hosts:?}");
    assert_eq!(parts[1], host_resolv_conf());
    assert_eq!(parts[2], "3\n");
}

#[test]
fn image_layers_keep_their_files() {
    let env = Env::new();
    env.ok(&["pull", "alpine:3.20"]);
    let hosts = layer_file(&env, "alpine:3.20", "etc/hosts");
    let hostname = layer_file(&env, "alpine:3.20", "etc/hostname");
    let hosts_before = fs::read(&hosts).unwrap();
    let hostname_before = fs::read(&hostname).unwrap();

    let script = "echo 10.1.1.1 added >> /etc/hosts; cat /etc/hostname";
    let args = [
        "run",
        "--hostname",
        "box2",
        "alpine:3.20",
        "sh",
        "-c",
        script,
    ];
    let stdout = env.ok(&args);
    assert_eq!(stdout, "box2\n");
    assert_eq!(fs::read(&hosts).unwrap(), hosts_before);
    assert_eq!(fs::read(&hostname).unwrap(), hostname_before);

    // The edit went to the container's own file, not to its writable layer.
    let containers = env.root.join("containers");
    let dir = fs::read_dir(&containers)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let own = fs::read_to_string(dir.join("hosts")).unwrap();
    assert!(own.ends_with("10.1.1.1 added\n"), "{own}");
    assert!(!dir.join("upper/etc/hosts").exists());
}

#[test]
fn read_only_container_gets_them_read_only() {
    let env = Env::new();
    let script = "cat /etc/hostname; echo x >> /etc/hosts || echo denied";
    let args = [
        "--read-only",
        "--hostname",
        "box3",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "box3\ndenied\n");
}

#[test]
fn host_network_copies_host_files() {
    let env = Env::new();
    let script = "cat /etc/hosts; echo ---; cat /etc/resolv.conf";
    let args = [
        "--net",
        "host",
        "--hostname",
        "box4",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let (hosts, resolv_conf) = stdout.split_once("---\n").unwrap();
    let host_hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(hosts.starts_with(host_hosts.trim_end()), "{hosts}");
    assert!(hosts.contains("127.0.0.1\tbox4\n"), "{hosts}");
    assert_eq!(resolv_conf, host_resolv_conf());
}

#[test]
fn symlinks_out_of_rootfs_stay_inside() {
    let env = Env::new();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    let absolute = outside.join("resolv.conf");
    let climbing = format!(
        "{}{}/hostname",
        "../".repeat(20),
        outside.display().to_string().trim_start_matches('/')
    );
    let links = [
        ("etc/resolv.conf", absolute.to_str().unwrap()),
        ("etc/hostname", climbing.as_str()),
    ];
    let registry = common::registry();
    common::image::push_modified(
        &env.path("image"),
        &registry,
        "library/busybox:glibc",
        "layerfs-tests/escaping-etc:latest",
        &[common::image::symlink_layer(&links)],
        |_| {},
    );
    let image = format!("{registry}/layerfs-tests/escaping-etc:latest");

    let script = format!(
        "cat /etc/hostname /etc/resolv.conf; ls {}",
        outside.display()
    );
    let args = ["--hostname", "box5", &image, "sh", "-c", &script];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    // Both files land at the symlinks' targets inside the rootfs, where the container reads
    // them through the symlinks.
    assert_eq!(
        stdout,
        format!("box5\n{}hostname\nresolv.conf\n", host_resolv_conf())
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(outside.to_str().unwrap()),
        "{mountinfo}"
    );
}

#[test]
fn symlink_into_proc_is_rejected() {
    let env = Env::new();
    let registry = common::registry();
    common::image::push_modified(
        &env.path("image"),
        &registry,
        "library/busybox:glibc",
        "layerfs-tests/proc-etc:latest",
        &[common::image::symlink_layer(&[(
            "etc/hosts",
            "/proc/sys/kernel/hostname",
        )])],
        |_| {},
    );
    let image = format!("{registry}/layerfs-tests/proc-etc:latest");
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();

    let (stdout, stderr, code) = env.run_rm(&[&image, "cat", "/etc/hosts"]);
    assert_eq!(code, Some(125), "stdout: {stdout}");
    assert_eq!(
        stderr,
        "layerfs: cannot mount the container's /etc/hosts: in the image it resolves to \
         /proc/sys/kernel/hostname, and layerfs mounts nothing inside /proc or /sys\n"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        hostname
    );
}

#[test]
fn user_namespace_root_owns_them() {
    let env = Env::new();
    let script = "stat -c '%u %g' /etc/hosts; echo 10.1.1.1 added >> /etc/hosts && echo written";
    let (stdout, stderr, code) = env.run_rm(&["--userns", "busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "0 0\nwritten\n");
}
