use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use layerfs::pull::Progress;
use layerfs::run::capabilities::CapabilityArg;
use layerfs::run::cgroups::resources::parse_size;
use layerfs::run::cgroups::{CpuQuota, Resources, SwapLimit};
use layerfs::run::rlimits::Ulimit;
use layerfs::run::rootfs::volumes::{Tmpfs, Volume};
use layerfs::run::spec::{Network, Overrides};
use layerfs::run::{self, env_file, Outcome, RunOptions};
use layerfs::store::ImageRecord;
use layerfs_registry::{Platform, Reference};
use tracing::debug;

use super::mount::DriverArg;
use super::pull::pull_image;
use super::{find_image, Context, Failure};

/// Exit code for a failure of layerfs itself rather than of the container, as in Docker.
pub(super) const RUN_FAILURE: u8 = 125;

#[derive(Debug, Args)]
#[command(override_usage = "layerfs run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,

    /// Run in the background and print the container ID; output goes to `layerfs logs`.
    #[arg(short = 'd', long)]
    detach: bool,

    /// Name the container, for `stop`, `logs` and the other commands.
    #[arg(long)]
    name: Option<String>,

    /// Keep stdin open and connect it to the container.
    #[arg(short = 'i', long)]
    interactive: bool,

    /// Give the container a pseudo-terminal.
    #[arg(short = 't', long)]
    tty: bool,

    /// Platform of the image to run, as os/arch[/variant], pulled unless the store has the
    /// image for it [default: the stored image's, or else the host's].
    #[arg(long)]
    platform: Option<Platform>,

    /// Set an environment variable, KEY=VALUE, or KEY to copy it from this environment (if
    /// KEY is not set here, the image's KEY is removed).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Read environment variables from a file, one KEY=VALUE per line; -e overrides them.
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,

    /// Working directory inside the container [default: the image's, or /].
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,

    /// User to run as, USER[:GROUP] by name or number [default: the image's, or root].
    #[arg(short = 'u', long = "user")]
    user: Option<String>,

    /// Replace the image's entrypoint; an empty string clears it.
    #[arg(long)]
    entrypoint: Option<String>,

    /// Container hostname [default: the first 12 characters of the container ID, or with
    /// --net host the host's name].
    #[arg(long)]
    hostname: Option<String>,

    /// Network: none (a namespace with only loopback) or host.
    #[arg(long = "net", alias = "network", default_value = "none")]
    network: Network,

    /// Mount the root file system read-only.
    #[arg(long = "read-only")]
    read_only: bool,

    /// Bind mount a host path, HOST:CONTAINER[:ro].
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volumes: Vec<Volume>,

    /// Mount a tmpfs, PATH[:OPTIONS] (such as size=64m,mode=1777).
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    tmpfs: Vec<Tmpfs>,

    /// Run an init process as PID 1 that forwards signals and reaps zombies.
    #[arg(long)]
    init: bool,

    /// Run in a user namespace whose root is an unprivileged host ID range.
    #[arg(long)]
    userns: bool,

    /// Add a capability to Docker's default set (such as NET_ADMIN), or ALL.
    #[arg(long = "cap-add", value_name = "CAPABILITY")]
    cap_add: Vec<CapabilityArg>,

    /// Drop a capability from Docker's default set, or ALL.
    #[arg(long = "cap-drop", value_name = "CAPABILITY")]
    cap_drop: Vec<CapabilityArg>,

    /// Set a resource limit, NAME=SOFT[:HARD] (nofile, nproc, core…).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimits: Vec<Ulimit>,

    /// Memory limit, such as 32m or 1g.
    #[arg(short = 'm', long, value_parser = parse_size_arg)]
    memory: Option<u64>,

    /// Memory plus swap limit, or -1 for unlimited swap [default: twice --memory].
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<SwapLimit>,

    /// CPU time, in CPUs, such as 0.5.
    #[arg(long)]
    cpus: Option<CpuQuota>,

    /// CPUs the container may run on, such as 0-1 or 0,2.
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    cpuset_cpus: Option<String>,

    /// Maximum number of processes and threads.
    #[arg(long, alias = "pids-limit")]
    pids: Option<u64>,

    /// Relative CPU weight on the cgroup v1 scale (2–262144, default 1024).
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<u64>,

    /// Relative CPU weight on the cgroup v2 scale (1–10000, default 100).
    #[arg(long = "cpu-weight")]
    cpu_weight: Option<u64>,

    /// Relative block I/O weight (10–1000), where the I/O scheduler supports weights.
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u64>,

    /// Parent cgroup of the container's cgroup [default: the config's run.cgroup_parent,
    /// or layerfs].
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    cgroup_parent: Option<PathBuf>,

    /// Print CPU, memory, pids and I/O figures to stderr when the container exits.
    #[arg(long)]
    stats: bool,

    /// Driver presenting the image as the container's root: the kernel's overlayfs, or layerfs's
    /// FUSE file system (served by a background process while the container runs).
    #[arg(long, value_enum, default_value_t = DriverArg::Overlay)]
    driver: DriverArg,

    /// Image reference (pulled first if not in the store), then the command and its
    /// arguments [default: the image's Entrypoint and Cmd]. Everything after the image goes
    /// to the command, options included.
    #[arg(
        value_name = "IMAGE",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    image_and_command: Vec<String>,
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|error| error.to_string())
}

