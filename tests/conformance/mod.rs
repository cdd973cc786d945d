//! Layer conformance cases, one or more for each kind of layer that build tools produce or
//! attackers craft. A case is its layers, archives written byte by byte, and the merged
//! tree they must produce or the error they must cause. Expected trees are written by hand
//! from the OCI image layer semantics.
//!
//! The cases are data so that every way of showing a layer stack can be checked against the
//! same expectations: `tests/conformance_overlay.rs` unpacks them with the library and
//! mounts kernel overlayfs; a FUSE test can iterate [`all`] the same way, mounting the
//! directories [`Workspace::stage`] returns.
//!
//! Hostile cases aim at a directory outside the layers, [`Workspace::outside`], which holds
//! probe files: after every case it must be exactly as it was.

#![allow(dead_code)]

pub mod expect;
pub mod tar;

pub mod compression;
mod hardlinks;
mod hostile;
mod kinds;
mod metadata;
mod parents;
mod types;
mod whiteouts;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use layerfs::unpack;
use layerfs_registry::Compression;
use tempfile::TempDir;

pub use expect::Tree;

/// One layer as a registry serves it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub compression: Compression,
}

impl Layer {
    /// Builds an uncompressed layer.
    pub fn tar(tar: &tar::Tar) -> Layer {
        Layer {
            blob: tar.finish(),
            compression: Compression::None,
        }
    }
}

/// What a case must produce.
#[derive(Debug, Clone)]
pub enum Expect {
    Tree(Tree),
    /// Unpacking fails with an error whose message contains this text.
    Error(&'static str),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    /// Bottom layer first.
    pub layers: Vec<Layer>,
    pub expect: Expect,
}

impl Case {
    pub fn tree(name: &'static str, layers: &[&tar::Tar], tree: Tree) -> Case {
        Case {
            name,
            layers: layers.iter().map(|tar| Layer::tar(tar)).collect(),
            expect: Expect::Tree(tree),
        }
    }

    pub fn error(name: &'static str, layers: &[&tar::Tar], message: &'static str) -> Case {
        Case {
            name,
            layers: layers.iter().map(|tar| Layer::tar(tar)).collect(),
            expect: Expect::Error(message),
        }
    }
}

/// Returns every case, grouped by the kind of layer it covers.
pub fn all(outside: &Path) -> Vec<(&'static str, Vec<Case>)> {
    vec![
        ("whiteouts", whiteouts::cases()),
        ("types", types::cases()),
        ("hardlinks", hardlinks::cases(outside)),
        ("parents", parents::cases()),
        ("metadata", metadata::cases()),
        ("kinds", kinds::cases()),
        ("compression", compression::cases()),
        ("hostile", hostile::cases(outside)),
    ]
}

/// Probe files that hostile cases aim at.
pub const PROBES: [&str; 2] = ["victim", "dir/secret"];

/// A directory for running cases: `outside/` with the probe files, and one directory per
/// case. From a layer directory `CASE/layers/N/`, `../../../outside` is the probe
/// directory.
pub struct Workspace {
    pub dir: TempDir,
    pub outside: PathBuf,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("layerfs-conformance-")
            .tempdir()
            .unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        for probe in PROBES {
            std::fs::write(outside.join(probe), format!("probe {probe}\n")).unwrap();
        }
        Workspace { dir, outside }
    }

    /// Returns the directory of one case: `layers/N` for each layer, bottom first, and `mnt`.
    pub fn case_dir(&self, case: &Case) -> PathBuf {
        self.dir.path().join(case.name)
    }

    /// Unpacks each layer of `case` with the library, bottom first, then resolves each
    /// against the layers below, as a pull does. Returns the layer directories, bottom
    /// first, or the first error's message.
    pub fn stage(&self, case: &Case) -> Result<Vec<PathBuf>, String> {
        let layers_dir = self.case_dir(case).join("layers");
        let mut dirs = Vec::new();
        let mut summaries = Vec::new();
        for (index, layer) in case.layers.iter().enumerate() {
            let dir = layers_dir.join(index.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let options = unpack::Options {
                base_layer: index == 0,
            };
            summaries.push(unpack_layer(layer, &dir, &options)?);
            dirs.push(dir);
        }
        for (index, summary) in summaries.iter().enumerate() {
            let lowers: Vec<PathBuf> = dirs[..index].iter().rev().cloned().collect();
            unpack::resolve_lowers(&dirs[index], &summary.lower, &lowers)
                .map_err(|error| error.to_string())?;
        }
        Ok(dirs)
    }
}

/// Decompresses and unpacks one layer, reading the stream to its end as a pull does.
fn unpack_layer(
    layer: &Layer,
    dir: &Path,
    options: &unpack::Options,
) -> Result<unpack::Summary, String> {
    let mut reader =
        unpack::decompress(layer.blob.as_slice(), layer.compression).map_err(|e| e.to_string())?;
    let summary = unpack::unpack(&mut reader, dir, options).map_err(|error| error.to_string())?;
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .map_err(|error: io::Error| format!("reading past the archive: {error}"))?;
    Ok(summary)
}
