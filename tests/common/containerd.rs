//! A private containerd (Debian's, 1.6) with `layerfs snapshotter` as its `layerfs` proxy
//! snapshotter, driven with `ctr`.
//!
//! containerd gets its own root, state, sockets and config under the test's directory. Its
//! runc shims put sockets under `/run/containerd`, whatever the config sets, so containerd
//! runs in a private mount namespace with a tmpfs on `/run`: nothing lands in the host's
//! `/run/containerd`. `ctr` runs on the host and keeps its FIFOs in the test's directory.
//!
//! The PATH of containerd and of `ctr` starts with a private `bin/` directory that holds a
//! `layerfs` symlink to the binary under test: the program that `mount.fuse3` runs for the
//! snapshotter's FUSE mounts. Both mount snapshots (`ctr run` reads the image's `/etc/group`
//! through a temporary mount). Nothing is installed on the host.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::Env;

/// The time a starting daemon may take to accept connections; generous because CI machines
/// are shared.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Numbers container IDs, which must be unique per containerd namespace.
static CONTAINERS: AtomicU32 = AtomicU32::new(1);

/// Prints what the whiteouts image's upper layer changed, one line per check.
pub const WHITEOUTS_SCRIPT: &str = "cat /etc/hostname /etc/layerfs-added; ls /etc/apk/keys; \
    for p in /etc/motd /usr/share/udhcpc; do if [ -e $p ]; then echo present $p; \
    else echo absent $p; fi; done";

pub const WHITEOUTS_OUTPUT: &str = "layerfs-whiteouts\nadded by the upper layer\n\
    layerfs-fixture.txt\nabsent /etc/motd\nabsent /usr/share/udhcpc\n";

pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub snapshotter_socket: PathBuf,
    daemon: Option<Child>,
    snapshotter: Option<Snapshotter>,
    store_root: PathBuf,
    config_file: PathBuf,
}

/// Options beyond the defaults.
#[derive(Default)]
pub struct Setup {
    /// Enable the CRI plugin with this snapshotter (`layerfs` as on a Kubernetes node that
    /// uses layerfs), and the fixture registry as a plain-HTTP mirror of itself.
    pub cri: Option<&'static str>,
    /// The snapshotter's mount driver, added to the layerfs config as `[snapshotter] driver`.
    pub driver: Option<&'static str>,
}

