//! The container's pseudo-terminal (`-t`), made inside the container.
//!
//! PID 1 opens the terminal in the container's own devpts instance, so that `tty` inside
//! names a device the container can see. It binds the secondary side over `/dev/console`,
//! as Docker does, and sends the primary side to `layerfs run` over a Unix socket
//! (SCM_RIGHTS). `run` copies between it and its own stdin and stdout.

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, setsid};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{open_tree, OpenTreeFlags};
use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::{ioctl_tiocgptpeer, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};
use serde::{Deserialize, Serialize};

use super::mount_api::attach;
use super::Error;
use crate::fs_error::{FsContext, FsError};

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

impl WindowSize {
    /// The size when `run`'s own output is not a terminal.
    pub const DEFAULT: WindowSize = WindowSize { rows: 24, cols: 80 };

    pub fn to_winsize(self) -> Winsize {
        Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// Opens a terminal in `root`'s devpts, sends its primary side over `socket`, and returns
/// the secondary side.
pub fn create(root: impl AsFd, size: WindowSize, socket: &OwnedFd) -> Result<OwnedFd, Error> {
    let root = root.as_fd();
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let ptmx = rustix::fs::openat2(root, "dev/pts/ptmx", flags, Mode::empty(), resolve)
        .map_err(|errno| FsError::new("opening", "/dev/pts/ptmx", errno.into()))?;
    let fail =
        |action, errno: rustix::io::Errno| FsError::new(action, "/dev/pts/ptmx", errno.into());
    unlockpt(&ptmx).map_err(|errno| fail("unlocking a terminal from", errno))?;
    let secondary = ioctl_tiocgptpeer(&ptmx, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .map_err(|errno| fail("opening the secondary side of a terminal from", errno))?;
    tcsetwinsize(&ptmx, size.to_winsize())
        .map_err(|errno| fail("sizing a terminal from", errno))?;

    let console = super::rootfs::console_target(root)?;
    let clone_flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    let bind = open_tree(&secondary, "", clone_flags)
        .map_err(|errno| FsError::new("cloning the terminal for", "/dev/console", errno.into()))?;
    attach(&bind, &console).at("mounting", "/dev/console")?;

    send_fd(socket, &ptmx).at("sending the terminal to", "layerfs run")?;
    Ok(secondary)
}

fn send_fd(socket: &OwnedFd, fd: &OwnedFd) -> std::io::Result<()> {
    let fds = [fd.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        socket,
        &[IoSlice::new(b"t")],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Makes `terminal` the controlling terminal of a new session led by the caller, and its
/// stdin, stdout and stderr.
pub fn make_controlling(terminal: OwnedFd) -> std::io::Result<()> {
    setsid()?;
    rustix::process::ioctl_tiocsctty(&terminal)?;
    dup2_stdin(&terminal)?;
    dup2_stdout(&terminal)?;
    dup2_stderr(&terminal)?;
    Ok(())
}
