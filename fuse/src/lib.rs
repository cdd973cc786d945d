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
use std::path::{Path, PathBuf};

use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};

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
    session: Session<OverlayFs>,
    target: PathBuf,
}

/// Mounts the merged view of `layers` on `target`. The mount is live when this returns, but
/// requests wait until [`Mount::run`] serves them.
pub fn mount(layers: &Layers, target: &Path, options: Options) -> Result<Mount> {
    let threads = options.threads;
    let filesystem = OverlayFs::new(layers, options)?;
    let mut mount_options = vec![
        MountOption::FSName("layerfs".to_owned()),
        MountOption::Subtype("layerfs".to_owned()),
        // The kernel checks permissions against the attributes, as for overlayfs, whose
        // own checks use the caller's credentials on the merged inode.
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
    ];
    if layers.upper.is_none() {
        mount_options.push(MountOption::RO);
    }
    let mut config = Config::default();
    config.mount_options = mount_options;
    // Containers run as many users; the kernel still applies default_permissions.
    config.acl = SessionACL::All;
    config.n_threads = Some(threads);
    config.clone_fd = true;
    let session = Session::new(filesystem, target, &config).map_err(|error| Error::Mount {
        target: target.to_path_buf(),
        error,
    })?;
    Ok(Mount {
        session,
        target: target.to_path_buf(),
    })
}

impl Mount {
    /// Returns a handle that unmounts the file system from another thread, which ends
    /// [`Mount::run`].
    pub fn unmounter(&mut self) -> SessionUnmounter {
        self.session.unmount_callable()
    }

    /// Serves requests until the file system is unmounted.
    pub fn run(self) -> Result<()> {
        self.session.run().map_err(|error| Error::Serve {
            target: self.target,
            error,
        })
    }
}
