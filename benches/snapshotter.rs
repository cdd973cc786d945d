//! containerd pulling, unpacking and starting images with the layerfs snapshotter, beside
//! containerd's own overlayfs snapshotter, in one containerd, reported as ratios.
//!
//! Needs root and the fixture registry: `fixtures/registry start DIR`, export the line it
//! prints, then `cargo bench --bench snapshotter`. `LAYERFS_BENCH_ROUNDS` sets the rounds
//! (default 5). The content is fetched once before timing, so the pulls measure containerd's
//! unpack path (content store → snapshotter), not the network.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::containerd::{Containerd, Setup};
use common::{direct, Env};

const SNAPSHOTTERS: [&str; 2] = ["overlayfs", "layerfs"];

fn main() {
    let rounds: usize = std::env::var("LAYERFS_BENCH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(5);
    let env = Env::new();
    let containerd = Containerd::start(&env, Setup::default());
    let images = [
        direct("library/alpine:3.20"),
        direct("layerfs-fixtures/whiteouts:latest"),
        direct("library/busybox:latest"),
    ];
    for image in &images {
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
            for image in &images {
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

    println!("containerd 1.6, {rounds} rounds, medians (alpine 3.20 + whiteouts + busybox)");
    report("pull + unpack, 3 images", &pulls);
    report("ctr run --rm busybox true", &starts);
}

fn report(what: &str, samples: &[Vec<Duration>; 2]) {
    let overlay = median(&samples[0]);
    let layerfs = median(&samples[1]);
    let ratio = layerfs.as_secs_f64() / overlay.as_secs_f64();
    println!(
        "{what:<28} overlayfs {:>8.1} ms  layerfs {:>8.1} ms  layerfs/overlayfs {ratio:.2}",
        overlay.as_secs_f64() * 1e3,
        layerfs.as_secs_f64() * 1e3,
    );
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
