//! containerd pulling, unpacking and starting images with the layerfs snapshotter, beside
//! containerd's own overlayfs snapshotter: the median wall time of each, with its ratio to
//! layerfs's.
//!
//! Run as root: `cargo bench --bench snapshotter`. It starts a fixture registry unless
//! `LAYERFS_TEST_REGISTRY` names one; `LAYERFS_BENCH_RUNS` sets the runs (default 5).
//!
//! 1. `ctr images pull` in one containerd: the content is fetched once before timing, so the
//!    pulls measure containerd's unpack path (content store → snapshotter), not the network.
//! 2. A pull through the CRI plugin, as the kubelet makes it, from the loopback registry:
//!    containerd with `snapshotter = "overlayfs"` beside containerd with `"layerfs"` on a store
//!    where `layerfs pull` fetched the images before, so it shares their layers.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::containerd::{Containerd, Setup};
use common::registry::FixtureRegistry;
use common::{direct, Env};

const SNAPSHOTTERS: [&str; 2] = ["overlayfs", "layerfs"];

fn main() {
    let _registry = FixtureRegistry::start_unless_running();
    let rounds: usize = std::env::var("LAYERFS_BENCH_RUNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(5);
    let images = [
        direct("library/alpine:3.20"),
        direct("layerfs-fixtures/whiteouts:latest"),
        direct("library/busybox:latest"),
    ];
    println!("containerd 1.6, alpine 3.20 + whiteouts + busybox, median of {rounds} runs (lower is better)");
    bench_ctr(rounds, &images);
    bench_cri(rounds, &images);
}

fn bench_ctr(rounds: usize, images: &[String]) {
    let env = Env::new();
    let containerd = Containerd::start(&env, Setup::default());
    for image in images {
        containerd.ctr_ok("warm", &["content", "fetch", "--plain-http", image]);
    }

    let mut pulls: [Vec<Duration>; 2] = Default::default();
    let mut starts: [Vec<Duration>; 2] = Default::default();
    for round in 0..rounds {
        for turn in 0..SNAPSHOTTERS.len() {
            // Alternate which snapshotter goes first, so neither always meets a cold cache.
            let index = (round + turn) % SNAPSHOTTERS.len();
            let snapshotter = SNAPSHOTTERS[index];
            let namespace = format!("bench-{round}-{snapshotter}");
            let start = Instant::now();
            for image in images {
                let args = [
                    "images",
                    "pull",
                    "--plain-http",
                    "--snapshotter",
                    snapshotter,
                    image,
                ];
                containerd.ctr_ok(&namespace, &args);
            }
            pulls[index].push(start.elapsed());

            let start = Instant::now();
            containerd.run_with(&namespace, snapshotter, &images[2], &["true"]);
            starts[index].push(start.elapsed());

            let listed = containerd.ctr_ok(&namespace, &["images", "ls", "--quiet"]);
            let mut args = vec!["images", "rm", "--sync"];
            args.extend(listed.lines());
            containerd.ctr_ok(&namespace, &args);
        }
    }

    report("ctr pull + unpack, 3 images", &pulls);
    report("ctr run --rm busybox true", &starts);
}

fn bench_cri(rounds: usize, images: &[String]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut pulls: [Vec<Duration>; 2] = Default::default();
    for (index, snapshotter) in SNAPSHOTTERS.into_iter().enumerate() {
        let env = Env::new();
        for image in images {
            env.ok(&["pull", image]);
        }
        let containerd = Containerd::start(
            &env,
            Setup {
                cri: Some(snapshotter),
                ..Setup::default()
            },
        );
        for _ in 0..rounds {
            let start = Instant::now();
            for image in images {
                runtime.block_on(common::grpc::cri_pull(&containerd.socket, image));
            }
            pulls[index].push(start.elapsed());

            let listed = containerd.ctr_ok("k8s.io", &["images", "ls", "--quiet"]);
            let mut args = vec!["images", "rm", "--sync"];
            args.extend(listed.lines());
            containerd.ctr_ok("k8s.io", &args);
        }
    }
    report("CRI pull, 3 images", &pulls);
}

/// Prints each snapshotter's median, in the order of `SNAPSHOTTERS`, and its ratio to
/// layerfs's.
fn report(what: &str, samples: &[Vec<Duration>; 2]) {
    println!("\n{what}");
    let layerfs = median(&samples[1]).as_secs_f64();
    for (name, times) in SNAPSHOTTERS.iter().zip(samples).rev() {
        let seconds = median(times).as_secs_f64();
        let ratio = seconds / layerfs;
        println!(
            "  {name:<10} {:>8.1} ms   {ratio:>5.2}x layerfs",
            seconds * 1e3
        );
    }
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
