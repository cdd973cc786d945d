//! Forwarding signals from `layerfs run` to the container's init, and from there to the
//! container's PID 1.
//!
//! Signals a terminal generates (Ctrl-C, Ctrl-\) reach the container directly, because it
//! stays in the terminal's foreground process group, so that it can read from the terminal.
//! Those carry `si_code == SI_KERNEL` and are not forwarded again; only signals sent with
//! `kill(2)` are. As in Docker, a PID 1 that installed no handler for a signal ignores it
//! (see pid_namespaces(7)).

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

const FORWARDED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The process signals are forwarded to; 0 until it exists.
static TARGET: AtomicI32 = AtomicI32::new(0);

/// Forwards the signals a container is usually stopped or reloaded with to `target`.
pub fn forward_to(target: Pid) -> nix::Result<()> {
    TARGET.store(target.as_raw(), Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::SigAction(forward),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: `forward` only reads an atomic and calls kill(2), both async-signal-safe.
        unsafe { sigaction(signal, &action)? };
    }
    Ok(())
}

extern "C" fn forward(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo_t to a handler installed with SA_SIGINFO.
    let code = unsafe { (*info).si_code };
    if code == libc::SI_KERNEL {
        return;
    }
    let target = TARGET.load(Ordering::SeqCst);
    if target > 0 {
        // SAFETY: kill(2) is async-signal-safe and takes plain integers.
        unsafe { libc::kill(target, signal) };
    }
}
