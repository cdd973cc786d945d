//! Container lifecycle: `run -d`, `ps`, `logs`, `stop`, `kill`, `rm`, names, state that
//! outlives the `run` process, and the pseudo-terminal of `run -t`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::containers::{cgroup_dirs, wait_for};
use common::Env;

const SLEEPER: [&str; 4] = ["busybox", "sh", "-c", "echo ready; exec sleep 1000"];

#[test]
fn detached_container_runs_and_logs() {
    let env = Env::new();
    let container = env.detached(
        "web",
        &[
            "busybox",
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; echo ready; exec sleep 1000",
        ],
    );
    container.wait_for_line("ready");
    let logs = container.logs();
    assert!(logs.lines().any(|l| l == "to-stdout"), "{logs}");
    assert!(logs.lines().any(|l| l == "to-stderr"), "{logs}");

    let ps = env.ok(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.ends_with("web"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.starts_with(&container.id[..12]), "{row}");
    assert!(row.contains("busybox"), "{row}");
    assert!(row.contains("\"sh -c echo to-stdou…\""), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert_eq!(env.ok(&["ps", "-q"]).trim(), &container.id[..12]);
}

#[test]
fn stop_sends_sigterm_first() {
    let env = Env::new();
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done";
    let container = env.detached("graceful", &["busybox", "sh", "-c", script]);
    container.wait_for_line("ready");
    assert_eq!(env.ok(&["stop", "graceful"]).trim(), "graceful");
    // stop returns once the shim recorded the exit.
    assert_eq!(container.state()["phase"], "exited");
    assert_eq!(container.state()["exit_code"], 42);
    assert!(container.logs().lines().any(|l| l == "got-term"));
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (42)"), "{ps}");
    assert!(!env.ok(&["ps"]).contains("graceful"));
}

#[test]
fn stop_kills_after_the_timeout() {
    let env = Env::new();
    // A PID 1 without a SIGTERM handler ignores SIGTERM (pid_namespaces(7)).
    let container = env.detached("stubborn", &SLEEPER);
    container.wait_for_line("ready");
    env.ok(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(container.state()["exit_code"], 137);
}

#[test]
fn kill_delivers_the_chosen_signal() {
    let env = Env::new();
    let script = "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done";
    let container = env.detached("signalled", &["busybox", "sh", "-c", script]);
    container.wait_for_line("ready");
    env.ok(&["kill", "-s", "USR1", "signalled"]);
    container.wait_for_line("got-usr1");
    env.ok(&["kill", "signalled"]);
    assert_eq!(container.wait_for_exit(), 137);
}

#[test]
fn rm_leaves_no_state_cgroup_or_mount() {
    let env = Env::new();
    let container = env.detached("doomed", &SLEEPER);
    container.wait_for_line("ready");
    let stderr = String::from_utf8(env.run(&["rm", "doomed"]).stderr).unwrap();
    assert!(stderr.contains("is running"), "{stderr}");
    assert!(container.dir().exists());

    env.ok(&["rm", "-f", "doomed"]);
    assert!(!container.dir().exists());
    assert!(cgroup_dirs(&container.id).is_empty());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&container.id), "{mountinfo}");
    assert!(!env.ok(&["ps", "-a"]).contains("doomed"));
}

#[test]
fn state_survives_the_run_process() {
    let env = Env::new();
    let mut child = env
        .command()
        .args(["run", "--name", "orphan"])
        .args(SLEEPER)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child.kill().unwrap();
    child.wait().unwrap();

    let ps = env.ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.ends_with("orphan") && l.contains("Up ")),
        "{ps}"
    );
    env.ok(&["rm", "-f", "orphan"]);
    assert!(!env.ok(&["ps", "-a"]).contains("orphan"));
}

