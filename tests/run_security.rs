//! Hardening, observed from inside the container: capabilities, no_new_privs, masked and
//! read-only kernel files, device nodes, mount targets that try to leave the rootfs,
//! resource limits, and the layerfs binary out of the container's reach.

mod common;

use std::fs;
use std::io::ErrorKind;

use common::Env;
use nix::sys::statvfs::{statvfs, FsFlags};

/// Docker's default capabilities as `/proc/PID/status` prints them.
const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

fn status_fields(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    &fields
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{key} missing"))
        .1
}

const CAPS: [&str; 4] = ["busybox", "grep", "-E", "^(Cap|NoNewPrivs)"];

#[test]
fn root_gets_dockers_default_capabilities() {
    let env = Env::new();
    let mut args = vec![];
    args.extend(CAPS);
    args.push("/proc/self/status");
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let fields = status_fields(&stdout);
    assert_eq!(field(&fields, "CapEff"), DOCKER_DEFAULT_CAPS);
    assert_eq!(field(&fields, "CapPrm"), DOCKER_DEFAULT_CAPS);
    assert_eq!(field(&fields, "CapBnd"), DOCKER_DEFAULT_CAPS);
    assert_eq!(field(&fields, "CapInh"), "0000000000000000");
    assert_eq!(field(&fields, "CapAmb"), "0000000000000000");
    assert_eq!(field(&fields, "NoNewPrivs"), "1");
}

#[test]
fn other_users_get_no_capabilities() {
    let env = Env::new();
    let mut args = vec!["-u", "nobody"];
    args.extend(CAPS);
    args.push("/proc/self/status");
    let (stdout, _, code) = env.run_rm(&args);
    assert_eq!(code, Some(0));
    let fields = status_fields(&stdout);
    assert_eq!(field(&fields, "CapEff"), "0000000000000000");
    assert_eq!(field(&fields, "CapPrm"), "0000000000000000");
    assert_eq!(field(&fields, "CapBnd"), DOCKER_DEFAULT_CAPS);
}

#[test]
fn cap_drop_all_empties_the_bounding_set() {
    let env = Env::new();
    let mut args = vec!["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"];
    args.extend(CAPS);
    args.push("/proc/self/status");
    let (stdout, _, code) = env.run_rm(&args);
    assert_eq!(code, Some(0));
    let fields = status_fields(&stdout);
    // CAP_NET_BIND_SERVICE is capability 10.
    assert_eq!(field(&fields, "CapBnd"), "0000000000000400");
    assert_eq!(field(&fields, "CapEff"), "0000000000000400");
}

