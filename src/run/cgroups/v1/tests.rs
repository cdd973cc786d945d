//! v1 against a temporary directory laid out like `/sys/fs/cgroup` with one hierarchy per
//! controller. Plain directories do not create control files, so the tests create the files
//! the code only writes when they exist.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::run::cgroups::{CpuQuota, SwapLimit};

struct FakeRoot {
    _dir: tempfile::TempDir,
    hierarchies: Vec<(Controller, PathBuf)>,
}

fn fake_root() -> FakeRoot {
    let dir = tempfile::tempdir().unwrap();
    let mut hierarchies = Vec::new();
    for name in [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices",
    ] {
        let mount = dir.path().join(name);
        fs::create_dir(&mount).unwrap();
        hierarchies.push((Controller::from_name(name).unwrap(), mount));
    }
    fs::write(dir.path().join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
    fs::write(dir.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
    FakeRoot {
        _dir: dir,
        hierarchies,
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn mount_of(root: &FakeRoot, controller: Controller) -> &Path {
    &root
        .hierarchies
        .iter()
        .find(|(c, _)| *c == controller)
        .unwrap()
        .1
}

#[test]
fn limits_land_in_each_controller() {
    let root = fake_root();
    let resources = Resources {
        memory: Some(32 << 20),
        cpu_quota: Some(CpuQuota {
            quota_us: 20_000,
            period_us: 100_000,
        }),
        cpuset_cpus: Some("1".to_owned()),
        pids: Some(5),
        cpu_weight: Some(100),
        ..Resources::default()
    };
    let relative = Path::new("layerfs/c1");
    let cgroup = Cgroup::create(&root.hierarchies, relative, &resources).unwrap();

    let memory = cgroup.dir(Controller::Memory).unwrap();
    assert_eq!(memory, &mount_of(&root, Controller::Memory).join(relative));
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "33554432");
    let cpu = cgroup.dir(Controller::Cpu).unwrap();
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&cpu.join("cpu.shares")), "2597");
    let pids = cgroup.dir(Controller::Pids).unwrap();
    assert_eq!(read(&pids.join("pids.max")), "5");
    let devices = cgroup.dir(Controller::Devices).unwrap();
    assert_eq!(read(&devices.join("devices.deny")), "a");
}

#[test]
fn cpuset_levels_inherit_before_the_limit() {
    let root = fake_root();
    let resources = Resources {
        cpuset_cpus: Some("1".to_owned()),
        ..Resources::default()
    };
    let cgroup = Cgroup::create(&root.hierarchies, Path::new("layerfs/c2"), &resources).unwrap();
    let parent = mount_of(&root, Controller::Cpuset).join("layerfs");
    assert_eq!(read(&parent.join("cpuset.cpus")), "0-3");
    assert_eq!(read(&parent.join("cpuset.mems")), "0");
    let dir = cgroup.dir(Controller::Cpuset).unwrap();
    assert_eq!(read(&dir.join("cpuset.cpus")), "1");
    assert_eq!(read(&dir.join("cpuset.mems")), "0");
}

#[test]
fn swap_limit_written_only_with_accounting() {
    let root = fake_root();
    let parent = mount_of(&root, Controller::Memory).join("layerfs");
    let dir = parent.join("c3");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
    let resources = Resources {
        memory: Some(32 << 20),
        memory_swap: Some(SwapLimit::Total(48 << 20)),
        ..Resources::default()
    };
    Cgroup::create(&root.hierarchies, Path::new("layerfs/c3"), &resources).unwrap();
    assert_eq!(read(&dir.join("memory.memsw.limit_in_bytes")), "50331648");

    let without = Path::new("layerfs/c4");
    let cgroup = Cgroup::create(&root.hierarchies, without, &resources).unwrap();
    let memory = cgroup.dir(Controller::Memory).unwrap();
    assert!(!memory.join("memory.memsw.limit_in_bytes").exists());
}

#[test]
fn blkio_weight_uses_the_file_that_exists() {
    let root = fake_root();
    let dir = mount_of(&root, Controller::Blkio).join("layerfs/c5");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("blkio.bfq.weight"), "100").unwrap();
    let resources = Resources {
        blkio_weight: Some(300),
        ..Resources::default()
    };
    Cgroup::create(&root.hierarchies, Path::new("layerfs/c5"), &resources).unwrap();
    assert_eq!(read(&dir.join("blkio.bfq.weight")), "300");
    assert!(!dir.join("blkio.weight").exists());
}

