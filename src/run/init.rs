//! The container's PID 1, forked by the shim. It waits until the shim has adopted it, enters
//! its remaining namespaces and builds the root file system. Then it takes the container's
//! identity and limits, and executes the command (or, with `--init`, forks it and reaps).
//!
//! Order matters here. The shim moves PID 1 into the container's cgroup while PID 1 builds
//! its mounts, and PID 1 unshares its cgroup namespace only once that is done, so the
//! namespace's root is the container's cgroup. The bounding set is reduced while PID 1 still
//! has CAP_SETPCAP, and no_new_privs is set last, just before exec.

use std::convert::Infallible;
use std::fs;
use std::os::fd::OwnedFd;

use nix::sched::{unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgid, setgroups, sethostname, setuid, Gid, Uid};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use rustix::thread::CapabilitySet;

use super::capabilities;
use super::rootfs::kernel_fs::CgroupFs;
use super::rootfs::{self, PreparedMounts};
use super::spawn::{ADOPTED, IN_CGROUP};
use super::spec::{get_env, set_env, InitSpec, Network, Process};
use super::user::{self, User};
use super::{console, exec, failure, net, reaper, rlimits, Error, SysContext};
use crate::fs_error::FsContext;

/// The descriptors PID 1 inherits from the shim besides its spec.
pub struct InitFds {
    pub mounts: PreparedMounts,
    /// The socket to send the terminal over, with `-t`.
    pub console: Option<OwnedFd>,
    /// Becomes readable with one byte once the shim is PID 1's parent; hangs up when the
    /// shim exits.
    pub adopted: OwnedFd,
}

/// Runs PID 1 to the exec of the command, reporting a failure to `errors`, which exec
/// closes. Never returns.
pub fn run(spec: &InitSpec, cgroup_fs: &CgroupFs, fds: InitFds, errors: OwnedFd) -> ! {
    let error = match start(spec, cgroup_fs, fds, &errors) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    failure::exit_with(&errors, &error)
}

fn start(
    spec: &InitSpec,
    cgroup_fs: &CgroupFs,
    fds: InitFds,
    errors: &OwnedFd,
) -> Result<Infallible, Error> {
    // The shim holds signals pending for itself; the container starts with none blocked.
    SigSet::empty()
        .thread_set_mask()
        .sys("clearing the signal mask")?;
    wait_for_adoption(&fds.adopted)?;
    umask(Mode::from_bits_truncate(0o022));
    let mut namespaces =
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if spec.network == Network::None {
        namespaces |= CloneFlags::CLONE_NEWNET;
    }
    rootfs::enter_mount_point(&fds.mounts)?;
    unshare(namespaces).sys("creating the container's namespaces")?;

    let root = rootfs::build(spec, fds.mounts)?;
    wait_for_byte(&fds.adopted, IN_CGROUP)?;
    unshare(CloneFlags::CLONE_NEWCGROUP).sys("creating the cgroup namespace")?;
    let terminal = rootfs::finish(spec, root, cgroup_fs, fds.console.as_ref())?;
    sethostname(&spec.hostname).at("setting hostname", &spec.hostname)?;
    if spec.network == Network::None {
        net::bring_up_loopback().at("bringing up", "lo")?;
    }
    let (process, identity) = resolve_identity(spec)?;
    rlimits::apply(&spec.ulimits).sys("setting resource limits")?;
    let keep = CapabilitySet::from_bits_retain(spec.capabilities);
    capabilities::limit_bounding_set(keep).sys("limiting the capability bounding set")?;

    if spec.init {
        return reaper::run(&process, spec, &identity, keep, terminal, errors);
    }
    if let Some(terminal) = terminal {
        console::make_controlling(terminal).sys("attaching the terminal")?;
    }
    become_user(&identity, keep)?;
    Err(exec::exec(&process, spec.foreign_platform.as_ref()))
}

/// Waits for the shim's byte, then arms the parent-death signal: only now is the shim PID
/// 1's parent (the helper that forked it has exited), and if the shim died in between, the
/// pipe has hung up.
fn wait_for_adoption(adopted: &OwnedFd) -> Result<(), Error> {
    wait_for_byte(adopted, ADOPTED)?;
    prctl::set_pdeathsig(Signal::SIGKILL).sys("setting the parent-death signal")?;
    let mut fds = [PollFd::new(adopted, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let _ = poll(&mut fds, Some(&zero));
    if fds[0].revents().contains(PollFlags::HUP) {
        return Err(Error::ShimGone);
    }
    Ok(())
}

/// Reads one byte from the shim and checks it is `expected`; the pipe's end means the shim
/// is gone.
fn wait_for_byte(pipe: &OwnedFd, expected: u8) -> Result<(), Error> {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(pipe, &mut byte) {
            Ok(1) if byte[0] == expected => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            _ => return Err(Error::ShimGone),
        }
    }
}

/// Resolves `USER[:GROUP]` in the container's own files, sets `HOME` if the image did not,
/// and enters the working directory (which `rootfs::build` created if missing).
fn resolve_identity(spec: &InitSpec) -> Result<(Process, User), Error> {
    let mut process = spec.process.clone();
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let identity = user::resolve(process.user.as_deref(), &passwd, &group)?;
    if get_env(&process.env, "HOME").is_none() {
        set_env(&mut process.env, &format!("HOME={}", identity.home));
    }
    nix::unistd::chdir(process.cwd.as_str()).at("changing directory to", &process.cwd)?;
    Ok((process, identity))
}

/// Takes the container user's identity and the capabilities it keeps, and sets
/// no_new_privs, so that no setuid binary or file capability can raise them again.
pub fn become_user(identity: &User, keep: CapabilitySet) -> Result<(), Error> {
    let groups: Vec<Gid> = identity
        .groups
        .iter()
        .map(|&gid| Gid::from_raw(gid))
        .collect();
    setgroups(&groups).sys("setting supplementary groups")?;
    setgid(Gid::from_raw(identity.gid)).sys("setting the group ID")?;
    setuid(Uid::from_raw(identity.uid)).sys("setting the user ID")?;
    capabilities::restrict(keep).sys("setting capabilities")?;
    rustix::thread::set_no_new_privs(true).sys("setting no_new_privs")?;
    Ok(())
}
