use std::process::ExitCode;

use clap::Args;
use layerfs::pull::Progress;
use layerfs::run::spec::Overrides;
use layerfs::run::{self, RunOptions};
use layerfs_registry::{Platform, Reference};

use super::mount::DriverArg;
use super::pull::pull_image;
use super::{find_image, Context, Failure};

/// Exit code for a failure of layerfs itself rather than of the container, as in Docker.
const RUN_FAILURE: u8 = 125;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container's writable layer when it exits.
    #[arg(long)]
    rm: bool,

    /// Platform to pull if the image is not in the store, as os/arch[/variant].
    #[arg(long)]
    platform: Option<Platform>,

    /// Set an environment variable, KEY=VALUE, or KEY to copy it from this environment.
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Working directory inside the container [default: the image's, or /].
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,

    /// User to run as, USER[:GROUP] by name or number [default: the image's, or root].
    #[arg(short = 'u', long = "user")]
    user: Option<String>,

    /// Replace the image's entrypoint; an empty string clears it.
    #[arg(long)]
    entrypoint: Option<String>,

    /// Container hostname [default: the first 12 characters of the container ID].
    #[arg(long)]
    hostname: Option<String>,

    /// Driver presenting the image as the container's root: the kernel's overlayfs, or layerfs's
    /// FUSE file system (served by a background process while the container runs).
    #[arg(long, value_enum, default_value_t = DriverArg::Overlay)]
    driver: DriverArg,

    /// Image reference; pulled first if not in the store.
    image: Reference,

    /// Command and arguments [default: the image's Entrypoint and Cmd].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(context: &Context, args: RunArgs) -> Result<ExitCode, Failure> {
    let code = start(context, args).map_err(|error| Failure {
        error,
        exit_code: RUN_FAILURE,
    })?;
    Ok(ExitCode::from(code))
}

fn start(context: &Context, args: RunArgs) -> anyhow::Result<u8> {
    let image = match find_image(&context.store, &args.image)? {
        Some(image) => image,
        None => pull_image(
            context,
            &args.image,
            args.platform.clone(),
            Progress::for_stderr(),
        )?,
    };
    let options = RunOptions {
        overrides: Overrides {
            command: args.command,
            entrypoint: args.entrypoint,
            env: args
                .env
                .iter()
                .filter_map(|entry| expand_env(entry))
                .collect(),
            workdir: args.workdir,
            user: args.user,
        },
        remove: args.rm,
        hostname: args.hostname,
        driver: args.driver.into(),
    };
    Ok(run::run(&context.store, &image, &options)?)
}

/// `KEY=VALUE` stays; a bare `KEY` takes this process's value, and is dropped if unset.
fn expand_env(entry: &str) -> Option<String> {
    if entry.contains('=') {
        return Some(entry.to_owned());
    }
    std::env::var(entry)
        .ok()
        .map(|value| format!("{entry}={value}"))
}

pub fn container_init() -> ExitCode {
    ExitCode::from(run::container_init())
}