impl Containerd {
    pub fn start(env: &Env, setup: Setup) -> Containerd {
        let dir = env.path("containerd");
        fs::create_dir_all(dir.join("fifo")).unwrap();
        let mut containerd = Containerd {
            socket: dir.join("containerd.sock"),
            snapshotter_socket: dir.join("layerfs.sock"),
            daemon: None,
            snapshotter: None,
            store_root: env.root.clone(),
            config_file: env.config.clone(),
            dir,
        };
        fs::write(
            containerd.dir.join("config.toml"),
            containerd.config(&setup),
        )
        .unwrap();
        if let Some(driver) = setup.driver {
            let mut config = fs::read_to_string(&env.config).unwrap();
            config.push_str(&format!("\n[snapshotter]\ndriver = \"{driver}\"\n"));
            env.write_config(&config);
        }
        fs::create_dir(containerd.dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(super::layerfs_binary(), containerd.dir.join("bin/layerfs"))
            .unwrap();
        containerd.start_snapshotter();
        containerd.start_daemon();
        containerd
    }

    fn config(&self, setup: &Setup) -> String {
        let dir = self.dir.display();
        let mut disabled = vec![
            "io.containerd.internal.v1.opt",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.tracing.processor.v1.otlp",
        ];
        if setup.cri.is_none() {
            disabled.push("io.containerd.grpc.v1.cri");
        }
        let disabled: Vec<String> = disabled.iter().map(|p| format!("{p:?}")).collect();
        let mut text = format!(
            r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = [{disabled}]

[grpc]
  address = "{dir}/containerd.sock"

[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"

[debug]
  level = "debug"

[proxy_plugins]
  [proxy_plugins.layerfs]
    type = "snapshot"
    address = "{dir}/layerfs.sock"
"#,
            disabled = disabled.join(", "),
        );
        if let Some(snapshotter) = setup.cri {
            let registry = super::registry();
            text.push_str(&format!(
                r#"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{snapshotter}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{dir}/cni/bin"
    conf_dir = "{dir}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
"#
            ));
        }
        text
    }

    /// Starts `layerfs snapshotter` on the store, waits for its socket, and for containerd to
    /// reconnect if it is running.
    pub fn start_snapshotter(&mut self) {
        let log = self.dir.join("snapshotter.log");
        let process = Snapshotter::start(
            &self.store_root,
            &self.config_file,
            &self.snapshotter_socket,
            &log,
        );
        self.snapshotter = Some(process);
        if self.daemon.is_some() {
            // containerd redials a proxy plug-in with backoff, failing calls until it has.
            wait_until(
                "containerd's connection to the snapshotter",
                &self.dir,
                || {
                    let args = ["snapshots", "--snapshotter", "layerfs", "ls"];
                    self.ctr_in("default", &args).status.success()
                },
            );
        }
    }

    /// Stops the snapshotter with SIGTERM and waits for it to exit.
    pub fn stop_snapshotter(&mut self) {
        if let Some(process) = self.snapshotter.take() {
            process.stop();
        }
    }

    fn start_daemon(&mut self) {
        let log = fs::File::create(self.dir.join("containerd.log")).unwrap();
        let script = "mount -t tmpfs -o mode=0755 tmpfs /run && exec containerd --config \"$0\"";
        let child = Command::new("unshare")
            .env("PATH", self.path())
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg(self.dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        wait_until("containerd", &self.dir, || {
            Command::new("ctr")
                .arg("--address")
                .arg(&self.socket)
                .arg("version")
                .output()
                .is_ok_and(|output| output.status.success())
        });
    }

    /// Returns the PATH for containerd and `ctr`, with the private `bin/` first.
    fn path(&self) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        format!("{}:{path}", self.dir.join("bin").display())
    }

    /// Runs `ctr ARGS` in namespace `namespace` and returns its output.
    pub fn ctr_in(&self, namespace: &str, args: &[&str]) -> Output {
        Command::new("ctr")
            .env("PATH", self.path())
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", namespace])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `ctr ARGS` in the default namespace, asserts success, and returns stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        self.ctr_ok("default", args)
    }

    pub fn ctr_ok(&self, namespace: &str, args: &[&str]) -> String {
        let output = self.ctr_in(namespace, args);
        self.check(args, output)
    }

    /// Asserts that `ctr ARGS` succeeded and returns its stdout.
    fn check(&self, args: &[&str], output: Output) -> String {
        assert!(
            output.status.success(),
            "ctr {args:?} failed with {}\nstdout: {}\nstderr: {}\nlogs in {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.dir.display()
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `ctr run --rm` of `image` with the layerfs snapshotter; returns the output.
    pub fn run(&self, namespace: &str, image: &str, command: &[&str]) -> String {
        self.run_with(namespace, "layerfs", image, command)
    }

    /// `ctr run --rm` with `snapshotter`. The container's cgroup goes under a parent of its own,
    /// which is removed afterwards, because runc removes only the container's cgroup and
    /// containerd's default parent is the namespace's, which would stay behind on the host.
    pub fn run_with(
        &self,
        namespace: &str,
        snapshotter: &str,
        image: &str,
        command: &[&str],
    ) -> String {
        let fifo = self.dir.join("fifo");
        let number = CONTAINERS.fetch_add(1, Ordering::Relaxed);
        let id = format!("c{number}");
        let parent = format!("layerfs-test-{}-{number}", std::process::id());
        let cgroup = format!("/{parent}/{id}");
        let mut args = vec![
            "run",
            "--rm",
            "--cgroup",
            &cgroup,
            "--snapshotter",
            snapshotter,
            "--fifo-dir",
            fifo.to_str().unwrap(),
            image,
            &id,
        ];
        args.extend_from_slice(command);
        let output = self.ctr_in(namespace, &args);
        remove_cgroup(&parent);
        self.check(&args, output)
    }

    /// Lists `ctr snapshots ls` of the layerfs snapshotter as (key, parent, kind).
    pub fn snapshots(&self, namespace: &str) -> Vec<(String, String, String)> {
        let output = self.ctr_ok(namespace, &["snapshots", "--snapshotter", "layerfs", "ls"]);
        output
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [key, kind] => (key.to_string(), String::new(), kind.to_string()),
                    [key, parent, kind] => (key.to_string(), parent.to_string(), kind.to_string()),
                    _ => panic!("unexpected `ctr snapshots ls` line {line:?}"),
                }
            })
            .collect()
    }

    /// Returns the mount table of containerd's private mount namespace.
    pub fn mountinfo(&self) -> String {
        let pid = self.daemon.as_ref().unwrap().id();
        fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap()
    }

    /// Counts the layers containerd has unpacked (its diff service logs each at debug level).
    pub fn layers_applied(&self) -> usize {
        self.log().matches("diff applied").count()
    }

    /// Lists the snapshot directories of the store: `snapshots/` without the metadata file.
    pub fn snapshot_dirs(&self) -> Vec<String> {
        dir_names(&self.store_root.join("snapshots"))
            .into_iter()
            .filter(|name| name != "metadata.redb")
            .collect()
    }

    pub fn layer_dirs(&self) -> Vec<String> {
        dir_names(&self.store_root.join("layers/sha256"))
    }
}

pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Removes the cgroup `parent` from every hierarchy under /sys/fs/cgroup. A hierarchy where
/// it does not exist, or is not empty, is left alone.
fn remove_cgroup(parent: &str) {
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let _ = fs::remove_dir(hierarchy.path().join(parent));
    }
}

fn terminate(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(child) = self.daemon.take() {
            terminate(child);
        }
    }
}

/// A running `layerfs snapshotter`; SIGKILLed on drop unless stopped.
pub struct Snapshotter {
    child: Option<Child>,
    pub socket: PathBuf,
}

impl Snapshotter {
    /// Starts the snapshotter on `root` and waits until it accepts connections; appends its log
    /// to `log`.
    pub fn start(root: &Path, config: &Path, socket: &Path, log: &Path) -> Snapshotter {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(super::layerfs_binary())
            .env("LAYERFS_ROOT", root)
            .env("LAYERFS_CONFIG", config)
            .env("LAYERFS_LOG", "layerfs=debug")
            .args(["snapshotter", "--address"])
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let process = Snapshotter {
            child: Some(child),
            socket: socket.to_path_buf(),
        };
        // A killed snapshotter leaves its socket file, so wait for a connection instead.
        wait_until("the snapshotter socket", log, || {
            std::os::unix::net::UnixStream::connect(socket).is_ok()
        });
        process
    }

    /// Stops it with SIGTERM, waits, and checks that it removed its socket.
    pub fn stop(mut self) {
        terminate(self.child.take().unwrap());
        assert!(!self.socket.exists(), "socket left behind");
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_until(what: &str, logs: &Path, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < START_TIMEOUT,
            "{what} did not start; see {}",
            logs.display()
        );
        sleep(Duration::from_millis(50));
    }
}
