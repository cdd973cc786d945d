//! What `run` hands to the shim, and the shim to the container's PID 1: the container's
//! layers, cgroup, namespaces, mounts and the process to start, resolved from the image
//! config and the command line. The resolution is pure; it is tested here without
//! namespaces.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::cgroups::{Resources, Version};
use super::console::WindowSize;
use super::rlimits::Ulimit;
use super::rootfs::volumes::{Tmpfs, Volume};
use super::userns::IdMap;
use crate::image::ImageConfig;
use crate::mount::Overlay;
use layerfs_registry::Platform;

/// Used when neither the image nor the command line sets `PATH`, as Docker does.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The shim reads its [`ShimSpec`] from this environment variable, as JSON.
pub const SHIM_SPEC_ENV: &str = "_LAYERFS_SHIM_SPEC";

/// Everything the shim needs to start and supervise one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimSpec {
    pub id: String,
    /// `containers/<id>/` in the store.
    pub dir: PathBuf,
    pub rootfs: RootfsSource,
    pub cgroup: CgroupSpec,
    /// Set with `--userns`: the host range the container's IDs map to.
    pub userns: Option<IdMap>,
    /// Detached: output goes to the log, and `run` returns once the container started.
    pub detach: bool,
    /// Remove the container's directory when it exits.
    pub remove: bool,
    /// Print the cgroup's figures when the container exits.
    pub print_stats: bool,
    pub init: InitSpec,
}

/// What the container's root file system is made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsSource {
    /// Kernel overlayfs over these directories, mounted by the shim.
    Overlay(Overlay),
    /// layerfs's FUSE file system, which a daemon started by `run` serves on
    /// `containers/<id>/rootfs` until the shim stops it.
    Fuse,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupSpec {
    pub version: Version,
    /// The container's cgroup relative to each hierarchy's root: `<parent>/<id>`.
    pub relative: PathBuf,
    pub resources: Resources,
}

/// What PID 1 sets up before it becomes the command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    pub hostname: String,
    pub process: Process,
    pub network: Network,
    /// Mount the root file system read-only once the mount points exist.
    pub read_only: bool,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<Tmpfs>,
    /// Run layerfs's own init as PID 1, with the command as its child.
    pub init: bool,
    /// A pseudo-terminal of this size for the command's stdin, stdout and stderr.
    pub terminal: Option<WindowSize>,
    pub ulimits: Vec<Ulimit>,
    /// The capabilities the command keeps, as a `CAP_*` bit set.
    pub capabilities: u64,
    /// The image's platform when the host's does not match it. The kernel can then execute the
    /// command only through binfmt_misc emulation, and the error names both platforms when
    /// it cannot.
    pub foreign_platform: Option<Platform>,
}

/// `--net`: `none`, a network namespace with only loopback (the default), or `host`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    None,
    Host,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        match text {
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            other => Err(format!(
                "unsupported network {other:?}: layerfs offers none (loopback only) and host"
            )),
        }
    }
}

/// The process to start in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub args: Vec<String>,
    /// `KEY=VALUE` strings, in order.
    pub env: Vec<String>,
    pub cwd: String,
    /// `USER[:GROUP]` by name or number, resolved inside the container; `None` means root.
    pub user: Option<String>,
}

/// What the command line changes in the image's settings.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces the image's `Cmd` when not empty.
    pub command: Vec<String>,
    /// Replaces the image's `Entrypoint`; an empty string clears it.
    pub entrypoint: Option<String>,
    /// In order: `KEY=VALUE` adds to or replaces the image's `Env`, and a bare `KEY` removes
    /// KEY, as Docker does with `-e KEY` when KEY is not set where `docker` runs.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// Why the command line and the image config do not make a process.
#[derive(Debug, thiserror::Error)]
pub enum InvalidProcess {
    #[error("no command to run: the image sets no Entrypoint or Cmd, so give one after the image")]
    NoCommand,

    #[error(
        "no command to run: --entrypoint \"\" clears the image's Entrypoint and Cmd, so give \
         the command after the image"
    )]
    EntrypointCleared,

    #[error("invalid working directory {0:?}: it must be an absolute path")]
    RelativeWorkdir(String),

    #[error("invalid environment variable {0:?}: the name before = is empty")]
    EmptyEnvName(String),
}

