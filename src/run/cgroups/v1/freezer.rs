//! The v1 freezer: `freezer.state` is written `FROZEN` or `THAWED`, and reads `FREEZING`
//! until every task has stopped.

use std::path::Path;

use super::super::files;
use super::super::Result;

pub fn freeze(dir: &Path) -> Result<()> {
    set_state(dir, "FROZEN")
}

pub fn thaw(dir: &Path) -> Result<()> {
    set_state(dir, "THAWED")
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(files::read(dir, "freezer.state")?.as_deref() == Some("FROZEN"))
}

fn set_state(dir: &Path, state: &'static str) -> Result<()> {
    files::wait_for_state(&dir.join("freezer.state"), state, || {
        // Writing again retries the tasks that were not frozen at the previous attempt.
        files::write(dir, "freezer.state", state)?;
        Ok(files::read(dir, "freezer.state")?.unwrap_or_default())
    })
}
