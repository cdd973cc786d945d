//! `layerfs container-shim`: the small process that supervises one container, like
//! containerd's shim or podman's conmon. `run` starts it from the read-only binary and, for
//! a detached container, leaves it running in its own session.
//!
//! The shim starts the container (see `spawn`), records its state, forwards the signals it
//! receives to PID 1, and waits for it. When PID 1 exits, the kernel has already killed the
//! rest of the PID namespace. The shim then reports an OOM kill, prints the figures with
//! `--stats`, removes the cgroup and the container's mount point, records the exit code,
//! and exits with it.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::sys::prctl;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use tracing::warn;

use super::cgroups::human_bytes;
use super::process_id::ProcessId;
use super::spawn::{self, Running};
use super::spec::{RootfsSource, ShimSpec, SHIM_SPEC_ENV};
use super::state::{now, Container, Phase};
use super::{signals, Error};
use crate::mount;
use crate::unpack::remove_tree;

/// The descriptor `run -d` reads the start report from, by number: one line, `ok` or the
/// exit code and the message of the failure. Only the line counts, because PID 1 with
/// `--init` keeps a copy of the descriptor until it closes its inherited descriptors.
pub const NOTIFY_FD_ENV: &str = "_LAYERFS_NOTIFY_FD";
/// The socket PID 1 sends the terminal over, by number.
pub const CONSOLE_FD_ENV: &str = "_LAYERFS_CONSOLE_FD";

/// Runs the shim; returns the exit code for `layerfs container-shim`.
pub fn container_shim() -> u8 {
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("layerfs: {error}");
            return error.exit_code();
        }
    };
    if let Err(errno) = signals::hold_forwarded() {
        warn!("holding signals until the container starts: {errno}");
    }
    let notify = inherited_fd(NOTIFY_FD_ENV).map(std::fs::File::from);
    let console = inherited_fd(CONSOLE_FD_ENV);
    let mut container = match Container::load(&spec.dir) {
        Ok(container) => container,
        Err(error) => return fail(&spec, None, notify, error),
    };
    if let Err(error) = adopt_orphans(&mut container) {
        return fail(&spec, Some(&mut container), notify, error);
    }
    match spawn::start(&spec, console) {
        Ok(running) => supervise(&spec, &mut container, notify, running),
        Err(error) => fail(&spec, Some(&mut container), notify, error),
    }
}

fn read_spec() -> Result<ShimSpec, Error> {
    let text = std::env::var(SHIM_SPEC_ENV)
        .map_err(|_| Error::InvalidSpec(format!("{SHIM_SPEC_ENV} is not set")))?;
    serde_json::from_str(&text).map_err(|error| Error::InvalidSpec(error.to_string()))
}

/// Takes ownership of a descriptor `run` passed down, and keeps it from the container.
fn inherited_fd(variable: &str) -> Option<OwnedFd> {
    let fd: i32 = std::env::var(variable).ok()?.parse().ok()?;
    // SAFETY: `run` passed this descriptor open and names it only in this variable, which
    // is read once; nothing else in this process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC);
    Some(owned)
}

/// Becomes the subreaper that adopts PID 1 once its helper exits, and records the shim.
fn adopt_orphans(container: &mut Container) -> Result<(), Error> {
    prctl::set_child_subreaper(true).map_err(|errno| Error::System {
        action: "becoming a subreaper",
        source: errno.into(),
    })?;
    container.state.shim = ProcessId::of(std::process::id() as i32).ok();
    container.write_state()?;
    Ok(())
}

