//! layerfs's FUSE file system: the merged view of a stack of layer directories in overlayfs
//! form, read-only or with a writable upper layer. It behaves as the kernel's overlayfs does
//! with the same directories, as Linux 6.x has it with `redirect_dir`, `index`, `metacopy`
//! and `xino` off (Debian's build).
//!
//! The modules follow a request's path: `filesystem` receives it from fuser; `fs` holds the
//! state and resolves nodes; `lookup` and `readdir` merge layers (`format` knows whiteouts
//! and opaque directories); `open` and `dir` serve reads, passed through to the real file
//! when the kernel supports it; `copy_up`, `create`, `remove`, `rename`, `setattr` and
//! `xattr` change the upper layer; `inode` numbers and tracks what the kernel knows.

// NOTE: POSIX ACLs are kept as xattrs but not enforced: the kernel checks only the mode
// bits (FUSE_POSIX_ACL is not negotiated), where overlayfs enforces ACLs of the real files.

mod attr;
mod copy_up;
mod create;
mod device;
mod dir;
mod filesystem;
mod format;
mod fs;
mod handles;
mod inode;
mod layers;
mod lookup;
mod open;
mod readdir;
mod remove;
mod rename;
mod reply;
mod setattr;
mod xattr;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use fuser::{Config, Session, SessionACL};

pub use fs::{OpenMode, Options};
pub use layers::{Layers, UpperDirs};

use fs::OverlayFs;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening layer directory {path}: {error}")]
    Open { path: PathBuf, error: io::Error },

    #[error("no lower layers to mount")]
    NoLowerLayers,

    #[error("mounting FUSE file system on {target}: {error}")]
    Mount { target: PathBuf, error: io::Error },

    #[error("serving FUSE file system on {target}: {error}")]
    Serve { target: PathBuf, error: io::Error },
}

/// A mounted file system, ready to serve requests.
pub struct Mount {
    /// Taken by [`Mount::run`].
    session: Option<Session<OverlayFs>>,
    /// The mount's `/dev/fuse`, of which the session has a copy. Polling it shows whether
    /// the connection is still live once the session has ended.
    device: OwnedFd,
    target: PathBuf,
}

/// Mounts the merged view of `layers` on `target`. The mount is live when this returns, but
/// requests wait until [`Mount::run`] serves them.
pub fn mount(layers: &Layers, target: &Path, options: Options) -> Result<Mount> {
    let threads = options.threads;
    let filesystem = OverlayFs::new(layers, options)?;
    let mount_error = |error| Error::Mount {
        target: target.to_path_buf(),
        error,
    };
    let device = device::mount_device(target, layers.upper.is_none()).map_err(mount_error)?;
    // From here on, an error drops `mount`, which unmounts the target again.
    let mut mount = Mount {
        session: None,
        device,
        target: target.to_path_buf(),
    };
    let served = mount.device.try_clone().map_err(mount_error)?;
    let mut config = Config::default();
    // Containers run as many users; the kernel still applies default_permissions.
    config.acl = SessionACL::All;
    config.n_threads = Some(threads);
    config.clone_fd = true;
    let session = Session::from_fd(filesystem, served, config.acl, config).map_err(mount_error)?;
    mount.session = Some(session);
    Ok(mount)
}

impl Mount {
    /// Serves requests until the file system is unmounted.
    pub fn run(mut self) -> Result<()> {
        let session = self.session.take().expect("a mount is run once");
        session.run().map_err(|error| Error::Serve {
            target: self.target.clone(),
            error,
        })
    }
}

impl Drop for Mount {
    /// Unmounts the file system if its connection is still live: when it was never served,
    /// or serving failed. After an unmount by anyone else the target is left alone, because
    /// it may contain a newer mount by then.
    fn drop(&mut self) {
        drop(self.session.take());
        device::unmount_if_connected(&self.device, &self.target);
    }
}
