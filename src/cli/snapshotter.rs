use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use layerfs::snapshotter::{mount_with_daemon, parse_options, serve, Snapshotter};
use tokio::signal::unix::{signal, SignalKind};

use super::{Context, Failure};

#[derive(Debug, Args)]
pub struct SnapshotterArgs {
    /// Unix socket to serve on: the `address` of the `proxy_plugins` entry in containerd's
    /// config.
    #[arg(long, default_value = "/run/layerfs/snapshotter.sock")]
    address: PathBuf,
}

/// The arguments that mount.fuse3 passes to the program of a `fuse3.layerfs` mount.
#[derive(Debug, Args)]
pub struct FuseHelperArgs {
    /// Directory to mount on.
    target: PathBuf,

    /// Mount options, comma-separated: lowerdir, upperdir, workdir and statedir.
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
}

/// Mounts a snapshot with FUSE and exits once the mount is live; its daemon stays.
pub fn fuse_helper(args: FuseHelperArgs) -> Result<ExitCode, Failure> {
    let mount = parse_options(&args.options)?;
    mount_with_daemon(&mount, &args.target)
        .with_context(|| format!("mounting {} with FUSE", args.target.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGINT or SIGTERM, then removes the socket and exits.
pub fn snapshotter(context: &Context, args: SnapshotterArgs) -> Result<ExitCode, Failure> {
    let driver = context.config.snapshotter.driver;
    let snapshotter =
        Snapshotter::open(context.store.clone(), driver).context("starting the snapshotter")?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        serve(snapshotter, &args.address, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