impl Overrides {
    /// Checks what the command line sets on its own, before an image is pulled for it.
    pub fn check(&self) -> Result<(), InvalidProcess> {
        // Whatever the image sets, nothing is left to run, and Docker fails here too.
        if self.entrypoint.as_deref() == Some("") && self.command.is_empty() {
            return Err(InvalidProcess::EntrypointCleared);
        }
        // As in Docker. The image's WorkingDir is not checked: `docker build` stores WORKDIR
        // as an absolute path, and a relative one is taken from / inside the container.
        if let Some(workdir) = self.workdir() {
            if !workdir.starts_with('/') {
                return Err(InvalidProcess::RelativeWorkdir(workdir.to_owned()));
            }
        }
        if let Some(entry) = self.env.iter().find(|entry| env_name(entry).is_empty()) {
            return Err(InvalidProcess::EmptyEnvName(entry.clone()));
        }
        Ok(())
    }

    /// Returns the `-w` directory. An empty one means the image's, as in Docker.
    fn workdir(&self) -> Option<&str> {
        self.workdir.as_deref().filter(|dir| !dir.is_empty())
    }
}

/// Combines the image config and the command line as Docker does: the entrypoint (image's or
/// `--entrypoint`) followed by the command line's arguments, or else by the image's `Cmd`.
pub fn resolve_process(
    config: &ImageConfig,
    overrides: &Overrides,
    hostname: &str,
) -> Result<Process, InvalidProcess> {
    overrides.check()?;
    let entrypoint = match &overrides.entrypoint {
        Some(text) if text.is_empty() => Vec::new(),
        Some(text) => vec![text.clone()],
        None => config.entrypoint(),
    };
    // `--entrypoint` also drops the image's Cmd, as in Docker.
    let command = if !overrides.command.is_empty() {
        overrides.command.clone()
    } else if overrides.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(command).collect();
    if args.is_empty() {
        return Err(InvalidProcess::NoCommand);
    }

    let mut env = config.env();
    for entry in &overrides.env {
        if entry.contains('=') {
            set_env(&mut env, entry);
        } else {
            env.retain(|existing| env_name(existing) != entry);
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    set_env(&mut env, &format!("HOSTNAME={hostname}"));

    let cwd = overrides
        .workdir()
        .map(str::to_owned)
        .or_else(|| config.working_dir())
        .unwrap_or_else(|| "/".to_owned());
    let user = overrides.user.clone().or_else(|| config.user());
    Ok(Process {
        args,
        env,
        cwd,
        user,
    })
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value of KEY in place.
pub fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = env_name(entry);
    let existing = env.iter_mut().find(|e| env_name(e) == key);
    match existing {
        Some(slot) => *slot = entry.to_owned(),
        None => env.push(entry.to_owned()),
    }
}

/// Returns the KEY of `KEY=VALUE`, or the whole of a bare `KEY`.
fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

/// Looks up KEY in `KEY=VALUE` strings.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .filter_map(|e| e.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use layerfs_registry::Digest;

    fn config(process: &str) -> ImageConfig {
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{{process}}},
            "rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        ImageConfig::parse(json.as_bytes(), &Digest::of(json.as_bytes())).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// Image process fields, command line, `--entrypoint`, expected arguments.
    type ArgsCase<'a> = (&'a str, Vec<String>, Option<&'a str>, &'a [&'a str]);

    #[test]
    fn args_resolution_table() {
        let image = r#""Entrypoint":["/entry"],"Cmd":["default"]"#;
        let cases: &[ArgsCase] = &[
            (image, vec![], None, &["/entry", "default"]),
            (image, strings(&["x", "y"]), None, &["/entry", "x", "y"]),
            (image, vec![], Some("/other"), &["/other"]),
            (image, strings(&["x"]), Some(""), &["x"]),
            (r#""Cmd":["/bin/sh"]"#, vec![], None, &["/bin/sh"]),
            (
                r#""Cmd":["/bin/sh"]"#,
                strings(&["echo", "hi"]),
                None,
                &["echo", "hi"],
            ),
        ];
        for (image, command, entrypoint, expected) in cases {
            let overrides = Overrides {
                command: command.clone(),
                entrypoint: entrypoint.map(str::to_owned),
                ..Overrides::default()
            };
            let process = resolve_process(&config(image), &overrides, "host").unwrap();
            assert_eq!(process.args, *expected, "image {image} command {command:?}");
        }
    }

    #[test]
    fn workdir_check_table() {
        let cases = [
            (None, true),
            (Some("/srv/app"), true),
            (Some(""), true),
            (Some("srv"), false),
            (Some("./srv"), false),
            (Some("~/srv"), false),
        ];
        for (workdir, valid) in cases {
            let overrides = Overrides {
                workdir: workdir.map(str::to_owned),
                ..Overrides::default()
            };
            assert_eq!(overrides.check().is_ok(), valid, "-w {workdir:?}");
        }
    }

    #[test]
    fn env_name_check_table() {
        let cases = [
            ("A=1", true),
            ("A=", true),
            ("A", true),
            ("A==", true),
            ("=1", false),
            ("=", false),
            ("", false),
        ];
        for (entry, valid) in cases {
            let overrides = Overrides {
                env: strings(&["OK=1", entry]),
                ..Overrides::default()
            };
            assert_eq!(overrides.check().is_ok(), valid, "-e {entry:?}");
        }
    }

    #[test]
    fn bare_env_name_removes_the_images() {
        let image = r#""Cmd":["x"],"Env":["PATH=/bin","A=1","B=2"]"#;
        let overrides = Overrides {
            env: strings(&["A", "C", "B=3"]),
            ..Overrides::default()
        };
        let process = resolve_process(&config(image), &overrides, "h").unwrap();
        assert_eq!(process.env, ["PATH=/bin", "B=3", "HOSTNAME=h"]);
    }

    #[test]
    fn empty_workdir_keeps_the_images() {
        let overrides = Overrides {
            workdir: Some(String::new()),
            ..Overrides::default()
        };
        let image = r#""Cmd":["x"],"WorkingDir":"/srv""#;
        let process = resolve_process(&config(image), &overrides, "h").unwrap();
        assert_eq!(process.cwd, "/srv");
    }

    #[test]
    fn no_command_is_an_error() {
        let result = resolve_process(&config(""), &Overrides::default(), "host");
        assert!(
            matches!(result, Err(InvalidProcess::NoCommand)),
            "{result:?}"
        );
    }

    #[test]
    fn cleared_entrypoint_needs_a_command() {
        let overrides = Overrides {
            entrypoint: Some(String::new()),
            ..Overrides::default()
        };
        let image = r#""Entrypoint":["/entry"],"Cmd":["default"]"#;
        let result = resolve_process(&config(image), &overrides, "host");
        assert!(
            matches!(result, Err(InvalidProcess::EntrypointCleared)),
            "{result:?}"
        );
    }

    #[test]
    fn default_path_and_hostname_are_added() {
        let process =
            resolve_process(&config(r#""Cmd":["x"]"#), &Overrides::default(), "c1").unwrap();
        assert_eq!(get_env(&process.env, "PATH"), Some(DEFAULT_PATH));
        assert_eq!(get_env(&process.env, "HOSTNAME"), Some("c1"));
        assert_eq!(process.cwd, "/");
        assert_eq!(process.user, None);
    }

    #[test]
    fn image_env_is_kept_and_overridden() {
        let image =
            r#""Cmd":["x"],"Env":["PATH=/bin","A=1","B=2"],"WorkingDir":"/srv","User":"nobody""#;
        let overrides = Overrides {
            env: strings(&["B=3", "C=4"]),
            workdir: Some("/tmp".to_owned()),
            ..Overrides::default()
        };
        let process = resolve_process(&config(image), &overrides, "h").unwrap();
        assert_eq!(
            process.env,
            ["PATH=/bin", "A=1", "B=3", "C=4", "HOSTNAME=h"]
        );
        assert_eq!(process.cwd, "/tmp");
        assert_eq!(process.user.as_deref(), Some("nobody"));
    }
}
