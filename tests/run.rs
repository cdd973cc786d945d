//! `layerfs run` on the fixture images: output, exit codes, namespaces, image config, and
//! cleanup.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::Env;

fn run_output(env: &Env, args: &[&str]) -> (String, String, Option<i32>) {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let output = env.run(&full);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.code(),
    )
}

fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

fn container_dirs(env: &Env) -> Vec<String> {
    let dir = env.root.join("containers");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn hello_world_prints_its_greeting() {
    let env = Env::new();
    let (stdout, stderr, code) = run_output(&env, &["--rm", "hello-world"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stdout.contains("Hello from Docker!"), "{stdout}");
}

#[test]
fn exit_code_is_the_containers() {
    let env = Env::new();
    let (_, stderr, code) = run_output(&env, &["--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code, Some(3), "stderr: {stderr}");
}

#[test]
fn command_is_pid_one_and_alone() {
    let env = Env::new();
    let (stdout, stderr, code) = run_output(
        &env,
        &[
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo $$; ls /proc | grep -c '^[0-9]'",
        ],
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "1");
    // sh itself and the ls that lists /proc: grep runs after ls has exited or alongside it.
    let processes: u32 = lines[1].parse().unwrap();
    assert!(processes <= 3, "{processes} processes visible");
}

#[test]
fn hostname_is_set_inside_only() {
    let env = Env::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let (stdout, _, code) =
        run_output(&env, &["--rm", "--hostname", "box1", "busybox", "hostname"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout.trim(), "box1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

#[test]
fn network_has_only_loopback_up() {
    let env = Env::new();
    let (stdout, stderr, code) = run_output(
        &env,
        &[
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ls /sys/class/net; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok",
        ],
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["lo", "ping-ok"]);
}

#[test]
fn image_config_sets_env_and_path() {
    let env = Env::new();
    let (stdout, _, code) = run_output(
        &env,
        &[
            "--rm",
            "alpine:3.20",
            "sh",
            "-c",
            "echo $PATH; echo $HOME; pwd",
        ],
    );
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "/root",
            "/"
        ]
    );
}

#[test]
fn default_cmd_comes_from_the_image() {
    let env = Env::new();
    let child = env
        .command()
        .args(["run", "--rm", "-i", "alpine:3.19"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.as_ref().unwrap();
    std::io::Write::write_all(&mut stdin, b"echo from-stdin; cat /etc/alpine-release\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(stdout.starts_with("from-stdin\n3.19."), "{stdout}");
}

#[test]
fn user_workdir_and_env_flags_apply() {
    let env = Env::new();
    let args = [
        "--rm",
        "-u",
        "nobody",
        "-w",
        "/tmp/work",
        "-e",
        "GREETING=hi",
        "busybox",
        "sh",
        "-c",
        "id -u; pwd; echo $GREETING",
    ];
    let (stdout, stderr, code) = run_output(&env, &args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["65534", "/tmp/work", "hi"]);
}

#[test]
fn missing_command_exits_127() {
    let env = Env::new();
    let (_, stderr, code) = run_output(&env, &["--rm", "busybox", "no-such-command"]);
    assert_eq!(code, Some(127));
    assert!(stderr.contains("no-such-command"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn unknown_image_exits_125() {
    let env = Env::new();
    let (_, stderr, code) = run_output(&env, &["--rm", "no-such-image"]);
    assert_eq!(code, Some(125));
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn nothing_is_left_after_exit() {
    let env = Env::new();
    let (_, _, code) = run_output(
        &env,
        &[
            "--cap-add",
            "SYS_ADMIN",
            "busybox",
            "sh",
            "-c",
            "mkdir /mnt && mount -t tmpfs tmpfs /mnt && echo x > /kept",
        ],
    );
    assert_eq!(code, Some(0));
    let containers = container_dirs(&env);
    assert_eq!(containers.len(), 1);
    let dir = env.root.join("containers").join(&containers[0]);
    let mut kept: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    let expected = [
        "container.json",
        "hostname",
        "hosts",
        "resolv.conf",
        "state.json",
        "upper",
    ];
    assert_eq!(kept, expected);
    assert_eq!(
        std::fs::read_to_string(dir.join("upper/kept")).unwrap(),
        "x\n"
    );
    assert!(!host_mounts().contains(env.root.to_str().unwrap()));
}

#[test]
fn rm_removes_the_writable_layer() {
    let env = Env::new();
    let (_, _, code) = run_output(&env, &["--rm", "busybox", "touch", "/file"]);
    assert_eq!(code, Some(0));
    assert!(container_dirs(&env).is_empty());
    assert!(!host_mounts().contains(env.root.to_str().unwrap()));
}

#[test]
fn killed_container_exits_128_plus_signal() {
    let env = Env::new();
    let mut child = env
        .command()
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo ready; exec sleep 1000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");

    // `layerfs run` starts init, and init forks the container's PID 1.
    let init = child_of(child.id() as i32).expect("layerfs run has started init");
    let pid_one = child_of(init).expect("init has forked the container's PID 1");
    let pid_one = nix::unistd::Pid::from_raw(pid_one);
    nix::sys::signal::kill(pid_one, nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
}

#[test]
fn sigterm_is_forwarded_to_the_container() {
    let env = Env::new();
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done";
    let mut child = env
        .command()
        .args(["run", "--rm", "busybox", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "got-term\n");
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

/// Finds the first child of `parent`, by the parent PID field of `/proc/PID/stat`.
fn child_of(parent: i32) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").unwrap() {
        let entry = entry.unwrap();
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name in parentheses may contain spaces; fields after it do not.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let ppid = after_name.split(' ').nth(1)?.parse::<i32>().ok()?;
        if ppid == parent {
            return Some(pid);
        }
    }
    None
}

#[test]
fn open_descriptors_do_not_leak_in() {
    let env = Env::new();
    let dir = std::fs::File::open(env.dir.path()).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    // Clear close-on-exec so that `layerfs run` inherits the descriptor, as from a shell.
    nix::fcntl::fcntl(
        &dir,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let script = format!("ls /proc/self/fd/{fd} >/dev/null 2>&1 && echo leaked || echo closed");
    let (stdout, stderr, code) = run_output(&env, &["--rm", "busybox", "sh", "-c", &script]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "closed\n");
}

#[test]
fn sigpipe_has_its_default_action_inside() {
    let env = Env::new();
    let script = "grep SigIgn /proc/self/status; yes | head -1";
    let (stdout, stderr, code) = run_output(&env, &["--rm", "busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let ignored = u64::from_str_radix(lines[0].trim_start_matches("SigIgn:\t"), 16).unwrap();
    let sigpipe_bit = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(ignored & sigpipe_bit, 0, "SIGPIPE is ignored: {}", lines[0]);
    assert_eq!(lines[1], "y");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn setup_failure_reports_its_cause() {
    let env = Env::new();
    let dir = env.path("volume");
    std::fs::create_dir(&dir).unwrap();
    // A directory cannot be mounted over the image's /etc/passwd, a file: PID 1 fails while
    // it builds the root file system, before the shim has moved it into its cgroup.
    let volume = format!("{}:/etc/passwd", dir.display());
    let (_, stderr, code) = run_output(&env, &["--rm", "-v", &volume, "busybox", "true"]);
    assert_eq!(code, Some(125));
    assert_eq!(
        stderr,
        "layerfs: opening /etc/passwd: Not a directory (os error 20)\n"
    );
}
