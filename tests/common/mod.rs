//! Shared test setup: a private store and config pointed at the fixture registry, the
//! `layerfs` binary, and tree snapshots for comparing file systems entry by entry.
//!
//! The registry comes from `fixtures/registry start DIR`, which prints
//! `LAYERFS_TEST_REGISTRY=127.0.0.1:PORT`; `fixtures/test` starts it and runs the suite.
//! `fake_registry` is a misbehaving registry for fault tests.

#![allow(dead_code)]

pub mod containerd;
pub mod containers;
pub mod fake_registry;
pub mod grpc;
pub mod image;
pub mod overlay;
pub mod push;
pub mod registry;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// `host:port` of the fixture registry.
pub fn registry() -> String {
    std::env::var("LAYERFS_TEST_REGISTRY").expect(
        "LAYERFS_TEST_REGISTRY is not set: run the suite with fixtures/test, or start a \
         registry with `fixtures/registry start DIR` and export the line it prints",
    )
}

/// `host:port` of the fixture registry that requires bearer tokens, from
/// `fixtures/registry start-token DIR`. It serves the same images as [`registry`].
pub fn token_registry() -> String {
    std::env::var("LAYERFS_TEST_TOKEN_REGISTRY").expect(
        "LAYERFS_TEST_TOKEN_REGISTRY is not set: run the suite with fixtures/test, or start a \
         registry with `fixtures/registry start-token DIR` and export the line it prints",
    )
}

/// The shared image artifacts (`LAYERFS_IMAGES`, default `../shared/images`).
pub fn images_dir() -> PathBuf {
    match std::env::var_os("LAYERFS_IMAGES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/images"),
    }
}

pub fn layerfs_binary() -> &'static str {
    env!("CARGO_BIN_EXE_layerfs")
}

/// A private store and a config that sends `docker.io` to the fixture registry, as mirror
/// and as server, so that no test reaches the internet.
pub struct Env {
    pub dir: TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("layerfs-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("store");
        let config = dir.path().join("config.toml");
        let registry = registry();
        let text = format!(
            "[registry.\"docker.io\"]\nmirrors = [\"http://{registry}\"]\nserver = \"http://{registry}\"\n"
        );
        std::fs::write(&config, text).unwrap();
        // Start from an empty store, so that "the store is unchanged" has a baseline.
        layerfs::store::Store::open(&root).unwrap();
        Env { dir, root, config }
    }

    /// Replaces the config file with `text`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    /// A `layerfs` command with this environment's store and config.
    pub fn command(&self) -> Command {
        let mut command = Command::new(layerfs_binary());
        command
            .env("LAYERFS_ROOT", &self.root)
            .env("LAYERFS_CONFIG", &self.config)
            .env_remove("LAYERFS_LOG");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs `layerfs ARGS`, asserts success, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "layerfs {args:?} failed with {}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `layerfs ARGS`, asserts failure, and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "layerfs {args:?} succeeded\nstdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// A scratch directory inside this environment.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every path in the store, with its type and size: equal before and after an operation
    /// that must leave the store unchanged. Lock files are excluded: they are created on
    /// first use and are empty.
    pub fn store_listing(&self) -> Vec<String> {
        tree::listing(&self.root, &["locks"])
    }
}

/// The reference of a fixture image by its Docker Hub name, served through the mirror.
pub fn hub(name: &str) -> String {
    name.to_owned()
}

/// The reference of a fixture image addressed at the registry directly.
pub fn direct(name: &str) -> String {
    format!("{}/{name}", registry())
}
