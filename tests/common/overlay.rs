//! Mounting layer directories directly, with the kernel's overlayfs or with layerfs's FUSE
//! file system served in this process, for tests that need to choose the upper directory.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use layerfs::mount::{Overlay, UpperDirs};
use nix::mount::{umount2, MntFlags};
use serde_json::Value;

use super::Env;

/// Returns the layer directories of a pulled image, topmost first.
pub fn layer_dirs(env: &Env, reference: &str) -> Vec<PathBuf> {
    let image: Value = serde_json::from_str(&env.ok(&["inspect", reference])).unwrap();
    let layers = image["layers"].as_array().unwrap();
    layers
        .iter()
        .rev()
        .map(|layer| {
            let chain_id = layer["chain_id"].as_str().unwrap();
            let hex = chain_id.strip_prefix("sha256:").unwrap();
            env.root.join("layers/sha256").join(hex).join("diff")
        })
        .collect()
}

/// A kernel overlay mount, unmounted on drop.
pub struct KernelMount {
    pub target: PathBuf,
}

impl KernelMount {
    pub fn new(lowers: &[PathBuf], upper: Option<(&Path, &Path)>, target: &Path) -> KernelMount {
        std::fs::create_dir_all(target).unwrap();
        let mut lowers = lowers.to_vec();
        if lowers.len() == 1 && upper.is_none() {
            let empty = target.with_extension("empty");
            std::fs::create_dir_all(&empty).unwrap();
            lowers.push(empty);
        }
        let overlay = Overlay {
            lowers,
            upper: upper.map(|(upper, work)| UpperDirs {
                upper: upper.to_path_buf(),
                work: work.to_path_buf(),
            }),
        };
        overlay.mount(target).unwrap();
        KernelMount {
            target: target.to_path_buf(),
        }
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
    }
}

/// A FUSE mount served by a thread of this process, unmounted on drop.
pub struct FuseMount {
    pub target: PathBuf,
    server: Option<JoinHandle<()>>,
}

impl FuseMount {
    pub fn new(lowers: &[PathBuf], upper: Option<(&Path, &Path)>, target: &Path) -> FuseMount {
        std::fs::create_dir_all(target).unwrap();
        let layers = layerfs_fuse::Layers {
            lowers: lowers.to_vec(),
            upper: upper.map(|(upper, work)| layerfs_fuse::UpperDirs {
                upper: upper.to_path_buf(),
                work: work.to_path_buf(),
            }),
        };
        let mount = layerfs_fuse::mount(&layers, target, layerfs_fuse::Options::default()).unwrap();
        let server = std::thread::spawn(move || mount.run().unwrap());
        FuseMount {
            target: target.to_path_buf(),
            server: Some(server),
        }
    }
}

impl Drop for FuseMount {
    /// Unmounts lazily. Between fork and exec, a child of another test thread has copies of
    /// this thread's descriptors on the mount, and a plain unmount then fails with EBUSY; the
    /// server thread would never end. A lazy unmount ends the session once the last
    /// reference goes.
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}
