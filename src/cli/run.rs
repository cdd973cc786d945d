use std::process::ExitCode;

use clap::Args;
use layerfs_registry::Reference;

use super::{Context, Failure};

#[derive(Debug, Args)]
pub struct RunArgs {
    image: Reference,
}

pub fn run(_context: &Context, _args: RunArgs) -> Result<ExitCode, Failure> {
    todo!()
}

pub fn container_init() -> ExitCode {
    todo!()
}
