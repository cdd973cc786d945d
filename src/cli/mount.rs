use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use layerfs::mount::{mount_image, run_daemon, unmount, Driver};
use layerfs_registry::Reference;

use super::{image, print_line, Context, Failure};

#[derive(Debug, Args)]
pub struct MountArgs {
    /// Add a fresh writable layer; without it the mount is read-only.
    #[arg(long)]
    rw: bool,

    /// Driver presenting the image: the kernel's overlayfs, or layerfs's FUSE file system
    /// (served by a background process until `layerfs umount`), optionally with reads and
    /// writes passed through to the real files.
    #[arg(long, value_enum, default_value_t = DriverArg::Overlay)]
    driver: DriverArg,

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

/// The `--driver` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DriverArg {
    Overlay,
    Fuse,
    FusePassthrough,
}

impl From<DriverArg> for Driver {
    fn from(driver: DriverArg) -> Driver {
        match driver {
            DriverArg::Overlay => Driver::Overlay,
            DriverArg::Fuse => Driver::Fuse,
            DriverArg::FusePassthrough => Driver::FusePassthrough,
        }
    }
}

#[derive(Debug, Args)]
pub struct FuseDaemonArgs {
    /// The mount's directory in the store.
    dir: PathBuf,
}

pub fn mount(context: &Context, args: MountArgs) -> Result<ExitCode, Failure> {
    let image = image(&context.store, &args.image)?;
    let driver = args.driver.into();
    let record = mount_image(&context.store, &image, &args.target, args.rw, driver)?;
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

pub fn fuse_daemon(args: FuseDaemonArgs) -> Result<ExitCode, Failure> {
    run_daemon(&args.dir)?;
    Ok(ExitCode::SUCCESS)
}
