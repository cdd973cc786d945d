use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use layerfs::pull::{Progress, Puller};
use layerfs::store::ImageRecord;
use layerfs_registry::{Client, Platform, Reference};

use super::{print_line, runtime, Context, Failure};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform to pick from a multi-platform image, as os/arch[/variant] [default: the host's].
    #[arg(long)]
    platform: Option<Platform>,

    /// Image reference: NAME[:TAG][@DIGEST], e.g. busybox, alpine:3.20, ghcr.io/org/app:1.
    image: Reference,
}

pub fn pull(context: &Context, args: PullArgs) -> Result<ExitCode, Failure> {
    let record = pull_image(context, &args.image, args.platform, Progress::for_stderr())?;
    print_line(format_args!("Pulled {}", record.reference))?;
    let digest = record.index.as_ref().unwrap_or(&record.manifest);
    print_line(format_args!("Digest: {digest}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Pulls `reference` on a runtime that is shut down before returning, so that the caller is
/// single-threaded again (which `run` relies on).
pub fn pull_image(
    context: &Context,
    reference: &Reference,
    platform: Option<Platform>,
    progress: Progress,
) -> anyhow::Result<ImageRecord> {
    let puller = Puller {
        store: context.store.clone(),
        client: Arc::new(Client::new(
            context.config.registry.clone(),
            context.config.network.timeouts(),
        )),
        platform,
        progress,
    };
    let runtime = runtime()?;
    let result = runtime.block_on(puller.pull(reference));
    runtime.shutdown_background();
    result.with_context(|| format!("pulling {reference}"))
}
