use std::process::ExitCode;

use clap::Args;
use layerfs::image::ImageConfig;
use layerfs_registry::Reference;
use serde_json::json;

use super::{image, print_line, Context, Failure};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference, as pulled.
    image: Reference,
}

pub fn inspect(context: &Context, args: InspectArgs) -> Result<ExitCode, Failure> {
    let record = image(&context.store, &args.image)?;
    let config = ImageConfig::parse(&context.store.read_blob(&record.config)?, &record.config)?;
    let layers: Vec<_> = record
        .layers
        .iter()
        .map(|layer| {
            json!({
                "digest": layer.digest,
                "size": layer.size,
                "media_type": layer.media_type,
                "diff_id": layer.diff_id,
                "chain_id": layer.chain_id,
            })
        })
        .collect();
    let output = json!({
        "reference": record.reference,
        "digest": record.index.as_ref().unwrap_or(&record.manifest),
        "manifest": record.manifest,
        "index": record.index,
        "id": record.id(),
        "platform": record.platform.to_string(),
        "created": config.created(),
        "config": config.to_json(),
        "layers": layers,
    });
    print_line(serde_json::to_string_pretty(&output)?)?;
    Ok(ExitCode::SUCCESS)
}
