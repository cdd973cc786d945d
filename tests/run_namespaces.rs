//! `layerfs run` namespaces, observed from inside the container and from the host: PID,
//! mount propagation, UTS, IPC, network, cgroup and user namespaces, and `--init`.

mod common;

use std::fs;
use std::path::Path;

use common::containers::wait_for;
use common::Env;

fn host_namespace(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `KIND NAMESPACE` lines as `readlink /proc/self/ns/KIND` prints them inside.
const PRINT_NAMESPACES: &str =
    "for ns in cgroup ipc mnt net pid user uts; do echo $ns $(readlink /proc/self/ns/$ns); done";

fn container_namespaces(env: &Env, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = extra.to_vec();
    args.extend(["busybox", "sh", "-c", PRINT_NAMESPACES]);
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    stdout
        .lines()
        .map(|line| {
            let (kind, link) = line.split_once(' ').unwrap();
            (kind.to_owned(), link.to_owned())
        })
        .collect()
}

#[test]
fn every_namespace_but_user_is_new() {
    let env = Env::new();
    let namespaces = container_namespaces(&env, &[]);
    assert_eq!(namespaces.len(), 7);
    for (kind, link) in namespaces {
        if kind == "user" {
            assert_eq!(
                link,
                host_namespace(&kind),
                "user namespace without --userns"
            );
        } else {
            assert_ne!(link, host_namespace(&kind), "{kind} namespace");
        }
    }
}

#[test]
fn net_host_shares_the_network_namespace() {
    let env = Env::new();
    let namespaces = container_namespaces(&env, &["--net", "host"]);
    for (kind, link) in namespaces {
        if kind == "net" {
            assert_eq!(link, host_namespace("net"));
        }
    }
    let (stdout, _, code) = env.run_rm(&["--net", "host", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(code, Some(0));
    let host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for interface in host {
        assert!(
            stdout.lines().any(|l| l == interface),
            "{interface} missing: {stdout}"
        );
    }
}

#[test]
fn net_host_takes_the_host_name() {
    let env = Env::new();
    let (stdout, stderr, code) = env.run_rm(&["--net", "host", "busybox", "hostname"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(stdout, host);
}

#[test]
fn processes_outside_are_invisible() {
    let env = Env::new();
    let container = env.detached(
        "pids",
        &["busybox", "sh", "-c", "echo ready; exec sleep 1000"],
    );
    container.wait_for_line("ready");
    let (stdout, _, code) = env.run_rm(&["busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    assert_eq!(code, Some(0));
    // sh, ls and grep at most: neither the other container nor the host's processes.
    let visible: u32 = stdout.trim().parse().unwrap();
    assert!(visible <= 3, "{visible} processes visible");

    let pid = container.init_pid();
    let init_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(init_ns.to_string_lossy(), host_namespace("pid"));
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    let ids: Vec<&str> = nspid.split_whitespace().skip(1).collect();
    assert_eq!(ids, [pid.to_string().as_str(), "1"]);
}

#[test]
fn init_reaps_orphaned_zombies() {
    let env = Env::new();
    // The inner sh exits at once, so its background sleep is orphaned to PID 1, which must
    // reap it for its /proc entry to go.
    let script = "pid=$(sh -c 'sleep 0.2 & echo $!'); \
                  while [ -e /proc/$pid ]; do sleep 0.05; done; \
                  echo reaped $pid; cat /proc/1/comm";
    let (stdout, stderr, code) = env.run_rm(&["--init", "busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("reaped "), "{stdout}");
    assert_ne!(lines[1], "sh", "PID 1 is layerfs's init, not the command");
}

#[test]
fn init_makes_the_command_pid_two() {
    let env = Env::new();
    let (stdout, stderr, code) = env.run_rm(&["--init", "busybox", "sh", "-c", "echo $$; exit 7"]);
    assert_eq!(code, Some(7), "stderr: {stderr}");
    assert_eq!(stdout.trim(), "2");
}

#[test]
fn init_forwards_sigterm_to_the_command() {
    let env = Env::new();
    // sleep installs no handler: as PID 1 it would ignore SIGTERM, as PID 2 it dies of it.
    let container = env.detached("initterm", &["--init", "busybox", "sleep", "1000"]);
    wait_for("the container to run", || {
        (container.state()["phase"] == "running").then_some(())
    });
    env.ok(&["kill", "-s", "TERM", "initterm"]);
    assert_eq!(container.wait_for_exit(), 128 + 15);
}

#[test]
fn container_mounts_stay_inside() {
    let env = Env::new();
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    let volume = format!("{}:/data", shared.display());
    let script = "mkdir /mnt && mount -t tmpfs tmpfs /mnt && mkdir /data/inner && mount -t tmpfs tmpfs /data/inner \
                  && touch /data/inner/marker && echo ready && exec sleep 1000";
    // Mounting needs CAP_SYS_ADMIN, which Docker's default set leaves out.
    let args = [
        "--cap-add",
        "SYS_ADMIN",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let container = env.detached("mounts", &args);
    container.wait_for_line("ready");

    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(shared.to_str().unwrap()), "{mountinfo}");
    assert!(shared.join("inner").is_dir());
    assert!(!shared.join("inner/marker").exists());
}

#[test]
fn host_mounts_made_later_stay_outside() {
    let env = Env::new();
    let shared = env.path("shared");
    fs::create_dir_all(shared.join("later")).unwrap();
    let volume = format!("{}:/data", shared.display());
    let script = "echo ready; while [ ! -e /data/go ]; do sleep 0.05; done; \
                  ls /data/later; grep -c /data/later /proc/mounts; true";
    let container = env.detached("later", &["-v", &volume, "busybox", "sh", "-c", script]);
    container.wait_for_line("ready");

    let later = shared.join("later");
    nix::mount::mount(
        Some("tmpfs"),
        &later,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    fs::write(later.join("host-marker"), "x").unwrap();
    fs::write(shared.join("go"), "").unwrap();
    let code = container.wait_for_exit();
    nix::mount::umount2(&later, nix::mount::MntFlags::MNT_DETACH).unwrap();

    assert_eq!(code, 0);
    let logs = container.logs();
    assert!(!logs.contains("host-marker"), "{logs}");
    assert_eq!(logs.lines().last(), Some("0"), "{logs}");
}

#[test]
fn cgroup_namespace_roots_at_the_container() {
    let env = Env::new();
    let (stdout, stderr, code) = env.run_rm(&["busybox", "cat", "/proc/self/cgroup"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    for line in stdout.lines() {
        assert!(line.ends_with(":/"), "{line}");
    }

    let container = env.detached(
        "cgns",
        &["busybox", "sh", "-c", "echo ready; exec sleep 1000"],
    );
    container.wait_for_line("ready");
    let host_view = fs::read_to_string(format!("/proc/{}/cgroup", container.init_pid())).unwrap();
    let memory = host_view.lines().find(|l| l.contains(":memory:")).unwrap();
    assert!(
        memory.ends_with(&format!("/layerfs/{}", container.id)),
        "{memory}"
    );
}

#[test]
fn ipc_objects_stay_inside() {
    let env = Env::new();
    let (stdout, _, code) = env.run_rm(&[
        "busybox",
        "sh",
        "-c",
        "ls /dev/mqueue | wc -l; cat /proc/sysvipc/shm | wc -l",
    ]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    // A new IPC namespace: no message queues, and only the header line of the shm table.
    assert_eq!(lines, ["0", "1"]);
}

#[test]
fn userns_maps_root_to_a_high_range() {
    let env = Env::new();
    let script = "cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; \
                  stat -c '%u:%g' /etc/shadow /etc/passwd; touch /created; echo ready; exec sleep 1000";
    let container = env.detached("userns", &["--userns", "alpine:3.20", "sh", "-c", script]);
    container.wait_for_line("ready");
    let logs = container.logs();
    let lines: Vec<Vec<&str>> = logs
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let start: u32 = lines[0][1].parse().unwrap();
    assert_eq!(lines[0][0], "0");
    assert!(start >= 65_536, "root maps to host ID {start}");
    assert_eq!(lines[0][2], "65536");
    assert_eq!(lines[1][0], "0");
    assert_eq!(lines[2], ["0"]);
    // Files keep their in-image owners inside: /etc/shadow is root:shadow (42) in alpine.
    assert_eq!(lines[3], ["0:42"]);
    assert_eq!(lines[4], ["0:0"]);

    let status = fs::read_to_string(format!("/proc/{}/status", container.init_pid())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some(start.to_string().as_str())
    );
    let created = fs::metadata(container.dir().join("upper/created")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&created), start);
}

#[test]
fn userns_root_cannot_touch_host_files() {
    let env = Env::new();
    let secret = env.path("secret");
    fs::write(&secret, "host only").unwrap();
    let volume = format!("{}:/secret", secret.display());
    let (stdout, _, code) = env.run_rm(&[
        "--userns",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        "stat -c %u /secret; echo more >> /secret || echo denied",
    ]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    // Host root is not mapped inside, so the file shows the overflow ID.
    assert_eq!(lines, ["65534", "denied"]);
    assert_eq!(fs::read_to_string(Path::new(&secret)).unwrap(), "host only");
}
