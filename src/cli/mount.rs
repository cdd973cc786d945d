use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use layerfs::mount::{mount_image, unmount};
use layerfs_registry::Reference;

use super::{image, print_line, Context, Failure};

#[derive(Debug, Args)]
pub struct MountArgs {
    /// Add a fresh writable layer; without it the mount is read-only.
    #[arg(long)]
    rw: bool,

    /// Image reference, as pulled.
    image: Reference,

    /// Directory to mount on; created if missing, and then removed by `umount`.
    target: PathBuf,
}

#[derive(Debug, Args)]
pub struct UmountArgs {
    /// Keep the writable layer of a read-write mount and print its path.
    #[arg(long)]
    keep: bool,

    /// The directory given to `layerfs mount`.
    target: PathBuf,
}

pub fn mount(context: &Context, args: MountArgs) -> Result<ExitCode, Failure> {
    let image = image(&context.store, &args.image)?;
    let record = mount_image(&context.store, &image, &args.target, args.rw)?;
    let mode = if record.writable {
        "read-write"
    } else {
        "read-only"
    };
    let target = record.target.display();
    print_line(format_args!(
        "Mounted {} on {target} ({mode})",
        record.reference
    ))?;
    Ok(ExitCode::SUCCESS)
}

pub fn umount(context: &Context, args: UmountArgs) -> Result<ExitCode, Failure> {
    let unmounted = unmount(&context.store, &args.target, args.keep)?;
    if let Some(upper) = unmounted.kept_upper {
        print_line(format_args!("Kept writable layer {}", upper.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
