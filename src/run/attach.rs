//! `run -t`: the client side of the container's terminal. `run` receives the terminal's
//! primary side from PID 1, puts its own terminal in raw mode, and copies bytes both ways
//! until the container's side closes, passing window size changes along (SIGWINCH).

use std::io::{self, IoSliceMut, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    recvmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SocketFlags, SocketType,
};
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, tcsetwinsize, OptionalActions, Termios};

use super::console::WindowSize;
use super::signals;

/// The two ends of the socket the terminal travels over: `run` keeps the first, the shim
/// passes the second to PID 1.
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Waits for the terminal's primary side; `None` if the container failed before sending it.
pub fn receive_terminal(socket: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    loop {
        match recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            return Ok(fds.next());
        }
    }
    Ok(None)
}

/// Returns the size of the terminal `run` writes to, if it writes to one.
pub fn own_window_size() -> Option<WindowSize> {
    [rustix::stdio::stdout(), rustix::stdio::stdin()]
        .into_iter()
        .find_map(|fd| tcgetwinsize(fd).ok())
        .filter(|size| size.ws_row > 0 && size.ws_col > 0)
        .map(|size| WindowSize {
            rows: size.ws_row,
            cols: size.ws_col,
        })
}

/// Raw mode on `run`'s stdin while attached, restored when dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let stdin = rustix::stdio::stdin();
        let Ok(saved) = tcgetattr(stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if tcsetattr(stdin, OptionalActions::Now, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// Copies the terminal's output to stdout and, with `forward_stdin`, stdin to the terminal,
/// until every process in the container has closed the terminal (reads fail with EIO).
pub fn relay(terminal: &OwnedFd, forward_stdin: bool) -> io::Result<()> {
    let resized = signals::watch_window_size()?;
    let stdin = rustix::stdio::stdin();
    let mut stdin_open = forward_stdin;
    let mut stdout = io::stdout().lock();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(terminal, PollFlags::IN),
            PollFd::new(&resized, PollFlags::IN),
        ];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
        let terminal_ready = !fds[0].revents().is_empty();
        let resize_ready = !fds[1].revents().is_empty();
        let stdin_ready = stdin_open && !fds[2].revents().is_empty();

        if terminal_ready && !copy_output(terminal, &mut stdout, &mut buffer)? {
            return Ok(());
        }
        if resize_ready {
            signals::drain(&resized);
            if let Some(size) = own_window_size() {
                let _ = tcsetwinsize(terminal, size.to_winsize());
            }
        }
        if stdin_ready {
            stdin_open = copy_input(stdin, terminal, &mut buffer)?;
        }
    }
}

/// Returns false once the container's side is closed.
fn copy_output(terminal: &OwnedFd, stdout: &mut impl Write, buffer: &mut [u8]) -> io::Result<bool> {
    match rustix::io::read(terminal, &mut *buffer) {
        Ok(0) | Err(Errno::IO) => Ok(false),
        Ok(n) => {
            // A closed stdout must not stop the container; its output is dropped.
            let _ = stdout.write_all(&buffer[..n]).and_then(|()| stdout.flush());
            Ok(true)
        }
        Err(Errno::INTR) | Err(Errno::AGAIN) => Ok(true),
        Err(errno) => Err(errno.into()),
    }
}

/// Returns false once stdin is at its end, after sending the terminal's end-of-file
/// character (Ctrl-D) so that a reader in the container sees the end too.
fn copy_input(stdin: BorrowedFd<'_>, terminal: &OwnedFd, buffer: &mut [u8]) -> io::Result<bool> {
    match rustix::io::read(stdin, &mut *buffer) {
        Ok(0) => {
            write_all(terminal, &[4])?;
            Ok(false)
        }
        Ok(n) => {
            write_all(terminal, &buffer[..n])?;
            Ok(true)
        }
        Err(Errno::INTR) | Err(Errno::AGAIN) => Ok(true),
        Err(errno) => Err(errno.into()),
    }
}

fn write_all(fd: impl AsFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(&fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => continue,
            // The container closed its side; what it did not read is lost, as on any pty.
            Err(Errno::IO) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}
