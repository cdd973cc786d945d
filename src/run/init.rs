//! The container's init: `layerfs container-init`, started by `run` in new mount, UTS, IPC,
//! network and PID namespaces.
//!
//! A process does not enter the PID namespace it unshares, but its children do. So init
//! forks. The child is PID 1 of the new namespace: it sets up the root filesystem and
//! executes the command. The parent stays outside, forwards signals to the child, and exits
//! with its status.

use std::fs;

use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitStatus};
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{fork, pipe2, setgid, setgroups, sethostname, setuid, ForkResult, Gid, Pid, Uid};

use super::spec::{get_env, set_env, InitSpec, SPEC_ENV};
use super::{exec, net, rootfs, signals, user, Error};
use crate::fs_error::FsContext;

/// Runs the container; returns the exit code for `layerfs container-init`.
pub fn container_init() -> u8 {
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(error) => return report(error),
    };
    // The child watches this pipe to learn whether init died before the parent-death signal
    // was armed: getppid(2) cannot tell, since the parent is outside the child's namespace.
    let (alive_read, alive_write) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(errno) => return report(Error::Spawn(errno.into())),
    };
    // SAFETY: this process was just executed for this purpose and has started no threads (it
    // never starts an async runtime), so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(alive_write);
            let error = start_container(&spec, alive_read);
            std::process::exit(report(error).into())
        }
        Ok(ForkResult::Parent { child }) => {
            drop(alive_read);
            let code = supervise(child);
            drop(alive_write);
            code
        }
        Err(errno) => report(Error::Spawn(errno.into())),
    }
}

fn read_spec() -> Result<InitSpec, Error> {
    let text = std::env::var(SPEC_ENV)
        .map_err(|_| Error::InvalidSpec(format!("{SPEC_ENV} is not set")))?;
    serde_json::from_str(&text).map_err(|error| Error::InvalidSpec(error.to_string()))
}

/// Reports whether the write end of the pipe is closed, which happens when init exits.
fn parent_gone(alive: OwnedFd) -> bool {
    let mut fds = [PollFd::new(alive.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::ZERO).unwrap_or(0);
    ready > 0
}

fn report(error: Error) -> u8 {
    eprintln!("layerfs: {error}");
    error.exit_code()
}

/// Forwards signals to PID 1 and waits for it; its status becomes ours.
fn supervise(child: Pid) -> u8 {
    if let Err(errno) = signals::forward_to(child) {
        eprintln!("layerfs: installing signal forwarding: {errno}");
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code as u8,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as u8,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => {
                eprintln!("layerfs: waiting for the container: {errno}");
                return 125;
            }
        }
    }
}

/// Everything PID 1 does before it becomes the command. Returns only on failure.
fn start_container(spec: &InitSpec, alive: OwnedFd) -> Error {
    match prepare(spec, alive) {
        Ok(process) => exec::exec(&process),
        Err(error) => error,
    }
}

fn prepare(spec: &InitSpec, alive: OwnedFd) -> Result<super::spec::Process, Error> {
    // If init dies, so does the container.
    prctl::set_pdeathsig(Signal::SIGKILL).at("setting the parent-death signal of", "PID 1")?;
    if parent_gone(alive) {
        return Err(Error::InvalidSpec(
            "init exited before the container started".to_owned(),
        ));
    }
    umask(Mode::from_bits_truncate(0o022));
    rootfs::prepare(spec)?;
    sethostname(&spec.hostname).at("setting hostname", &spec.hostname)?;
    net::bring_up_loopback().at("bringing up", "lo")?;

    let mut process = spec.process.clone();
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let identity = user::resolve(process.user.as_deref(), &passwd, &group)?;
    if get_env(&process.env, "HOME").is_none() {
        set_env(&mut process.env, &format!("HOME={}", identity.home));
    }
    fs::create_dir_all(&process.cwd).at("creating working directory", &process.cwd)?;
    nix::unistd::chdir(process.cwd.as_str()).at("changing directory to", &process.cwd)?;

    let groups: Vec<Gid> = identity
        .groups
        .iter()
        .map(|&gid| Gid::from_raw(gid))
        .collect();
    setgroups(&groups).at("setting supplementary groups for", "PID 1")?;
    setgid(Gid::from_raw(identity.gid)).at("setting group ID for", "PID 1")?;
    setuid(Uid::from_raw(identity.uid)).at("setting user ID for", "PID 1")?;
    Ok(process)
}
