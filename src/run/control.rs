//! Controlling a running container from any `layerfs` process: `kill`, `stop`, `pause`,
//! `resume` and `rm`. Signals go to PID 1 through a pidfd that is checked against the PID
//! and start time the shim recorded, so a reused PID is never signalled.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::pidfd_send_signal;
use tracing::{debug, warn};

use super::state::{Container, Phase, Status};
use super::{Error, Result, SysContext};
use crate::unpack::remove_tree;

/// The FUSE daemon's config in the container's directory, there only with the FUSE driver.
const FUSE_CONFIG: &str = "fuse.json";

/// How long `stop` and `rm -f` wait for the shim to record the exit once PID 1 is gone.
const SHIM_EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `signal` to the container's PID 1.
pub fn kill(container: &Container, signal: Signal) -> Result<()> {
    let pidfd = running_init(container)?;
    debug!(
        container = container.short_id(),
        ?signal,
        "signalling PID 1"
    );
    let signal = rustix::process::Signal::from_named_raw(signal as i32)
        .expect("nix signals are named signals");
    pidfd_send_signal(&pidfd, signal).sys("signalling the container's PID 1")
}

/// Sends SIGTERM, waits up to `timeout` for PID 1 to exit, then sends SIGKILL; returns once
/// the shim has recorded the exit. A container that is not running is left as it is.
pub fn stop(container: &Container, timeout: Duration) -> Result<()> {
    let Ok(pidfd) = running_init(container) else {
        return Ok(());
    };
    if let Some(cgroup) = container
        .state
        .cgroup
        .as_ref()
        .filter(|_| container.status() == Status::Paused)
    {
        // A frozen process cannot act on SIGTERM.
        cgroup.thaw()?;
    }
    let term = rustix::process::Signal::TERM;
    pidfd_send_signal(&pidfd, term).sys("signalling the container's PID 1")?;
    if !wait_readable(&pidfd, Some(timeout)) {
        warn!(
            container = container.short_id(),
            "still running after SIGTERM; sending SIGKILL"
        );
        let _ = pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        wait_readable(&pidfd, None);
    }
    wait_for_shim(container)
}

pub fn pause(container: &Container) -> Result<()> {
    running_init(container)?;
    cgroup_of(container)?.freeze()?;
    Ok(())
}

pub fn resume(container: &Container) -> Result<()> {
    running_init(container)?;
    cgroup_of(container)?.thaw()?;
    Ok(())
}

/// Removes the container's directory, and its cgroup if a dead shim left it. A running
/// container is rejected unless `force`, which kills it first.
pub fn remove(container: &Container, force: bool) -> Result<()> {
    let started = wait_until_started(container)?;
    let container = &started;
    if container.is_running() {
        if !force {
            return Err(Error::StillRunning(container.display_name().to_owned()));
        }
        if let Some(cgroup) = container.state.cgroup.as_ref() {
            let _ = cgroup.thaw();
        }
        if let Ok(pidfd) = running_init(container) {
            let _ = pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
            wait_readable(&pidfd, None);
        }
        wait_for_shim(container)?;
    }
    if let Some(cgroup) = &container.state.cgroup {
        if let Err(error) = cgroup.remove() {
            warn!("removing the container's cgroup: {error}");
        }
    }
    // A FUSE daemon that a killed shim left serving the mount point.
    if container.dir.join(FUSE_CONFIG).exists() {
        let mount_point = container.dir.join("rootfs");
        if let Err(error) = crate::mount::stop_fuse_daemon(&container.dir, &mount_point) {
            warn!("stopping the container's FUSE daemon: {error}");
        }
    }
    remove_tree(&container.dir)?;
    Ok(())
}

/// Waits while the container's shim is still starting it, and returns the container as
/// recorded then. Until the shim records PID 1 and the cgroup, removing the directory would
/// leave both behind.
fn wait_until_started(container: &Container) -> Result<Container> {
    let deadline = Instant::now() + SHIM_EXIT_TIMEOUT;
    let mut current = container.clone();
    while current.state.phase == Phase::Created && current.shim_alive() {
        if Instant::now() > deadline {
            return Err(Error::StillStarting(container.display_name().to_owned()));
        }
        std::thread::sleep(Duration::from_millis(10));
        current = Container::load(&container.dir)?;
    }
    Ok(current)
}

fn cgroup_of(container: &Container) -> Result<&super::cgroups::Cgroup> {
    container
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::NotRunning(container.display_name().to_owned()))
}

/// Opens a pidfd for the container's PID 1, if the container runs.
fn running_init(container: &Container) -> Result<OwnedFd> {
    let not_running = || Error::NotRunning(container.display_name().to_owned());
    if !container.is_running() {
        return Err(not_running());
    }
    let init = container.state.init.ok_or_else(not_running)?;
    init.open()
        .sys("opening the container's PID 1")?
        .ok_or_else(not_running)
}

/// Waits until `pidfd`'s process has exited, or `timeout` passed; returns whether it exited.
fn wait_readable(pidfd: &OwnedFd, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let timespec = remaining.map(|r| Timespec {
            tv_sec: r.as_secs() as i64,
            tv_nsec: i64::from(r.subsec_nanos()),
        });
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, timespec.as_ref()) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Waits until the shim has exited, so that its cleanup is done and the state final.
fn wait_for_shim(container: &Container) -> Result<()> {
    let Some(shim) = container.state.shim else {
        return Ok(());
    };
    match shim.open() {
        Ok(Some(pidfd)) => {
            if !wait_readable(&pidfd, Some(SHIM_EXIT_TIMEOUT)) {
                return Err(Error::ShimStuck(container.display_name().to_owned()));
            }
        }
        Ok(None) => {}
        Err(error) => {
            return Err(Error::System {
                action: "opening the container's shim",
                source: error,
            })
        }
    }
    Ok(())
}
