//! `layerfs run` cgroup limits, weights, accounting and control, observed in the cgroup files
//! on the host, from inside the container, and through `layerfs stats`, `pause` and
//! `resume`. This machine mounts cgroup v1 controllers; the v2 tests use its cgroup2 tree.

mod common;

use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use common::containers::{cgroup_dirs, v1_file, wait_for};
use common::Env;

/// A shell loop that keeps one CPU busy.
const BUSY: &str = "echo ready; while :; do :; done";

/// A container limited to 32 MiB whose dd allocates a 128 MiB block and fills it.
const MEMORY_HOG: [&str; 8] = [
    "--memory",
    "32m",
    "busybox",
    "dd",
    "if=/dev/zero",
    "of=/dev/null",
    "bs=128M",
    "count=1",
];

#[test]
fn memory_hog_is_killed_with_137() {
    let env = Env::new();
    let (_, stderr, code) = env.run_rm(&MEMORY_HOG);
    assert_eq!(code, Some(137), "stderr: {stderr}");
    assert!(stderr.contains("ran out of memory"), "{stderr}");
    assert!(stderr.contains("32.0 MiB"), "{stderr}");
}

#[test]
fn oom_kill_is_recorded_in_state() {
    let env = Env::new();
    let container = env.detached("oom", &MEMORY_HOG);
    assert_eq!(container.wait_for_exit(), 137);
    assert_eq!(container.state()["oom_killed"], true);
}

#[test]
fn forks_fail_beyond_the_pids_limit() {
    let env = Env::new();
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo unreachable";
    let (stdout, stderr, code) = env.run_rm(&["--pids", "5", "busybox", "sh", "-c", script]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("can't fork"), "{stderr}");
    assert!(!stdout.contains("unreachable"), "{stdout}");
}

