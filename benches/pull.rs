//! Pull and unpack, layerfs beside its peers, from the fixture registry on loopback: each tool
//! fetches an image into a fresh, empty store and unpacks it, and the median wall time is
//! reported with its ratio to layerfs's.
//!
//! Run as root: `cargo bench --bench pull` (`fixtures/install-deps --bench` installs the peers).
//! Peers: containerd's `ctr images pull` (a private containerd with the overlayfs
//! snapshotter), `podman pull` (overlay storage driver), and `skopeo copy` followed by
//! `umoci unpack`. A peer that is not installed is skipped. Images: alpine 3.20 and a Debian
//! bookworm minbase root filesystem as one layer, built once with debootstrap under
//! /var/tmp/layerfs-bench (needs Debian's mirror); `LAYERFS_BENCH_RUNS` sets the runs per
//! measurement (default 5).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BENCH_DIR: &str = "/var/tmp/layerfs-bench";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::Builder::new()
        .prefix("layerfs-bench-pull-")
        .tempdir()
        .unwrap();
    let registry = Registry::start(repo, &work.path().join("registry"));
    let mut images = vec![format!("{}/library/alpine:3.20", registry.address)];
    match push_debian(repo, &registry.address, work.path()) {
        Some(image) => images.push(image),
        None => eprintln!("skipping the Debian image: debootstrap failed or is not installed"),
    }
    let runs: usize = std::env::var("LAYERFS_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);

    println!("pull + unpack into an empty store, median of {runs} runs (lower is better)");
    for image in &images {
        println!("\n{image}");
        let mut baseline = None;
        for tool in Tool::ALL {
            if !tool.installed() {
                println!("  {:<16} not installed, skipped", tool.name());
                continue;
            }
            let median = median_seconds(runs, || tool.pull(image, work.path()));
            let base = *baseline.get_or_insert(median);
            println!(
                "  {:<16} {median:>8.3} s   {:>5.2}x layerfs",
                tool.name(),
                median / base
            );
        }
    }
}

fn median_seconds(runs: usize, mut once: impl FnMut() -> Duration) -> f64 {
    let mut times: Vec<f64> = (0..runs).map(|_| once().as_secs_f64()).collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[times.len() / 2]
}

#[derive(Clone, Copy)]
enum Tool {
    Layerfs,
    Ctr,
    Podman,
    SkopeoUmoci,
}

impl Tool {
    const ALL: [Tool; 4] = [Tool::Layerfs, Tool::Ctr, Tool::Podman, Tool::SkopeoUmoci];

