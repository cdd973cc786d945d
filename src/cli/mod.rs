//! Command-line arguments, parsed once into typed values, and one module per command.

mod containers;
mod images;
mod inspect;
mod logs;
mod mount;
mod ps;
mod pull;
mod run;
mod snapshotter;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use layerfs::config::Config;
use layerfs::store::Store;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "layerfs",
    version,
    about = "Pull container images, mount them, run them"
)]
pub struct Args {
    /// Store root directory.
    #[arg(
        long,
        global = true,
        env = "LAYERFS_ROOT",
        default_value = "/var/lib/layerfs"
    )]
    root: PathBuf,

    /// Config file [default: /etc/layerfs/config.toml, if present].
    #[arg(long, global = true, env = "LAYERFS_CONFIG")]
    config: Option<PathBuf>,

    /// Log debug messages to stderr (LAYERFS_LOG sets a finer filter).
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch an image and its layers into the store.
    Pull(pull::PullArgs),
    /// List the images in the store.
    Images(images::ImagesArgs),
    /// Show an image's manifest digest, platform, config and layers as JSON.
    Inspect(inspect::InspectArgs),
    /// Mount an image's root filesystem on a directory.
    Mount(mount::MountArgs),
    /// Unmount a directory mounted by `layerfs mount`.
    Umount(mount::UmountArgs),
    /// Run a command in a new container from an image.
    Run(Box<run::RunArgs>),
    /// Serve containerd's snapshots API on a unix socket (a containerd proxy plug-in).
    Snapshotter(snapshotter::SnapshotterArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Stop containers: SIGTERM, then SIGKILL after a timeout.
    Stop(containers::StopArgs),
    /// Send a signal to containers' PID 1.
    Kill(containers::KillArgs),
    /// Remove stopped containers.
    Rm(containers::RmArgs),
    /// Freeze every process of containers.
    Pause(containers::NamesArgs),
    /// Thaw paused containers.
    Resume(containers::NamesArgs),
    /// Print the output of a detached container.
    Logs(logs::LogsArgs),
    /// Show containers' CPU, memory, pids and I/O figures.
    Stats(stats::StatsArgs),
    /// Supervise one container (started by `run`, not by hand).
    #[command(hide = true, name = "container-shim")]
    ContainerShim,
}

/// An error and the exit code it maps to.
pub struct Failure {
    pub error: anyhow::Error,
    pub exit_code: u8,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            error: error.into(),
            exit_code: 1,
        }
    }
}

pub fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_env("LAYERFS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

pub fn dispatch(args: Args) -> Result<ExitCode, Failure> {
    if let Command::ContainerShim = args.command {
        return Ok(run::container_shim());
    }
    let context = Context::new(&args)?;
    match args.command {
        Command::Pull(command) => pull::pull(&context, command),
        Command::Images(command) => images::images(&context, command),
        Command::Inspect(command) => inspect::inspect(&context, command),
        Command::Mount(command) => mount::mount(&context, command),
        Command::Umount(command) => mount::umount(&context, command),
        Command::Run(command) => run::run(&context, *command),
        Command::Snapshotter(command) => snapshotter::snapshotter(&context, command),
        Command::Ps(command) => ps::ps(&context, command),
        Command::Stop(command) => containers::stop(&context, command),
        Command::Kill(command) => containers::kill(&context, command),
        Command::Rm(command) => containers::rm(&context, command),
        Command::Pause(command) => containers::pause(&context, command),
        Command::Resume(command) => containers::resume(&context, command),
        Command::Logs(command) => logs::logs(&context, command),
        Command::Stats(command) => stats::stats(&context, command),
        Command::ContainerShim => unreachable!("handled above"),
    }
}

/// What every command needs: the store and the configuration.
pub struct Context {
    pub store: Store,
    pub config: Config,
}

impl Context {
    fn new(args: &Args) -> anyhow::Result<Context> {
        let config = Config::load(args.config.as_deref())?;
        let store = Store::open(&args.root)
            .with_context(|| format!("opening store {}", args.root.display()))?;
        Ok(Context { store, config })
    }
}

/// A multi-threaded runtime for registry work.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