#[test]
fn limits_are_written_to_the_cgroup() {
    let env = Env::new();
    let args = [
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--cpuset-cpus",
        "0",
        "--pids",
        "20",
        "--cpu-shares",
        "512",
        "busybox",
        "sh",
        "-c",
        "echo ready; exec sleep 1000",
    ];
    let container = env.detached("limits", &args);
    container.wait_for_line("ready");
    let id = &container.id;
    assert_eq!(v1_file("memory", id, "memory.limit_in_bytes"), "67108864");
    // Unset --memory-swap means twice --memory, as in Docker.
    assert_eq!(
        v1_file("memory", id, "memory.memsw.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(v1_file("cpu", id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(v1_file("cpu", id, "cpu.cfs_period_us"), "100000");
    assert_eq!(v1_file("cpu", id, "cpu.shares"), "512");
    assert_eq!(v1_file("cpuset", id, "cpuset.cpus"), "0");
    assert_eq!(v1_file("pids", id, "pids.max"), "20");
    let procs = v1_file("memory", id, "cgroup.procs");
    assert!(
        procs
            .lines()
            .any(|pid| pid == container.init_pid().to_string()),
        "{procs}"
    );
}

#[test]
fn limits_are_visible_inside() {
    let env = Env::new();
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
                  echo x > /sys/fs/cgroup/pids/pids.max || echo read-only";
    let args = [
        "--memory", "48m", "--pids", "9", "busybox", "sh", "-c", script,
    ];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["50331648", "9", "read-only"]);
}

#[test]
fn cpu_quota_throttles_a_busy_loop() {
    let env = Env::new();
    let container = env.detached("throttled", &["--cpus", "0.2", "busybox", "sh", "-c", BUSY]);
    container.wait_for_line("ready");
    let throttled = wait_for("throttled periods", || {
        let stats = container.stats();
        let periods = stats["cpu_throttled_periods"].as_u64().unwrap();
        (periods > 0).then_some(periods)
    });
    assert!(throttled > 0);
    let cpu_stat = v1_file("cpu", &container.id, "cpu.stat");
    let nr_throttled = cpu_stat
        .lines()
        .find(|l| l.starts_with("nr_throttled "))
        .unwrap();
    assert_ne!(nr_throttled, "nr_throttled 0");
}

#[test]
fn stats_figures_move() {
    let env = Env::new();
    let container = env.detached("moving", &["busybox", "sh", "-c", BUSY]);
    container.wait_for_line("ready");
    let first = container.stats();
    let first_cpu = first["cpu_usage_ns"].as_u64().unwrap();
    assert!(first["memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(first["pids"].as_u64(), Some(1));
    let later_cpu = wait_for("CPU time to grow", || {
        let cpu = container.stats()["cpu_usage_ns"].as_u64().unwrap();
        (cpu > first_cpu).then_some(cpu)
    });
    assert!(later_cpu > first_cpu);

    let table = env.ok(&["stats", "moving"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("CONTAINER ID"), "{table}");
    assert!(table.lines().nth(1).unwrap().contains("moving"), "{table}");
}

#[test]
fn paused_container_makes_no_progress() {
    let env = Env::new();
    let script = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done";
    let container = env.detached("frozen", &["busybox", "sh", "-c", script]);
    let log = container.dir().join("container.log");
    let log_size = || fs::metadata(&log).map_or(0, |m| m.len());
    wait_for("output", || (log_size() > 0).then_some(()));

    env.ok(&["pause", "frozen"]);
    assert_eq!(v1_file("freezer", &container.id, "freezer.state"), "FROZEN");
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    let frozen_at = log_size();
    // Unfrozen, the loop writes a line every 10 ms; frozen, it cannot run at all.
    sleep(Duration::from_millis(300));
    assert_eq!(log_size(), frozen_at);

    env.ok(&["resume", "frozen"]);
    assert_eq!(v1_file("freezer", &container.id, "freezer.state"), "THAWED");
    wait_for("output to grow again", || {
        (log_size() > frozen_at).then_some(())
    });
}

#[test]
fn stats_option_prints_a_summary() {
    let env = Env::new();
    let (_, stderr, code) = env.run_rm(&["--stats", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(code, Some(4));
    let summary = stderr
        .lines()
        .find(|l| l.contains("cpu "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(summary.contains("memory peak"), "{summary}");
    assert!(!summary.contains("memory peak -"), "{summary}");
}

#[test]
fn cgroup_is_removed_at_exit() {
    let env = Env::new();
    let container = env.detached(
        "gone",
        &[
            "--memory",
            "32m",
            "busybox",
            "sh",
            "-c",
            "echo ready; exec sleep 1000",
        ],
    );
    container.wait_for_line("ready");
    assert!(!cgroup_dirs(&container.id).is_empty());
    env.ok(&["kill", "gone"]);
    assert_eq!(container.wait_for_exit(), 137);
    assert_eq!(cgroup_dirs(&container.id), Vec::<std::path::PathBuf>::new());
}

#[test]
fn blkio_weight_without_scheduler_support_is_ignored() {
    let env = Env::new();
    // Neither CFQ nor BFQ offers a weight on this machine's disks, so as in Docker the
    // weight is dropped with a warning and the container still runs.
    let (_, stderr, code) = env.run_rm(&["--blkio-weight", "300", "busybox", "true"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

#[test]
fn invalid_limits_change_nothing() {
    let env = Env::new();
    env.ok(&["pull", "busybox"]);
    let before = env.store_listing();
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "lots"], "invalid size"),
        (&["--memory", "1m"], "minimum"),
        (&["--memory-swap", "64m"], "needs --memory"),
        (
            &["--memory", "64m", "--memory-swap", "32m"],
            "smaller than --memory",
        ),
        (&["--cpus", "64"], "out of range"),
        (&["--cpuset-cpus", "0-99"], "CPU 2"),
        (&["--cpu-shares", "1"], "out of range"),
        (&["--pids", "0"], "out of range"),
        (&["--cgroup-parent", "../escape"], "must not contain"),
    ];
    for (options, message) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(options);
        args.extend(["busybox", "true"]);
        let output = env.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{options:?}");
        assert!(stderr.contains(message), "{options:?}: {stderr}");
        let after = env.store_listing();
        let added: Vec<&String> = after.iter().filter(|e| !before.contains(e)).collect();
        let removed: Vec<&String> = before.iter().filter(|e| !after.contains(e)).collect();
        assert!(added.is_empty(), "{options:?} added {added:?}");
        assert!(removed.is_empty(), "{options:?} removed {removed:?}");
    }
}

/// Creates an environment whose config makes `run` use the cgroup2 tree of this hybrid
/// machine.
fn v2_env() -> Env {
    let env = Env::new();
    let mut text = fs::read_to_string(&env.config).unwrap();
    text.push_str("\n[run]\ncgroup_version = \"2\"\n");
    fs::write(&env.config, text).unwrap();
    env
}

#[test]
fn v2_container_pauses_and_leaves_nothing() {
    assert!(
        Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists(),
        "no cgroup2 tree"
    );
    let env = v2_env();
    let container = env.detached(
        "v2",
        &[
            "busybox",
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ready; exec sleep 1000",
        ],
    );
    container.wait_for_line("ready");
    let dir = Path::new("/sys/fs/cgroup/unified/layerfs").join(&container.id);
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), container.init_pid().to_string());
    assert!(
        container.logs().lines().any(|l| l == "0::/"),
        "{}",
        container.logs()
    );

    env.ok(&["pause", "v2"]);
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 1"), "{events}");
    env.ok(&["resume", "v2"]);
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 0"), "{events}");

    env.ok(&["rm", "-f", "v2"]);
    assert!(!dir.exists());
}

#[test]
fn v2_rejects_limits_without_controllers() {
    let env = v2_env();
    let output = env.run(&["run", "--rm", "--memory", "32m", "busybox", "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr.contains("cgroup v2 memory controller"), "{stderr}");
}
