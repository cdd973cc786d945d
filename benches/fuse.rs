//! The FUSE driver against the kernel's overlayfs and fuse-overlayfs, side by side on one
//! read-only layer: a full stat walk and reading every file, warm and cold, as ratios to
//! the kernel overlay.
//!
//! Run as root: `cargo bench --bench fuse`. The tree is `LAYERFS_BENCH_TREE` if set, else a
//! Debian bookworm minbase root built once with debootstrap under
//! /var/tmp/layerfs-bench/debian (needs the debootstrap package and Debian's mirror), else a
//! generated tree of the same order of size. `LAYERFS_BENCH_RUNS` sets the warm runs per
//! measurement (default 5) and `LAYERFS_BENCH_COLD_RUNS` the cold ones (default 5); the
//! best run is reported.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use layerfs::mount::Overlay;
use layerfs_fuse::OpenMode;
use nix::mount::{umount2, MntFlags};

const BENCH_DIR: &str = "/var/tmp/layerfs-bench";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

#[derive(Clone, Copy, PartialEq)]
enum Driver {
    Kernel,
    Layerfs(OpenMode),
    FuseOverlayfs,
}

impl Driver {
    const ALL: [Driver; 4] = [
        Driver::Kernel,
        Driver::Layerfs(OpenMode::Cached),
        Driver::Layerfs(OpenMode::Passthrough),
        Driver::FuseOverlayfs,
    ];

    fn name(self) -> &'static str {
        match self {
            Driver::Kernel => "kernel",
            Driver::Layerfs(OpenMode::Cached) => "layerfs",
            Driver::Layerfs(OpenMode::Passthrough) => "layerfs-pt",
            Driver::FuseOverlayfs => "fuse-overlayfs",
        }
    }
}

/// A mounted driver, unmounted on drop.
struct Mounted {
    target: PathBuf,
    server: Option<JoinHandle<()>>,
}

impl Mounted {
    fn new(driver: Driver, lower: &Path, empty: &Path, target: &Path) -> Mounted {
        fs::create_dir_all(target).unwrap();
        let mut server = None;
        match driver {
            Driver::Kernel => {
                let overlay = Overlay {
                    lowers: vec![lower.to_path_buf(), empty.to_path_buf()],
                    upper: None,
                };
                overlay.mount(target).unwrap();
            }
            Driver::Layerfs(open) => {
                let layers = layerfs_fuse::Layers {
                    lowers: vec![lower.to_path_buf()],
                    upper: None,
                };
                let options = layerfs_fuse::Options {
                    open,
                    ..layerfs_fuse::Options::default()
                };
                let mount = layerfs_fuse::mount(&layers, target, options).unwrap();
                server = Some(std::thread::spawn(move || mount.run().unwrap()));
            }
            Driver::FuseOverlayfs => {
                let option = format!("lowerdir={}:{}", lower.display(), empty.display());
                let status = Command::new("fuse-overlayfs")
                    .args(["-o", &option])
                    .arg(target)
                    .status()
                    .expect("fuse-overlayfs is installed (Debian package fuse-overlayfs)");
                assert!(status.success(), "fuse-overlayfs failed: {status}");
            }
        }
        Mounted {
            target: target.to_path_buf(),
            server,
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        umount2(&self.target, MntFlags::empty()).unwrap();
        if let Some(server) = self.server.take() {
            server.join().unwrap();
        }
    }
}

/// Counts of what a workload read, to check that every driver showed the same tree.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    entries: u64,
    bytes: u64,
}

fn stat_walk(dir: &Path, totals: &mut Totals) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        totals.entries += 1;
        if meta.is_dir() {
            stat_walk(&path, totals);
        }
    }
}

