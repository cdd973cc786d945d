//! `layerfs run`: checks what was asked for, creates `containers/<id>/`, and starts the
//! container's shim from the read-only binary. In the foreground, `run` forwards signals to
//! the shim (and with `-t` relays the terminal) and exits with the container's exit code;
//! detached, it returns once the command has started.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{chown, setsid, Gid, Uid};
use tracing::debug;

use super::attach::{self, RawMode};
use super::capabilities::{self, CapabilityArg};
use super::cgroups::{Hierarchies, Preference, Resources};
use super::console::WindowSize;
use super::rlimits::{self, Ulimit};
use super::rootfs::network_files;
use super::rootfs::volumes::{Tmpfs, Volume};
use super::shim::{CONSOLE_FD_ENV, NOTIFY_FD_ENV};
use super::spec::{
    get_env, resolve_process, set_env, CgroupSpec, InitSpec, Network, Overrides, RootfsSource,
    ShimSpec, SHIM_SPEC_ENV,
};
use super::state::{self, Container, LOG_FILE};
use super::userns::IdMap;
use super::{binary, signals, Error, Result, SysContext};
use crate::fs_error::FsContext;
use crate::image::ImageConfig;
use crate::mount::{self, image_overlay, Driver, UpperDirs};
use crate::store::{random_id, ImageRecord, Store};
use crate::unpack::remove_tree;
use layerfs_fuse::Layers;
use layerfs_registry::Platform;

/// The request `layerfs run` makes.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub overrides: Overrides,
    pub name: Option<String>,
    /// Remove the container when it exits.
    pub remove: bool,
    pub detach: bool,
    /// Keep stdin attached (`-i`).
    pub interactive: bool,
    /// Give the command a pseudo-terminal (`-t`).
    pub terminal: bool,
    /// Defaults to the first 12 characters of the container ID.
    pub hostname: Option<String>,
    pub network: Network,
    pub read_only: bool,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<Tmpfs>,
    pub init: bool,
    pub userns: bool,
    pub ulimits: Vec<Ulimit>,
    pub cap_add: Vec<CapabilityArg>,
    pub cap_drop: Vec<CapabilityArg>,
    pub resources: Resources,
    /// The cgroup every container's cgroup is created in, relative to each hierarchy root.
    pub cgroup_parent: PathBuf,
    pub cgroup_version: Preference,
    pub print_stats: bool,
    /// The driver presenting the image as the container's root.
    pub driver: Driver,
}

/// The end of a `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The container ran in the foreground and exited with this code.
    Exited(u8),
    /// The container was started in the background; its full ID.
    Detached(String),
}

/// Runs a container of `image`.
pub fn run(store: &Store, image: &ImageRecord, options: &RunOptions) -> Result<Outcome> {
    if options.detach && (options.interactive || options.terminal) {
        return Err(Error::DetachedAttach);
    }
    let config = ImageConfig::parse(&store.read_blob(&image.config)?, &image.config)?;
    let id = random_id(64);
    // As in Docker, a container on the host's network takes the host's name by default.
    let hostname = match (&options.hostname, options.network) {
        (Some(hostname), _) => hostname.clone(),
        (None, Network::Host) => nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| id[..12].to_owned()),
        (None, Network::None) => id[..12].to_owned(),
    };
    let mut process = resolve_process(&config, &options.overrides, &hostname)?;
    if options.terminal && get_env(&process.env, "TERM").is_none() {
        // As Docker does, so that programs know how to drive the terminal.
        set_env(&mut process.env, "TERM=xterm");
    }
    let version = Hierarchies::mounted()?.choose(options.cgroup_version)?;
    options.resources.validate(online_cpus())?;
    rlimits::check(&options.ulimits)?;
    let userns = options.userns.then(IdMap::configured);
    let cgroup_relative = cgroup_path(&options.cgroup_parent, &id)?;

    let dir = store.containers_dir().join(&id);
    let (rootfs, fuse_layers) = match options.driver {
        Driver::Overlay => {
            let overlay = image_overlay(store, image, Some(upper_dirs(&dir)))?;
            (RootfsSource::Overlay(overlay), None)
        }
        Driver::Fuse | Driver::FusePassthrough => {
            let layers = mount::fuse_layers(store, image, Some(upper_dirs(&dir)))?;
            (RootfsSource::Fuse, Some(layers))
        }
    };
    let container = state::create(
        store,
        &id,
        options.name.as_deref(),
        &image.reference,
        &process.args,
    )?;
    let spec = ShimSpec {
        id: id.clone(),
        dir: dir.clone(),
        rootfs,
        cgroup: CgroupSpec {
            version,
            relative: cgroup_relative,
            resources: options.resources.clone(),
        },
        userns,
        detach: options.detach,
        remove: options.remove,
        print_stats: options.print_stats,
        init: InitSpec {
            hostname,
            process,
            network: options.network,
            read_only: options.read_only,
            volumes: options.volumes.clone(),
            tmpfs: options.tmpfs.clone(),
            init: options.init,
            terminal: options
                .terminal
                .then(|| attach::own_window_size().unwrap_or(WindowSize::DEFAULT)),
            ulimits: options.ulimits.clone(),
            capabilities: capabilities::resolve(&options.cap_add, &options.cap_drop).bits(),
            foreign_platform: (!Platform::host().matches(&image.platform))
                .then(|| image.platform.clone()),
        },
    };
    // Until the shim runs, a failure leaves nothing behind. After that the shim owns the
    // directory and records a failure there, as Docker keeps a container that did not start.
    let shim = prepare_dirs(&container, &spec.init, userns.as_ref())
        .and_then(|()| start_fuse_daemon(&dir, fuse_layers.as_ref(), options.driver))
        .and_then(|()| spawn_shim(&spec, options));
    match shim {
        Ok(shim) => shim.wait(&spec.id, options),
        Err(error) => {
            if fuse_layers.is_some() {
                let _ = mount::stop_fuse_daemon(&dir, &dir.join("rootfs"));
            }
            let _ = remove_tree(&dir);
            Err(error)
        }
    }
}

