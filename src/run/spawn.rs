//! Starting a container, in the shim: its cgroup, its user namespace, its detached mounts,
//! and then PID 1.
//!
//! A process does not enter the PID namespace it unshares; its children do. So the shim
//! unshares the PID namespace and forks PID 1. With `--userns`, the PID namespace and every
//! namespace PID 1 creates must be owned by the user namespace, and joining it is for good,
//! so a helper is forked first: it joins the user namespace, unshares the PID namespace,
//! forks PID 1, reports PID 1's host PID and exits. The shim is a child subreaper
//! (PR_SET_CHILD_SUBREAPER), so PID 1 then becomes its child. Either way the shim moves PID
//! 1 into the container's cgroup, and keeps the host's other namespaces, so that it can
//! clean up after the container.
//!
//! ```text
//! shim ──fork──────────────────▶ PID 1 ──exec──▶ command
//! shim ──fork──▶ helper ──fork──▶ PID 1           (--userns)
//!   ▲             exits            │
//!   └────────── adopts ────────────┘
//! ```

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Pid};
use tracing::debug;

use super::cgroups::{Cgroup, Hierarchies};
use super::init::{self, InitFds};
use super::process_id::ProcessId;
use super::rootfs::kernel_fs::CgroupFs;
use super::rootfs::PreparedMounts;
use super::spec::ShimSpec;
use super::userns::UserNamespace;
use super::{failure, Error, SysContext};

/// The bytes the shim sends PID 1 over the `adopted` pipe: PID 1 is now its child, and PID 1
/// is now in the container's cgroup.
pub const ADOPTED: u8 = 1;
pub const IN_CGROUP: u8 = 2;

/// A started container, as the shim keeps it.
pub struct Running {
    pub init: ProcessId,
    pub cgroup: Cgroup,
    /// Held open for the shim's life, so that the pipe hangs up for PID 1 if the shim dies
    /// before PID 1 armed its parent-death signal.
    pub _adopted: OwnedFd,
}

/// Creates the cgroup and starts PID 1; returns once the command runs. On failure, nothing
/// is left: no cgroup, no process.
pub fn start(spec: &ShimSpec, console: Option<OwnedFd>) -> Result<Running, Error> {
    let hierarchies = Hierarchies::mounted()?;
    let cgroup = Cgroup::create(
        &hierarchies,
        spec.cgroup.version,
        &spec.cgroup.relative,
        &spec.cgroup.resources,
    )?;
    match spawn(spec, &cgroup, &hierarchies, console) {
        Ok((init, adopted)) => Ok(Running {
            init,
            cgroup,
            _adopted: adopted,
        }),
        Err(error) => {
            if let Err(cleanup) = cgroup.remove() {
                tracing::warn!("removing the container's cgroup: {cleanup}");
            }
            Err(error)
        }
    }
}

fn spawn(
    spec: &ShimSpec,
    cgroup: &Cgroup,
    hierarchies: &Hierarchies,
    console: Option<OwnedFd>,
) -> Result<(ProcessId, OwnedFd), Error> {
    let userns = spec
        .userns
        .as_ref()
        .map(UserNamespace::create)
        .transpose()?;
    let mounts = PreparedMounts::prepare(
        &spec.init,
        &spec.rootfs,
        &spec.dir,
        userns.as_ref(),
        spec.remove,
    )?;
    let cgroup_fs = cgroup_fs(cgroup, hierarchies);
    let (adopted_read, adopted_write) = pipe2(OFlag::O_CLOEXEC).sys("creating a pipe")?;
    let (errors_read, errors_write) = pipe2(OFlag::O_CLOEXEC).sys("creating a pipe")?;
    let fds = InitFds {
        mounts,
        console,
        adopted: adopted_read,
    };
    let pid = match userns {
        None => fork_init_directly(spec, &cgroup_fs, fds, errors_write, &adopted_write)?,
        Some(userns) => {
            let pid = fork_init_through_helper(
                spec,
                &cgroup_fs,
                &userns,
                fds,
                errors_write,
                &adopted_write,
            );
            match pid {
                Some(pid) => pid,
                None => return Err(failure::receive(errors_read).unwrap_or(Error::HelperFailed)),
            }
        }
    };
    let init = ProcessId::of(pid).sys("reading the container's PID 1")?;
    debug!(pid, "started the container's PID 1");
    // Moving a process between v1 cgroups waits for an RCU grace period (about 10 ms here),
    // so PID 1 builds its mounts meanwhile, and waits for this byte only before it unshares
    // its cgroup namespace. It forks nothing and executes nothing before.
    let signalled = cgroup.add(pid).map_err(Error::from).and_then(|()| {
        rustix::io::write(&adopted_write, &[IN_CGROUP])
            .sys("signalling PID 1")
            .map(drop)
    });
    if let Err(error) = signalled {
        // PID 1 may have failed and exited already, which is why the byte found no reader:
        // its report names the cause, where the broken pipe would not.
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(failure::receive(errors_read).unwrap_or(error));
    }
    if let Some(error) = failure::receive(errors_read) {
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(error);
    }
    Ok((init, adopted_write))
}