fn read_all(dir: &Path, totals: &mut Totals, buffer: &mut [u8]) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let file_type = entry.file_type().unwrap();
        let path = entry.path();
        totals.entries += 1;
        if file_type.is_dir() {
            read_all(&path, totals, buffer);
        } else if file_type.is_file() {
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            loop {
                match file.read(buffer).unwrap() {
                    0 => break,
                    read => totals.bytes += read as u64,
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Workload {
    StatWalk,
    ReadAll,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::StatWalk => "stat walk",
            Workload::ReadAll => "read every file",
        }
    }

    fn run(self, root: &Path) -> (Duration, Totals) {
        let mut totals = Totals::default();
        let mut buffer = vec![0u8; 128 * 1024];
        let start = Instant::now();
        match self {
            Workload::StatWalk => stat_walk(root, &mut totals),
            Workload::ReadAll => read_all(root, &mut totals, &mut buffer),
        }
        (start.elapsed(), totals)
    }
}

fn drop_caches() {
    nix::unistd::sync();
    fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
}

/// The shortest of `times`. The machines this runs on are shared, and other load only ever
/// adds time, so the best run is the closest to the cost of the work itself.
fn best(times: Vec<Duration>) -> Duration {
    times.into_iter().min().expect("at least one run")
}

/// Warm: all three mounted, one untimed pass each, then `runs` passes in turn.
fn warm(
    workload: Workload,
    lower: &Path,
    empty: &Path,
    scratch: &Path,
    runs: usize,
) -> Vec<Duration> {
    let mounts: Vec<Mounted> = Driver::ALL
        .iter()
        .enumerate()
        .map(|(index, &driver)| {
            Mounted::new(driver, lower, empty, &scratch.join(format!("m{index}")))
        })
        .collect();
    let reference = workload.run(&mounts[0].target).1;
    for mounted in &mounts {
        let (_, totals) = workload.run(&mounted.target);
        assert_eq!(totals, reference, "every driver shows the same tree");
    }
    let mut times = vec![Vec::new(); mounts.len()];
    for _ in 0..runs {
        for (index, mounted) in mounts.iter().enumerate() {
            times[index].push(workload.run(&mounted.target).0);
        }
    }
    times.into_iter().map(best).collect()
}

/// Cold: each driver freshly mounted after dropping the page, dentry and inode caches,
/// `runs` times in turn.
fn cold(
    workload: Workload,
    lower: &Path,
    empty: &Path,
    scratch: &Path,
    runs: usize,
) -> Vec<Duration> {
    let mut times = vec![Vec::new(); Driver::ALL.len()];
    for _ in 0..runs {
        for (index, &driver) in Driver::ALL.iter().enumerate() {
            let target = scratch.join(format!("c{index}"));
            let mounted = Mounted::new(driver, lower, empty, &target);
            drop_caches();
            times[index].push(workload.run(&mounted.target).0);
        }
    }
    times.into_iter().map(best).collect()
}

/// Returns the tree to mount, and a description of it.
fn bench_tree() -> (PathBuf, String) {
    if let Some(tree) = std::env::var_os("LAYERFS_BENCH_TREE") {
        return (PathBuf::from(tree), "LAYERFS_BENCH_TREE".to_owned());
    }
    let debian = Path::new(BENCH_DIR).join("debian");
    if debian.join("etc/debian_version").exists() || debootstrap(&debian) {
        return (debian, "Debian bookworm minbase (debootstrap)".to_owned());
    }
    let generated = Path::new(BENCH_DIR).join("generated");
    if !generated.join("done").exists() {
        generate_tree(&generated);
    }
    (
        generated,
        "generated tree (debootstrap unavailable)".to_owned(),
    )
}

fn debootstrap(target: &Path) -> bool {
    let staging = target.with_extension("partial");
    let _ = fs::remove_dir_all(&staging);
    eprintln!("building {} with debootstrap (once)", target.display());
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&staging)
        .arg(DEBIAN_MIRROR)
        .status();
    match status {
        Ok(status) if status.success() => fs::rename(&staging, target).is_ok(),
        _ => false,
    }
}

/// About 9,000 files in 300 directories, 1 KiB to 64 KiB, about 150 MiB: the order of a
/// Debian base image.
fn generate_tree(root: &Path) {
    let _ = fs::remove_dir_all(root);
    for dir in 0..300 {
        let dir_path = root.join(format!("d{:03}/sub{}", dir, dir % 7));
        fs::create_dir_all(&dir_path).unwrap();
        for file in 0..30 {
            let size = 1024 << ((dir + file) % 7);
            fs::write(dir_path.join(format!("f{file:02}")), vec![b'x'; size]).unwrap();
        }
    }
    fs::write(root.join("done"), "").unwrap();
}

fn seconds(time: Duration) -> String {
    format!("{:.3}", time.as_secs_f64())
}

fn print_header(tree: &Path, description: &str, runs: usize, cold_runs: usize) {
    let mut totals = Totals::default();
    stat_walk(tree, &mut totals);
    let entries = totals.entries;
    println!(
        "tree: {} ({description}), {entries} entries",
        tree.display()
    );
    println!("warm: best of {runs} runs; cold: best of {cold_runs} runs after dropping caches");
    println!("layerfs: default (cached) opens; layerfs-pt: passthrough opens\n");

    let names = Driver::ALL.map(Driver::name);
    print!("{:<24}", "workload");
    for name in names {
        print!(" {name:>14}");
    }
    for name in &names[1..] {
        print!(" {:>14}", format!("{name}/kernel"));
    }
    println!(" {:>14}", "layerfs/f-ovl");
}

/// Prints the times of one measurement in `Driver::ALL` order, then the ratios.
fn print_row(label: &str, times: &[Duration]) {
    print!("{label:<24}");
    for time in times {
        print!(" {:>13}s", seconds(*time));
    }
    let kernel = times[0].as_secs_f64();
    for time in &times[1..] {
        print!(" {:>13.2}x", time.as_secs_f64() / kernel);
    }
    println!(
        " {:>13.2}x",
        times[1].as_secs_f64() / times[3].as_secs_f64()
    );
}

fn runs_from_env(name: &str, default: usize) -> usize {
    let runs = std::env::var(name).ok().and_then(|runs| runs.parse().ok());
    runs.unwrap_or(default).max(1)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runs = runs_from_env("LAYERFS_BENCH_RUNS", 5);
    let cold_runs = runs_from_env("LAYERFS_BENCH_COLD_RUNS", 5);
    let (tree, description) = bench_tree();
    let scratch = tempfile::Builder::new()
        .prefix("layerfs-bench-")
        .tempdir_in(BENCH_DIR)
        .unwrap();
    let empty = scratch.path().join("empty");
    fs::create_dir(&empty).unwrap();

    print_header(&tree, &description, runs, cold_runs);
    for workload in [Workload::StatWalk, Workload::ReadAll] {
        let warm_times = warm(workload, &tree, &empty, scratch.path(), runs);
        print_row(&format!("{} (warm)", workload.name()), &warm_times);
        let cold_times = cold(workload, &tree, &empty, scratch.path(), cold_runs);
        print_row(&format!("{} (cold)", workload.name()), &cold_times);
    }
}
