//! Command-line arguments, parsed once into typed values, and one module per command.

mod containers;
mod images;
mod inspect;
mod logs;
mod mount;
mod ps;
mod pull;
mod rmi;
mod run;
mod snapshotter;
mod stats;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use layerfs::config::Config;
use layerfs::store::{Error as StoreError, ImageRecord, Store};
use layerfs_registry::Reference;
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
    /// Remove images, and the layers and blobs no other image uses.
    Rmi(rmi::RmiArgs),
    /// Remove layers and blobs that no image uses.
    Prune(rmi::PruneArgs),
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
    /// Serve a FUSE mount (started by `mount --driver fuse`, not by hand).
    #[command(hide = true, name = "fuse-daemon")]
    FuseDaemon(mount::FuseDaemonArgs),
    /// Mount a snapshot with FUSE (run by mount.fuse3 for `fuse3.layerfs` mounts).
    #[command(hide = true, name = "overlay")]
    FuseHelper(snapshotter::FuseHelperArgs),
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
        // A service logs when it is ready and when it stops, as containerd does.
        (Command::Snapshotter(_), false) => "info,h2=warn,tower=warn",
        (_, false) => "warn",
    };
    let filter = EnvFilter::try_from_env("LAYERFS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // Timestamps help in a debug log or a service's log, not in a command's warning.
    let service = matches!(
        args.command,
        Command::FuseDaemon(_) | Command::ContainerShim | Command::Snapshotter(_)
    );
    match args.debug || service {
        true => subscriber.init(),
        false => subscriber.without_time().init(),
    }
}

/// Writes `text` and a newline to stdout, returning an error rather than panicking when the
/// reader has gone away.
pub fn print_line(text: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{text}")
}

/// Finds an image by reference, or by image ID: a bare ID parses as an official Docker Hub
/// name, so `c6348fa86ba0` arrives as `docker.io/library/c6348fa86ba0:latest` and
/// `sha256:c634…` as `docker.io/library/sha256:c634…`.
pub fn find_image(store: &Store, reference: &Reference) -> Result<Option<ImageRecord>, StoreError> {
    if let Some(record) = store.find_image(reference)? {
        return Ok(Some(record));
    }
    if reference.registry() != "docker.io" || reference.digest().is_some() {
        return Ok(None);
    }
    let Some(name) = reference.repository().strip_prefix("library/") else {
        return Ok(None);
    };
    match (name, reference.tag()) {
        ("sha256", Some(id)) => store.find_image_by_id(id),
        (id, Some("latest")) => store.find_image_by_id(id),
        _ => Ok(None),
    }
}

/// Like [`find_image`], but an image that is not there is an error.
pub fn image(store: &Store, reference: &Reference) -> Result<ImageRecord, StoreError> {
    find_image(store, reference)?.ok_or_else(|| StoreError::ImageNotFound(reference.to_string()))
}

/// Whether `error` comes from writing to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn dispatch(args: Args) -> Result<ExitCode, Failure> {
    if let Command::ContainerShim = args.command {
        return Ok(run::container_shim());
    }
    if let Command::FuseDaemon(command) = args.command {
        return mount::fuse_daemon(command);
    }
    // containerd runs the helper with its own environment: no layerfs store or config.
    if let Command::FuseHelper(command) = args.command {
        return snapshotter::fuse_helper(command);
    }
    let context = match args.command {
        // Commands that only read the store need no config and create no store.
        Command::Images(_) | Command::Inspect(_) | Command::Umount(_) => {
            match Store::open_existing(&args.root) {
                Ok(store) => Context {
                    store,
                    config: Config::default(),
                },
                Err(StoreError::NoStore(_)) if matches!(args.command, Command::Images(_)) => {
                    return images::print_empty(&args.command);
                }
                Err(error) => return Err(error.into()),
            }
        }
        _ => Context::new(&args).map_err(|error| Failure {
            error,
            exit_code: match args.command {
                Command::Run(_) => run::RUN_FAILURE,
                _ => 1,
            },
        })?,
    };
    match args.command {
        Command::Pull(command) => pull::pull(&context, command),
        Command::Images(command) => images::images(&context, command),
        Command::Inspect(command) => inspect::inspect(&context, command),
        Command::Mount(command) => mount::mount(&context, command),
        Command::Umount(command) => mount::umount(&context, command),
        Command::Run(command) => run::run(&context, *command),
        Command::Rmi(command) => rmi::rmi(&context, command),
        Command::Prune(command) => rmi::prune(&context, command),
        Command::Snapshotter(command) => snapshotter::snapshotter(&context, command),
        Command::Ps(command) => ps::ps(&context, command),
        Command::Stop(command) => containers::stop(&context, command),
        Command::Kill(command) => containers::kill(&context, command),
        Command::Rm(command) => containers::rm(&context, command),
        Command::Pause(command) => containers::pause(&context, command),
        Command::Resume(command) => containers::resume(&context, command),
        Command::Logs(command) => logs::logs(&context, command),
        Command::Stats(command) => stats::stats(&context, command),
        Command::ContainerShim | Command::FuseDaemon(_) | Command::FuseHelper(_) => {
            unreachable!("handled above")
        }
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
