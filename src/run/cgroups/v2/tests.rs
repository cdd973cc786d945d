//! v2 against a temporary directory laid out like a cgroup2 mount. The kernel creates
//! control files in new cgroups and updates `cgroup.events`; here the tests write them.

use std::fs;
use std::path::Path;

use super::*;
use crate::run::cgroups::{CpuQuota, SwapLimit};

fn fake_root(controllers: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
    fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
    root
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn controllers_enabled_at_every_level() {
    let root = fake_root("cpuset cpu io memory hugetlb pids\n");
    let relative = Path::new("layerfs/c1");
    Cgroup::create(root.path(), relative, &Resources::default()).unwrap();
    let expected = "+cpu +cpuset +io +memory +pids";
    assert_eq!(read(&root.path().join("cgroup.subtree_control")), expected);
    assert_eq!(
        read(&root.path().join("layerfs/cgroup.subtree_control")),
        expected
    );
    assert!(!root
        .path()
        .join("layerfs/c1/cgroup.subtree_control")
        .exists());
}

#[test]
fn enabled_controllers_are_not_written_again() {
    let root = fake_root("cpu memory pids");
    fs::write(root.path().join("cgroup.subtree_control"), "cpu memory").unwrap();
    Cgroup::create(root.path(), Path::new("c1"), &Resources::default()).unwrap();
    assert_eq!(read(&root.path().join("cgroup.subtree_control")), "+pids");
}

#[test]
fn limits_land_in_v2_files() {
    let root = fake_root("cpuset cpu io memory pids");
    let dir = root.path().join("layerfs/c2");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("memory.swap.max"), "max").unwrap();
    fs::write(dir.join("io.weight"), "default 100").unwrap();
    let resources = Resources {
        memory: Some(32 << 20),
        memory_swap: Some(SwapLimit::Total(48 << 20)),
        cpu_quota: Some(CpuQuota {
            quota_us: 20_000,
            period_us: 100_000,
        }),
        cpuset_cpus: Some("0-1".to_owned()),
        pids: Some(5),
        cpu_shares: Some(1024),
        blkio_weight: Some(1000),
        ..Resources::default()
    };
    Cgroup::create(root.path(), Path::new("layerfs/c2"), &resources).unwrap();
    assert_eq!(read(&dir.join("memory.max")), "33554432");
    assert_eq!(read(&dir.join("memory.swap.max")), "16777216");
    assert_eq!(read(&dir.join("cpu.max")), "20000 100000");
    assert_eq!(read(&dir.join("cpu.weight")), "39");
    assert_eq!(read(&dir.join("cpuset.cpus")), "0-1");
    assert_eq!(read(&dir.join("pids.max")), "5");
    assert_eq!(read(&dir.join("io.weight")), "default 10000");
}

#[test]
fn unavailable_controller_is_rejected_first() {
    let root = fake_root("hugetlb");
    let resources = Resources {
        memory: Some(32 << 20),
        ..Resources::default()
    };
    let error = Cgroup::create(root.path(), Path::new("layerfs/c3"), &resources).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("--memory"), "{message}");
    assert!(message.contains("hugetlb"), "{message}");
    assert!(!root.path().join("layerfs").exists());
}

#[test]
fn stats_convert_microseconds() {
    let root = fake_root("cpu memory pids io");
    let cgroup = Cgroup::create(root.path(), Path::new("c4"), &Resources::default()).unwrap();
    let write = |name: &str, text: &str| fs::write(cgroup.dir.join(name), text).unwrap();
    write(
        "cpu.stat",
        "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 9\nnr_throttled 4\nthrottled_usec 70\n",
    );
    write("memory.current", "4096\n");
    write("memory.peak", "8192\n");
    write("memory.max", "max\n");
    write("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    write("pids.current", "2\n");
    write("pids.max", "10\n");
    write(
        "io.stat",
        "8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=5 wbytes=0\n",
    );

    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.cpu_usage_ns, Some(2_000_000));
    assert_eq!(stats.cpu_user_ns, Some(1_500_000));
    assert_eq!(stats.cpu_system_ns, Some(500_000));
    assert_eq!(stats.cpu_periods, Some(9));
    assert_eq!(stats.cpu_throttled_periods, Some(4));
    assert_eq!(stats.cpu_throttled_ns, Some(70_000));
    assert_eq!(stats.memory_bytes, Some(4096));
    assert_eq!(stats.memory_peak_bytes, Some(8192));
    assert_eq!(stats.memory_limit_bytes, None);
    assert_eq!(stats.oom_kills, Some(1));
    assert_eq!(stats.pids, Some(2));
    assert_eq!(stats.pids_limit, Some(10));
    assert_eq!(stats.io_read_bytes, Some(105));
    assert_eq!(stats.io_write_bytes, Some(20));
}

#[test]
fn freeze_waits_for_frozen_event() {
    let root = fake_root("");
    let cgroup = Cgroup::create(root.path(), Path::new("c5"), &Resources::default()).unwrap();
    fs::write(cgroup.dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cgroup.freeze().unwrap();
    assert_eq!(read(&cgroup.dir.join("cgroup.freeze")), "1");
    assert!(cgroup.is_frozen().unwrap());
    assert!(cgroup.is_populated().unwrap());
}