/// `<parent>/<id>`, relative to each hierarchy's root. A leading `/` is allowed, as in
/// Docker's `--cgroup-parent`; `..` is not, so a container cannot be placed outside.
fn cgroup_path(parent: &Path, id: &str) -> Result<PathBuf> {
    let mut path = PathBuf::new();
    for component in parent.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => path.push(name),
            _ => return Err(Error::InvalidCgroupParent(parent.to_path_buf())),
        }
    }
    path.push(id);
    Ok(path)
}

fn online_cpus() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

fn upper_dirs(dir: &Path) -> UpperDirs {
    UpperDirs {
        upper: dir.join("upper"),
        work: dir.join("work"),
    }
}

/// Creates the writable layer, the mount point and the network files. In a user namespace
/// the upper directory, which becomes `/`, and the network files belong to the container's
/// root.
fn prepare_dirs(container: &Container, init: &InitSpec, userns: Option<&IdMap>) -> Result<()> {
    for sub in ["upper", "work", "rootfs"] {
        let path = container.dir.join(sub);
        fs::create_dir(&path).at("creating", &path)?;
    }
    let owner = userns.map(|map| (map.host_uid(0), map.host_gid(0)));
    if let Some((uid, gid)) = owner {
        let upper = container.dir.join("upper");
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
        chown(&upper, Some(uid), Some(gid)).at("changing the owner of", &upper)?;
    }
    network_files::write(&container.dir, &init.hostname, init.network, owner)?;
    Ok(())
}

/// Starts the FUSE driver's daemon on the container's mount point, in the host's namespaces,
/// because the daemon must not become a process of the container. The daemon outlives `run`,
/// and the shim stops it once the container has exited. NOTE: if the shim is killed, the
/// daemon keeps serving the mount point until `layerfs rm` or `umount` of it.
fn start_fuse_daemon(dir: &Path, layers: Option<&Layers>, driver: Driver) -> Result<()> {
    if let Some(layers) = layers {
        mount::start_fuse_daemon(dir, &dir.join("rootfs"), layers, driver.fuse_open())?;
    }
    Ok(())
}

/// The descriptors `run` hands to the shim.
struct Passed {
    notify: Option<(OwnedFd, OwnedFd)>,
    console: Option<(OwnedFd, OwnedFd)>,
}

/// A started shim and what `run` keeps to talk to it.
struct Shim {
    child: std::process::Child,
    notify: Option<OwnedFd>,
    console: Option<OwnedFd>,
}

