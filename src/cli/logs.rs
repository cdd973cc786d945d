//! `layerfs logs`: the output of a detached container, optionally followed until it exits.

use std::fs::File;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use layerfs::run::state::{self, LOG_FILE};

use super::{Context, Failure};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container exits.
    #[arg(short = 'f', long)]
    follow: bool,

    /// Container, by name, ID or ID prefix.
    container: String,
}

pub fn logs(context: &Context, args: LogsArgs) -> Result<ExitCode, Failure> {
    let container = state::find(&context.store, &args.container)?;
    let path = container.dir.join(LOG_FILE);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            // NOTE: unlike Docker, a container run in the foreground keeps no log.
            return Err(anyhow::anyhow!(
                "container {} has no log: only detached containers (run -d) write one",
                container.display_name()
            )
            .into());
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("opening {}", path.display()))
                .into())
        }
    };
    let mut stdout = io::stdout().lock();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if read > 0 {
            if stdout.write_all(&buffer[..read]).is_err() {
                // The reader went away (a closed pipe): nothing left to do.
                return Ok(ExitCode::SUCCESS);
            }
            continue;
        }
        let _ = stdout.flush();
        // At the end of the file: done, unless following a container that still runs.
        // Its shim writes nothing after it exits, so one more read after that finds all.
        if !args.follow || !container.shim_alive() {
            if args.follow {
                io::copy(&mut file, &mut stdout).ok();
            }
            return Ok(ExitCode::SUCCESS);
        }
        sleep(Duration::from_millis(100));
    }
}
