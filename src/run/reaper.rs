//! `run --init`: layerfs's own init as the container's PID 1, in front of the command.
//!
//! A PID 1 must reap the orphans the kernel reparents to it, or they stay zombies, and it
//! receives only signals it has a handler for (pid_namespaces(7)). Many commands do neither.
//! Here PID 1 forks the command, forwards the signals a container is stopped or resized
//! with, reaps every child, and exits with the command's status once it exits.
//!
//! PID 1 keeps running layerfs code for the container's life, so it runs as root inside the
//! container with the capabilities of the command and no_new_privs, and is not dumpable. Its executable is read-only (see `binary`).

use std::convert::Infallible;
use std::os::fd::OwnedFd;

use nix::sys::prctl;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, setpgid, tcsetpgrp, ForkResult, Pid};

use rustix::thread::CapabilitySet;

use super::capabilities;
use super::init::become_user;
use super::spec::{InitSpec, Process};
use super::user::User;
use super::{console, exec, failure, Error, SysContext};

/// The signals PID 1 passes on to the command.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

pub fn run(
    process: &Process,
    spec: &InitSpec,
    identity: &User,
    keep: CapabilitySet,
    terminal: Option<OwnedFd>,
    errors: &OwnedFd,
) -> Result<Infallible, Error> {
    capabilities::restrict(keep).sys("setting capabilities")?;
    rustix::thread::set_no_new_privs(true).sys("setting no_new_privs")?;
    prctl::set_dumpable(false).sys("making PID 1 not dumpable")?;
    let has_terminal = terminal.is_some();
    if let Some(terminal) = terminal {
        console::make_controlling(terminal).sys("attaching the terminal")?;
    }

    // Signals stay pending until sigwait(2) takes them, so none is lost, and none is
    // delivered to the command before it has unblocked them itself.
    let mut watched = SigSet::empty();
    for signal in FORWARDED {
        watched.add(signal);
    }
    watched.add(Signal::SIGCHLD);
    let previous = watched
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .sys("blocking signals")?;

    // SAFETY: PID 1 is single-threaded (forked from the single-threaded shim).
    let child = match unsafe { fork() }.sys("forking the command")? {
        ForkResult::Child => {
            let error = start_command(process, spec, identity, keep, has_terminal, &previous);
            failure::exit_with(errors, &error)
        }
        ForkResult::Parent { child } => child,
    };
    close_inherited_descriptors();
    let code = supervise(child, &watched);
    std::process::exit(code.into())
}

/// In the child: leave PID 1's signal mask, take the terminal's foreground, become the
/// container's user, and execute the command. Returns only on failure.
fn start_command(
    process: &Process,
    spec: &InitSpec,
    identity: &User,
    keep: CapabilitySet,
    has_terminal: bool,
    mask: &SigSet,
) -> Error {
    if let Err(errno) = mask.thread_set_mask() {
        return Error::System {
            action: "restoring the signal mask",
            source: errno.into(),
        };
    }
    if has_terminal {
        if let Err(error) = take_foreground() {
            return error;
        }
    }
    match become_user(identity, keep) {
        Ok(()) => exec::exec(process, spec.foreign_platform.as_ref()),
        Err(error) => error,
    }
}

/// Makes the command's own process group the terminal's foreground group, so Ctrl-C reaches
/// it and PID 1 is not stopped for writing to the terminal.
fn take_foreground() -> Result<(), Error> {
    setpgid(Pid::from_raw(0), Pid::from_raw(0)).sys("creating a process group")?;
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring SIGTTOU installs no handler code.
    let old = unsafe { sigaction(Signal::SIGTTOU, &ignore) }.sys("ignoring SIGTTOU")?;
    tcsetpgrp(std::io::stdin(), getpid()).sys("taking the terminal's foreground")?;
    // SAFETY: restores the disposition saved above.
    unsafe { sigaction(Signal::SIGTTOU, &old) }.sys("restoring SIGTTOU")?;
    Ok(())
}

/// Closes every descriptor but stdin, stdout and stderr in PID 1 once the command is forked.
/// PID 1 never executes anything, so close-on-exec would not close them, and the shim waits
/// for its pipes (the error pipe, the start report of `run -d`) to close.
/// PID 1 ends with exit(3) from here on, so no owner of these descriptors is dropped later.
fn close_inherited_descriptors() {
    // SAFETY: close_range(2) takes plain integers; see above for the owners.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

/// Forwards signals to `child` and reaps every child until `child` exits; returns its exit
/// code, 128 + N if signal N killed it.
fn supervise(child: Pid, watched: &SigSet) -> u8 {
    loop {
        let signal = match watched.wait() {
            Ok(signal) => signal,
            Err(_) => continue,
        };
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, signal);
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reaps every exited child; returns `child`'s exit code if it was among them.
fn reap(child: Pid) -> Option<u8> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if pid == child => code = Some(status as u8),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                code = Some(128 + signal as u8)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}