/// Records and reports a container that did not start, and cleans up after it. The state
/// is written before `run -d` learns of the failure, so that `ps` shows it at once.
fn fail(
    spec: &ShimSpec,
    container: Option<&mut Container>,
    notify: Option<std::fs::File>,
    error: Error,
) -> u8 {
    let code = error.exit_code();
    if let Some(container) = &container {
        let mut container = (*container).clone();
        container.state.phase = Phase::Exited;
        container.state.exit_code = Some(code);
        container.state.finished = Some(now());
        if let Err(error) = container.write_state() {
            warn!("recording the container's state: {error}");
        }
    }
    match notify {
        Some(mut notify) => {
            let message = error.to_string().replace('\n', " ");
            let _ = writeln!(notify, "{code} {message}");
        }
        None => eprintln!("layerfs: {error}"),
    }
    if container.is_some() {
        cleanup(spec);
    }
    code
}

fn supervise(
    spec: &ShimSpec,
    container: &mut Container,
    notify: Option<std::fs::File>,
    running: Running,
) -> u8 {
    container.state.phase = Phase::Running;
    container.state.init = Some(running.init);
    container.state.cgroup = Some(running.cgroup.clone());
    container.state.started = Some(now());
    if let Err(error) = container.write_state() {
        warn!("recording the container's state: {error}");
    }
    if let Some(mut notify) = notify {
        let _ = notify.write_all(b"ok\n");
    }
    let pid = Pid::from_raw(running.init.pid);
    if let Err(errno) = signals::forward_to(pid) {
        warn!("installing signal forwarding: {errno}");
    }

    let code = wait_for(pid);
    report_end(spec, container, &running, code);
    container.state.phase = Phase::Exited;
    container.state.exit_code = Some(code);
    container.state.finished = Some(now());
    if let Err(error) = running.cgroup.remove() {
        warn!("removing the container's cgroup: {error}");
    }
    finish(spec, container);
    code
}

/// Waits for PID 1, reaping anything else the subreaper inherits; returns its exit code.
fn wait_for(pid: Pid) -> u8 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(child, code)) if child == pid => return code as u8,
            Ok(WaitStatus::Signaled(child, signal, _)) if child == pid => {
                return 128 + signal as u8
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => {
                eprintln!("layerfs: waiting for the container: {errno}");
                return 125;
            }
        }
    }
}

/// Reports an OOM kill and, with `--stats`, the container's figures, before the cgroup
/// that counts them is removed.
fn report_end(spec: &ShimSpec, container: &mut Container, running: &Running, code: u8) {
    let name = container.display_name().to_owned();
    let oom_kills = running.cgroup.oom_kills().ok().flatten().unwrap_or(0);
    if oom_kills > 0 {
        container.state.oom_killed = true;
        let limit = spec.cgroup.resources.memory.map_or_else(
            || "its memory limit".to_owned(),
            |m| format!("--memory {}", human_bytes(m)),
        );
        eprintln!(
            "layerfs: container {name} ran out of memory: the kernel's OOM killer stopped \
             {oom_kills} of its processes ({limit}); exit code {code}"
        );
    }
    if spec.print_stats {
        match running.cgroup.stats() {
            Ok(stats) => eprintln!("layerfs: container {name}: {stats}"),
            Err(error) => eprintln!("layerfs: reading the container's figures: {error}"),
        }
    }
}

/// Records the final state and removes what only a running container needs.
fn finish(spec: &ShimSpec, container: &Container) {
    if !spec.remove {
        if let Err(error) = container.write_state() {
            warn!("recording the container's state: {error}");
        }
    }
    cleanup(spec);
}

/// Stops the FUSE daemon, if the container has one, and removes the work directory and the
/// mount point; with `--rm`, everything.
fn cleanup(spec: &ShimSpec) {
    if let RootfsSource::Fuse = spec.rootfs {
        if let Err(error) = mount::stop_fuse_daemon(&spec.dir, &spec.dir.join("rootfs")) {
            warn!("stopping the container's FUSE daemon: {error}");
        }
    }
    let result = if spec.remove {
        remove_tree(&spec.dir)
    } else {
        remove_tree(&spec.dir.join("work")).and_then(|()| remove_tree(&spec.dir.join("rootfs")))
    };
    if let Err(error) = result {
        warn!("cleaning up after the container: {error}");
    }
}
