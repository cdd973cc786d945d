//! Freezing in v2 is part of the core: `cgroup.freeze` requests it, and the `frozen` line of
//! `cgroup.events` reports when every process has stopped.

use std::path::Path;

use super::super::files;
use super::super::Result;

pub fn set(dir: &Path, frozen: bool) -> Result<()> {
    files::write(dir, "cgroup.freeze", u8::from(frozen))?;
    let expected = if frozen { "1" } else { "0" };
    files::wait_for_state(&dir.join("cgroup.events"), expected, || {
        let events = files::read(dir, "cgroup.events")?.unwrap_or_default();
        Ok(files::keyed_value(&events, "frozen")
            .unwrap_or(0)
            .to_string())
    })
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(files::read_keyed(dir, "cgroup.events", "frozen")? == Some(1))
}