pub fn run(context: &Context, args: RunArgs) -> Result<ExitCode, Failure> {
    if let Some(option) = args
        .image_and_command
        .first()
        .filter(|a| a.starts_with('-'))
    {
        // clap hands an option it does not know to the positional that takes hyphen values.
        // The image comes first, and no reference starts with `-`.
        let _ = unknown_option(option).print();
        return Ok(ExitCode::from(RUN_FAILURE));
    }
    let failure = |error: anyhow::Error| {
        let exit_code = match error.downcast_ref::<run::Error>() {
            Some(error) => error.exit_code(),
            None => RUN_FAILURE,
        };
        Failure { error, exit_code }
    };
    match start(context, args).map_err(failure)? {
        Outcome::Exited(code) => Ok(ExitCode::from(code)),
        Outcome::Detached(id) => {
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn start(context: &Context, args: RunArgs) -> anyhow::Result<Outcome> {
    let mut image_and_command = args.image_and_command.into_iter();
    let reference: Reference = image_and_command
        .next()
        .expect("clap requires the image")
        .parse()?;
    let overrides = Overrides {
        command: image_and_command.collect(),
        entrypoint: args.entrypoint,
        env: read_env(&args.env_file, &args.env)?,
        workdir: args.workdir,
        user: args.user,
    };
    // Before the pull, so that a mistyped option leaves the store as it was.
    overrides.check()?;

    let image = match stored_image(context, &reference, args.platform.as_ref())? {
        Some(image) => image,
        None => pull_image(
            context,
            &reference,
            args.platform.clone(),
            Progress::for_stderr(),
        )?,
    };
    let host = Platform::host();
    if args.platform.is_none() && !host.matches(&image.platform) {
        // As Docker warns; the command runs only if binfmt_misc can emulate the platform.
        eprintln!(
            "layerfs: warning: the image's platform ({}) does not match the host's ({host}), \
             and no platform was requested",
            image.platform
        );
    }
    let defaults = &context.config.run;
    let options = RunOptions {
        overrides,
        name: args.name,
        remove: args.rm,
        detach: args.detach,
        interactive: args.interactive,
        terminal: args.tty,
        hostname: args.hostname,
        network: args.network,
        read_only: args.read_only,
        volumes: args.volumes,
        tmpfs: args.tmpfs,
        init: args.init,
        userns: args.userns,
        ulimits: args.ulimits,
        cap_add: args.cap_add,
        cap_drop: args.cap_drop,
        resources: Resources {
            memory: args.memory,
            memory_swap: args.memory_swap,
            cpu_quota: args.cpus,
            cpuset_cpus: args.cpuset_cpus,
            pids: args.pids,
            cpu_shares: args.cpu_shares,
            cpu_weight: args.cpu_weight,
            blkio_weight: args.blkio_weight,
        },
        cgroup_parent: args
            .cgroup_parent
            .unwrap_or_else(|| defaults.cgroup_parent.clone()),
        cgroup_version: defaults.cgroup_version,
        print_stats: args.stats,
        driver: args.driver.into(),
    };
    Ok(run::run(&context.store, &image, &options)?)
}

/// Builds the error clap gives for an unknown option of `run`, with `run`'s usage line.
fn unknown_option(option: &str) -> clap::Error {
    let mut command = <super::Args as clap::CommandFactory>::command();
    command.build();
    let run = command
        .find_subcommand_mut("run")
        .expect("layerfs has a run command");
    run.error(
        clap::error::ErrorKind::UnknownArgument,
        format!("unexpected argument '{option}' found"),
    )
}

/// Finds the image to run in the store. With `--platform`, an image stored for another
/// platform counts as missing, so that the requested one is pulled in its place, as Docker
/// does. An image named by its ID cannot be pulled, so there the mismatch is an error.
fn stored_image(
    context: &Context,
    reference: &Reference,
    platform: Option<&Platform>,
) -> anyhow::Result<Option<ImageRecord>> {
    let Some(image) = find_image(&context.store, reference)? else {
        return Ok(None);
    };
    let Some(requested) = platform.filter(|requested| !requested.matches(&image.platform)) else {
        return Ok(Some(image));
    };
    if context.store.find_image(reference)?.is_none() {
        anyhow::bail!(
            "image {} is for platform {}, not the requested {requested}",
            image.id(),
            image.platform
        );
    }
    debug!(stored = %image.platform, %requested, "pulling {reference} for another platform");
    Ok(None)
}

/// Reads the `--env-file` files, then the `-e` entries, in order.
fn read_env(files: &[PathBuf], entries: &[String]) -> anyhow::Result<Vec<String>> {
    let mut env = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading env file {}", path.display()))?;
        let entries = env_file::parse(&text, |name| std::env::var(name).ok())
            .with_context(|| format!("reading env file {}", path.display()))?;
        env.extend(entries);
    }
    env.extend(entries.iter().map(|entry| expand_env(entry)));
    Ok(env)
}

/// `KEY=VALUE` stays, and a bare `KEY` takes this process's value. A bare `KEY` that is not
/// set here stays bare, so that it removes KEY from the image's environment, as in Docker.
fn expand_env(entry: &str) -> String {
    if entry.contains('=') {
        return entry.to_owned();
    }
    match std::env::var(entry) {
        Ok(value) => format!("{entry}={value}"),
        Err(_) => entry.to_owned(),
    }
}

pub fn container_shim() -> ExitCode {
    ExitCode::from(run::container_shim())
}