fn spawn_shim(spec: &ShimSpec, options: &RunOptions) -> Result<Shim> {
    let exe = binary::open_read_only().sys("opening the layerfs binary read-only")?;
    let passed = Passed {
        notify: options
            .detach
            .then(|| rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC))
            .transpose()
            .sys("creating a pipe")?,
        console: options
            .terminal
            .then(attach::socket_pair)
            .transpose()
            .sys("creating a socket")?,
    };

    let mut command = Command::new(binary::exec_path(&exe));
    command.arg0("layerfs").arg("container-shim").env(
        SHIM_SPEC_ENV,
        serde_json::to_string(spec).expect("shim specs serialize"),
    );
    set_stdio(&mut command, spec, options)?;

    let mut keep = Vec::new();
    if let Some((_, write)) = &passed.notify {
        command.env(NOTIFY_FD_ENV, write.as_raw_fd().to_string());
        keep.push(write.as_raw_fd());
    }
    if let Some((_, peer)) = &passed.console {
        command.env(CONSOLE_FD_ENV, peer.as_raw_fd().to_string());
        keep.push(peer.as_raw_fd());
    }

    let detach = options.detach;
    if !detach {
        signals::hold_forwarded().sys("holding signals")?;
    }

    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (setsid, fcntl).
    unsafe {
        command.pre_exec(move || {
            if detach {
                setsid()?;
            }
            for fd in &keep {
                clear_cloexec(*fd)?;
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(Error::Spawn)?;
    debug!(pid = child.id(), "started the container's shim");
    // The shim's copies are the ones that count from here on.
    Ok(Shim {
        child,
        notify: passed.notify.map(|(read, _)| read),
        console: passed.console.map(|(socket, _)| socket),
    })
}

impl Shim {
    fn wait(self, id: &str, options: &RunOptions) -> Result<Outcome> {
        match self.notify {
            Some(read) => wait_for_start(read, id),
            None => attach_and_wait(self.child, self.console, options),
        }
    }
}

fn clear_cloexec(fd: i32) -> std::io::Result<()> {
    // SAFETY: F_SETFD on a descriptor this process owns changes only its flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Foreground: stdin only with `-i` (and then through the terminal with `-t`), output to
/// `run`'s own. Detached: output to the container's log.
fn set_stdio(command: &mut Command, spec: &ShimSpec, options: &RunOptions) -> Result<()> {
    if options.detach {
        let path = spec.dir.join(LOG_FILE);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at("creating", &path)?;
        let log_err = log.try_clone().at("opening", &path)?;
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        return Ok(());
    }
    if !options.interactive || options.terminal {
        command.stdin(Stdio::null());
    }
    Ok(())
}

/// Reads the shim's start report: `ok`, or the exit code and message of a failure.
fn wait_for_start(read: OwnedFd, id: &str) -> Result<Outcome> {
    let mut line = String::new();
    let _ = BufReader::new(fs::File::from(read)).read_line(&mut line);
    let line = line.trim_end();
    if line == "ok" {
        return Ok(Outcome::Detached(id.to_owned()));
    }
    let (code, message) = line
        .split_once(' ')
        .unwrap_or(("125", "the shim exited before the container started"));
    Err(Error::Container {
        code: code.parse().unwrap_or(125),
        message: message.to_owned(),
    })
}

fn attach_and_wait(
    mut child: std::process::Child,
    console: Option<OwnedFd>,
    options: &RunOptions,
) -> Result<Outcome> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    signals::forward_to(pid).sys("installing signal forwarding")?;
    if let Some(socket) = console {
        if let Some(terminal) = attach::receive_terminal(&socket).sys("receiving the terminal")? {
            let _raw = options.interactive.then(RawMode::enable);
            attach::relay(&terminal, options.interactive).sys("relaying the terminal")?;
        }
    }
    let status = child.wait().map_err(Error::Spawn)?;
    use std::os::unix::process::ExitStatusExt;
    Ok(Outcome::Exited(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128 + signal as u8,
        (None, None) => 125,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_path_table() {
        let cases = [
            ("layerfs", Some("layerfs/c1")),
            ("/layerfs", Some("layerfs/c1")),
            ("a/b", Some("a/b/c1")),
            ("", Some("c1")),
            ("../up", None),
            ("a/./b", Some("a/b/c1")),
        ];
        for (parent, expected) in cases {
            let path = cgroup_path(Path::new(parent), "c1").ok();
            assert_eq!(path.as_deref(), expected.map(Path::new), "{parent:?}");
        }
    }
}
