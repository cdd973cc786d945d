//! Command-line arguments, parsed once into typed values, and one module per command.

mod images;
mod inspect;
mod mount;
mod pull;
mod run;
mod snapshotter;

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
    Run(run::RunArgs),
    /// Serve containerd's snapshots API on a unix socket (a containerd proxy plug-in).
    Snapshotter(snapshotter::SnapshotterArgs),
    /// Set up and start a container's process (used by `run`, not by hand).
    #[command(hide = true, name = "container-init")]
    ContainerInit,
    /// Serve a FUSE mount (started by `mount --driver fuse`, not by hand).
    #[command(hide = true, name = "fuse-daemon")]
    FuseDaemon(mount::FuseDaemonArgs),
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

pub fn init_logging(args: &Args) {
    // The FUSE daemon is a service: it logs its start and stop. fuser warns when its own
    // unmount at exit finds the file system already unmounted, which is the normal case.
    let default = match (&args.command, args.debug) {
        (_, true) => "debug",
        (Command::FuseDaemon(_), false) => "info,fuser=error",
        (_, false) => "warn",
    };
    let filter = EnvFilter::try_from_env("LAYERFS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

pub fn dispatch(args: Args) -> Result<ExitCode, Failure> {
    if let Command::ContainerInit = args.command {
        return Ok(run::container_init());
    }
    if let Command::FuseDaemon(command) = args.command {
        return mount::fuse_daemon(command);
    }
    let context = Context::new(&args)?;
    match args.command {
        Command::Pull(command) => pull::pull(&context, command),
        Command::Images(command) => images::images(&context, command),
        Command::Inspect(command) => inspect::inspect(&context, command),
        Command::Mount(command) => mount::mount(&context, command),
        Command::Umount(command) => mount::umount(&context, command),
        Command::Run(command) => run::run(&context, command),
        Command::Snapshotter(command) => snapshotter::snapshotter(&context, command),
        Command::ContainerInit | Command::FuseDaemon(_) => unreachable!("handled above"),
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
