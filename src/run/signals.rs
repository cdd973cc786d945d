//! Forwarding signals from `layerfs run` to the shim, and from the shim to the container's
//! PID 1; and SIGWINCH as a readable pipe for `run -t`.
//!
//! Signals a terminal generates (Ctrl-C, Ctrl-\) reach the container directly, because it
//! stays in the terminal's foreground process group, so that it can read from the terminal.
//! Those carry `si_code == SI_KERNEL` and are not forwarded again; only signals sent with
//! `kill(2)` are. As in Docker, a PID 1 that installed no handler for a signal ignores it
//! (see pid_namespaces(7)).

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use rustix::pipe::{pipe_with, PipeFlags};

/// The signals a container is usually stopped or reloaded with.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The process signals are forwarded to; 0 until it exists.
static TARGET: AtomicI32 = AtomicI32::new(0);

/// The write end of the SIGWINCH pipe; -1 until [`watch_window_size`] creates it.
static RESIZED: AtomicI32 = AtomicI32::new(-1);

/// Holds the [`FORWARDED`] signals pending until [`forward_to`] installed the handler that
/// forwards them, so that none sent while the target starts is lost or kills this process.
pub fn hold_forwarded() -> nix::Result<()> {
    forwarded_set().thread_block()
}

fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED {
        set.add(signal);
    }
    set
}

/// Forwards the [`FORWARDED`] signals to `target`, including those held pending.
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
    forwarded_set().thread_unblock()
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

/// A pipe that becomes readable each time this process receives SIGWINCH.
pub fn watch_window_size() -> io::Result<OwnedFd> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let old = RESIZED.swap(write.into_raw_fd(), Ordering::SeqCst);
    if old >= 0 {
        // SAFETY: `old` came from into_raw_fd above in an earlier call and is owned here.
        unsafe { libc::close(old) };
    }
    let action = SigAction::new(
        SigHandler::Handler(resized),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: `resized` only reads an atomic and calls write(2), both async-signal-safe.
    unsafe { sigaction(Signal::SIGWINCH, &action) }?;
    Ok(read)
}

extern "C" fn resized(_signal: libc::c_int) {
    let fd = RESIZED.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe already signals a resize.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Empties a non-blocking pipe.
pub fn drain(pipe: &OwnedFd) {
    let mut buffer = [0u8; 64];
    while matches!(rustix::io::read(pipe, &mut buffer), Ok(n) if n > 0) {}
}