#[test]
fn sensitive_proc_files_are_masked() {
    let env = Env::new();
    let script = "wc -c < /proc/timer_list; wc -c < /proc/keys; ls /proc/acpi | wc -l; \
                  grep -c -E ' /proc/(timer_list|keys|acpi) ' /proc/self/mountinfo";
    let (stdout, stderr, code) = env.run_rm(&["busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "0", "3"]);
}

#[test]
fn kernel_settings_are_read_only() {
    let env = Env::new();
    let script = "echo x > /proc/sys/kernel/domainname || echo proc-sys-denied; \
                  echo 1 > /proc/sysrq-trigger || echo sysrq-denied; \
                  echo 1 > /sys/kernel/profiling || echo sys-denied; \
                  grep -E ' /sys (sysfs|ro)' /proc/mounts | grep -c ' ro,'";
    let (stdout, stderr, code) = env.run_rm(&["busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["proc-sys-denied", "sysrq-denied", "sys-denied", "1"]
    );
    assert!(stderr.contains("Read-only file system"), "{stderr}");
}

#[test]
fn new_device_nodes_cannot_be_opened() {
    let env = Env::new();
    // 8:0 is the first SCSI disk; the container keeps CAP_MKNOD, as in Docker.
    let script = "mknod /tmp/disk b 8 0 && mknod /dev/disk b 8 0 && echo made; \
                  head -c1 /tmp/disk || echo rootfs-denied; head -c1 /dev/disk || echo dev-denied; \
                  head -c1 /dev/zero | wc -c";
    let (stdout, _, code) = env.run_rm(&["busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["made", "rootfs-denied", "dev-denied", "1"]);
}

#[test]
fn mount_targets_never_leave_the_rootfs() {
    let env = Env::new();
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    // A volume whose symlink climbs out of /data and far beyond the container's root.
    let outside = env.path("outside");
    let depth = "../".repeat(20);
    let link = format!(
        "{depth}{}",
        outside.display().to_string().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(&link, shared.join("escape")).unwrap();
    let volume = format!("{}:/data", shared.display());
    let target = format!("{}", outside.display());
    let script = format!("grep -c ' {target} ' /proc/self/mountinfo; touch {target}/inside");
    let args = [
        "-v",
        &volume,
        "--tmpfs",
        "/data/escape",
        "busybox",
        "sh",
        "-c",
        &script,
    ];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    // The tmpfs landed at the path the symlink names inside the container, not on the host.
    assert_eq!(stdout.trim(), "1");
    assert!(!outside.exists());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&target), "{mountinfo}");
}

#[test]
fn proc_symlink_in_image_is_rejected() {
    let env = Env::new();
    let registry = common::registry();
    common::image::push_modified(
        &env.path("image"),
        &registry,
        "library/busybox:glibc",
        "layerfs-tests/proc-root:latest",
        &[common::image::symlink_layer(&[("proc", "/")])],
        |_| {},
    );
    let image = format!("{registry}/layerfs-tests/proc-root:latest");

    let (stdout, stderr, code) = env.run_rm(&[&image, "true"]);
    assert_eq!(code, Some(125), "stdout: {stdout}");
    assert_eq!(
        stderr,
        "layerfs: mounting /proc: the image makes it a symlink, and it must be a directory\n"
    );
}

#[test]
fn read_only_rootfs_keeps_tmpfs_writable() {
    let env = Env::new();
    let script = "touch /file || echo root-denied; touch /run/ok && echo tmpfs-ok; \
                  touch /dev/shm/ok && echo shm-ok";
    let args = [
        "--read-only",
        "--tmpfs",
        "/run",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let (stdout, _, code) = env.run_rm(&args);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["root-denied", "tmpfs-ok", "shm-ok"]);
}

#[test]
fn ulimits_apply_inside() {
    let env = Env::new();
    let args = [
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ];
    let (stdout, _, code) = env.run_rm(&args);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["100", "200"]);
}

#[test]
fn ulimit_above_hard_limit_is_rejected() {
    let env = Env::new();
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let effective = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    let caps = u64::from_str_radix(effective.split_whitespace().nth(1).unwrap(), 16).unwrap();
    let has_sys_resource = caps & (1 << 24) != 0;
    assert!(
        !has_sys_resource,
        "this test needs a runner without CAP_SYS_RESOURCE"
    );

    let limit = format!("nofile=100:{}", hard + 1);
    let output = env.run(&["run", "--rm", "--ulimit", &limit, "busybox", "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr.contains("above the current hard limit"), "{stderr}");
    assert!(stderr.contains("CAP_SYS_RESOURCE"), "{stderr}");
}

#[test]
fn binary_is_read_only_inside() {
    let env = Env::new();
    // With --init, PID 1 runs layerfs's code for the container's whole life.
    let script = "echo x >> /proc/1/exe && echo wrote; readlink /proc/1/exe || echo no-link";
    let (stdout, stderr, code) = env.run_rm(&["--init", "busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("wrote"), "{stdout}");
    assert!(stdout.contains("no-link"), "{stdout}");
    assert!(stderr.contains("/proc/1/exe"), "{stderr}");

    // Without it, no process in the container runs layerfs.
    let script = "for p in /proc/[0-9]*; do readlink $p/exe; done";
    let (stdout, _, code) = env.run_rm(&["busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0));
    for line in stdout.lines() {
        assert!(line.starts_with("/bin/"), "{line}");
    }
}

#[test]
fn binary_of_shim_and_init_is_read_only() {
    let env = Env::new();
    let args = [
        "--init",
        "busybox",
        "sh",
        "-c",
        "echo ready; exec sleep 1000",
    ];
    let container = env.detached("guarded", &args);
    container.wait_for_line("ready");
    let installed = statvfs(common::layerfs_binary()).unwrap();
    assert!(!installed.flags().contains(FsFlags::ST_RDONLY));
    let state = container.state();
    for role in ["shim", "init"] {
        let pid = state[role]["pid"].as_i64().unwrap();
        // The executable's mount is read-only, so once no process runs the binary, opening
        // it for writing through this link fails with EROFS; while it runs, with ETXTBSY.
        let exe = format!("/proc/{pid}/exe");
        let mount = statvfs(exe.as_str()).unwrap();
        assert!(mount.flags().contains(FsFlags::ST_RDONLY), "{role}");
        let error = fs::OpenOptions::new().append(true).open(&exe).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ErrorKind::ReadOnlyFilesystem | ErrorKind::ExecutableFileBusy
            ),
            "{role}: {error}"
        );
        let len = fs::metadata(&exe).unwrap().len();
        assert_eq!(
            len,
            fs::metadata(common::layerfs_binary()).unwrap().len(),
            "{role}"
        );
    }
}
