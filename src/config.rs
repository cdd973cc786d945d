//! The configuration file, `/etc/layerfs/config.toml` unless `--config` or `LAYERFS_CONFIG`
//! names another:
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["http://127.0.0.1:5000"]     # tried in order before the registry itself
//! server = "https://registry-1.docker.io" # the registry's own endpoint (this is the default)
//!
//! [network]
//! connect_timeout_seconds = 15            # to establish a connection to a registry
//! read_timeout_seconds = 60               # longest silence in the middle of a response
//!
//! [snapshotter]
//! driver = "overlay"   # how `layerfs snapshotter` mounts snapshots: "overlay" (kernel
//!                      # overlayfs, the default), "fuse" (layerfs's FUSE driver), or "auto"
//!                      # (overlayfs if a test mount in the store works, else FUSE)
//!
//! [run]                                   # see layerfs::run::config
//! cgroup_version = "auto"
//! ```

use std::fs;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use layerfs_registry::{HostsConfig, Timeouts};
use serde::Deserialize;

use crate::snapshotter::MountDriver;

pub const DEFAULT_PATH: &str = "/etc/layerfs/config.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Mirrors and endpoints per registry host.
    #[serde(default)]
    pub registry: HostsConfig,
    /// Settings for `layerfs run`.
    #[serde(default)]
    pub run: crate::run::config::RunConfig,

    /// Timeouts for every registry.
    #[serde(default)]
    pub network: Network,

    /// Settings of `layerfs snapshotter`.
    #[serde(default)]
    pub snapshotter: SnapshotterConfig,
}

/// The `[network]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Seconds to establish a connection to a registry, TLS handshake included.
    pub connect_timeout_seconds: NonZeroU64,
    /// Seconds a registry may send nothing in the middle of a response before the pull fails.
    pub read_timeout_seconds: NonZeroU64,
}

impl Default for Network {
    fn default() -> Network {
        let defaults = Timeouts::default();
        let seconds = |duration: Duration| {
            NonZeroU64::new(duration.as_secs()).expect("default timeouts are whole seconds")
        };
        Network {
            connect_timeout_seconds: seconds(defaults.connect),
            read_timeout_seconds: seconds(defaults.read),
        }
    }
}

impl Network {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(self.connect_timeout_seconds.get()),
            read: Duration::from_secs(self.read_timeout_seconds.get()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotterConfig {
    /// How snapshots with parents are mounted.
    #[serde(default)]
    pub driver: MountDriver,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid config file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Config {
    /// Loads `path`, or the default file if `path` is `None`. Only the default file may be
    /// missing, in which case every setting has its default.
    pub fn load(path: Option<&Path>) -> Result<Config, Error> {
        let (path, required) = match path {
            Some(path) => (path, true),
            None => (Path::new(DEFAULT_PATH), false),
        };
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(error) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    error,
                })
            }
        };
        Config::parse(&text).map_err(|reason| Error::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        // toml's messages span several lines with a source excerpt; keep the first line.
        toml::from_str(text).map_err(|error| {
            let message = error.message().to_owned();
            match error.span() {
                Some(span) => {
                    let line = text[..span.start].lines().count().max(1);
                    format!("line {line}: {message}")
                }
                None => message,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_mirrors() {
        let text = r#"
            [registry."docker.io"]
            mirrors = ["http://127.0.0.1:5000"]
        "#;
        let config = Config::parse(text).unwrap();
        let endpoints = config.registry.endpoints("docker.io");
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[0].to_string(), "http://127.0.0.1:5000");
        assert_eq!(endpoints[1].to_string(), "https://registry-1.docker.io");
    }

    #[test]
    fn config_errors_name_the_line() {
        let text = "[registry.\"docker.io\"]\nmirrors = [\"ftp://x\"]\n";
        let error = Config::parse(text).unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(error.contains("scheme"), "{error}");

        let error = Config::parse("[unknown]\n").unwrap_err();
        assert!(error.contains("unknown"), "{error}");
    }

    #[test]
    fn config_sets_timeouts() {
        let text = "[network]\nread_timeout_seconds = 2\n";
        let timeouts = Config::parse(text).unwrap().network.timeouts();
        assert_eq!(timeouts.read, Duration::from_secs(2));
        assert_eq!(timeouts.connect, Timeouts::default().connect);
    }

    #[test]
    fn config_defaults_timeouts() {
        let timeouts = Config::parse("").unwrap().network.timeouts();
        assert_eq!(timeouts, Timeouts::default());
    }

    #[test]
    fn config_rejects_zero_timeout() {
        let error = Config::parse("[network]\nread_timeout_seconds = 0\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(error.contains("nonzero"), "{error}");
    }

    #[test]
    fn config_parses_snapshotter_driver() {
        assert_eq!(Config::default().snapshotter.driver, MountDriver::Overlay);
        let config = Config::parse("[snapshotter]\ndriver = \"auto\"\n").unwrap();
        assert_eq!(config.snapshotter.driver, MountDriver::Auto);
        let error = Config::parse("[snapshotter]\ndriver = \"btrfs\"\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
    }

    #[test]
    fn missing_default_config_is_empty_but_missing_explicit_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("config.toml");
        let error = Config::load(Some(&missing)).unwrap_err();
        assert!(error.to_string().contains("config.toml"), "{error}");
    }
}