/// Forks PID 1 as the shim's own child, when there is no user namespace to join first. The
/// shim's later children would join the new PID namespace too, but it forks no other.
fn fork_init_directly(
    spec: &ShimSpec,
    cgroup_fs: &CgroupFs,
    fds: InitFds,
    errors: OwnedFd,
    adopted: &OwnedFd,
) -> Result<i32, Error> {
    // PID 1 is the shim's child from the start, so the byte can be there before it reads.
    rustix::io::write(adopted, &[ADOPTED]).sys("signalling PID 1")?;
    unshare(CloneFlags::CLONE_NEWPID).sys("creating the PID namespace")?;
    // SAFETY: the shim is single-threaded: it never starts threads or an async runtime.
    match unsafe { fork() }.sys("forking PID 1")? {
        ForkResult::Child => init::run(&spec.init, cgroup_fs, fds, errors),
        ForkResult::Parent { child } => Ok(child.as_raw()),
    }
}

/// Forks a helper that joins the user namespace, so that the PID namespace, and every
/// namespace PID 1 creates, is owned by it, then unshares the PID namespace and forks PID 1.
/// Returns PID 1's host PID, or `None` if the helper failed and reported why on the error
/// pipe.
fn fork_init_through_helper(
    spec: &ShimSpec,
    cgroup_fs: &CgroupFs,
    userns: &UserNamespace,
    fds: InitFds,
    errors: OwnedFd,
    adopted: &OwnedFd,
) -> Option<i32> {
    let (pid_read, pid_write) = pipe2(OFlag::O_CLOEXEC).ok()?;
    // SAFETY: the shim is single-threaded: it never starts threads or an async runtime.
    match unsafe { fork() }.ok()? {
        ForkResult::Child => {
            drop(pid_read);
            run_helper(spec, cgroup_fs, userns, fds, errors, pid_write)
        }
        ForkResult::Parent { child } => {
            drop((fds, errors, pid_write));
            let _ = waitpid(child, None);
            let pid = read_pid(pid_read)?;
            // PID 1 waits for this byte until its helper has exited and the shim adopted it.
            rustix::io::write(adopted, &[ADOPTED]).ok()?;
            Some(pid)
        }
    }
}

/// Runs the helper: joins the user namespace, unshares the PID namespace, forks PID 1 and
/// reports its PID. Never returns.
fn run_helper(
    spec: &ShimSpec,
    cgroup_fs: &CgroupFs,
    userns: &UserNamespace,
    fds: InitFds,
    errors: OwnedFd,
    pid_write: OwnedFd,
) -> ! {
    let forked = userns
        .enter()
        .sys("joining the user namespace")
        .and_then(|()| unshare(CloneFlags::CLONE_NEWPID).sys("creating the PID namespace"))
        // SAFETY: the helper is single-threaded, forked from the single-threaded shim.
        .and_then(|()| unsafe { fork() }.sys("forking PID 1"));
    match forked {
        Ok(ForkResult::Child) => {
            drop(pid_write);
            init::run(&spec.init, cgroup_fs, fds, errors)
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = rustix::io::write(&pid_write, &child.as_raw().to_le_bytes());
            // SAFETY: _exit ends the forked helper without running exit handlers.
            unsafe { libc::_exit(0) }
        }
        Err(error) => failure::exit_with(&errors, &error),
    }
}

fn read_pid(pipe: OwnedFd) -> Option<i32> {
    let mut bytes = [0u8; 4];
    std::fs::File::from(pipe).read_exact(&mut bytes).ok()?;
    Some(i32::from_le_bytes(bytes))
}

/// Describes `/sys/fs/cgroup` in the container: each v1 hierarchy the container has a
/// cgroup in, named as on the host, or the v2 tree.
fn cgroup_fs(cgroup: &Cgroup, hierarchies: &Hierarchies) -> CgroupFs {
    let Cgroup::V1(v1) = cgroup else {
        return CgroupFs::V2;
    };
    let mut mounts: Vec<(String, Vec<String>)> = Vec::new();
    for (controller, _) in &v1.dirs {
        let Some((_, mount)) = hierarchies.v1.iter().find(|(c, _)| c == controller) else {
            continue;
        };
        let name = Path::new(mount).file_name().map_or_else(
            || controller.name().to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        match mounts.iter_mut().find(|(known, _)| *known == name) {
            Some((_, controllers)) => controllers.push(controller.name().to_owned()),
            None => mounts.push((name, vec![controller.name().to_owned()])),
        }
    }
    CgroupFs::V1(mounts)
}