#[test]
fn missing_controller_is_an_error_and_leaves_nothing() {
    let root = fake_root();
    let without_pids: Vec<_> = root
        .hierarchies
        .iter()
        .filter(|(c, _)| *c != Controller::Pids)
        .cloned()
        .collect();
    let resources = Resources {
        pids: Some(5),
        ..Resources::default()
    };
    let error = Cgroup::create(&without_pids, Path::new("layerfs/c6"), &resources).unwrap_err();
    assert!(error.to_string().contains("pids"), "{error}");
    assert!(!mount_of(&root, Controller::Memory)
        .join("layerfs/c6")
        .exists());
}

#[test]
fn stats_read_every_controller() {
    let root = fake_root();
    let cgroup = Cgroup::create(&root.hierarchies, Path::new("c7"), &Resources::default()).unwrap();
    let write = |controller, name: &str, text: &str| {
        fs::write(cgroup.dir(controller).unwrap().join(name), text).unwrap()
    };
    write(Controller::Cpuacct, "cpuacct.usage", "2500000000\n");
    write(Controller::Cpuacct, "cpuacct.stat", "user 150\nsystem 50\n");
    write(
        Controller::Cpu,
        "cpu.stat",
        "nr_periods 40\nnr_throttled 12\nthrottled_time 900\n",
    );
    write(Controller::Memory, "memory.usage_in_bytes", "1048576\n");
    write(Controller::Memory, "memory.max_usage_in_bytes", "2097152\n");
    write(
        Controller::Memory,
        "memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    write(
        Controller::Memory,
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    );
    write(Controller::Pids, "pids.current", "3\n");
    write(Controller::Pids, "pids.max", "max\n");

    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.cpu_usage_ns, Some(2_500_000_000));
    assert_eq!(stats.cpu_user_ns, Some(1_500_000_000));
    assert_eq!(stats.cpu_system_ns, Some(500_000_000));
    assert_eq!(stats.cpu_periods, Some(40));
    assert_eq!(stats.cpu_throttled_periods, Some(12));
    assert_eq!(stats.cpu_throttled_ns, Some(900));
    assert_eq!(stats.memory_bytes, Some(1 << 20));
    assert_eq!(stats.memory_peak_bytes, Some(2 << 20));
    assert_eq!(stats.memory_limit_bytes, None);
    assert_eq!(stats.oom_kills, Some(1));
    assert_eq!(stats.pids, Some(3));
    assert_eq!(stats.pids_limit, None);
    assert_eq!(cgroup.oom_kills().unwrap(), Some(1));
}

#[test]
fn freeze_and_thaw_write_the_state() {
    let root = fake_root();
    let cgroup = Cgroup::create(&root.hierarchies, Path::new("c8"), &Resources::default()).unwrap();
    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());
}

#[test]
fn remove_deletes_only_the_container_directories() {
    let root = fake_root();
    let relative = Path::new("layerfs/c9");
    let cgroup = Cgroup::create(&root.hierarchies, relative, &Resources::default()).unwrap();
    // Plain directories keep the files the test wrote; cgroupfs removes them with the cgroup.
    for dir in cgroup.unique_dirs() {
        for entry in fs::read_dir(dir).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }
    cgroup.remove().unwrap();
    for (_, mount) in &root.hierarchies {
        assert!(!mount.join(relative).exists());
        assert!(mount.join("layerfs").exists());
    }
}
