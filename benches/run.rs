//! Container start latency: `layerfs run --rm busybox true` beside containerd's
//! `ctr run --rm` (overlayfs snapshotter, runc shim) and `runc run` on a bundle of the same
//! image, the median wall time of each and its ratio to layerfs's.
//!
//! Run as root: `cargo bench --bench run`. It starts a fixture registry unless
//! `LAYERFS_TEST_REGISTRY` names one; `LAYERFS_BENCH_RUNS` sets the runs (default 20). Each
//! tool runs once untimed first, and the tools take turns, so that none always meets a cold
//! cache. containerd runs with its own root, state and socket in a temporary directory.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::containerd::{Containerd, Setup};
use common::registry::FixtureRegistry;
use common::{direct, Env};

const TOOLS: [&str; 3] = ["layerfs", "ctr", "runc"];

fn main() {
    let _registry = FixtureRegistry::start_unless_running();
    let runs: usize = std::env::var("LAYERFS_BENCH_RUNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20);
    let image = direct("library/busybox:glibc");
    let env = Env::new();
    env.ok(&["pull", &image]);

    let containerd = Containerd::start(&env, Setup::default());
    containerd.ctr_ok("bench", &["images", "pull", "--plain-http", &image]);
    let bundle = RuncBundle::create(&env, &image);

    let start = |tool: &str, run: usize| match tool {
        "layerfs" => timed(env.command().args(["run", "--rm", &image, "true"])),
        "ctr" => {
            let begin = Instant::now();
            containerd.run_with("bench", "overlayfs", &image, &["true"]);
            begin.elapsed()
        }
        _ => timed(&mut bundle.command(run)),
    };
    for tool in TOOLS {
        start(tool, usize::MAX);
    }
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for run in 0..runs {
        for turn in 0..TOOLS.len() {
            let index = (run + turn) % TOOLS.len();
            samples[index].push(start(TOOLS[index], run));
        }
    }

    println!("start and remove a busybox container running `true`, median of {runs} runs (lower is better)");
    let layerfs = median(&samples[0]).as_secs_f64();
    for (tool, times) in TOOLS.iter().zip(&samples) {
        let seconds = median(times).as_secs_f64();
        println!(
            "  {:<28} {:>8.1} ms   {:>5.2}x layerfs",
            command_name(tool),
            seconds * 1e3,
            seconds / layerfs
        );
    }
    bundle.remove(&env);
}

fn command_name(tool: &str) -> &'static str {
    match tool {
        "layerfs" => "layerfs run --rm",
        "ctr" => "ctr run --rm (containerd 1.6)",
        _ => "runc run (runc 1.1)",
    }
}

fn timed(command: &mut Command) -> Duration {
    let begin = Instant::now();
    let output = command.output().unwrap();
    let elapsed = begin.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// An OCI bundle of the image for runc: a writable `layerfs mount` as its rootfs, and the
/// config `runc spec` writes, changed to run `true` without a terminal.
struct RuncBundle {
    dir: std::path::PathBuf,
}

impl RuncBundle {
    fn create(env: &Env, image: &str) -> RuncBundle {
        let dir = env.path("bundle");
        fs::create_dir_all(dir.join("state")).unwrap();
        let rootfs = dir.join("rootfs");
        env.ok(&["mount", "--rw", image, rootfs.to_str().unwrap()]);
        let spec = Command::new("runc")
            .arg("spec")
            .arg("--bundle")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(spec.success(), "runc spec failed");
        let path = dir.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(["true"]);
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        RuncBundle { dir }
    }

    /// `runc run` of a new container; runc removes it when `true` exits.
    fn command(&self, run: usize) -> Command {
        let mut command = Command::new("runc");
        command
            .arg("--root")
            .arg(self.dir.join("state"))
            .args(["run", "--bundle"])
            .arg(&self.dir)
            .arg(format!("layerfs-bench-{}-{run}", std::process::id()));
        command
    }

    fn remove(&self, env: &Env) {
        let rootfs: &Path = &self.dir.join("rootfs");
        env.ok(&["umount", rootfs.to_str().unwrap()]);
    }
}