    fn name(self) -> &'static str {
        match self {
            Tool::Layerfs => "layerfs",
            Tool::Ctr => "ctr (containerd)",
            Tool::Podman => "podman",
            Tool::SkopeoUmoci => "skopeo + umoci",
        }
    }

    fn installed(self) -> bool {
        let commands: &[&str] = match self {
            Tool::Layerfs => &[],
            Tool::Ctr => &["containerd", "ctr"],
            Tool::Podman => &["podman"],
            Tool::SkopeoUmoci => &["skopeo", "umoci"],
        };
        commands.iter().all(|c| {
            Command::new("which")
                .arg(c)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Pulls `image` into a fresh store under `work` and returns the time the pull took,
    /// excluding setup (starting containerd) and cleanup.
    fn pull(self, image: &str, work: &Path) -> Duration {
        let dir = tempfile::tempdir_in(work).unwrap();
        let store = dir.path();
        let elapsed = match self {
            Tool::Layerfs => timed(
                Command::new(env!("CARGO_BIN_EXE_layerfs"))
                    .arg("--root")
                    .arg(store)
                    .args(["pull", image]),
            ),
            Tool::Ctr => {
                let daemon = Containerd::start(store);
                let elapsed = timed(Command::new("ctr").args([
                    "--address",
                    daemon.socket.to_str().unwrap(),
                    "-n",
                    "bench",
                    "images",
                    "pull",
                    "--plain-http",
                    image,
                ]));
                drop(daemon);
                elapsed
            }
            Tool::Podman => timed(
                Command::new("podman")
                    .arg("--root")
                    .arg(store.join("root"))
                    .arg("--runroot")
                    .arg(store.join("run"))
                    .args([
                        "--storage-driver",
                        "overlay",
                        "pull",
                        "--quiet",
                        "--tls-verify=false",
                        image,
                    ]),
            ),
            Tool::SkopeoUmoci => {
                let layout = format!("oci:{}:bench", store.join("layout").display());
                let start = Instant::now();
                run(Command::new("skopeo").args([
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    &format!("docker://{image}"),
                    &layout,
                ]));
                let image_arg = format!("{}:bench", store.join("layout").display());
                run(Command::new("umoci")
                    .args(["unpack", "--image", &image_arg])
                    .arg(store.join("bundle")));
                start.elapsed()
            }
        };
        unmount_below(store);
        elapsed
    }
}

fn timed(command: &mut Command) -> Duration {
    let start = Instant::now();
    run(command);
    start.elapsed()
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Unmounts whatever a peer left mounted below `dir` (podman keeps its overlay storage
/// mounted), so the directory can be removed.
fn unmount_below(dir: &Path) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_str().unwrap();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|target| target.starts_with(prefix))
        .collect();
    targets.sort_by_key(|target| std::cmp::Reverse(target.len()));
    for target in targets {
        let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A private containerd with its own root, state and socket.
struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        let text = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = \"{socket}\"\n[ttrpc]\naddress = \"{socket}.ttrpc\"\n",
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = socket.display(),
        );
        fs::write(&config, text).unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = Containerd { child, socket };
        for _ in 0..200 {
            let ready = Command::new("ctr")
                .args(["--address", daemon.socket.to_str().unwrap(), "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return daemon;
            }
            sleep(Duration::from_millis(50));
        }
        panic!(
            "containerd did not start; see {}",
            dir.join("containerd.log").display()
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The fixture registry, stopped on drop.
struct Registry {
    repo: PathBuf,
    dir: PathBuf,
    address: String,
}

impl Registry {
    fn start(repo: &Path, dir: &Path) -> Registry {
        let output = Command::new(repo.join("fixtures/registry"))
            .arg("start")
            .arg(dir)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(output.status.success(), "fixtures/registry start failed");
        let line = String::from_utf8(output.stdout).unwrap();
        let address = line
            .trim()
            .trim_start_matches("LAYERFS_TEST_REGISTRY=")
            .to_owned();
        Registry {
            repo: repo.to_path_buf(),
            dir: dir.to_path_buf(),
            address,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new(self.repo.join("fixtures/registry"))
            .arg("stop")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status();
    }
}

/// Builds (once) a Debian minbase tree, packs it as a one-layer image with umoci and pushes it.
fn push_debian(repo: &Path, registry: &str, work: &Path) -> Option<String> {
    let tree = debian_tree()?;
    let layout = work.join("debian-layout");
    let image = format!("{}:bookworm", layout.display());
    let umoci = |args: &[&str]| {
        Command::new("umoci")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let built = umoci(&["init", "--layout", layout.to_str().unwrap()])
        && umoci(&["new", "--image", &image])
        && umoci(&["insert", "--image", &image, tree.to_str().unwrap(), "/"]);
    if !built {
        return None;
    }
    let reference = format!("{registry}/bench/debian:bookworm");
    let _ = repo;
    let pushed = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &format!("docker://{reference}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    pushed.then_some(reference)
}

fn debian_tree() -> Option<PathBuf> {
    let tree = Path::new(BENCH_DIR).join("debian");
    if tree.join("etc/debian_version").exists() {
        return Some(tree);
    }
    fs::create_dir_all(BENCH_DIR).ok()?;
    eprintln!("building a Debian bookworm tree with debootstrap (once)");
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tree)
        .arg(DEBIAN_MIRROR)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    status.success().then_some(tree)
}