#[test]
fn names_are_unique() {
    let env = Env::new();
    let _first = env.detached("taken", &SLEEPER);
    let before = std::fs::read_dir(env.root.join("containers"))
        .unwrap()
        .count();
    let stderr = env.fails(&["run", "-d", "--name", "taken", "busybox", "true"]);
    assert!(stderr.contains("already used"), "{stderr}");
    let after = std::fs::read_dir(env.root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(after, before);
    let stderr = env.fails(&["run", "--name", "x", "busybox", "true"]);
    assert!(stderr.contains("invalid container name"), "{stderr}");
}

#[test]
fn commands_reject_unknown_containers() {
    let env = Env::new();
    for command in ["stop", "kill", "rm", "pause", "resume", "logs", "stats"] {
        let stderr = env.fails(&[command, "nothing-here"]);
        assert!(
            stderr.contains("no such container: nothing-here"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn failed_detached_start_reports_the_cause() {
    let env = Env::new();
    let output = env.run(&[
        "run",
        "-d",
        "--name",
        "broken",
        "busybox",
        "no-such-command",
    ]);
    assert_eq!(output.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-command"), "{stderr}");
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (127)"), "{ps}");
}

#[test]
fn rm_option_removes_a_detached_container() {
    let env = Env::new();
    let output = env.ok(&["run", "-d", "--rm", "busybox", "true"]);
    let dir = env.root.join("containers").join(output.trim());
    wait_for("the container to be removed", || {
        (!dir.exists()).then_some(())
    });
    assert!(cgroup_dirs(output.trim()).is_empty());
}

/// Opens a pseudo-terminal of `rows` × `cols` for `layerfs run -t` to run on.
fn open_terminal(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let size = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    (pty.master, pty.slave)
}

/// Reads from the terminal until `text` appears; returns everything read.
fn read_until(master: &mut std::fs::File, text: &str) -> String {
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    while !seen.contains(text) {
        let read = master.read(&mut buffer).unwrap_or(0);
        assert!(read > 0, "terminal closed before {text:?}; saw {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    seen
}

#[test]
fn terminal_has_the_callers_size_and_follows_it() {
    let env = Env::new();
    env.ok(&["pull", "busybox"]);
    let (master, slave) = open_terminal(40, 100);
    let script = "trap 'echo resized $(stty size); exit 3' WINCH; tty; echo size $(stty size); \
                  echo term $TERM; while :; do sleep 0.05; done";
    let mut command = env.command();
    command
        .args(["run", "--rm", "-t", "busybox", "sh", "-c", script])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let slave_fd = slave.as_raw_fd();
    // SAFETY: setsid and the TIOCSCTTY ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(slave);
    let mut master = std::fs::File::from(master);
    let seen = read_until(&mut master, "term xterm");
    assert!(seen.contains("/dev/pts/0"), "{seen:?}");
    assert!(seen.contains("size 40 100"), "{seen:?}");

    let size = libc::winsize {
        ws_row: 50,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that outlives the call.
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) },
        0
    );
    let seen = read_until(&mut master, "resized 50 120");
    assert!(seen.contains("resized 50 120"), "{seen:?}");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
fn interactive_terminal_takes_input() {
    let env = Env::new();
    let mut child = env
        .command()
        .args(["run", "--rm", "-i", "-t", "busybox", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"tty; exit 5\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("/dev/pts/0"), "{stdout}");
}

#[test]
fn without_interactive_stdin_is_empty() {
    let env = Env::new();
    let mut child = env
        .command()
        .args(["run", "--rm", "busybox", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open: without -i the container must not wait for it.
    let _stdin = child.stdin.take();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout, "done\n");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn detach_with_terminal_is_rejected() {
    let env = Env::new();
    let stderr = env.fails(&["run", "-d", "-t", "busybox", "true"]);
    assert!(
        stderr.contains("-d cannot be combined with -i or -t"),
        "{stderr}"
    );
}

#[test]
fn logs_follow_until_exit() {
    let env = Env::new();
    let signal = env.path("signal");
    std::fs::create_dir(&signal).unwrap();
    let volume = format!("{}:/signal", signal.display());
    let script = "echo first; while [ ! -e /signal/go ]; do sleep 0.05; done; echo last";
    let container = env.detached("followed", &["-v", &volume, "busybox", "sh", "-c", script]);
    container.wait_for_line("first");
    let mut follower = env
        .command()
        .args(["logs", "-f", "followed"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follower.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");

    std::fs::write(signal.join("go"), "").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "last\n");
    line.clear();
    assert_eq!(reader.read_line(&mut line).unwrap(), 0, "{line}");
    assert!(follower.wait().unwrap().success());
}

#[test]
fn rm_cleans_up_after_a_killed_shim() {
    let env = Env::new();
    let container = env.detached("abandoned", &SLEEPER);
    container.wait_for_line("ready");
    let shim = container.state()["shim"]["pid"].as_i64().unwrap() as i32;
    let init = container.init_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // PID 1 dies with its shim (its parent-death signal).
    wait_for("PID 1 to exit", || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (unknown)"), "{ps}");
    assert!(!cgroup_dirs(&container.id).is_empty());

    env.ok(&["rm", "abandoned"]);
    assert!(cgroup_dirs(&container.id).is_empty());
    assert!(!container.dir().exists());
}

#[test]
fn env_file_sets_variables() {
    let env = Env::new();
    let file = env.path("vars");
    std::fs::write(
        &file,
        "# settings\nGREETING=hello world\nOVERRIDDEN=file\n\nQUOTED=\"q\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let script = "echo $GREETING; echo $OVERRIDDEN; echo $QUOTED";
    let args = [
        "--env-file",
        file,
        "-e",
        "OVERRIDDEN=flag",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["hello world", "flag", "\"q\""]);
}

#[test]
fn workdir_exists_on_read_only_rootfs() {
    let env = Env::new();
    let (stdout, stderr, code) = env.run_rm(&["--read-only", "-w", "/srv/app", "busybox", "pwd"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout.trim(), "/srv/app");
}

#[test]
fn logs_of_foreground_container_fail() {
    let env = Env::new();
    env.ok(&["run", "--name", "fg", "busybox", "true"]);
    let stderr = env.fails(&["logs", "fg"]);
    assert_eq!(
        stderr,
        "layerfs: container fg has no log: only detached containers (run -d) write one\n"
    );
    env.ok(&["rm", "fg"]);
}
