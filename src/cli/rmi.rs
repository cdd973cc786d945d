use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use layerfs::mount::list_mounts;
use layerfs::store::{Collected, ImageRecord, Store};
use layerfs_registry::Reference;

use super::{image, print_line, Context, Failure};

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove every reference to an image given by ID, when it has several.
    #[arg(short, long)]
    force: bool,

    /// Images to remove, by reference or image ID.
    #[arg(required = true)]
    images: Vec<Reference>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {}

/// Removes image records, then every layer and blob nothing uses any more.
pub fn rmi(context: &Context, args: RmiArgs) -> Result<ExitCode, Failure> {
    let store = &context.store;
    let doomed = records_to_remove(store, &args)?;
    for reference in &doomed {
        store.remove_image(reference)?;
        print_line(format_args!("Untagged: {reference}"))?;
    }
    report(&store.collect_garbage()?)?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves the arguments to the references to remove, checking each is unused first so
/// that nothing is removed when one argument is wrong.
fn records_to_remove(store: &Store, args: &RmiArgs) -> anyhow::Result<Vec<String>> {
    let mut doomed = Vec::new();
    for reference in &args.images {
        let found = image(store, reference)?;
        let same_image: Vec<ImageRecord> = store
            .list_images()?
            .into_iter()
            .filter(|other| other.config == found.config)
            .collect();
        let found_name = found.reference.parse::<Reference>().map(|r| r.name());
        let by_id = found_name.ok() != Some(reference.name());
        if by_id && same_image.len() > 1 && !args.force {
            let names: Vec<&str> = same_image.iter().map(|r| r.reference.as_str()).collect();
            bail!(
                "image {} has several references ({}); remove them by name or use --force",
                found.id().short(),
                names.join(", ")
            );
        }
        let records = if by_id { same_image } else { vec![found] };
        for record in records {
            check_unused(store, &record)?;
            doomed.push(record.reference);
        }
    }
    Ok(doomed)
}

/// Removes every layer and blob nothing uses any more.
pub fn prune(context: &Context, _args: PruneArgs) -> Result<ExitCode, Failure> {
    report(&context.store.collect_garbage()?)?;
    Ok(ExitCode::SUCCESS)
}

/// Refuses to remove an image that a mount or a container still uses, as Docker does.
fn check_unused(store: &Store, record: &ImageRecord) -> anyhow::Result<()> {
    for (_, mount) in list_mounts(store)? {
        if mount.reference == record.reference {
            bail!(
                "image {} is mounted on {}; unmount it first",
                record.reference,
                mount.target.display()
            );
        }
    }
    for container in layerfs::run::state::list(store)? {
        if container.record.image == record.reference {
            bail!(
                "image {} is used by container {}; remove the container first",
                record.reference,
                container.display_name()
            );
        }
    }
    Ok(())
}

fn report(collected: &Collected) -> std::io::Result<()> {
    for chain_id in &collected.layers {
        print_line(format_args!("Deleted layer: {chain_id}"))?;
    }
    print_line(format_args!(
        "Removed {} layers and {} blobs",
        collected.layers.len(),
        collected.blobs.len()
    ))
}
